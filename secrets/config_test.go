package secrets

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/secret"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{Cache: CacheConfig{TTL: -time.Second}}, "secrets.cache.ttl"},
		{Config{FetchTimeout: -1}, "secrets.fetch_timeout"},
		{Config{RefreshInterval: time.Minute, RefreshJitter: time.Minute}, "secrets.refresh_jitter"},
		{Config{RefreshJitter: time.Hour}, "secrets.refresh_jitter"},
		{Config{Cache: CacheConfig{EncryptionKey: secret.New("short")}}, "secrets.cache.encryption_key"},
		{Config{File: FileConfig{MaxBytes: -1}}, "secrets.file.max_bytes"},
		{Config{Vault: VaultConfig{Timeout: -1}}, "secrets.vault.timeout"},
		{Config{Vault: VaultConfig{Address: "vault:8200"}}, "secrets.vault.address"},
		{Config{Vault: VaultConfig{Auth: VaultAuthConfig{Method: "ldap"}}}, "secrets.vault.auth.method"},
		{Config{AWS: AWSConfig{MaxAttempts: -2}}, "secrets.aws.max_attempts"},
		{Config{AWS: AWSConfig{EndpointURL: "localhost:4566"}}, "secrets.aws.endpoint_url"},
		{Config{AWS: AWSConfig{AccessKeyID: "AKID"}}, "secrets.aws.secret_access_key"},
		{Config{Sources: map[string]SourceConfig{"x": {}}}, "secrets.sources.x"},
		{Config{Sources: map[string]SourceConfig{"x": {Ref: "env:A", Provider: "env"}}}, "secrets.sources.x"},
		{Config{Sources: map[string]SourceConfig{"x": {Ref: "nope"}}}, "secrets.sources.x"},
		{Config{Sources: map[string]SourceConfig{"x": {Provider: "env", Path: "1BAD"}}}, "secrets.sources.x"},
		{Config{Sources: map[string]SourceConfig{"x": {Provider: "file", Path: "/a", Key: "a#b"}}}, "secrets.sources.x"},
		{Config{Sources: map[string]SourceConfig{"x": {Ref: "env:A", TTL: -1}}}, "secrets.sources.x.ttl"},
	} {
		err := c.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != c.key || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%+v: err = %v, want a ConfigError on %s", c.cfg, err, c.key)
		}
	}
	// The key's value never shows in the error.
	err := (Config{Cache: CacheConfig{EncryptionKey: secret.New("tiny-Va1")}}).Validate()
	if err == nil || strings.Contains(err.Error(), "tiny-Va1") {
		t.Fatalf("%v", err)
	}
	// Several problems are all reported.
	err = (Config{Cache: CacheConfig{TTL: -1}, FetchTimeout: -1}).Validate()
	if n := strings.Count(err.Error(), "secrets."); n < 2 {
		t.Fatalf("joined errors: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	if !d.Cache.IsEnabled() || d.Cache.TTL != time.Hour || d.Cache.StaleGrace != 24*time.Hour ||
		d.RefreshInterval != 30*time.Minute || d.RefreshJitter != 5*time.Minute || d.FetchTimeout != 30*time.Second ||
		d.File.MaxBytes != 1<<20 || d.Vault.Timeout != 30*time.Second || d.Vault.MaxRetries != 2 {
		t.Fatalf("%+v", d)
	}
	if d := (Config{RefreshInterval: -1}).WithDefaults(); d.RefreshJitter != 0 {
		t.Fatalf("jitter with refresh off: %s", d.RefreshJitter)
	}
	if d := (Config{RefreshInterval: 6 * time.Minute}).WithDefaults(); d.RefreshJitter != time.Minute {
		t.Fatalf("jitter = %s, want a sixth", d.RefreshJitter)
	}
}

func TestResolveVaultEnvironment(t *testing.T) {
	for _, c := range []struct {
		name   string
		cfg    VaultConfig
		env    map[string]string
		ok     bool
		errKey string
		check  func(t *testing.T, r resolvedVault)
	}{
		{name: "no address", env: map[string]string{"VAULT_TOKEN": "t"}, ok: false},
		{name: "VAULT_ wins over OPENBAO_ and BAO_", ok: true, env: map[string]string{
			"VAULT_ADDR": "http://v:8200", "OPENBAO_ADDR": "http://o:8200", "BAO_ADDR": "http://b:8200",
			"OPENBAO_TOKEN": "tok-o", "VAULT_TOKEN": "tok-v", "VAULT_NAMESPACE": "ns-v", "BAO_NAMESPACE": "ns-b",
			"BAO_CACERT": "/b.pem", "OPENBAO_CACERT": "/o.pem"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Address != "http://v:8200" || r.Auth.Method != AuthToken || r.Auth.Token.Expose() != "tok-v" || r.Namespace != "ns-v" || r.CACert != "/o.pem" {
					t.Fatalf("%+v token=%q", r.VaultConfig, r.Auth.Token.Expose())
				}
			}},
		{name: "VAULT_ wins over OPENBAO_ and BAO_ for AppRole and CA", ok: true, env: map[string]string{
			"VAULT_ADDR":    "http://v:8200",
			"VAULT_ROLE_ID": "role-v", "OPENBAO_ROLE_ID": "role-o", "BAO_ROLE_ID": "role-b",
			"VAULT_SECRET_ID": "sid-v", "OPENBAO_SECRET_ID": "sid-o", "BAO_SECRET_ID": "sid-b",
			"VAULT_CACERT": "/v.pem", "OPENBAO_CACERT": "/o.pem", "BAO_CACERT": "/b.pem", "VAULT_CA_CERT": "/alias.pem"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.Method != AuthAppRole || r.Auth.RoleID != "role-v" || r.Auth.SecretID.Expose() != "sid-v" || r.CACert != "/v.pem" {
					t.Fatalf("%+v secret_id=%q", r.VaultConfig, r.Auth.SecretID.Expose())
				}
			}},
		{name: "OPENBAO_ wins over BAO_ for AppRole", ok: true, env: map[string]string{
			"BAO_ADDR":        "http://b:8200",
			"OPENBAO_ROLE_ID": "role-o", "BAO_ROLE_ID": "role-b",
			"OPENBAO_SECRET_ID": "sid-o", "BAO_SECRET_ID": "sid-b"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.RoleID != "role-o" || r.Auth.SecretID.Expose() != "sid-o" {
					t.Fatalf("%+v secret_id=%q", r.VaultConfig, r.Auth.SecretID.Expose())
				}
			}},
		{name: "VAULT_ wins over OPENBAO_ and BAO_ for Kubernetes and skip verify", ok: true, env: map[string]string{
			"VAULT_ADDR":     "http://v:8200",
			"VAULT_K8S_ROLE": "k-v", "OPENBAO_K8S_ROLE": "k-o", "BAO_K8S_ROLE": "k-b",
			"VAULT_SKIP_VERIFY": "false", "OPENBAO_SKIP_VERIFY": "true", "BAO_SKIP_VERIFY": "true"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.Method != AuthKubernetes || r.Auth.Role != "k-v" || r.SkipVerify {
					t.Fatalf("%+v", r.VaultConfig)
				}
			}},
		{name: "BAO_ alone", ok: true, env: map[string]string{"BAO_ADDR": "http://b:8200", "BAO_ROLE_ID": "r", "BAO_SECRET_ID": "s"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Address != "http://b:8200" || r.Auth.Method != AuthAppRole || r.Auth.RoleID != "r" || r.Auth.SecretID.Expose() != "s" || r.Auth.Mount != "approle" {
					t.Fatalf("%+v", r.VaultConfig)
				}
			}},
		{name: "token beats approle beats kubernetes in env", ok: true, env: map[string]string{
			"VAULT_ADDR": "http://v", "VAULT_ROLE_ID": "r", "VAULT_SECRET_ID": "s", "VAULT_K8S_ROLE": "k"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.Method != AuthAppRole {
					t.Fatalf("%s", r.Auth.Method)
				}
			}},
		{name: "kubernetes from env", ok: true, env: map[string]string{"VAULT_ADDR": "http://v", "OPENBAO_K8S_ROLE": "k"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.Method != AuthKubernetes || r.Auth.Role != "k" || r.Auth.TokenPath != DefaultKubernetesTokenPath || r.Auth.Mount != "kubernetes" {
					t.Fatalf("%+v", r.Auth)
				}
			}},
		{name: "config method beats an env token", ok: true,
			cfg: VaultConfig{Address: "https://cfg:8200", Auth: VaultAuthConfig{RoleID: "cfg-role", Mount: "custom"}},
			env: map[string]string{"VAULT_ADDR": "http://env", "VAULT_TOKEN": "t", "VAULT_SECRET_ID": "env-sid"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Address != "https://cfg:8200" || r.Auth.Method != AuthAppRole || r.Auth.RoleID != "cfg-role" || r.Auth.SecretID.Expose() != "env-sid" || r.Auth.Mount != "custom" {
					t.Fatalf("%+v", r.VaultConfig)
				}
			}},
		{name: "root token and CA aliases", ok: true, env: map[string]string{"VAULT_ADDR": "http://v", "OPENBAO_ROOT_TOKEN": "root", "VAULT_CA_CERT": "/ca.pem", "VAULT_TLS_SKIP_VERIFY": "yes"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Auth.Token.Expose() != "root" || r.CACert != "/ca.pem" || !r.SkipVerify {
					t.Fatalf("%+v", r.VaultConfig)
				}
			}},
		{name: "skip verify false", ok: true, env: map[string]string{"VAULT_ADDR": "http://v", "VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": "false"},
			check: func(t *testing.T, r resolvedVault) {
				if r.SkipVerify {
					t.Fatal("skip verify")
				}
			}},
		{name: "empty values count as unset", ok: true, env: map[string]string{"VAULT_ADDR": "", "OPENBAO_ADDR": "http://o", "VAULT_TOKEN": "", "BAO_TOKEN": "bt"},
			check: func(t *testing.T, r resolvedVault) {
				if r.Address != "http://o" || r.Auth.Token.Expose() != "bt" {
					t.Fatalf("%+v", r.VaultConfig)
				}
			}},
		{name: "address without credentials", ok: true, env: map[string]string{"VAULT_ADDR": "http://v"}, errKey: "secrets.vault.auth"},
		{name: "approle without secret id", ok: true, cfg: VaultConfig{Auth: VaultAuthConfig{Method: AuthAppRole, RoleID: "r"}}, env: map[string]string{"VAULT_ADDR": "http://v"}, errKey: "secrets.vault.auth"},
		{name: "bad env address", ok: true, env: map[string]string{"VAULT_ADDR": "v:8200", "VAULT_TOKEN": "t"}, errKey: "secrets.vault.address"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ok, err := resolveVault(c.cfg, envMap(c.env))
			if ok != c.ok {
				t.Fatalf("ok = %v", ok)
			}
			if c.errKey != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || ce.Key != c.errKey {
					t.Fatalf("err = %v, want a ConfigError on %s", err, c.errKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// The section decodes through the config package, sources map and secret
// fields included, and the dump never shows the secret fields.
func TestSectionDecodesThroughConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "settings.yaml", `
secrets:
  sources:
    kafka: {ref: "vault:secret/data/kafka#password"}
    db: {provider: aws, path: prod/db, key: password, ttl: 10m}
  cache:
    ttl: 30m
    stale_grace: 2h
    directory: `+filepath.Join(dir, "cache")+`
    encryption_key: "yaml-cache-key-Wa1-0123456789"
  refresh_interval: 20m
  vault:
    address: https://vault.internal:8200
    auth: {method: approle, role_id: r1, secret_id: "yaml-secret-id-Wa2"}
  aws:
    region: eu-west-1
    secret_access_key: "yaml-aws-key-Wa3"
`)
	cfg, err := config.Load(context.Background(), config.Options{WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true, Strict: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var sc Config
	if err := cfg.Section(Section, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Sources["db"].TTL != 10*time.Minute || sc.Sources["kafka"].Ref != "vault:secret/data/kafka#password" ||
		sc.Cache.TTL != 30*time.Minute || sc.Cache.EncryptionKey.Expose() != "yaml-cache-key-Wa1-0123456789" ||
		sc.Vault.Auth.SecretID.Expose() != "yaml-secret-id-Wa2" || sc.RefreshInterval != 20*time.Minute {
		t.Fatalf("%+v", sc)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	dump, err := cfg.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"yaml-cache-key-Wa1", "yaml-secret-id-Wa2", "yaml-aws-key-Wa3"} {
		if strings.Contains(string(dump), s) {
			t.Fatalf("dump shows %s", s)
		}
	}
}
