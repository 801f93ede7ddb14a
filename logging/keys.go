package logging

import (
	"reflect"
	"strings"
	"sync"

	"github.com/keel-go/keel/internal/sensitive"
)

// DefaultSensitiveKeys returns the built-in words and word sequences that
// mark an attribute, map key or struct field as sensitive. See Masker for
// how they match.
func DefaultSensitiveKeys() []string { return sensitive.Names() }

// Masker decides which keys are sensitive and redacts secrets in
// formatted text. It is immutable after NewMasker and safe for concurrent
// use.
//
// Keys are classified by the rules the configuration dump uses
// (config.IsSensitiveKey), so a value the dump redacts is not logged in
// clear, bar the lone "key" described below. Matching works on the words of a key, not on substrings: a key is
// cut at separators ('_', '-', '.', space and other punctuation), at
// camelCase humps and between letters and digits, then compared without
// regard to case: "X-Api-Key" -> x|api|key, "userPassword" ->
// user|password, "DB_PASSWORD2" -> db|password|2. A key is sensitive when
// one word contains password, passwd, passphrase, secret, credential or
// private; ends in token, dsn, cert or auth; starts with certificate,
// session or auth (not author); is one of pass, pwd, pin, ssn, cvv,
// cookie, jwt, otp, csrf, bearer, creds, apikey, ...; or when consecutive
// words spell api|key, access|key, client|key, tls|key, credit|card,
// connection|string, ...
//
// So "db_password", "X-Api-Key", "userPassword", "auth_token",
// "Authorization", "auth_method", "session_id", "sentry_dsn", "tls_cert"
// and "client_key" are masked, while "mapping", "author", "monkey",
// "keyboard", "bypass", "passenger" and "tokenizer_name" are not: a word
// must match a rule, and "tokenizer" is a different word from "token". A
// key whose last word is a measure or a switch ("session_timeout_ms",
// "token_ttl", "auth_retries") is not masked either.
//
// A lone "key" or "keys" ("key", "record_key", "cache_key", "key_file") is
// not masked: in a log line it is usually a record's, a cache's or a
// configuration key's name. The configuration dump, where it names key
// material, redacts it.
type Masker struct {
	match  *sensitive.Matcher
	fields sync.Map // reflect.Type -> []structField
}

// NewMasker returns a masker with the default names plus extra ones.
// Extra names are split like keys: "tenant_id" masks keys holding the
// words tenant|id in a row ("tenantId", "X-Tenant-ID"); a single word
// masks any key that has it as a word.
func NewMasker(extra ...string) *Masker {
	return &Masker{match: sensitive.New(extra...)}
}

// defaultMasker backs the package-level functions. It is never modified.
var defaultMasker = &Masker{match: sensitive.Default}

// IsSensitiveKey reports whether key is sensitive under the default names.
func IsSensitiveKey(key string) bool { return defaultMasker.Sensitive(key) }

// Sensitive reports whether values under key must be redacted. It does
// not allocate. Words are compared by 64-bit hash: a collision can only
// mask a harmless key, never unmask a sensitive one.
func (m *Masker) Sensitive(key string) bool {
	return m.match.Classify(key) == sensitive.Secret
}

// structField describes one exported field of a struct as the walker
// prints it.
type structField struct {
	index     []int
	name      string
	omitEmpty bool
	omitZero  bool
	sensitive bool
}

// structFields returns the printable fields of struct type t, following
// json tags (name, "-", omitempty, omitzero) and flattening untagged
// embedded structs. The result is cached per type.
func (m *Masker) structFields(t reflect.Type) []structField {
	if f, ok := m.fields.Load(t); ok {
		return f.([]structField)
	}
	var out []structField
	seen := map[string]int{}
	var walk func(t reflect.Type, index []int, depth int)
	walk = func(t reflect.Type, index []int, depth int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct && depth < maxDepth {
					walk(ft, append(append([]int(nil), index...), i), depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			sf := structField{
				index:     append(append([]int(nil), index...), i),
				name:      name,
				omitEmpty: hasTagOption(opts, "omitempty"),
				omitZero:  hasTagOption(opts, "omitzero"),
				sensitive: m.Sensitive(name) || m.Sensitive(f.Name),
			}
			if j, dup := seen[name]; dup {
				// the shallower field wins, as in encoding/json
				if len(sf.index) < len(out[j].index) {
					out[j] = sf
				}
				continue
			}
			seen[name] = len(out)
			out = append(out, sf)
		}
	}
	walk(t, nil, 0)
	m.fields.Store(t, out)
	return out
}

func hasTagOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}
