// Package secrets gets a service's credentials from where operators keep
// them (files and Kubernetes secret volumes, environment variables, Vault
// or OpenBao KV v2, AWS Secrets Manager), caches them safely, refreshes
// them in the background, tells subscribers when they rotate, and never
// prints them.
//
// # Start
//
//	var sc secrets.Config // the "secrets" section; the zero value works
//	if err := cfg.Section(secrets.Section, &sc); err != nil { return err }
//	mgr, err := secrets.New(ctx, sc, secrets.Options{Env: cfg.AppEnv(), Logger: logger})
//	if err != nil { return err }            // names the key and the fix
//	defer mgr.Close(context.Background())
//	go mgr.Run(ctx)                         // background refresh with jitter
//
//	pw, err := mgr.Get(ctx, "kafka_password")                     // a named source
//	tok, err := mgr.Resolve(ctx, "file:/var/run/secrets/token")   // a reference
//	dial(pw.Expose())                                              // secret.String: prints [REDACTED]
//
// # Sources and references
//
// A reference is "provider:path#key", the key optional:
//
//	vault:secret/data/kafka#password   Vault KV v2: mount secret, secret kafka, field password
//	aws:prod/db#password               AWS Secrets Manager: secret prod/db, JSON key password
//	file:/var/run/secrets/token        a file (one trailing newline removed)
//	env:DB_PASSWORD                    an environment variable
//
// "openbao:" and "bao:" mean "vault:". For Vault the key selects a field of
// the secret's data (without a key the whole data map comes back as JSON);
// for the others it selects a key of the JSON object the secret holds.
// Named sources (secrets.sources) route a name to a reference, with an
// optional TTL of their own. Custom backends implement Provider and are
// passed in Options.Providers; their name is their scheme.
//
// # References in configuration
//
// Any secret.String field of any section may hold a reference instead of a
// value. After decoding the section, ResolveStruct replaces every
// reference with its secret; a reference that does not resolve is a
// start-up error naming the key and the reference. The configuration dump
// never shows either, because the field is a secret.String.
//
//	kafka:
//	  sasl:
//	    password: vault:secret/data/kafka#password
//
// # Reading order
//
// A fresh value from the memory cache; else a fresh value from the disk
// cache; else the provider, one request per secret at a time however many
// callers wait; if the provider fails, a cached value still within its TTL
// plus the stale grace, served with a warning (at most one line a minute per
// secret) and counted; else an *Error naming the source, the provider and
// the reference, wrapping ErrNotFound, ErrAuth, ErrUnavailable, ... No
// error, log line or metric ever holds a secret value.
//
// # Disk cache
//
// Off by default. Setting secrets.cache.encryption_key turns it on: one
// file per secret in secrets.cache.directory (mode 0700, files 0600,
// re-applied at start and after Clear), each sealed with AES-256-GCM under
// a key derived from the configured one with HKDF-SHA256, with a random
// nonce and the cache key as associated data, so a tampered file, a file
// written under another key and a file moved into another secret's slot
// all fail to open (and are skipped with a warning). File names are hashes
// of the references. Writes go to a temporary file that is synced and then
// renamed. allow_plaintext_disk writes the entries unencrypted instead; it
// is refused when the environment is production (platform.IsProduction).
//
// # Refresh and rotation
//
// Run fetches every cached secret again every refresh_interval (30 min),
// each wait drawn uniformly within refresh_jitter (a sixth of the
// interval) of it. When a provider reports a new version (Vault KV v2
// version, AWS VersionId, a file's modification time), subscribers of
// Subscribe receive a RotationEvent, once per new version.
//
// # Vault and OpenBao
//
// One client, authenticated once with a token, AppRole or Kubernetes
// (service account token read again at every login), with the namespace
// and CA file applied. The token is renewed at two thirds of its TTL; a
// token that cannot be renewed (or stops being renewable near its max TTL)
// is replaced by a new login; a 403 triggers one new login and one retry.
// Empty settings come from VAULT_ADDR, VAULT_TOKEN, VAULT_ROLE_ID,
// VAULT_SECRET_ID, VAULT_K8S_ROLE, VAULT_NAMESPACE, VAULT_CACERT and
// VAULT_SKIP_VERIFY, or their OPENBAO_ and BAO_ forms, the VAULT_ name
// winning. skip_verify is refused in production.
//
// # AWS Secrets Manager
//
// GetSecretValue through the AWS SDK: SecretString or SecretBinary, the
// VersionId as version. Region from secrets.aws.region, AWS_REGION,
// AWS_DEFAULT_REGION, the shared config, else us-east-1; endpoint from
// secrets.aws.endpoint_url, AWS_ENDPOINT_URL_SECRETS_MANAGER or
// AWS_ENDPOINT_URL; credentials from the standard chain unless set.
//
// # Health and metrics
//
// Health returns, per provider, whether its last fetch succeeded, with
// counts and the last error; HealthCheck turns it into a check for the
// health registry (degraded, not unhealthy, while a provider fails);
// CheckProviders actively asks each backend. Metrics:
// keel_secrets_cache_hits_total, keel_secrets_cache_misses_total,
// keel_secrets_stale_hits_total, keel_secrets_fetches_total{outcome},
// keel_secrets_fetch_failures_total{kind},
// keel_secrets_fetch_duration_seconds, keel_secrets_provider_up,
// keel_secrets_rotations_total, keel_secrets_rotation_events_dropped_total,
// keel_secrets_disk_cache_errors_total{op}, keel_secrets_refreshes_total,
// keel_secrets_cache_entries, keel_secrets_vault_logins_total and
// keel_secrets_vault_token_renewals_total, labelled by provider where it
// applies.
package secrets
