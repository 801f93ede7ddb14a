package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error of this package wraps one of them, so callers
// branch with errors.Is; none of them ever carries a secret value.
var (
	// ErrNotFound means the secret, or the key asked for inside it, does
	// not exist at the provider.
	ErrNotFound = errors.New("secrets: not found")
	// ErrUnknownSource means Get was called with a name that is not under
	// secrets.sources.
	ErrUnknownSource = errors.New("secrets: unknown source")
	// ErrProviderNotConfigured means a source or reference names a provider
	// that has no configuration (Vault without an address) or no
	// registration (a custom provider).
	ErrProviderNotConfigured = errors.New("secrets: provider not configured")
	// ErrAuth means the provider refused the credentials or the access:
	// a failed login, a 403 that a new login did not cure, AWS
	// AccessDeniedException.
	ErrAuth = errors.New("secrets: authentication or permission denied")
	// ErrUnavailable means the provider could not be reached or failed
	// (connection refused, timeout, 5xx).
	ErrUnavailable = errors.New("secrets: provider unavailable")
	// ErrInvalidData means the provider answered with something the
	// request cannot use: a secret that is not a JSON object when a key is
	// asked for, an answer that is too large.
	ErrInvalidData = errors.New("secrets: invalid secret data")
	// ErrInvalidRef means a reference string is malformed.
	ErrInvalidRef = errors.New("secrets: invalid reference")
	// ErrConfig means the secrets section is invalid, or asks for
	// something the environment forbids (a plaintext disk cache in
	// production).
	ErrConfig = errors.New("secrets: invalid configuration")
	// ErrCache means a disk cache file could not be read, decrypted or
	// written. The manager logs and counts these and goes on without the
	// file; they reach callers only from DiskCache methods.
	ErrCache = errors.New("secrets: disk cache")
	// ErrClosed means the manager was closed.
	ErrClosed = errors.New("secrets: manager closed")
)

// Error is the error a lookup returns when it could not produce a value. It
// names the source, the provider and the reference, never the value.
type Error struct {
	// Source is the source name, or the reference for a lookup by
	// reference.
	Source string
	// Provider is the provider the source routes to.
	Provider string
	// Ref is the canonical reference, e.g. "vault:secret/data/kafka#password".
	Ref string
	// Err is the reason; it wraps one of the sentinel errors.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	parts := make([]string, 0, 2)
	if e.Source != "" && e.Source != e.Ref {
		parts = append(parts, fmt.Sprintf("source %q", e.Source))
	}
	if e.Provider != "" || e.Ref != "" {
		parts = append(parts, fmt.Sprintf("(provider %s, %s)", e.Provider, e.Ref))
	}
	return fmt.Sprintf("secrets: %s: %v", strings.Join(parts, " "), e.Err)
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

// ConfigError reports one invalid key of the secrets section.
type ConfigError struct {
	// Key is the full dotted key, e.g. "secrets.cache.ttl".
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
	// Err is the underlying reason, if any.
	Err error
}

// Error implements error.
func (e *ConfigError) Error() string { return "secrets: " + e.Msg }

// Unwrap returns ErrConfig and the underlying reason.
func (e *ConfigError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrConfig}
	}
	return []error{ErrConfig, e.Err}
}

// ResolveError reports a configuration value that is a secret reference
// and did not resolve. It names the configuration key and the reference,
// never a secret value.
type ResolveError struct {
	// Key is the full dotted configuration key, e.g. "kafka.sasl.password".
	Key string
	// Ref is the reference as written in the configuration.
	Ref string
	// Err is the reason.
	Err error
}

// Error implements error.
func (e *ResolveError) Error() string {
	return fmt.Sprintf("secrets: config key %s: reference %q did not resolve: %v", e.Key, e.Ref, e.Err)
}

// Unwrap returns the reason.
func (e *ResolveError) Unwrap() error { return e.Err }

// errorKind names the sentinel an error wraps, for the kind label of
// keel_secrets_fetch_failures_total.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrAuth):
		return "auth"
	case errors.Is(err, ErrInvalidData):
		return "invalid_data"
	case errors.Is(err, ErrInvalidRef):
		return "invalid_ref"
	case errors.Is(err, ErrProviderNotConfigured):
		return "not_configured"
	case errors.Is(err, ErrClosed):
		return "closed"
	default:
		return "unavailable"
	}
}
