package config

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/internal/sensitive/sensitivetest"
	"github.com/keel-go/keel/secret"
)

// TestIsSensitiveKey checks the shared key list: secrets and lone keys
// (key material in a configuration) are redacted, plain keys are not.
func TestIsSensitiveKey(t *testing.T) {
	for _, list := range [][]string{sensitivetest.Secret, sensitivetest.Key} {
		for _, k := range list {
			if !IsSensitiveKey(k) {
				t.Errorf("IsSensitiveKey(%q) = false, want true", k)
			}
		}
	}
	for _, k := range sensitivetest.Plain {
		if IsSensitiveKey(k) {
			t.Errorf("IsSensitiveKey(%q) = true, want false", k)
		}
	}
}

type dbSection struct {
	Host     string          `koanf:"host"`
	Password secret.String   `koanf:"password"`
	Upstream secret.String   `koanf:"upstream"` // secret by type only
	Mirrors  []secret.String `koanf:"mirrors"`
	Keyboard string          `koanf:"keyboard"`
	Timeout  time.Duration   `koanf:"timeout"`
	Replicas []replica       `koanf:"replicas"`
}

type replica struct {
	Name string        `koanf:"name"`
	Conn secret.String `koanf:"conn"` // secret by type only
}

// TestDumpJSONHasNoSecrets plants secrets reachable only by type, only by
// key name, inside URLs, lists and unregistered sections, from files and
// the environment, and checks no byte of them appears in the dump.
func TestDumpJSONHasNoSecrets(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), `
db:
  host: db.local
  password: leak-01
  upstream: leak-02
  keyboard: qwerty
  timeout: 1m
  replicas:
    - name: r1
      conn: leak-03
  url: postgres://admin:leak-04@db.local:5432/app?sslmode=disable&sslpassword=leak-05
  api_key: leak-06
  private_key: |
    -----BEGIN PRIVATE KEY-----
    leak-07
    -----END PRIVATE KEY-----
  connection_string: leak-08
  monkey: banana
  passphrase: correct leak-17 staple
  credentials:
    v: leak-18
    list: [leak-19]
  api_keys:
    - leak-20
    - leak-21
  repo: https://leak-22@github.com/keel-go/keel
  mirror: https://mirror.local/x?to=ops@example.com
auth:
  mechanism: plain
  username: leak-09
other:
  dsn: leak-10
  tokens: [leak-11, leak-12]
  nested:
    clientSecret: leak-13
  plain: visible
`)
	t.Setenv("MYAPP_DB__MIRRORS", "leak-14,leak-15")
	t.Setenv("MYAPP_OTHER__ACCESS_TOKEN", "leak-16")
	c := e.load(t, e.opts())
	var db dbSection
	db.Timeout = 5 * time.Second
	if err := c.Section("db", &db); err != nil && !strings.Contains(err.Error(), "unknown") {
		t.Fatal(err)
	}
	if db.Upstream.Expose() != "leak-02" || db.Mirrors[1].Expose() != "leak-15" || db.Replicas[0].Conn.Expose() != "leak-03" {
		t.Fatalf("secrets not decoded: %+v", db)
	}

	out, err := c.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "leak-") {
		i := strings.Index(string(out), "leak-")
		t.Fatalf("dump leaks a secret near %q:\n%s", string(out)[max(0, i-60):i+10], out)
	}
	for _, want := range []string{"db.local", "qwerty", "banana", "admin", "plain", "visible", "r1", `"1m0s"`, "sslmode=disable",
		"github.com/keel-go/keel", "ops@example.com", secret.Redacted} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dump lacks %q (over-redacted?)", want)
		}
	}

	var d struct {
		Effective map[string]any `json:"effective"`
		Sections  map[string]struct {
			Type      string         `json:"type"`
			Defaults  map[string]any `json:"defaults"`
			Effective map[string]any `json:"effective"`
		} `json:"sections"`
		Sources map[string]string `json:"sources"`
		Version uint64            `json:"version"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	s, ok := d.Sections["db"]
	if !ok {
		t.Fatalf("sections = %v", d.Sections)
	}
	if s.Defaults["timeout"] != "5s" || s.Effective["timeout"] != "1m0s" || s.Effective["host"] != "db.local" {
		t.Errorf("db section = %+v", s)
	}
	if s.Effective["upstream"] != secret.Redacted || s.Defaults["password"] != secret.Redacted {
		t.Errorf("secret fields not redacted: %+v", s)
	}
	if d.Effective["db"].(map[string]any)["upstream"] != secret.Redacted {
		t.Error("effective map: a secret.String field with a plain name must be redacted by type")
	}
	if d.Sources["db.mirrors"] != "env MYAPP_DB__MIRRORS" || d.Version != 1 {
		t.Errorf("sources/version = %v / %d", d.Sources["db.mirrors"], d.Version)
	}
}

// tokenHolder keeps secrets in the shapes a section may hold them: a
// list and a map under sensitive names, a struct under one, a secret in
// an unexported field and a URL whose user name is a token.
type tokenHolder struct {
	Tokens      []string          `koanf:"tokens"`
	Auth        map[string]string `koanf:"auth"`
	Credentials struct {
		V    string   `koanf:"v"`
		List []string `koanf:"list"`
	} `koanf:"credentials"`
	Repo string `koanf:"repo"`
	pass secret.String
}

func TestRedact(t *testing.T) {
	th := tokenHolder{Tokens: []string{"l1", "l2"}, Auth: map[string]string{"user": "l3"}, Repo: "https://l4@github.com/o/r",
		pass: secret.New("l5")}
	th.Credentials.V, th.Credentials.List = "l6", []string{"l7"}
	in := map[string]any{
		"api_key": "k1",
		"user":    "bob",
		"inner":   dbSection{Host: "h", Upstream: secret.New("u1")},
		"url":     "https://bob:pw1@example.com/x?token=t1&page=2",
		"holder":  th,
	}
	b, err := json.Marshal(Redact(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"k1", "u1", "pw1", "t1", "l1", "l2", "l3", "l4", "l5", "l6", "l7"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("Redact leaks %q: %s", leak, b)
		}
	}
	assertContains(t, string(b), "bob", `"h"`, "page=2", "github.com/o/r")
}

func TestScrubURL(t *testing.T) {
	cases := map[string]string{
		"postgres://u:p@h/db":              "postgres://u:REDACTED@h/db",
		"postgres://u@h/db":                "postgres://REDACTED@h/db",
		"https://ghp_x1@github.com/o/r":    "https://REDACTED@github.com/o/r",
		"https://@github.com/o/r":          "https://@github.com/o/r",
		"https://h/x?api_key=1&q=2":        "https://h/x?api_key=REDACTED&q=2",
		"not a url":                        "not a url",
		"http://%zz:pw@host":               secret.Redacted,
		"redis://:onlypassword@host:6379/": "redis://:REDACTED@host:6379/",
	}
	for in, want := range cases {
		if got := scrubURL(in); got != want {
			t.Errorf("scrubURL(%q) = %q, want %q", in, got, want)
		}
	}
}
