package secrets

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxRefLen is the longest reference ParseRef accepts, in bytes.
const MaxRefLen = 4096

// LiteralPrefix marks a configuration value that must be taken as it is even
// though it looks like a reference: "literal:vault:x" is the secret
// "vault:x". ResolveStruct strips it.
const LiteralPrefix = "literal:"

// Ref is a parsed secret reference: "provider:path#key".
//
//	vault:secret/data/kafka#password   Vault KV v2, mount secret, path kafka, field password
//	aws:prod/db#password               AWS Secrets Manager secret prod/db, JSON key password
//	file:/var/run/secrets/token        the file's content
//	env:DB_PASSWORD                    the environment variable
//
// The last '#' separates the key, which is optional. For Vault the key is a
// field of the secret's data; for every other provider it is a key of the
// JSON object the secret holds.
type Ref struct {
	// Provider is the scheme: "vault", "aws", "file", "env", or the name
	// of a custom provider. The aliases "openbao" and "bao" are
	// normalised to "vault".
	Provider string
	// Path locates the secret at the provider.
	Path string
	// Key optionally selects one field of the secret.
	Key string
}

// String returns the canonical form, which ParseRef reads back to the same
// Ref.
func (r Ref) String() string {
	if r.Key == "" {
		return r.Provider + ":" + r.Path
	}
	return r.Provider + ":" + r.Path + "#" + r.Key
}

// canonicalProvider maps provider aliases to the name the manager
// registers.
func canonicalProvider(p string) string {
	switch p {
	case "openbao", "open_bao", "bao":
		return ProviderVault
	}
	return p
}

// validScheme reports whether s can be a provider name: 1 to 32 lower-case
// ASCII letters, digits, '_' or '-', starting with a letter.
func validScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// splitScheme returns the scheme of s when s starts with a valid one
// followed by ':'.
func splitScheme(s string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	if !validScheme(s[:i]) {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// ParseRef parses a reference "provider:path[#key]". The provider is not
// checked against any registry here (the manager does that); the path and
// key are checked against what their provider accepts: an environment
// variable name for env, a non-empty path without control characters for
// every provider. Errors wrap ErrInvalidRef and quote the reference, which
// is never a secret value.
func ParseRef(s string) (Ref, error) {
	if len(s) > MaxRefLen {
		return Ref{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidRef, MaxRefLen)
	}
	if !utf8.ValidString(s) {
		return Ref{}, fmt.Errorf("%w: not valid UTF-8", ErrInvalidRef)
	}
	scheme, rest, ok := splitScheme(s)
	if !ok {
		// Not quoted: a string without a scheme may be a secret value
		// passed where a reference was expected.
		return Ref{}, fmt.Errorf("%w: the value does not start with a provider such as vault:, aws:, file: or env:", ErrInvalidRef)
	}
	r := Ref{Provider: canonicalProvider(scheme), Path: rest}
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		r.Path, r.Key = rest[:i], rest[i+1:]
		if r.Key == "" {
			return Ref{}, fmt.Errorf("%w: %q has an empty key after '#'; drop the '#' or name the key", ErrInvalidRef, s)
		}
	}
	for _, part := range []string{r.Path, r.Key} {
		for _, c := range part {
			if c < 0x20 || c == 0x7f {
				return Ref{}, fmt.Errorf("%w: %q holds a control character", ErrInvalidRef, s)
			}
		}
	}
	switch r.Provider {
	case ProviderVault:
		r.Path = strings.Trim(r.Path, "/")
	case ProviderEnv:
		if !validEnvName(r.Path) {
			return Ref{}, fmt.Errorf("%w: %q: %q is not an environment variable name (letters, digits and '_', not starting with a digit)", ErrInvalidRef, s, r.Path)
		}
	}
	if r.Path == "" {
		return Ref{}, fmt.Errorf("%w: %q has an empty path", ErrInvalidRef, s)
	}
	if strings.TrimSpace(r.Path) != r.Path {
		return Ref{}, fmt.Errorf("%w: %q has leading or trailing space in its path", ErrInvalidRef, s)
	}
	return r, nil
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
