package logging

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/keel-go/keel/internal/sensitive/sensitivetest"
	"github.com/keel-go/keel/secret"
)

// Every secret below is a distinct string that must never appear in any
// output, in any format.
const (
	sStructField   = "Sx-struct-field-7a1"
	sStructSecret  = "Sx-struct-secret-7a2"
	sNestedPass    = "Sx-nested-pass-7a3"
	sSliceToken    = "Sx-slice-token-7a4"
	sMapValue      = "Sx-map-value-7a5"
	sMapSecret     = "Sx-map-secret-7a6"
	sMapNested     = "Sx-map-nested-7a7"
	sGroup         = "Sx-group-7a8"
	sGroupDeep     = "Sx-group-deep-7a9"
	sWith          = "Sx-with-7b1"
	sWithGroup     = "Sx-withgroup-7b2"
	sError         = "Sx-error-7b3"
	sErrorURL      = "Sx-error-url-7b4"
	sDump1         = "Sx-dump-yaml-7b5"
	sDump2         = "Sx-dump-json-7b6"
	sDump3         = "Sx-dump-env-7b7"
	sDump4         = "Sx-dump-header-7b8"
	sTopSecret     = "Sx-top-secret-7b9"
	sPtrSecret     = "Sx-ptr-secret-7c1"
	sMsg           = "Sx-msg-7c2"
	sMarshalJSON   = "Sx-marshaljson-7c3"
	sLogValuer     = "Sx-logvaluer-7c4"
	sSecretMapKey  = "Sx-secret-map-key-7c5"
	sBytes         = "Sx-bytes-7c6"
	sInterface     = "Sx-interface-7c7"
	sEmbedded      = "Sx-embedded-7c8"
	sTaggedName    = "Sx-tagged-name-7c9"
	sStringValue   = "Sx-string-value-7d1"
	sTextMarshaler = "Sx-textmarshaler-7d2"
	sDumpWords1    = "Sx-dump-words-7d3"
	sDumpWords2    = "Sx-dump-words-7d4"
	sDumpPEM       = "Sx-dump-pem-7d5"
	sDumpList1     = "Sx-dump-yaml-list-7d6"
	sDumpList2     = "Sx-dump-yaml-list-7d7"
	sDumpJSONList  = "Sx-dump-json-list-7d8"
	sDumpJSONObj   = "Sx-dump-json-obj-7d9"
	sDumpGoMap     = "Sx-dump-go-map-7e1"
	sDumpURLUser   = "Sx-dump-url-user-7e2"
	sDumpBlock     = "Sx-dump-block-7e3"
	sErrMap1       = "Sx-err-map-7e4"
	sErrMap2       = "Sx-err-map-7e5"
	sErrMapAuth    = "Sx-err-map-auth-7e6"
	sErrPEM        = "Sx-err-pem-7e7"
	sUnexported    = "Sx-unexported-7e8"
)

var allSecrets = []string{
	sStructField, sStructSecret, sNestedPass, sSliceToken, sMapValue, sMapSecret, sMapNested,
	sGroup, sGroupDeep, sWith, sWithGroup, sError, sErrorURL, sDump1, sDump2, sDump3, sDump4,
	sTopSecret, sPtrSecret, sMsg, sMarshalJSON, sLogValuer, sSecretMapKey, sBytes, sInterface,
	sEmbedded, sTaggedName, sStringValue, sTextMarshaler,
	sDumpWords1, sDumpWords2, sDumpPEM, sDumpList1, sDumpList2, sDumpJSONList, sDumpJSONObj, sDumpGoMap,
	sDumpURLUser, sDumpBlock, sErrMap1, sErrMap2, sErrMapAuth, sErrPEM, sUnexported,
}

// dumpSecrets are the secrets configDump holds.
var dumpSecrets = []string{
	sDump1, sDump2, sDump3, sDump4, sDumpWords1, sDumpWords2, sDumpPEM, sDumpList1, sDumpList2,
	sDumpJSONList, sDumpJSONObj, sDumpGoMap, sDumpURLUser, sDumpBlock,
}

// dumpKept is what MaskString must leave in configDump.
var dumpKept = []string{
	"database:", "host: db.local", "port: 5432", "ca_file: /etc/ca.pem", "region: eu-west-1",
	`"service": "orders"`, `"port": 8080`, "DB_HOST=db.local", "github.com/keel-go/keel",
	"user:bob", "region:eu", "after: block",
}

type dbConfig struct {
	Host     string
	User     string
	Password string // sensitive by name
	Pass     secret.String
}

type Embedded struct {
	SigningKey string `json:"signing_key"`
}

type appConfig struct {
	Embedded
	Name     string
	Token    secret.String
	DB       dbConfig
	Replicas []replica
	Extra    any
	Secret   *secret.String
	Pwd      string `json:"p"` // JSON name harmless, Go name sensitive
	Mapping  string // contains "pin", not sensitive
}

type replica struct {
	Host     string
	APIToken string
}

// marshalsSecret writes its own JSON, which holds a sensitive key.
type marshalsSecret struct{ v string }

func (m marshalsSecret) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"kind": "m", "token": m.v})
}

// valuer resolves to a group with a sensitive key.
type valuer struct{ v string }

func (v valuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", "bob"), slog.String("password", v.v))
}

// textMarshaler renders key=value text.
type textMarshaler struct{ v string }

func (t textMarshaler) MarshalText() ([]byte, error) { return []byte("user=bob secret=" + t.v), nil }

// configDump is preformatted text in the shapes secrets arrive in: YAML
// scalars, multi-word values, block scalars and lists, JSON strings,
// lists and objects, an env file, a header, a URL with a token for a user
// name and a Go map printed with %v.
func configDump() string {
	return strings.Join([]string{
		"database:",
		"  host: db.local",
		"  password: " + sDump1,
		"  passphrase: correct " + sDumpWords1 + " staple " + sDumpWords2,
		"  port: 5432",
		"tls:",
		"  private_key: |",
		"    -----BEGIN PRIVATE KEY-----",
		"    " + sDumpPEM,
		"",
		"    -----END PRIVATE KEY-----",
		"  ca_file: /etc/ca.pem",
		"tokens:",
		"  - " + sDumpList1,
		"  - " + sDumpList2,
		"region: eu-west-1",
		"secret:",
		"  " + sDumpBlock,
		"after: block",
		`{"service": "orders", "api_key": "` + sDump2 + `", "api_keys": ["a", "` + sDumpJSONList +
			`"], "password": {"v": "` + sDumpJSONObj + `"}, "port": 8080}`,
		"export DB_PASSWORD=" + sDump3 + " DB_HOST=db.local",
		"Authorization: Bearer " + sDump4,
		"repo: https://" + sDumpURLUser + "@github.com/keel-go/keel",
		"cfg map[region:eu tokens:[x " + sDumpGoMap + "] user:bob]",
	}, "\n")
}

// holder keeps a secret.String in an unexported field, where fmt prints
// it by reflection.
type holder struct {
	Name string
	in   struct{ pw secret.String }
}

// logEverything logs every shape of secret through l.
func logEverything(l *slog.Logger) {
	ptrSecret := secret.New(sPtrSecret)
	cfg := appConfig{
		Embedded: Embedded{SigningKey: sEmbedded},
		Name:     "orders",
		Token:    secret.New(sStructSecret),
		DB:       dbConfig{Host: "db", User: "app", Password: sStructField, Pass: secret.New(sNestedPass)},
		Replicas: []replica{{Host: "r1", APIToken: sSliceToken}},
		Extra:    map[string]any{"client_secret": sInterface, "region": "eu"},
		Secret:   &ptrSecret,
		Pwd:      sTaggedName,
		Mapping:  "visible-mapping",
	}
	l.Info("config loaded", "config", cfg, "config_ptr", &cfg)
	l.Info("map", "m", map[string]any{
		"user":          "bob",
		"db_password":   sMapValue,
		"wrapped":       secret.New(sMapSecret),
		"nested":        map[string]any{"refresh_token": sMapNested, "list": []any{1, "two"}},
		"marshaler":     marshalsSecret{sMarshalJSON},
		"text":          textMarshaler{sTextMarshaler},
		"valuer_in_map": valuer{sLogValuer},
	}, "secret_keys", map[secret.String]int{secret.New(sSecretMapKey): 1})
	l.Info("group", slog.Group("db", "host", "h", "password", sGroup,
		slog.Group("conn", "user", "u", "authToken", sGroupDeep)))
	l.With("api_key", sWith).Info("with")
	l.WithGroup("credentials").Info("with group", "username", sWithGroup)
	l.Error("dial failed", "err", fmt.Errorf("connect postgres://app:%s@db/orders: %w", sErrorURL,
		errors.New("auth rejected: password="+sError)))
	l.Info("dump", "dump", configDump(), "masked_dump", MaskString(configDump()))
	l.Info("secret value", "value", secret.New(sTopSecret), "ptr", &ptrSecret)
	l.Info("login password=" + sMsg + " rejected")
	l.Info("valuer", "v", valuer{sLogValuer})
	l.Info("bytes", "payload", []byte("token="+sBytes))
	l.Info("string", "line", "connected with token: "+sStringValue+" ok")
	var h holder
	h.Name, h.in.pw = "h1", secret.New(sUnexported)
	l.Error("request failed",
		"err", fmt.Errorf("bad config %v", map[string]any{
			"tokens": []string{sErrMap1, sErrMap2}, "user": "bob", "auth": map[string]string{"user": "u", "code": sErrMapAuth}}),
		"load_err", fmt.Errorf("config: tls:\n  private_key: |\n    %s\n  ca: x", sErrPEM),
		"holder", h, "holder_text", fmt.Sprintf("%+v", h), "holder_go", fmt.Sprintf("%#v", &h))
}

func TestNoSecretInOutput(t *testing.T) {
	cleanEnv(t)
	for _, format := range []string{FormatJSON, FormatText} {
		for _, color := range []bool{false, true} {
			if format == FormatJSON && color {
				continue
			}
			t.Run(fmt.Sprintf("%s/color=%v", format, color), func(t *testing.T) {
				var buf syncBuffer
				logEverything(New(Options{Format: format, Output: &buf, Color: &color, Metrics: testRegistry()}))
				out := buf.String()
				if n := len(buf.Lines()); n != 13 {
					t.Fatalf("want 13 lines, got %d:\n%s", n, out)
				}
				if format == FormatJSON {
					jsonLines(t, out) // still valid JSON after masking
				}
				for _, s := range allSecrets {
					if strings.Contains(out, s) {
						t.Errorf("secret %q leaked:\n%s", s, out)
					}
					if strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("token="+s))) {
						t.Errorf("secret %q leaked base64-encoded", s)
					}
				}
				for _, keep := range []string{"orders", "visible-mapping", "bob", "db.local", "eu", "config loaded", "dial failed",
					"login password=", "request failed", "h1", "user:bob", "region: eu-west-1", `ca: x`} {
					if !strings.Contains(out, keep) {
						t.Errorf("%q was lost from the output", keep)
					}
				}
				if !strings.Contains(out, secret.Redacted) {
					t.Error("nothing was redacted")
				}
				if strings.Contains(out, secret.Redacted+"]") {
					t.Errorf("masking twice damaged a value:\n%s", out)
				}
			})
		}
	}
}

func TestMaskStringConfigDump(t *testing.T) {
	in := configDump()
	for _, nl := range []string{"\n", "\r\n"} {
		out := MaskString(strings.ReplaceAll(in, "\n", nl))
		for _, s := range dumpSecrets {
			if strings.Contains(out, s) {
				t.Errorf("%q line ends: secret %q survived MaskString:\n%s", nl, s, out)
			}
		}
		for _, keep := range dumpKept {
			if !strings.Contains(out, keep) {
				t.Errorf("%q line ends: %q lost:\n%s", nl, keep, out)
			}
		}
		if again := MaskString(out); again != out {
			t.Errorf("%q line ends: masking twice changed the text:\n%s\n---\n%s", nl, out, again)
		}
	}
}

func TestDisableMasking(t *testing.T) {
	cleanEnv(t)
	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, DisableMasking: true, Metrics: testRegistry()})
	l.Info("password=visible1", "password", "visible2", "cfg", dbConfig{Password: "visible3", Pass: secret.New("hidden4")},
		"s", secret.New("hidden5"))
	out := buf.String()
	for _, v := range []string{"visible1", "visible2", "visible3"} {
		if !strings.Contains(out, v) {
			t.Errorf("%q masked although masking is off: %s", v, out)
		}
	}
	for _, v := range []string{"hidden4", "hidden5"} {
		if strings.Contains(out, v) {
			t.Errorf("secret.String %q revealed with masking off: %s", v, out)
		}
	}
}

// TestNonSensitiveKeysKept: keys that merely contain a sensitive word
// keep their values, at top level, in groups, maps and structs.
func TestNonSensitiveKeysKept(t *testing.T) {
	cleanEnv(t)
	keys := []string{"mapping", "author", "monkey", "keyboard", "bypass", "compass", "tokenizer_name",
		"passthrough", "passenger", "spinner", "pinned", "key", "record_key", "secretary_name",
		"cache_key", "concert", "authority", "passport_country"}
	type fields struct {
		Mapping  string
		Author   string
		Monkey   string
		Keyboard string
	}
	for _, format := range []string{FormatJSON, FormatText} {
		var buf syncBuffer
		l := New(Options{Format: format, Output: &buf, Color: ptr(false), Metrics: testRegistry()})
		args := []any{}
		m := map[string]string{}
		for i, k := range keys {
			v := fmt.Sprintf("value-%02d", i)
			args = append(args, k, v)
			m[k] = "map-" + v
		}
		l.Info("kept", args...)
		l.Info("kept", "m", m, slog.Group("g", args...), "s", fields{"f-mapping", "f-author", "f-monkey", "f-keyboard"})
		out := buf.String()
		for i, k := range keys {
			v := fmt.Sprintf("value-%02d", i)
			if strings.Count(out, v) != 3 { // top level, map (map-value-..), group
				t.Errorf("%s: value of %q masked (%d occurrences):\n%s", format, k, strings.Count(out, v), out)
			}
		}
		for _, v := range []string{"f-mapping", "f-author", "f-monkey", "f-keyboard"} {
			if !strings.Contains(out, v) {
				t.Errorf("%s: struct field value %q masked", format, v)
			}
		}
		if strings.Contains(out, secret.Redacted) {
			t.Errorf("%s: something was redacted:\n%s", format, out)
		}
	}
}

// TestSensitiveKeys classifies the key list shared with the configuration
// dump: secrets are sensitive; lone keys (record_key, key_file) and plain
// keys are not.
func TestSensitiveKeys(t *testing.T) {
	for _, k := range sensitivetest.Secret {
		if !IsSensitiveKey(k) {
			t.Errorf("%q should be sensitive", k)
		}
	}
	for _, list := range [][]string{sensitivetest.Key, sensitivetest.Plain} {
		for _, k := range list {
			if IsSensitiveKey(k) {
				t.Errorf("%q should not be sensitive", k)
			}
		}
	}
}

func TestExtraSensitiveKeys(t *testing.T) {
	m := NewMasker("tenant_id", "Msisdn", "a-b-c-d-e-f-g-h-i-j")
	for _, k := range []string{"tenant_id", "tenantId", "X-Tenant-ID", "customer_tenant_id", "msisdn", "callerMSISDN",
		"password", "a_b_c_d_e_f_g_h"} {
		if !m.Sensitive(k) {
			t.Errorf("%q should be sensitive with the extra names", k)
		}
	}
	for _, k := range []string{"tenant", "id", "tenant_name", "tenantid_count"} {
		if m.Sensitive(k) {
			t.Errorf("%q should not be sensitive", k)
		}
	}
	if IsSensitiveKey("tenant_id") {
		t.Error("extra names leaked into the default masker")
	}

	cleanEnv(t)
	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, ExtraSensitiveKeys: []string{"tenant_id"}, Metrics: testRegistry()})
	l.Info("x", "tenantId", "T-1", "note", "tenant_id=T-2 ok")
	if out := buf.String(); strings.Contains(out, "T-1") || strings.Contains(out, "T-2") || !strings.Contains(out, "ok") {
		t.Fatalf("extra key not masked by the handler: %s", out)
	}
	if h := NewHandler(Options{Output: &buf, ExtraSensitiveKeys: []string{"tenant_id"}, Metrics: testRegistry()}); h.Masker().MaskString("tenant_id=9") != "tenant_id=[REDACTED]" {
		t.Fatal("Handler.Masker does not carry the extra names")
	}
}

func TestMaskString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nothing here", "nothing here"},
		{"", ""},
		{"password=hunter2", "password=[REDACTED]"},
		{"PASSWORD = hunter2 next", "PASSWORD = [REDACTED] next"},
		{"user=bob password=hunter2 host=db", "user=bob password=[REDACTED] host=db"},
		{`"token": "abc def"`, `"token": "[REDACTED]"`},
		{`{"token":"abc","n":1}`, `{"token":"[REDACTED]","n":1}`},
		{`{"token":"a\"b","n":1}`, `{"token":"[REDACTED]","n":1}`},
		{`'secret': 'abc'`, `'secret': '[REDACTED]'`},
		{`msg="{\"password\":\"abc\"}"`, `msg="{\"password\":\"[REDACTED]\"}"`},
		{"Authorization: Bearer xyz", "Authorization: [REDACTED]"},
		{"authorization=Basic dXNlcjpwYXNz;next", "authorization=[REDACTED];next"},
		{"curl -H 'X-Api-Key: k123' http://x", "curl -H 'X-Api-Key: [REDACTED]' http://x"},
		{"sent Bearer eyJhbGc.x.y to upstream", "sent Bearer [REDACTED] to upstream"},
		{"postgres://u:pw@h/db", "postgres://u:[REDACTED]@h/db"},
		{"dial redis://:pw@localhost:6379/0 failed", "dial redis://:[REDACTED]@localhost:6379/0 failed"},
		{"amqp://guest:p@ss@rabbit:5672/", "amqp://guest:[REDACTED]@rabbit:5672/"},
		{"https://ghp_x1@github.com/x", "https://[REDACTED]@github.com/x"},
		{"git clone ssh://deploy-token@host/repo.git", "git clone ssh://[REDACTED]@host/repo.git"},
		{"https://h/x?to=a@b.example&y=1", "https://h/x?to=a@b.example&y=1"},
		{"https://[REDACTED]@github.com", "https://[REDACTED]@github.com"},
		{"http://host:8080/path?token=abc&x=1", "http://host:8080/path?token=[REDACTED]&x=1"},
		{"{Host:db Password:hunter2 Port:5432}", "{Host:db Password:[REDACTED] Port:5432}"},
		{"map[password:hunter2 user:bob]", "map[password:[REDACTED] user:bob]"},
		{"DB_PASSWORD=x1\nAPI_KEY=x2\nHOST=h", "DB_PASSWORD=[REDACTED]\nAPI_KEY=[REDACTED]\nHOST=h"},
		{"--password=x --user=y", "--password=[REDACTED] --user=y"},
		{"pin: 1234, mapping: 5", "pin: [REDACTED]"},
		{"x pin: 1234, mapping: 5", "x pin: [REDACTED], mapping: 5"},
		// values that open a bracket go to the bracket that closes them
		{`{"api_keys":["k1","k2"],"user":"bob"}`, `{"api_keys":[REDACTED],"user":"bob"}`},
		{`{"password":{"v":"x","w":[1,2]},"n":1}`, `{"password":[REDACTED],"n":1}`},
		{`{"token":["a]}","b"],"n":1}`, `{"token":[REDACTED],"n":1}`},
		{`msg="{\"password\":{\"v\":\"x\"},\"n\":1}"`, `msg="{\"password\":[REDACTED],\"n\":1}"`},
		{"map[tokens:[a b]]", "map[tokens:[REDACTED]]"},
		{"map[auth:map[pw:x user:u] region:eu]", "map[auth:[REDACTED] region:eu]"},
		{"{Name:x Auth:{User:u Pass:p} Port:1}", "{Name:x Auth:[REDACTED] Port:1}"},
		{"password=x[a b] next", "password=[REDACTED] next"},
		{"password=[never closed, x=1", "password=[REDACTED]"},
		{"password=[REDACTED] x=1", "password=[REDACTED] x=1"},
		// YAML: a key that starts its line takes the line, and the
		// block below it
		{"database:\n  password: correct horse staple\n  host: db", "database:\n  password: [REDACTED]\n  host: db"},
		{"password: a\n  b c\nuser: bob", "password: [REDACTED]\nuser: bob"},
		{"- password: a b\n- name: c", "- password: [REDACTED]\n- name: c"},
		{"tls:\n  private_key: |\n    -----BEGIN-----\n    MIIE\n\n    -----END-----\nuser: bob", "tls:\n  private_key: [REDACTED]\nuser: bob"},
		{"password: >-\n  a\n  b\nhost: h", "password: [REDACTED]\nhost: h"},
		{"password: |+ # comment\n  a\nhost: h", "password: [REDACTED]\nhost: h"},
		{"password: |", "password: [REDACTED]"},
		{"tokens:\n  - a\n  - b\nuser: bob", "tokens: [REDACTED]\nuser: bob"},
		{"tokens:\n- a\n- b\nuser: bob", "tokens: [REDACTED]\nuser: bob"},
		{"password:\n  hunter2\nuser: bob", "password: [REDACTED]\nuser: bob"},
		{"password: \r\n  hunter2\r\nuser: bob", "password: [REDACTED]\r\nuser: bob"},
		{"password:\nuser: bob", "password:\nuser: bob"},
		{"password: [a, b]\nuser: bob", "password: [REDACTED]\nuser: bob"},
		{"password: [a,\n  b]\nuser: bob", "password: [REDACTED]\nuser: bob"},
		{"author=bob monkey=george", "author=bob monkey=george"},
		{"time 12:30:45 ok", "time 12:30:45 ok"},
		{"password=", "password="},
		{`password="never closed`, `password="[REDACTED]`},
		{"token => abc", "token => [REDACTED]"},
		{"secret := abc", "secret := [REDACTED]"},
		{"password: [REDACTED] Bearer [REDACTED]", "password: [REDACTED] Bearer [REDACTED]"},
	} {
		if got := MaskString(tc.in); got != tc.want {
			t.Errorf("MaskString(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestMaskStringNoAllocWhenClean(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	for _, s := range []string{"request handled in 12ms", "user=bob host=db time=12:30", "Bearer"} {
		if n := testing.AllocsPerRun(100, func() { MaskString(s) }); n != 0 {
			t.Errorf("MaskString(%q): %v allocations", s, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { IsSensitiveKey("requestDurationSeconds") }); n != 0 {
		t.Errorf("IsSensitiveKey: %v allocations", n)
	}
	for _, s := range []string{"secrets: manager ready", "request handled", "secrets: vault: login failed"} {
		if n := testing.AllocsPerRun(100, func() { defaultMasker.maskMessage(s) }); n != 0 {
			t.Errorf("maskMessage(%q): %v allocations", s, n)
		}
	}
}

func TestSensitiveGroupRedactsEverything(t *testing.T) {
	cleanEnv(t)
	for _, format := range []string{FormatJSON, FormatText} {
		var buf syncBuffer
		l := New(Options{Format: format, Output: &buf, Metrics: testRegistry()})
		l.WithGroup("credentials").With("user", "u1").Info("x", "name", "n1", slog.Group("inner", "v", "v1"))
		l.Info("y", slog.Group("secrets", "a", "a1", "b", "b1"))
		out := buf.String()
		for _, v := range []string{"u1", "n1", "v1", "a1", "b1"} {
			if strings.Contains(out, v) {
				t.Errorf("%s: %q under a sensitive group leaked:\n%s", format, v, out)
			}
		}
	}
}

// TestMessageLabels: the "pkg: text" label at the start of a message or
// an error text is not read as a sensitive key and its value, while
// key/value secrets in the same texts are still masked.
func TestMessageLabels(t *testing.T) {
	cases := []struct{ in, want string }{
		// labels followed by free text stay
		{"secrets: manager ready", "secrets: manager ready"},
		{"token bucket: refilled 5", "token bucket: refilled 5"},
		{"session: expired for 3 users", "session: expired for 3 users"},
		{"secrets: unavailable, retrying", "secrets: unavailable, retrying"},
		{"secrets: done. next", "secrets: done. next"},
		{"secrets: vault: login failed, logging in again", "secrets: vault: login failed, logging in again"},
		{"secrets: PLAINTEXT disk cache: secrets are written unencrypted", "secrets: PLAINTEXT disk cache: secrets are written unencrypted"},
		// secrets are masked
		{"password: hunter2", "password: [REDACTED]"},
		{"password: hunter2 rejected", "password: [REDACTED]"},
		{"password: hunter", "password: [REDACTED]"},
		{"password: hunter,", "password: [REDACTED]"},
		{"password: hunter2, x", "password: [REDACTED]"},
		{"password: abc=def ghi", "password: [REDACTED]"},
		{"token: abc", "token: [REDACTED]"},
		{"token=abc", "token=[REDACTED]"},
		{"token:abc def", "token:[REDACTED] def"},
		{"authorization: basic dXNlcg== x", "authorization: [REDACTED]"},
		{"password: \"hunter two\" rejected", "password: \"[REDACTED]\" rejected"},
		{"secrets: token: abc", "secrets: token: [REDACTED]"},
		{"secrets: token=abc ok", "secrets: token=[REDACTED] ok"},
		{"secrets: dial postgres://u:pw@h/db failed", "secrets: dial postgres://u:[REDACTED]@h/db failed"},
		{"login password=hunter2 rejected", "login password=[REDACTED] rejected"},
		{"Password: hunter rejected", "Password: [REDACTED]"},
		{"login failed, password: hunter2 rejected", "login failed, password: [REDACTED] rejected"},
		{"secrets:\n  token: abc", "secrets: [REDACTED]"},
		{"secrets: token: abc1 def", "secrets: token: [REDACTED]"},
		{"config: tls:\n  private_key: |\n    MIIE\n  ca: x", "config: tls:\n  private_key: [REDACTED]\n  ca: x"},
	}
	for _, tc := range cases {
		if got := defaultMasker.maskMessage(tc.in); got != tc.want {
			t.Errorf("maskMessage(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	// MaskString, for attribute values and preformatted text, knows no
	// labels.
	if got := MaskString("secrets: manager ready"); got != "secrets: [REDACTED]" {
		t.Errorf("MaskString reads a label: %q", got)
	}

	cleanEnv(t)
	for _, format := range []string{FormatJSON, FormatText} {
		var buf syncBuffer
		l := New(Options{Format: format, Output: &buf, Color: ptr(false), Metrics: testRegistry()})
		for _, tc := range cases {
			l.Info(tc.in, "err", errors.New(tc.in))
		}
		lines := buf.Lines()
		if len(lines) != len(cases) {
			t.Fatalf("%s: %d lines, want %d", format, len(lines), len(cases))
		}
		for i, tc := range cases {
			var msg, errText string
			if format == FormatJSON {
				m := oneJSON(t, lines[i])
				msg, _ = m["msg"].(string)
				errText, _ = m["err"].(string)
			} else {
				want := " " + strings.ReplaceAll(tc.want, "\n", `\n`) + " err="
				if !strings.Contains(lines[i], want) {
					t.Errorf("text: line for %q lacks %q:\n%s", tc.in, want, lines[i])
				}
				continue
			}
			if msg != tc.want || errText != tc.want {
				t.Errorf("json: %q logged as msg %q, err %q; want %q", tc.in, msg, errText, tc.want)
			}
		}
	}
}
