package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// Section is the configuration section the manager reads: secrets.
const Section = "secrets"

// Defaults of the fields whose zero value means "use the default".
const (
	// DefaultTTL is how long a fetched value is fresh.
	DefaultTTL = time.Hour
	// DefaultStaleGrace is how long past its TTL a cached value is still
	// served when the provider fails.
	DefaultStaleGrace = 24 * time.Hour
	// DefaultRefreshInterval is the mean time between background
	// refreshes of every cached secret.
	DefaultRefreshInterval = 30 * time.Minute
	// DefaultFetchTimeout bounds one provider fetch.
	DefaultFetchTimeout = 30 * time.Second
	// DefaultFileMaxBytes is the largest secret file the file provider
	// reads.
	DefaultFileMaxBytes = 1 << 20
	// DefaultVaultTimeout bounds one Vault HTTP request.
	DefaultVaultTimeout = 30 * time.Second
	// DefaultVaultMaxRetries is how often the Vault client retries a
	// request that failed with a connection error or a 5xx.
	DefaultVaultMaxRetries = 2
	// DefaultAppRoleMount is the mount of the AppRole auth method.
	DefaultAppRoleMount = "approle"
	// DefaultKubernetesMount is the mount of the Kubernetes auth method.
	DefaultKubernetesMount = "kubernetes"
	// DefaultKubernetesTokenPath is where Kubernetes mounts the pod's
	// service account token.
	DefaultKubernetesTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// DefaultAWSRegion is the region used when neither the configuration,
	// AWS_REGION, AWS_DEFAULT_REGION nor the shared AWS config names one.
	DefaultAWSRegion = "us-east-1"
	// MinEncryptionKeyLen is the shortest cache encryption key accepted,
	// in bytes.
	MinEncryptionKeyLen = 16
)

// Vault auth methods (secrets.vault.auth.method).
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// Config is the secrets section. The zero value is valid: file and env
// references work, Vault is configured from VAULT_* (or OPENBAO_*, BAO_*)
// when VAULT_ADDR is set, AWS from the standard AWS chain; values are cached
// in memory for an hour, served stale for up to a day when the provider
// fails, refreshed every 30 minutes give or take 5, and nothing is written
// to disk.
//
//	secrets:
//	  sources:
//	    kafka_password: {ref: "vault:secret/data/kafka#password"}
//	    db_password:    {provider: aws, path: prod/db, key: password, ttl: 10m}
//	  cache:
//	    enabled: true
//	    ttl: 1h
//	    stale_grace: 24h                  # negative: never serve stale
//	    directory: ""                     # default <cache dir>/secrets
//	    encryption_key: ""                # set it to turn the encrypted disk cache on
//	    allow_plaintext_disk: false       # refused in production
//	  refresh_interval: 30m               # negative: no background refresh
//	  refresh_jitter: 5m                  # default a sixth of the interval
//	  fetch_timeout: 30s
//	  file: {max_bytes: 1048576, keep_trailing_newline: false}
//	  vault:
//	    address: https://vault:8200       # or VAULT_ADDR
//	    namespace: ""                     # or VAULT_NAMESPACE
//	    ca_cert: ""                       # or VAULT_CACERT
//	    auth: {method: approle, role_id: "...", secret_id: "..."}
//	  aws:
//	    region: eu-west-1                 # or AWS_REGION, AWS_DEFAULT_REGION
//	    endpoint_url: ""                  # or AWS_ENDPOINT_URL
type Config struct {
	// Sources names secrets and routes each to a provider.
	Sources map[string]SourceConfig `koanf:"sources" json:"sources" yaml:"sources"`
	// Cache configures the memory and disk caches.
	Cache CacheConfig `koanf:"cache" json:"cache" yaml:"cache"`
	// RefreshInterval is the mean time between two background refreshes
	// (Run), each of which fetches every cached secret again. 0 means
	// DefaultRefreshInterval; negative turns background refresh off.
	RefreshInterval time.Duration `koanf:"refresh_interval" json:"refresh_interval" yaml:"refresh_interval"`
	// RefreshJitter spreads refreshes: each wait is drawn uniformly from
	// [interval-jitter, interval+jitter], so replicas do not hit the
	// provider together. 0 means a sixth of the interval; negative means
	// none. It must be below the interval.
	RefreshJitter time.Duration `koanf:"refresh_jitter" json:"refresh_jitter" yaml:"refresh_jitter"`
	// FetchTimeout bounds one provider fetch. 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration `koanf:"fetch_timeout" json:"fetch_timeout" yaml:"fetch_timeout"`
	// File configures the file provider.
	File FileConfig `koanf:"file" json:"file" yaml:"file"`
	// Vault configures the Vault / OpenBao provider.
	Vault VaultConfig `koanf:"vault" json:"vault" yaml:"vault"`
	// AWS configures the AWS Secrets Manager provider.
	AWS AWSConfig `koanf:"aws" json:"aws" yaml:"aws"`
}

// SourceConfig is one named secret: either Ref, or Provider with Path and
// Key.
type SourceConfig struct {
	// Ref is a whole reference, e.g. "vault:secret/data/kafka#password".
	Ref string `koanf:"ref" json:"ref" yaml:"ref"`
	// Provider is "file", "env", "vault" (or "openbao"), "aws" or the
	// name of a custom provider.
	Provider string `koanf:"provider" json:"provider" yaml:"provider"`
	// Path locates the secret at the provider.
	Path string `koanf:"path" json:"path" yaml:"path"`
	// Key optionally selects one field of the secret.
	Key string `koanf:"key" json:"key" yaml:"key"`
	// TTL overrides secrets.cache.ttl for this source; 0 means the cache
	// TTL.
	TTL time.Duration `koanf:"ttl" json:"ttl" yaml:"ttl"`
}

// CacheConfig configures the caches.
type CacheConfig struct {
	// Enabled switches caching on. Nil means true. Without a cache every
	// read goes to the provider and a provider outage is an outage.
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// TTL is how long a fetched value is served without asking the
	// provider. 0 means DefaultTTL.
	TTL time.Duration `koanf:"ttl" json:"ttl" yaml:"ttl"`
	// StaleGrace is how long past its TTL a cached value is still served,
	// with a warning, when the provider fails. 0 means DefaultStaleGrace;
	// negative means never.
	StaleGrace time.Duration `koanf:"stale_grace" json:"stale_grace" yaml:"stale_grace"`
	// Directory holds the disk cache. Empty means <cache dir>/secrets,
	// where the cache dir comes from platform.Detector.Paths. It is
	// created with mode 0700 and its files are 0600.
	Directory string `koanf:"directory" json:"directory" yaml:"directory"`
	// EncryptionKey turns the disk cache on: every file is sealed with
	// AES-256-GCM under a key derived from this one with HKDF-SHA256.
	// Use a random value of at least MinEncryptionKeyLen bytes
	// (openssl rand -base64 32).
	EncryptionKey secret.String `koanf:"encryption_key" json:"encryption_key" yaml:"encryption_key"`
	// AllowPlaintextDisk turns the disk cache on without encryption when
	// no EncryptionKey is set. Refused when the environment is production.
	AllowPlaintextDisk bool `koanf:"allow_plaintext_disk" json:"allow_plaintext_disk" yaml:"allow_plaintext_disk"`
}

// IsEnabled reports whether caching is on.
func (c CacheConfig) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// diskEnabled reports whether the configuration asks for a disk cache.
func (c CacheConfig) diskEnabled() bool {
	return c.IsEnabled() && (!c.EncryptionKey.IsZero() || c.AllowPlaintextDisk)
}

// FileConfig configures the file provider.
type FileConfig struct {
	// MaxBytes is the largest file read. 0 means DefaultFileMaxBytes.
	MaxBytes int64 `koanf:"max_bytes" json:"max_bytes" yaml:"max_bytes"`
	// KeepTrailingNewline keeps a final "\n" (or "\r\n"). By default one
	// is removed, since files written with echo or an editor end with one
	// and a credential never does.
	KeepTrailingNewline bool `koanf:"keep_trailing_newline" json:"keep_trailing_newline" yaml:"keep_trailing_newline"`
}

// VaultConfig configures the Vault / OpenBao provider. Every empty field is
// taken from the environment: VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT,
// VAULT_SKIP_VERIFY, VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID and
// VAULT_K8S_ROLE, each also as OPENBAO_* and BAO_*, the VAULT_ name winning.
// The provider exists when an address is known.
type VaultConfig struct {
	// Address is the server URL, e.g. https://vault.internal:8200.
	Address string `koanf:"address" json:"address" yaml:"address"`
	// Namespace is the Vault Enterprise / OpenBao namespace.
	Namespace string `koanf:"namespace" json:"namespace" yaml:"namespace"`
	// CACert is a PEM file of the CAs that sign the server certificate.
	CACert string `koanf:"ca_cert" json:"ca_cert" yaml:"ca_cert"`
	// SkipVerify turns TLS verification off. Refused in production.
	SkipVerify bool `koanf:"skip_verify" json:"skip_verify" yaml:"skip_verify"`
	// Timeout bounds one HTTP request. 0 means DefaultVaultTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
	// MaxRetries is how often a request failing with a connection error
	// or a 5xx is retried. 0 means DefaultVaultMaxRetries; negative means
	// none.
	MaxRetries int `koanf:"max_retries" json:"max_retries" yaml:"max_retries"`
	// Auth says how to log in.
	Auth VaultAuthConfig `koanf:"auth" json:"auth" yaml:"auth"`
}

// VaultAuthConfig says how the Vault provider logs in.
type VaultAuthConfig struct {
	// Method is "token", "approle" or "kubernetes". Empty means the first
	// of them whose credentials are set, in that order, looking at this
	// section before the environment.
	Method string `koanf:"method" json:"method" yaml:"method"`
	// Token is the token for the token method.
	Token secret.String `koanf:"token" json:"token" yaml:"token"`
	// RoleID and SecretID are the AppRole credentials.
	RoleID string `koanf:"role_id" json:"role_id" yaml:"role_id"`
	// SecretID is the AppRole secret id.
	SecretID secret.String `koanf:"secret_id" json:"secret_id" yaml:"secret_id"`
	// Role is the Vault role of the Kubernetes method.
	Role string `koanf:"role" json:"role" yaml:"role"`
	// TokenPath is the service account token file of the Kubernetes
	// method, read again at every login. Default
	// DefaultKubernetesTokenPath.
	TokenPath string `koanf:"token_path" json:"token_path" yaml:"token_path"`
	// Mount is the auth mount. Default "approle" or "kubernetes".
	Mount string `koanf:"mount" json:"mount" yaml:"mount"`
}

// AWSConfig configures the AWS Secrets Manager provider. Credentials come
// from the standard AWS chain (environment, shared files, web identity,
// container and instance roles) unless AccessKeyID is set.
type AWSConfig struct {
	// Region; empty means AWS_REGION, else AWS_DEFAULT_REGION, else the
	// shared AWS config, else DefaultAWSRegion.
	Region string `koanf:"region" json:"region" yaml:"region"`
	// EndpointURL overrides the service endpoint (LocalStack, a VPC
	// endpoint). Empty means AWS_ENDPOINT_URL_SECRETS_MANAGER, else
	// AWS_ENDPOINT_URL, else the regional endpoint.
	EndpointURL string `koanf:"endpoint_url" json:"endpoint_url" yaml:"endpoint_url"`
	// AccessKeyID with SecretAccessKey (and SessionToken) sets static
	// credentials.
	AccessKeyID string `koanf:"access_key_id" json:"access_key_id" yaml:"access_key_id"`
	// SecretAccessKey is the static secret key.
	SecretAccessKey secret.String `koanf:"secret_access_key" json:"secret_access_key" yaml:"secret_access_key"`
	// SessionToken is the optional static session token.
	SessionToken secret.String `koanf:"session_token" json:"session_token" yaml:"session_token"`
	// MaxAttempts bounds the SDK's attempts per request. 0 means the SDK
	// default (3).
	MaxAttempts int `koanf:"max_attempts" json:"max_attempts" yaml:"max_attempts"`
	// VersionStage is the staging label read. Empty means AWSCURRENT.
	VersionStage string `koanf:"version_stage" json:"version_stage" yaml:"version_stage"`
}

// ref returns the reference a source points to.
func (s SourceConfig) ref() (Ref, error) {
	if s.Ref != "" {
		return ParseRef(s.Ref)
	}
	if s.Provider == "" {
		return Ref{}, fmt.Errorf("%w: neither ref nor provider is set", ErrInvalidRef)
	}
	r := Ref{Provider: s.Provider, Path: s.Path, Key: s.Key}
	if strings.ContainsRune(s.Key, '#') {
		return Ref{}, fmt.Errorf("%w: key %q contains '#'", ErrInvalidRef, s.Key)
	}
	return ParseRef(r.String())
}

// WithDefaults returns c with every unset field replaced by its default. It
// does not read the environment and does not validate.
func (c Config) WithDefaults() Config {
	if c.Cache.Enabled == nil {
		on := true
		c.Cache.Enabled = &on
	}
	if c.Cache.TTL == 0 {
		c.Cache.TTL = DefaultTTL
	}
	if c.Cache.StaleGrace == 0 {
		c.Cache.StaleGrace = DefaultStaleGrace
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.RefreshJitter == 0 && c.RefreshInterval > 0 {
		c.RefreshJitter = c.RefreshInterval / 6
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.File.MaxBytes == 0 {
		c.File.MaxBytes = DefaultFileMaxBytes
	}
	if c.Vault.Timeout == 0 {
		c.Vault.Timeout = DefaultVaultTimeout
	}
	if c.Vault.MaxRetries == 0 {
		c.Vault.MaxRetries = DefaultVaultMaxRetries
	}
	return c
}

// Validate reports every problem of the section as a *ConfigError naming
// the key and the fix, joined with errors.Join. It returns nil for the zero
// Config. Checks that depend on the environment (production, Vault
// credentials from VAULT_*) run in New.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	if c.Cache.TTL < 0 {
		bad("cache.ttl", "must be >= 0, got %s; leave it unset for the default %s", c.Cache.TTL, DefaultTTL)
	}
	if c.FetchTimeout < 0 {
		bad("fetch_timeout", "must be >= 0, got %s; leave it unset for the default %s", c.FetchTimeout, DefaultFetchTimeout)
	}
	d := c.WithDefaults()
	if d.RefreshInterval > 0 && d.RefreshJitter >= d.RefreshInterval {
		bad("refresh_jitter", "(%s) must be below secrets.refresh_interval (%s); lower it or leave it unset for a sixth of the interval", d.RefreshJitter, d.RefreshInterval)
	}
	if k := c.Cache.EncryptionKey; !k.IsZero() && k.Len() < MinEncryptionKeyLen {
		bad("cache.encryption_key", "is %d bytes, shorter than %d; use a random key such as the output of `openssl rand -base64 32`", k.Len(), MinEncryptionKeyLen)
	}
	if c.File.MaxBytes < 0 {
		bad("file.max_bytes", "must be >= 0, got %d; leave it unset for the default %d", c.File.MaxBytes, DefaultFileMaxBytes)
	}
	if c.Vault.Timeout < 0 {
		bad("vault.timeout", "must be >= 0, got %s; leave it unset for the default %s", c.Vault.Timeout, DefaultVaultTimeout)
	}
	if a := c.Vault.Address; a != "" {
		if err := checkURL(a); err != nil {
			bad("vault.address", "%v", err)
		}
	}
	switch c.Vault.Auth.Method {
	case "", AuthToken, AuthAppRole, AuthKubernetes:
	default:
		bad("vault.auth.method", "is %q; use token, approle or kubernetes, or leave it empty to pick the method from the credentials set", c.Vault.Auth.Method)
	}
	if c.AWS.MaxAttempts < 0 {
		bad("aws.max_attempts", "must be >= 0, got %d; leave it unset for the SDK default", c.AWS.MaxAttempts)
	}
	if e := c.AWS.EndpointURL; e != "" {
		if err := checkURL(e); err != nil {
			bad("aws.endpoint_url", "%v", err)
		}
	}
	if c.AWS.AccessKeyID != "" && c.AWS.SecretAccessKey.IsZero() {
		bad("aws.secret_access_key", "must be set with secrets.aws.access_key_id")
	}
	names := make([]string, 0, len(c.Sources))
	for name := range c.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Sources[name]
		key := "sources." + name
		if name == "" {
			bad("sources", "has a source with an empty name")
			continue
		}
		if s.Ref != "" && (s.Provider != "" || s.Path != "" || s.Key != "") {
			bad(key, "sets both ref and provider/path/key; use one form")
			continue
		}
		if _, err := s.ref(); err != nil {
			bad(key, "is not a valid secret location: %v", err)
		}
		if s.TTL < 0 {
			bad(key+".ttl", "must be >= 0, got %s; leave it unset for secrets.cache.ttl", s.TTL)
		}
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("is %q, not an http(s) URL such as https://host:8200", s)
	}
	return nil
}

// lookupEnvFunc reads an environment variable; os.LookupEnv by default.
type lookupEnvFunc func(string) (string, bool)

// firstEnv returns the first non-empty variable among names.
func firstEnv(lookup lookupEnvFunc, names ...string) (value, name string) {
	for _, n := range names {
		if v, ok := lookup(n); ok && v != "" {
			return v, n
		}
	}
	return "", ""
}

// vaultEnv lists the variables for one Vault setting, the VAULT_ name first.
func vaultEnv(suffix string, extra ...string) []string {
	return append([]string{"VAULT_" + suffix, "OPENBAO_" + suffix, "BAO_" + suffix}, extra...)
}

// resolvedVault is a VaultConfig with the environment applied and the auth
// method decided.
type resolvedVault struct {
	VaultConfig
	// sources says where each setting came from, for log lines.
	addrFrom string
}

// resolveVault fills the empty fields of c from the environment and
// decides the auth method. ok is false when no address is known (the
// provider does not exist); err reports an address without usable
// credentials.
func resolveVault(c VaultConfig, lookup lookupEnvFunc) (r resolvedVault, ok bool, err error) {
	r.VaultConfig = c
	r.addrFrom = "secrets.vault.address"
	if r.Address == "" {
		r.Address, r.addrFrom = firstEnv(lookup, vaultEnv("ADDR")...)
	}
	if r.Address == "" {
		return r, false, nil
	}
	if err := checkURL(r.Address); err != nil {
		return r, true, &ConfigError{Key: Section + ".vault.address", Msg: fmt.Sprintf("vault address from %s %v", r.addrFrom, err)}
	}
	if r.Namespace == "" {
		r.Namespace, _ = firstEnv(lookup, vaultEnv("NAMESPACE")...)
	}
	if r.CACert == "" {
		r.CACert, _ = firstEnv(lookup, vaultEnv("CACERT", "VAULT_CA_CERT")...)
	}
	if !r.SkipVerify {
		if v, _ := firstEnv(lookup, vaultEnv("SKIP_VERIFY", "VAULT_TLS_SKIP_VERIFY")...); v != "" {
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "1", "true", "t", "yes", "on":
				r.SkipVerify = true
			}
		}
	}
	a := &r.Auth
	method := a.Method
	if method == "" {
		switch {
		case !a.Token.IsZero():
			method = AuthToken
		case a.RoleID != "" || !a.SecretID.IsZero():
			method = AuthAppRole
		case a.Role != "":
			method = AuthKubernetes
		}
	}
	envToken, _ := firstEnv(lookup, vaultEnv("TOKEN", "OPENBAO_ROOT_TOKEN")...)
	envRoleID, _ := firstEnv(lookup, vaultEnv("ROLE_ID")...)
	envSecretID, _ := firstEnv(lookup, vaultEnv("SECRET_ID")...)
	envK8sRole, _ := firstEnv(lookup, vaultEnv("K8S_ROLE")...)
	if method == "" {
		switch {
		case envToken != "":
			method = AuthToken
		case envRoleID != "" && envSecretID != "":
			method = AuthAppRole
		case envK8sRole != "":
			method = AuthKubernetes
		}
	}
	a.Method = method
	key := Section + ".vault.auth"
	switch method {
	case AuthToken:
		if a.Token.IsZero() {
			a.Token = secret.New(envToken)
		}
		if a.Token.IsZero() {
			return r, true, &ConfigError{Key: key + ".token", Msg: key + ".token is empty; set it or VAULT_TOKEN"}
		}
	case AuthAppRole:
		if a.RoleID == "" {
			a.RoleID = envRoleID
		}
		if a.SecretID.IsZero() {
			a.SecretID = secret.New(envSecretID)
		}
		if a.RoleID == "" || a.SecretID.IsZero() {
			return r, true, &ConfigError{Key: key, Msg: key + ": AppRole needs role_id and secret_id; set them or VAULT_ROLE_ID and VAULT_SECRET_ID"}
		}
		if a.Mount == "" {
			a.Mount = DefaultAppRoleMount
		}
	case AuthKubernetes:
		if a.Role == "" {
			a.Role = envK8sRole
		}
		if a.Role == "" {
			return r, true, &ConfigError{Key: key + ".role", Msg: key + ".role is empty; set it or VAULT_K8S_ROLE"}
		}
		if a.Mount == "" {
			a.Mount = DefaultKubernetesMount
		}
		if a.TokenPath == "" {
			a.TokenPath = DefaultKubernetesTokenPath
		}
	default:
		return r, true, &ConfigError{Key: key, Msg: fmt.Sprintf("vault address %s is set (from %s) but no credentials are: set %s.token, role_id and secret_id, or role (or VAULT_TOKEN, VAULT_ROLE_ID with VAULT_SECRET_ID, or VAULT_K8S_ROLE)", r.Address, r.addrFrom, key)}
	}
	return r, true, nil
}

// resolveAWS fills the region and endpoint of c from the environment.
// The region may stay empty: the SDK then reads the shared config, and
// DefaultAWSRegion is the last resort.
func resolveAWS(c AWSConfig, lookup lookupEnvFunc) AWSConfig {
	if c.Region == "" {
		c.Region, _ = firstEnv(lookup, "AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if c.EndpointURL == "" {
		c.EndpointURL, _ = firstEnv(lookup, "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL")
	}
	return c
}
