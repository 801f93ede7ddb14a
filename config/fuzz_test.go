package config

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// FuzzEnvKey checks the environment-name parser on any name: a taken name
// gives a well-formed lower-case key that EnvVarName maps back to a name
// giving the same key.
func FuzzEnvKey(f *testing.F) {
	for _, s := range []string{
		"MYAPP_DATABASE__HOST", "MYAPP_LOG_LEVEL", "MYAPP__A__B", "MYAPP___X", "MYAPPX_FOO",
		"MYAPP_", "MYAPP_A____B", "MYAPP_a__B", "MYAPP_\x00", "MYAPP_É", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		key, ok := envKey("MYAPP", name)
		if !ok {
			if key != "" {
				t.Fatalf("refused %q but returned key %q", name, key)
			}
			return
		}
		if key == "" || key != strings.ToLower(key) {
			t.Fatalf("%q -> bad key %q", name, key)
		}
		for _, seg := range strings.Split(key, ".") {
			if seg == "" || strings.HasPrefix(seg, "_") || strings.HasSuffix(seg, "_") {
				t.Fatalf("%q -> key %q has a malformed segment", name, key)
			}
		}
		back, ok := envKey("MYAPP", EnvVarName("MYAPP", key))
		if !ok || back != key {
			t.Fatalf("round trip %q -> %q -> %q (%v)", name, key, back, ok)
		}
	})
}

// FuzzParseDuration checks the duration parser: no panic, and an accepted
// value round-trips through its Go form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1m30s", "90", "1.5", "-3", "250ms", "2h30m", "", "abc", "1e400", "NaN", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		back, err := time.ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q -> %v does not round-trip: %v, %v", s, d, back, err)
		}
	})
}

// FuzzIsSensitiveKey checks the predicate never panics and that a
// sensitive segment keeps a dotted path sensitive wherever it sits.
func FuzzIsSensitiveKey(f *testing.F) {
	for _, s := range []string{"api_key", "keyboard", "dbPassword", "auth.mechanism", "a..b", "É_KEY", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !IsSensitiveKey(s) {
			return
		}
		if !IsSensitiveKey("x."+s) || !IsSensitiveKey(s+".y") {
			t.Fatalf("%q is sensitive but not inside a path", s)
		}
	})
}

var dotenvErr = regexp.MustCompile(`^malformed \.env content( at line [0-9]+)? \(check quoting and variable names\)$`)

// FuzzDotEnv checks the .env parser never panics and that its errors never
// quote the file.
func FuzzDotEnv(f *testing.F) {
	for _, s := range []string{"A=1\nB=2\n", "A=\"unterminated\n", "export A=1", "A B=1", "# c\n\nA='x'\n", "A=${B}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseDotEnv(b)
		if err != nil && !dotenvErr.MatchString(err.Error()) {
			t.Fatalf("error %q may quote the file", err)
		}
	})
}

type fuzzSection struct {
	Port     int               `koanf:"port"`
	Hosts    []string          `koanf:"hosts"`
	Timeout  time.Duration     `koanf:"timeout"`
	Upstream secret.String     `koanf:"upstream"`
	Nested   tlsConfig         `koanf:"nested"`
	Labels   map[string]string `koanf:"labels"`
}

// FuzzYAMLSection feeds any bytes as settings.yaml through the whole
// cascade, a section decode and the dump: nothing panics, errors are
// typed, and a planted secret (set above the file, in a secret.String
// field) never reaches the dump or an error.
func FuzzYAMLSection(f *testing.F) {
	for _, s := range []string{
		"svc:\n  port: 1\n  hosts: [a, b]\n  timeout: 1m\n",
		"svc: 3\n", "svc:\n  port: abc\n", "svc:\n  nested: [1]\n", "a: [\n", "- 1\n- 2\n", "svc:\n  labels: {a: {b: c}}\n",
		"svc:\n  upstream: {x: 1}\n", "? [a]\n: b\n", "&a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	const planted = "planted-secret-zz9"
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		work, err := os.MkdirTemp(root, "w")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(work)
		if err := os.WriteFile(filepath.Join(work, "settings.yaml"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		e := newEnvNoSetenv(work)
		o := e.opts()
		o.SkipDotEnv = true
		o.AppName = ""
		o.Overrides = map[string]any{"svc.upstream": planted}
		c, err := Load(context.Background(), o)
		if err != nil {
			return
		}
		var s fuzzSection
		err = c.Section("svc", &s)
		if err != nil && strings.Contains(err.Error(), planted) {
			t.Fatalf("error leaks the planted secret: %v", err)
		}
		out, err := c.DumpJSON()
		if err != nil {
			t.Fatalf("DumpJSON: %v", err)
		}
		if strings.Contains(string(out), planted) && !strings.Contains(string(data), planted) {
			t.Fatalf("dump leaks the planted secret: %s", out)
		}
	})
}

// newEnvNoSetenv builds a testEnv without t.Setenv (fuzz workers call it
// many times); the search directories all live under work.
func newEnvNoSetenv(work string) *testEnv {
	return &testEnv{
		root: work, work: work,
		sys: filepath.Join(work, "sys"), user: filepath.Join(work, "user"), home: filepath.Join(work, "home"),
		logs: &syncBuffer{},
		reg:  fuzzRegistry,
	}
}

// fuzzRegistry is shared by fuzz iterations (registration is idempotent).
var fuzzRegistry = metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
