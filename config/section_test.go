package config

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/secret"
)

type tlsConfig struct {
	Enabled bool   `koanf:"enabled"`
	CAFile  string `koanf:"ca_file"`
}

type kafkaConfig struct {
	Brokers  []string          `koanf:"brokers"`
	Port     int               `koanf:"port"`
	Timeout  time.Duration     `koanf:"timeout"`
	TLS      tlsConfig         `koanf:"tls"`
	Labels   map[string]string `koanf:"labels"`
	Password secret.String     `koanf:"password"`
}

func defaultKafka() kafkaConfig {
	return kafkaConfig{
		Brokers: []string{"localhost:9092", "localhost:9093"},
		Port:    9092,
		Timeout: 10 * time.Second,
		TLS:     tlsConfig{CAFile: "/etc/ssl/ca.pem"},
		Labels:  map[string]string{"team": "data"},
	}
}

func TestSectionDefaults(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "kafka:\n  port: 1234\n  tls:\n    enabled: true\n  brokers: [b1]\n  labels:\n    env: prod\n")
	c := e.load(t, e.opts())

	var absent kafkaConfig = defaultKafka()
	if err := c.Section("nothing_here", &absent); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(absent, defaultKafka()) {
		t.Fatalf("absent section = %+v, want the defaults", absent)
	}

	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	want := defaultKafka()
	want.Port = 1234
	want.TLS.Enabled = true
	want.Brokers = []string{"b1"}
	want.Labels = map[string]string{"team": "data", "env": "prod"}
	if !reflect.DeepEqual(k, want) {
		t.Fatalf("kafka = %+v\nwant %+v", k, want)
	}

	// The registered defaults were not modified through shared slices or
	// maps while decoding.
	e0 := c.sections["kafka"]
	if got := e0.defaults.Interface().(kafkaConfig); !reflect.DeepEqual(got, defaultKafka()) {
		t.Fatalf("registered defaults changed: %+v", got)
	}
}

// TestSectionDoesNotAliasDefaults proves decoding never writes through a
// slice or map shared with the caller's defaults.
func TestSectionDoesNotAliasDefaults(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "kafka:\n  brokers: [x]\n  labels: {a: b}\n")
	c := e.load(t, e.opts())
	shared := defaultKafka()
	k := shared
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	if shared.Brokers[0] != "localhost:9092" || len(shared.Labels) != 1 {
		t.Fatalf("defaults mutated through shared storage: %+v", shared)
	}
}

type coerced struct {
	Port     int           `koanf:"port"`
	Small    uint16        `koanf:"small"`
	Enabled  bool          `koanf:"enabled"`
	Debug    bool          `koanf:"debug"`
	Brokers  []string      `koanf:"brokers"`
	Ports    []int         `koanf:"ports"`
	Timeout  time.Duration `koanf:"timeout"`
	Retry    time.Duration `koanf:"retry"`
	Backoff  time.Duration `koanf:"backoff"`
	Ratio    float64       `koanf:"ratio"`
	Password secret.String `koanf:"password"`
	PIN      secret.String `koanf:"pin"`
	Name     string        `koanf:"name"`
	Whole    int           `koanf:"whole"`
}

func TestCoercion(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_SVC__PORT", "8080")
	t.Setenv("MYAPP_SVC__SMALL", "65535")
	t.Setenv("MYAPP_SVC__ENABLED", "true")
	t.Setenv("MYAPP_SVC__DEBUG", "off")
	t.Setenv("MYAPP_SVC__BROKERS", "a:9092, b:9092,,")
	t.Setenv("MYAPP_SVC__PORTS", "1,2,3")
	t.Setenv("MYAPP_SVC__TIMEOUT", "1m30s")
	t.Setenv("MYAPP_SVC__RETRY", "45")
	t.Setenv("MYAPP_SVC__RATIO", "0.25")
	t.Setenv("MYAPP_SVC__PASSWORD", "hunter2")
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "svc:\n  backoff: 2\n  pin: 12345\n  name: 42\n  whole: 3.0\n")
	c := e.load(t, e.opts())
	var got coerced
	if err := c.Section("svc", &got); err != nil {
		t.Fatal(err)
	}
	want := coerced{
		Port: 8080, Small: 65535, Enabled: true, Debug: false,
		Brokers: []string{"a:9092", "b:9092"}, Ports: []int{1, 2, 3},
		Timeout: 90 * time.Second, Retry: 45 * time.Second, Backoff: 2 * time.Second,
		Ratio: 0.25, Password: secret.New("hunter2"), PIN: secret.New("12345"), Name: "42", Whole: 3,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	if got.Password.Expose() != "hunter2" || got.PIN.Expose() != "12345" {
		t.Fatal("secret values not decoded")
	}
}

func TestGetters(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_SERVER__PORT", "8080")
	t.Setenv("MYAPP_SERVER__TLS", "yes")
	t.Setenv("MYAPP_SERVER__HOSTS", "a, b")
	t.Setenv("MYAPP_SERVER__GRACE", "90")
	writeFile(t, filepath.Join(e.work, "settings.yaml"),
		"server:\n  name: api\n  ratio: 0.5\n  timeout: 1m30s\n  tags: [x, 2, true]\n  workers: 4\n  bad: abc\n  nothing: ~\n")
	c := e.load(t, e.opts())

	if s, err := c.String("server.name"); err != nil || s != "api" {
		t.Errorf("String = %q, %v", s, err)
	}
	if s, err := c.String("server.workers"); err != nil || s != "4" {
		t.Errorf("String(int) = %q, %v", s, err)
	}
	if n, err := c.Int("server.port"); err != nil || n != 8080 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if f, err := c.Float("server.ratio"); err != nil || f != 0.5 {
		t.Errorf("Float = %v, %v", f, err)
	}
	if f, err := c.Float("server.workers"); err != nil || f != 4 {
		t.Errorf("Float(int) = %v, %v", f, err)
	}
	if b, err := c.Bool("server.tls"); err != nil || !b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if d, err := c.Duration("server.timeout"); err != nil || d != 90*time.Second {
		t.Errorf("Duration = %v, %v", d, err)
	}
	if d, err := c.Duration("server.grace"); err != nil || d != 90*time.Second {
		t.Errorf("Duration(bare seconds) = %v, %v", d, err)
	}
	if d, err := c.Duration("server.workers"); err != nil || d != 4*time.Second {
		t.Errorf("Duration(int) = %v, %v", d, err)
	}
	if l, err := c.Strings("server.hosts"); err != nil || !reflect.DeepEqual(l, []string{"a", "b"}) {
		t.Errorf("Strings(comma) = %q, %v", l, err)
	}
	if l, err := c.Strings("server.tags"); err != nil || !reflect.DeepEqual(l, []string{"x", "2", "true"}) {
		t.Errorf("Strings(list) = %q, %v", l, err)
	}
	if !c.Contains("server") || !c.Contains("server.name") || c.Contains("server.missing") || c.Contains("server.nothing") {
		t.Error("Contains wrong")
	}
	if _, err := c.String("server.missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing key err = %v, want ErrNotFound", err)
	}
	if _, err := c.Int("server.nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("null key err = %v, want ErrNotFound", err)
	}
	if _, err := c.String("server"); err == nil {
		t.Error("String on a section must fail")
	}

	_, err := c.Int("server.bad")
	var de *DecodeError
	if !errors.As(err, &de) || de.Key != "server.bad" {
		t.Fatalf("Int(bad) err = %v, want *DecodeError for server.bad", err)
	}
	assertContains(t, err.Error(), "server.bad", `"abc"`, "settings.yaml")
	if _, err := c.Duration("server.bad"); err == nil {
		t.Error("Duration(abc) must fail")
	}
	if _, err := c.Bool("server.bad"); err == nil {
		t.Error("Bool(abc) must fail")
	}
}

func TestMalformedSectionNamesKeyFieldValueAndFile(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "kafka:\n  port: abc\n  timeout: soon\n  tls:\n    enabled: maybe\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	err := c.Section("kafka", &k)
	if err == nil {
		t.Fatal("want an error")
	}
	assertContains(t, err.Error(),
		"kafka.port", "kafkaConfig.Port", `"abc"`, p,
		"kafka.timeout", "kafkaConfig.Timeout", `"soon"`,
		"kafka.tls.enabled", "kafkaConfig.TLS.Enabled", `"maybe"`)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("err is not a *DecodeError: %v", err)
	}
	if !reflect.DeepEqual(k, defaultKafka()) {
		t.Fatalf("dst changed on error: %+v", k)
	}
	if _, ok := c.sections["kafka"]; ok {
		t.Fatal("a failed section must not be registered")
	}
}

func TestSectionNotAMapping(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "tls: just-a-string\nkafka: another-string\n")
	c := e.load(t, e.opts())
	var tc tlsConfig
	err := c.Section("tls", &tc)
	assertContains(t, err.Error(), "tls", "tlsConfig", "mapping", "just-a-string")
	// A section type that holds a secret.String does not quote the value.
	k := defaultKafka()
	err = c.Section("kafka", &k)
	assertContains(t, err.Error(), "kafka", "mapping", secret.Redacted)
	if strings.Contains(err.Error(), "another-string") {
		t.Fatalf("error quotes a possible secret: %v", err)
	}
}

func TestEnvTypeMismatchNamesVariable(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_SERVER__PORT", "abc")
	t.Setenv("MYAPP_SERVER__PORTS", "1,x")
	c := e.load(t, e.opts())
	var s struct {
		Port  int   `koanf:"port"`
		Ports []int `koanf:"ports"`
	}
	err := c.Section("server", &s)
	if err == nil {
		t.Fatal("want an error")
	}
	assertContains(t, err.Error(), "MYAPP_SERVER__PORT", "server.port", `"abc"`, "server.ports[1]", "MYAPP_SERVER__PORTS", `"x"`)
}

func TestDecodeErrorRedactsSecrets(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_DB__TOKEN", "s3cr3t-token-value")
	t.Setenv("MYAPP_DB__API_KEY", "s3cr3t-api-key")
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "db:\n  conn:\n    nested: s3cr3t-in-map\n")
	c := e.load(t, e.opts())
	var db struct {
		Token  int           `koanf:"token"`   // sensitive by name
		APIKey []int         `koanf:"api_key"` // sensitive by name
		Conn   secret.String `koanf:"conn"`    // sensitive by type
	}
	err := c.Section("db", &db)
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks a secret: %v", err)
	}
	assertContains(t, err.Error(), "db.token", "db.api_key", "db.conn", secret.Redacted, "MYAPP_DB__TOKEN")
	for _, de := range joinedDecodeErrors(err) {
		if de.Value != secret.Redacted {
			t.Errorf("%s: Value = %q, want redacted", de.Key, de.Value)
		}
		if de.Err != nil && strings.Contains(de.Err.Error(), "s3cr3t") {
			t.Errorf("%s: cause leaks a secret: %v", de.Key, de.Err)
		}
	}
}

func joinedDecodeErrors(err error) []*DecodeError {
	var out []*DecodeError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, joinedDecodeErrors(e)...)
		}
		return out
	}
	var de *DecodeError
	if errors.As(err, &de) {
		out = append(out, de)
	}
	return out
}

func TestUnknownKeys(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "kafka:\n  prot: 1\n  tls:\n    ca_fiel: x\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatalf("non-strict must not fail: %v", err)
	}
	assertContains(t, e.logs.String(), "unknown keys", "kafka.prot", "kafka.tls.ca_fiel")

	o := e.opts()
	o.Strict = true
	c = e.load(t, o)
	err := c.Section("kafka", &k)
	var ue *UnknownKeysError
	if !errors.As(err, &ue) {
		t.Fatalf("strict err = %v, want *UnknownKeysError", err)
	}
	if !reflect.DeepEqual(ue.Keys, []string{"kafka.prot", "kafka.tls.ca_fiel"}) {
		t.Fatalf("Keys = %v", ue.Keys)
	}
	assertContains(t, err.Error(), "kafka.prot", "valid keys", "port")
}

type embeddedBase struct {
	Name string `koanf:"name"`
}

type withPointers struct {
	embeddedBase
	Limit *int            `koanf:"limit"`
	Inner *tlsConfig      `koanf:"inner"`
	Extra map[string]any  `koanf:",remain"`
	Ptrs  []*tlsConfig    `koanf:"ptrs"`
	Keys  []secret.String `koanf:"keys"`
}

func TestSectionShapes(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"),
		"shape:\n  name: n\n  limit: 7\n  inner:\n    ca_file: c\n  other: kept\n  ptrs:\n    - enabled: true\n  keys: [k1, k2]\n")
	c := e.load(t, e.opts())
	def := 1
	s := withPointers{Limit: &def, Inner: &tlsConfig{Enabled: true}}
	if err := c.Section("shape", &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "n" || *s.Limit != 7 || s.Inner.CAFile != "c" || !s.Inner.Enabled || s.Extra["other"] != "kept" || !s.Ptrs[0].Enabled {
		t.Fatalf("decoded %+v", s)
	}
	if len(s.Keys) != 2 || s.Keys[1].Expose() != "k2" {
		t.Fatalf("keys = %v", s.Keys)
	}
	if def != 1 {
		t.Fatal("the default pointee was modified")
	}
}

func TestSectionBadArguments(t *testing.T) {
	e := newEnv(t)
	c := e.load(t, e.opts())
	var k kafkaConfig
	if err := c.Section("kafka", k); err == nil {
		t.Error("a non-pointer must be refused")
	}
	if err := c.Section("", &k); err == nil {
		t.Error("an empty key must be refused")
	}
	if err := c.Section("a..b", &k); err == nil {
		t.Error("a malformed key must be refused")
	}
}

func TestValidators(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "kafka:\n  port: 0\n")
	c := e.load(t, e.opts())
	remove := AddValidator(c, "kafka", func(k kafkaConfig) error {
		if k.Port <= 0 {
			return errors.New("port must be positive")
		}
		return nil
	})
	k := defaultKafka()
	err := c.Section("kafka", &k)
	assertContains(t, err.Error(), "kafka", "port must be positive")
	remove()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatalf("after remove: %v", err)
	}

	AddValidator(c, "kafka", func(*kafkaConfig) error { return nil })
	err = c.Section("kafka", &k)
	assertContains(t, err.Error(), "validator", "expects")
}

func TestUnregisteredReloadDoesNotNeedSections(t *testing.T) {
	e := newEnv(t)
	c := e.load(t, e.opts())
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 2 {
		t.Fatalf("Version = %d", c.Version())
	}
}
