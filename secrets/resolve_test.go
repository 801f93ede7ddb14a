package secrets

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/secret"
)

type saslSection struct {
	User     string        `koanf:"user"`
	Password secret.String `koanf:"password"`
}

type commonSection struct {
	APIKey secret.String `koanf:"api_key"`
}

type kafkaSection struct {
	commonSection `koanf:",squash"`
	Brokers       []string                 `koanf:"brokers"`
	SASL          saslSection              `koanf:"sasl"`
	Token         *secret.String           `koanf:"token"`
	Extra         map[string]secret.String `koanf:"extra"`
	List          []secret.String          `koanf:"list"`
	Plain         secret.String            `koanf:"plain"`
	Literal       secret.String            `koanf:"literal"`
	DSN           secret.String            `koanf:"dsn"`
	Nested        []saslSection            `koanf:"nested"`
	Iface         any                      `koanf:"iface"`
	Skipped       secret.String            `koanf:"-"`
	ignored       secret.String            //nolint:unused // unexported: never touched
}

func loadSection(t *testing.T, yaml string, dst any) *config.Config {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "settings.yaml", yaml)
	cfg, err := config.Load(context.Background(), config.Options{WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Section("kafka", dst); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestResolveStructThroughConfig(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	tokFile := writeFile(t, t.TempDir(), "token", "file-tok-Xa1\n")
	h := newHarness(t, Config{Vault: appRoleCfg(vs)}, withEnv(map[string]string{
		"API_KEY": "env-api-Xa2", "EXTRA_A": "extra-a-Xa3", "LIST_1": "list-1-Xa4", "NESTED": "nested-Xa5",
	}))
	h.secret(kafkaPW, "file-tok-Xa1", "env-api-Xa2", "extra-a-Xa3", "list-1-Xa4", "nested-Xa5")

	var k kafkaSection
	cfg := loadSection(t, `
kafka:
  brokers: [a:9092]
  api_key: env:API_KEY
  sasl: {user: svc, password: "vault:secret/data/kafka#password"}
  token: "file:`+tokFile+`"
  extra: {a: "env:EXTRA_A", b: plain-extra}
  list: ["env:LIST_1", "not:a-known-provider"]
  plain: "just-a-password"
  literal: "literal:env:NOT_A_REF"
  dsn: "postgres://u:pw@h/db"
  nested: [{user: n, password: "env:NESTED"}]
`, &k)
	k.Iface = &saslSection{Password: secret.New("env:NESTED")}
	k.Skipped = secret.New("env:NESTED")
	if err := ResolveStruct(context.Background(), h.m, "kafka", &k); err != nil {
		t.Fatal(h.checkErr(err))
	}
	for name, c := range map[string]struct{ got, want string }{
		"sasl.password": {k.SASL.Password.Expose(), kafkaPW},
		"token":         {k.Token.Expose(), "file-tok-Xa1"},
		"api_key":       {k.APIKey.Expose(), "env-api-Xa2"},
		"extra.a":       {k.Extra["a"].Expose(), "extra-a-Xa3"},
		"extra.b":       {k.Extra["b"].Expose(), "plain-extra"},
		"list[0]":       {k.List[0].Expose(), "list-1-Xa4"},
		"list[1]":       {k.List[1].Expose(), "not:a-known-provider"},
		"plain":         {k.Plain.Expose(), "just-a-password"},
		"literal":       {k.Literal.Expose(), "env:NOT_A_REF"},
		"dsn":           {k.DSN.Expose(), "postgres://u:pw@h/db"},
		"nested[0]":     {k.Nested[0].Password.Expose(), "nested-Xa5"},
		"iface":         {k.Iface.(*saslSection).Password.Expose(), "nested-Xa5"},
		"skipped":       {k.Skipped.Expose(), "env:NESTED"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", name, c.got, c.want)
		}
	}
	// The dump shows neither the references nor the secrets.
	dump, err := cfg.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	h.scan("config dump", string(dump))
	if strings.Contains(string(dump), "secret/data/kafka") || strings.Contains(string(dump), "just-a-password") {
		t.Fatalf("dump shows a secret field: %s", dump)
	}
}

func TestResolveStructErrorsNameKeyAndRef(t *testing.T) {
	h := newHarness(t, Config{}, withEnv(map[string]string{"OK_ONE": "ok-Ya1"}))
	h.secret("ok-Ya1")
	var k kafkaSection
	loadSection(t, `
kafka:
  sasl: {password: "env:MISSING_VAR"}
  token: "vault:secret/data/kafka#password"
  api_key: "env:OK_ONE"
  extra: {x: "file:/nonexistent/keel-test"}
`, &k)
	err := ResolveStruct(context.Background(), h.m, "kafka", &k)
	h.checkErr(err)
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`config key kafka.sasl.password: reference "env:MISSING_VAR"`,
		`config key kafka.token: reference "vault:secret/data/kafka#password"`,
		`config key kafka.extra.x: reference "file:/nonexistent/keel-test"`,
		"VAULT_ADDR",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrProviderNotConfigured) {
		t.Fatalf("sentinels lost: %v", err)
	}
	// What did resolve is set; what did not keeps its reference.
	if k.APIKey.Expose() != "ok-Ya1" || k.SASL.Password.Expose() != "env:MISSING_VAR" {
		t.Fatalf("partial: %q %q", k.APIKey.Expose(), k.SASL.Password.Expose())
	}
}

func TestResolveStructWithoutManager(t *testing.T) {
	plain := kafkaSection{Plain: secret.New("pw"), Literal: secret.New("literal:x")}
	if err := ResolveStruct(context.Background(), nil, "kafka", &plain); err != nil || plain.Literal.Expose() != "x" {
		t.Fatalf("%v %q", err, plain.Literal.Expose())
	}
	withRef := kafkaSection{Plain: secret.New("env:X")}
	err := ResolveStruct(context.Background(), nil, "kafka", &withRef)
	if !errors.Is(err, ErrProviderNotConfigured) || !strings.Contains(err.Error(), "kafka.plain") {
		t.Fatalf("%v", err)
	}
	if err := ResolveStruct(context.Background(), nil, "kafka", plain); !errors.Is(err, ErrConfig) {
		t.Fatalf("non-pointer: %v", err)
	}
	if err := ResolveStruct(context.Background(), nil, "kafka", (*kafkaSection)(nil)); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil pointer: %v", err)
	}
	// A cycle does not loop.
	type node struct {
		Next *node         `koanf:"next"`
		Pw   secret.String `koanf:"pw"`
	}
	n := &node{Pw: secret.New("literal:y")}
	n.Next = n
	if err := ResolveStruct(context.Background(), nil, "x", n); err != nil || n.Pw.Expose() != "y" {
		t.Fatalf("%v %q", err, n.Pw.Expose())
	}
}

type customProvider struct{ data map[string]string }

func (c customProvider) Name() string { return "kms" }
func (c customProvider) Fetch(_ context.Context, path, key string) (Fetched, error) {
	v, ok := c.data[path]
	if !ok {
		return Fetched{}, ErrNotFound
	}
	if key != "" {
		b, err := ExtractJSONKey([]byte(v), key)
		return Fetched{Data: b}, err
	}
	return Fetched{Data: []byte(v)}, nil
}
func (c customProvider) Health(context.Context) error { return nil }

func TestCustomProviderReferences(t *testing.T) {
	h := newHarness(t, Config{Sources: map[string]SourceConfig{"k": {Provider: "kms", Path: "app/key"}}},
		func(o *Options) {
			o.Providers = []Provider{customProvider{map[string]string{"app/key": "kms-Za1", "j": `{"a":"kms-Za2"}`}}}
		})
	h.secret("kms-Za1", "kms-Za2")
	if got := h.get("k").Secret.Expose(); got != "kms-Za1" {
		t.Fatal(got)
	}
	s := struct {
		P secret.String `koanf:"p"`
	}{P: secret.New("kms:j#a")}
	if err := ResolveStruct(context.Background(), h.m, "x", &s); err != nil || s.P.Expose() != "kms-Za2" {
		t.Fatalf("%v %q", err, s.P.Expose())
	}
	_, err := tryHarness(t, Config{}, func(o *Options) { o.Providers = []Provider{badName{}} })
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("bad provider name: %v", err)
	}
}

type badName struct{ customProvider }

func (badName) Name() string { return "Not Valid" }
