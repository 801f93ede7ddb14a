package sensitive

import (
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel/internal/sensitive/sensitivetest"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want Class
	}{
		{sensitivetest.Secret, Secret},
		{sensitivetest.Key, Key},
		{sensitivetest.Plain, None},
	} {
		for _, k := range tc.keys {
			if got := Classify(k); got != tc.want {
				t.Errorf("Classify(%q) = %d, want %d", k, got, tc.want)
			}
		}
	}
}

func TestCasesDoNotOverlap(t *testing.T) {
	seen := map[string]bool{}
	for _, list := range [][]string{sensitivetest.Secret, sensitivetest.Key, sensitivetest.Plain} {
		for _, k := range list {
			if seen[k] {
				t.Errorf("%q is listed twice", k)
			}
			seen[k] = true
		}
	}
}

// TestSegmentWords: session, auth and pass are sensitive wherever they sit
// in a key, while words that only contain them are not.
func TestSegmentWords(t *testing.T) {
	for _, w := range []string{"session", "auth", "pass"} {
		for _, k := range []string{w, w + "_x", "x_" + w, "x_" + w + "_y", "x." + w + ".y", strings.ToUpper(w) + "Value"} {
			if Classify(k) != Secret {
				t.Errorf("%q should be a secret", k)
			}
		}
	}
	for _, k := range []string{"bypass", "passenger", "author", "authority", "x_author_y", "SESSIONCount", "auth.timeout"} {
		if Classify(k) != None {
			t.Errorf("%q should not be sensitive", k)
		}
	}
}

// TestKeyRules: a lone key is its own class; a qualifier makes it a
// secret; a key source after it in the same dotted segment makes it a
// place; keys counts only as a whole dotted segment.
func TestKeyRules(t *testing.T) {
	for k, want := range map[string]Class{
		"key": Key, "tls.key": Secret, "tls_key": Secret, "tlsKey": Secret, "key.header": Key,
		"key_header": None, "key_header.x": None, "x.key_column": None, "key_file": Key,
		"keys": Key, "a.keys": Key, "keys.b": Key, "a_keys": None, "api.keys": Secret, "client_keys": Secret,
		"key_header_token": Secret, "monkey": None, "monkey.key": Key,
	} {
		if got := Classify(k); got != want {
			t.Errorf("Classify(%q) = %d, want %d", k, got, want)
		}
	}
}

func TestExtraNames(t *testing.T) {
	m := New("tenant_id", "Msisdn", "key", "a-b-c-d-e-f-g-h-i-j")
	for _, k := range []string{"tenant_id", "tenantId", "X-Tenant-ID", "customer_tenant_id", "msisdn", "callerMSISDN",
		"key", "record_key", "password", "a_b_c_d_e_f_g_h"} {
		if m.Classify(k) != Secret {
			t.Errorf("%q should be a secret with the extra names", k)
		}
	}
	for _, k := range []string{"tenant", "id", "tenant_name", "tenantid_count", "monkey"} {
		if m.Classify(k) != None {
			t.Errorf("%q should not be sensitive", k)
		}
	}
	if Classify("tenant_id") != None {
		t.Error("extra names leaked into the default matcher")
	}
}

func TestNamesAreSensitive(t *testing.T) {
	names := Names()
	for _, n := range names {
		if Classify(n) != Secret {
			t.Errorf("Names lists %q, which is not a secret", n)
		}
	}
	for _, n := range []string{"password", "token", "api_key", "session", "dsn", "client_key"} {
		if !slices.Contains(names, n) {
			t.Errorf("Names lacks %q", n)
		}
	}
}

func TestCountWords(t *testing.T) {
	for k, want := range map[string]int{"": 0, "..": 0, "a": 1, "X-Api-Key": 3, "APIKey": 2, "password2": 2, "a.b_cD": 4} {
		if got := CountWords(k); got != want {
			t.Errorf("CountWords(%q) = %d, want %d", k, got, want)
		}
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	for _, k := range []string{"requestDurationSeconds", "db_password", "x.keys", "key_header", "tls.key"} {
		if n := testing.AllocsPerRun(100, func() { Classify(k) }); n != 0 {
			t.Errorf("Classify(%q): %v allocations", k, n)
		}
	}
}

// FuzzClassify: classification never panics, ignores case once the
// camelCase humps are gone, and a sensitive key stays at least as
// sensitive inside a dotted path.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"api_key", "keyboard", "dbPassword", "auth.mechanism", "a..b", "É_KEY", "", "keys", "key_header"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Classify(s)
		if Classify(strings.ToLower(s)) != Classify(strings.ToUpper(s)) && isASCII(s) {
			t.Fatalf("%q: lower and upper case classify differently", s)
		}
		if Classify("x."+s) < c || Classify(s+".y") < c {
			t.Fatalf("%q is %d but less inside a path", s, c)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
