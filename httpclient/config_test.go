package httpclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/httpclient"
	"github.com/keel-go/keel/secret"
)

func TestConfigDefaults(t *testing.T) {
	var zero httpclient.Config
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	d := zero.WithDefaults()
	if d.Timeout != httpclient.DefaultTimeout || d.ConnectTimeout != httpclient.DefaultConnectTimeout ||
		d.MaxAttempts != httpclient.DefaultMaxAttempts || d.InitialBackoff != httpclient.DefaultInitialBackoff ||
		d.MaxBackoff != httpclient.DefaultMaxBackoff || d.MaxRetryAfter != httpclient.DefaultMaxRetryAfter ||
		d.MaxResponseBytes != httpclient.DefaultMaxResponseBytes || d.MaxIdleConnsPerHost != httpclient.DefaultMaxIdleConnsPerHost ||
		d.MaxConnsPerHost != 0 || d.UserAgent != httpclient.DefaultUserAgent {
		t.Fatalf("defaults %+v", d)
	}
	c, err := httpclient.New(httpclient.Config{MaxAttempts: 2}, httpclient.WithMetrics(testRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Config(); got.MaxAttempts != 2 || got.Timeout != httpclient.DefaultTimeout {
		t.Fatalf("Client.Config() = %+v", got)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	cases := []struct {
		name string
		cfg  httpclient.Config
		key  string
	}{
		{"negative timeout", httpclient.Config{Timeout: -time.Second}, "http_client.timeout "},
		{"negative connect timeout", httpclient.Config{ConnectTimeout: -1}, "http_client.connect_timeout "},
		{"negative attempts", httpclient.Config{MaxAttempts: -1}, "http_client.max_attempts "},
		{"too many attempts", httpclient.Config{MaxAttempts: 101}, "http_client.max_attempts "},
		{"negative backoff", httpclient.Config{InitialBackoff: -1}, "http_client.initial_backoff "},
		{"backoff above max", httpclient.Config{InitialBackoff: 2 * time.Minute, MaxBackoff: time.Minute}, "http_client.initial_backoff "},
		{"backoff above default max", httpclient.Config{InitialBackoff: time.Hour}, "http_client.initial_backoff "},
		{"negative max backoff", httpclient.Config{MaxBackoff: -1}, "http_client.max_backoff "},
		{"negative retry-after cap", httpclient.Config{MaxRetryAfter: -1}, "http_client.max_retry_after "},
		{"negative response bound", httpclient.Config{MaxResponseBytes: -1}, "http_client.max_response_bytes "},
		{"negative idle conns", httpclient.Config{MaxIdleConnsPerHost: -1}, "http_client.max_idle_conns_per_host "},
		{"negative conns", httpclient.Config{MaxConnsPerHost: -1}, "http_client.max_conns_per_host "},
		{"user agent with newline", httpclient.Config{UserAgent: "a\r\nX-Evil: 1"}, "http_client.user_agent "},
		{"bad header name", httpclient.Config{Headers: map[string]secret.String{"Bad Name": secret.New("v")}}, "http_client.headers "},
		{"header value with newline", httpclient.Config{Headers: map[string]secret.String{"X-Token": secret.New("v-s3cr3t\r\nX-Evil: 1")}}, "http_client.headers.X-Token "},
		{"same header twice", httpclient.Config{Headers: map[string]secret.String{"X-Token": secret.New("a"), "x-token": secret.New("b")}}, "http_client.headers.x-token "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if !errors.Is(err, httpclient.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), tc.key) {
				t.Fatalf("Validate = %v, want an error naming %q", err, tc.key)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("Validate error shows the header value: %v", err)
			}
			if _, err := httpclient.New(tc.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	err := httpclient.Config{Timeout: -1}.ValidateAt("vault.http")
	var ce *httpclient.ConfigError
	if !errors.As(err, &ce) || ce.Key != "vault.http.timeout" {
		t.Fatalf("ValidateAt = %v", err)
	}
	if err := (httpclient.Config{Timeout: -1, MaxAttempts: -1}).Validate(); strings.Count(err.Error(), "http_client.") != 2 {
		t.Fatalf("Validate reports only some problems: %v", err)
	}
}

func TestConfigSectionFromFile(t *testing.T) {
	dir := t.TempDir()
	yaml := `http_client:
  timeout: 5s
  max_attempts: 2
  initial_backoff: 2
  headers:
    Authorization: "Bearer tok-s3cr3t"
`
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := config.Load(context.Background(), config.Options{
		WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Logger: discardLogger(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg httpclient.Config
	if err := conf.Section(httpclient.ConfigKey, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != 5*time.Second || cfg.MaxAttempts != 2 || cfg.InitialBackoff != 2*time.Second ||
		cfg.Headers["Authorization"].Expose() != "Bearer tok-s3cr3t" {
		t.Fatalf("decoded %+v", cfg)
	}
	// Keys the file leaves out keep their defaults.
	if d := cfg.WithDefaults(); d.MaxBackoff != httpclient.DefaultMaxBackoff || d.ConnectTimeout != httpclient.DefaultConnectTimeout {
		t.Fatalf("partial section lost defaults: %+v", d)
	}
	dump, err := conf.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dump), "tok-s3cr3t") {
		t.Fatalf("config dump shows the header secret: %s", dump)
	}
}
