package logging_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/internal/sensitive"
	"github.com/keel-go/keel/internal/sensitive/sensitivetest"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// TestLoggerMasksWhatConfigRedacts logs every key of the list the
// configuration dump is tested with, as a top-level attribute, a map key
// and a key=value pair in a string: a key config.IsSensitiveKey redacts
// never shows its value in a log line, and a key it does not redact keeps
// it. The one documented difference is a lone "key" or "keys" (key_file,
// record_key), key material in a configuration but a record's or a map's
// key in a log line: the dump redacts it, the logger keeps it.
func TestLoggerMasksWhatConfigRedacts(t *testing.T) {
	keys := slices.Concat(sensitivetest.Secret, sensitivetest.Key, sensitivetest.Plain)
	for _, format := range []string{logging.FormatJSON, logging.FormatText} {
		var buf bytes.Buffer
		color := false
		l := logging.New(logging.Options{Format: format, Output: &buf, Color: &color,
			Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true})})
		for i, k := range keys {
			if k == "" {
				continue
			}
			v := fmt.Sprintf("v%03dz", i)
			buf.Reset()
			l.Info("key", k, v+"attr", "m", map[string]string{k: v + "map"}, "line", k+"="+v+"text")
			out := buf.String()
			loneKey := sensitive.Classify(k) == sensitive.Key
			redacted := config.IsSensitiveKey(k)
			for _, where := range []string{"attr", "map", "text"} {
				if where == "text" && !keyChars(k) {
					continue // MaskString reads keys of letters, digits, '_', '-' and '.'
				}
				shown := strings.Contains(out, v+where)
				switch {
				case redacted && !loneKey && shown:
					t.Errorf("%s: config redacts %q but the logger shows its %s value:\n%s", format, k, where, out)
				case (!redacted || loneKey) && !shown:
					t.Errorf("%s: config redacts %q: %v, lone key: %v, but the logger masks its %s value:\n%s",
						format, k, redacted, loneKey, where, out)
				}
			}
			if loneKey && !redacted {
				t.Errorf("config does not redact the lone key %q", k)
			}
		}
	}
}

func keyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
