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
)

var allSecrets = []string{
	sStructField, sStructSecret, sNestedPass, sSliceToken, sMapValue, sMapSecret, sMapNested,
	sGroup, sGroupDeep, sWith, sWithGroup, sError, sErrorURL, sDump1, sDump2, sDump3, sDump4,
	sTopSecret, sPtrSecret, sMsg, sMarshalJSON, sLogValuer, sSecretMapKey, sBytes, sInterface,
	sEmbedded, sTaggedName, sStringValue, sTextMarshaler,
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

func configDump() string {
	return strings.Join([]string{
		"database:",
		"  host: db.local",
		"  password: " + sDump1,
		`{"service": "orders", "api_key": "` + sDump2 + `", "port": 8080}`,
		"export DB_PASSWORD=" + sDump3 + " DB_HOST=db.local",
		"Authorization: Bearer " + sDump4,
	}, "\n")
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
				if n := len(buf.Lines()); n != 12 {
					t.Fatalf("want 12 lines, got %d:\n%s", n, out)
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
				for _, keep := range []string{"orders", "visible-mapping", "bob", "db.local", "eu", "config loaded", "dial failed", "login password="} {
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
	out := MaskString(configDump())
	for _, s := range []string{sDump1, sDump2, sDump3, sDump4} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q survived MaskString:\n%s", s, out)
		}
	}
	for _, keep := range []string{"host: db.local", `"service": "orders"`, `"port": 8080`, "DB_HOST=db.local", "database:"} {
		if !strings.Contains(out, keep) {
			t.Errorf("%q lost:\n%s", keep, out)
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
		{"https://user@github.com/x", "https://user@github.com/x"},
		{"http://host:8080/path?token=abc&x=1", "http://host:8080/path?token=[REDACTED]&x=1"},
		{"{Host:db Password:hunter2 Port:5432}", "{Host:db Password:[REDACTED] Port:5432}"},
		{"map[password:hunter2 user:bob]", "map[password:[REDACTED] user:bob]"},
		{"DB_PASSWORD=x1\nAPI_KEY=x2\nHOST=h", "DB_PASSWORD=[REDACTED]\nAPI_KEY=[REDACTED]\nHOST=h"},
		{"--password=x --user=y", "--password=[REDACTED] --user=y"},
		{"pin: 1234, mapping: 5", "pin: [REDACTED], mapping: 5"},
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
		{"password: hunter2 rejected", "password: [REDACTED] rejected"},
		{"password: hunter", "password: [REDACTED]"},
		{"password: hunter,", "password: [REDACTED],"},
		{"password: hunter2, x", "password: [REDACTED], x"},
		{"password: abc=def ghi", "password: [REDACTED] ghi"},
		{"token: abc", "token: [REDACTED]"},
		{"token=abc", "token=[REDACTED]"},
		{"token:abc def", "token:[REDACTED] def"},
		{"authorization: basic dXNlcg== x", "authorization: [REDACTED] x"},
		{"password: \"hunter two\" rejected", "password: \"[REDACTED]\" rejected"},
		{"secrets: token: abc", "secrets: token: [REDACTED]"},
		{"secrets: token=abc ok", "secrets: token=[REDACTED] ok"},
		{"secrets: dial postgres://u:pw@h/db failed", "secrets: dial postgres://u:[REDACTED]@h/db failed"},
		{"login password=hunter2 rejected", "login password=[REDACTED] rejected"},
		{"Password: hunter rejected", "Password: [REDACTED] rejected"},
		{"secrets:\n  token: abc", "secrets:\n  token: [REDACTED]"},
	}
	for _, tc := range cases {
		if got := defaultMasker.maskMessage(tc.in); got != tc.want {
			t.Errorf("maskMessage(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	// MaskString, for attribute values and preformatted text, knows no
	// labels.
	if got := MaskString("secrets: manager ready"); got != "secrets: [REDACTED] ready" {
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
