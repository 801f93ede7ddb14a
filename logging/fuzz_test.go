package logging

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keel-go/keel/internal/sensitive"
)

const plantedSecret = "Zq9SECRETx7"

// FuzzMaskString: MaskString never panics, is stable when applied twice,
// and a planted secret never survives, whatever text surrounds it, in
// preformatted text or in a message with labels: after "password=", as a
// word of a YAML value, in a YAML block scalar or list, in a JSON list or
// object, in a Go map and as the user of a URL.
func FuzzMaskString(f *testing.F) {
	for _, s := range []string{
		"", "password=", `"`, `\"`, "'", "x://", "postgres://u:pw@h/db", "Bearer", "Authorization: Bearer",
		`{"token":"`, "password: ", "a=b c:d", "pin:", "\\", "\n", "[REDACTED]", "://@:", "token=\"a\\",
		"url=https://user:p@ss@host/x?token=a&b=c", "secret := ", "map[pwd:", "--password",
		"secrets: manager ready", "secrets:", "a: b c: d", "secrets: token=",
		`{"api_keys":["k1","k2"]}`, `{"password":{"v":"x"}}`, "map[tokens:[a b]]", "password: correct horse staple",
		"tls:\n  private_key: |\n    MIIE\n", "tokens:\n  - a\n- b", "password:\n  x\r\n", "password: >-", "https://ghp_x@github.com",
		"password=[", "password={\"", "[REDACTED]]", "- password: a", "key: |+2 # c\n",
	} {
		f.Add(s, s)
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		for _, in := range []string{prefix, suffix, prefix + suffix} {
			out := MaskString(in)
			// stability is promised for text without URLs, whose user
			// info is masked by position rather than by key
			if strings.Contains(in, "://") {
				continue
			}
			if again := MaskString(out); again != out {
				t.Fatalf("not stable:\n in %q\nout %q\nagain %q", in, out, again)
			}
		}
		if strings.Contains(prefix, plantedSecret) || strings.Contains(suffix, plantedSecret) {
			return
		}
		for _, planted := range []string{
			" password=" + plantedSecret + " ",
			" password=" + plantedSecret,
			"\npassword: " + plantedSecret + "\n",
			` "password": "` + plantedSecret + `" `,
			"\npassword: correct " + plantedSecret + " staple\n",
			"\npassword:\n  " + plantedSecret + "\n",
			"\n  private_key: |\n    MIIE\n\n    " + plantedSecret + "\n",
			"\ntokens:\n  - a\n  - " + plantedSecret + "\n",
			` "api_keys": ["a", "` + plantedSecret + `"] `,
			` {"password": {"v": "` + plantedSecret + `"}} `,
			" map[tokens:[a " + plantedSecret + "]] ",
			" https://" + plantedSecret + "@github.com/x ",
		} {
			in := prefix + planted + suffix
			if out := MaskString(in); strings.Contains(out, plantedSecret) {
				t.Fatalf("planted secret survived:\n in %q\nout %q", in, out)
			}
			if out := defaultMasker.maskMessage(in); strings.Contains(out, plantedSecret) {
				t.Fatalf("planted secret survived in a message:\n in %q\nout %q", in, out)
			}
		}
	})
}

func asciiCase(s string, upper bool) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

func allKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isKeyChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// FuzzSensitiveKey: key classification never panics and keeps its
// invariants: case does not matter once the camelCase humps are gone, a
// sensitive segment anywhere makes any key sensitive, a name added as an
// extra masks itself wherever it sits, and MaskString agrees with
// Sensitive.
func FuzzSensitiveKey(f *testing.F) {
	for _, k := range []string{"", "password", "db_password", "X-Api-Key", "userPassword", "mapping", "author",
		"APIKey", "a1b2", "__", "tokenizer_name", "日本語", "\xff", "session_id", "auth", "x.y.z.w.v.u.t.s.r.q"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		secretKey := IsSensitiveKey(key)
		if IsSensitiveKey(asciiCase(key, false)) != IsSensitiveKey(asciiCase(key, true)) {
			t.Fatalf("%q: lower and upper case classify differently", key)
		}
		if !IsSensitiveKey("x_"+key+"_password") || !IsSensitiveKey(key+".token") {
			t.Fatalf("%q: a sensitive segment next to it was missed", key)
		}
		if sensitive.CountWords(key) > 0 {
			m := NewMasker(key)
			if !m.Sensitive(key) || !m.Sensitive("pre_"+key+"_post") {
				t.Fatalf("%q as an extra name does not mask itself", key)
			}
		}
		if secretKey && allKeyChars(key) {
			if out := MaskString(key + "=" + plantedSecret); strings.Contains(out, plantedSecret) {
				t.Fatalf("%q is sensitive but MaskString kept its value: %q", key, out)
			}
		}
	})
}

// FuzzHandler: whatever the message, key and value, a JSON line is one
// valid JSON object on one line, and a value under a sensitive key never
// shows, in JSON or text.
func FuzzHandler(f *testing.F) {
	f.Add("msg", "key", "value")
	f.Add("line\nbreak", "k\"ey", "\xff\x00")
	f.Add("password=", "token", "")
	f.Fuzz(func(t *testing.T, msg, key, value string) {
		secretValue := plantedSecret + value
		for _, format := range []string{FormatJSON, FormatText} {
			var out syncBuffer
			l := New(Options{Format: format, Output: &out, Metrics: fuzzRegistry})
			l.Info(msg, key, "visible", "password", secretValue, "nested", map[string]any{"token": secretValue, key: 1})
			line := out.String()
			if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s: not exactly one line: %q", format, line)
			}
			if format == FormatJSON {
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					t.Fatalf("invalid JSON %q: %v", line, err)
				}
			}
			if !strings.Contains(msg, plantedSecret[:3]) && !strings.Contains(key, plantedSecret[:3]) &&
				strings.Contains(line, plantedSecret[:3]) {
				t.Fatalf("%s: sensitive value shown: %q", format, line)
			}
		}
	})
}

var fuzzRegistry = testRegistry()
