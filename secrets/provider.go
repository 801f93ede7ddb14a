package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Names of the built-in providers, as written in references and in
// secrets.sources.<name>.provider.
const (
	ProviderFile  = "file"
	ProviderEnv   = "env"
	ProviderVault = "vault"
	ProviderAWS   = "aws"
)

// Provider is a secrets backend. The manager caches, refreshes, counts and
// logs around it, so an implementation only fetches. It must be safe for
// concurrent use and must never put a secret value in an error.
type Provider interface {
	// Name is the scheme references use ("vault" in
	// "vault:secret/data/x#k") and the provider label of metrics.
	Name() string
	// Fetch returns the secret at path, or the field key of it when key is
	// not empty. A missing secret or key wraps ErrNotFound; refused
	// credentials wrap ErrAuth; an unreachable backend wraps
	// ErrUnavailable.
	Fetch(ctx context.Context, path, key string) (Fetched, error)
	// Health actively checks that the backend answers. It may do I/O;
	// the manager calls it only from CheckProviders.
	Health(ctx context.Context) error
}

// Fetched is what a provider returns.
type Fetched struct {
	// Data is the secret.
	Data []byte
	// Version identifies this version of the secret when the backend has
	// versions (Vault KV v2 version number, AWS VersionId, a file's
	// modification time). A change of Version between two fetches raises
	// a RotationEvent; empty means the backend has none.
	Version string
}

// Format prints the version and the length only, so that a Fetched that
// reaches a log line or an error never shows the secret.
func (f Fetched) Format(s fmt.State, _ rune) {
	fmt.Fprintf(s, "Fetched{Data:[REDACTED %d bytes] Version:%q}", len(f.Data), f.Version)
}

// closer is implemented by providers that hold resources (the Vault token
// renewal).
type closer interface {
	Close(ctx context.Context) error
}

// ExtractJSONKey returns the value of key in data, a JSON object: a string
// value as its bytes, any other value as compact JSON. Errors never quote
// data: a value that is not a JSON object wraps ErrInvalidData, a missing key
// ErrNotFound.
func ExtractJSONKey(data []byte, key string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		// The decoder's message can quote bytes of the input: never pass
		// it on.
		return nil, fmt.Errorf("%w: the secret is not a JSON object, so key %q cannot be taken from it", ErrInvalidData, key)
	}
	raw, ok := obj[key]
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not in the secret", ErrNotFound, key)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s), nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, fmt.Errorf("%w: key %q holds invalid JSON", ErrInvalidData, key)
	}
	return out.Bytes(), nil
}
