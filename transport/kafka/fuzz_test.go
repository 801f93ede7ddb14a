package kafka

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-go/keel/transport"
)

// FuzzParseTraceparent: no panic; an accepted value is well-formed and
// version 00 values round-trip.
func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{
		testTraceparent, "", "00-", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseTraceparent(s)
		if err != nil {
			if !errors.Is(err, ErrTraceparent) {
				t.Fatalf("error %v does not wrap ErrTraceparent", err)
			}
			return
		}
		if !sc.IsValid() {
			t.Fatalf("accepted %q as an invalid span context", s)
		}
		if strings.HasPrefix(s, "00-") && FormatTraceparent(sc)[:53] != s[:53] {
			t.Fatalf("round trip of %q gave %q", s, FormatTraceparent(sc))
		}
	})
}

// FuzzApplyEnv: any environment value either applies or gives a config
// error naming the variable; it never panics.
func FuzzApplyEnv(f *testing.F) {
	f.Add("BOOTSTRAP_SERVERS", "a:1,b:2")
	f.Add("SSL_SKIP_VERIFY", "maybe")
	f.Add("TOPICS", ",,,")
	f.Add("SASL_PASSWORD", "\x00")
	f.Fuzz(func(t *testing.T, name, value string) {
		var c Config
		variable := "APP_" + name
		err := c.ApplyEnvFunc("APP", envMap(map[string]string{variable: value}))
		if err != nil && (!errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), variable)) {
			t.Fatalf("%s=%q: %v", variable, value, err)
		}
	})
}

// FuzzOverrides: any override either applies, or is refused with a config
// error naming the property; it never panics.
func FuzzOverrides(f *testing.F) {
	f.Add("linger.ms", "5")
	f.Add("acks", "-1")
	f.Add("unknown.prop", "1")
	f.Add("queue.buffering.max.kbytes", "99999999999")
	f.Add("enable.auto.commit", "TRUE")
	f.Fuzz(func(t *testing.T, key, value string) {
		c := validBase()
		c.Overrides = map[string]string{key: value}
		err := c.Validate()
		if err == nil {
			return
		}
		if !errors.Is(err, transport.ErrConfig) {
			t.Fatalf("%q=%q: %v does not wrap ErrConfig", key, value, err)
		}
		if errors.Is(err, ErrUnknownOverride) && !strings.Contains(err.Error(), strconv.Quote(key)) {
			t.Fatalf("unknown override %q not named: %v", key, err)
		}
	})
}
