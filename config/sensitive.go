package config

import "github.com/keel-go/keel/internal/sensitive"

// IsSensitiveKey reports whether a configuration key, or any segment of a
// dotted key path, names a value that must not be shown: a password,
// secret, token, key, credential, auth or session setting, private
// material, certificate, DSN or connection string. Matching ignores case
// and works on words, split at '.', '_', '-', other punctuation, camelCase
// humps and between letters and digits, so "api_key", "privateKey",
// "DB_PASSWORD" and "auth.mechanism" are sensitive while "keyboard",
// "monkey" and "author" are not. A key that names where a key is read from
// ("key_header", "key_field", "partition_key_column") is not key material.
//
// It also accepts environment variable names (MYAPP_DATABASE__PASSWORD).
// The log masker (logging.Masker) classifies with the same rules, with one
// difference: a lone "key" or "keys" word (tls.key, key_file) is redacted
// here, where it names key material, and kept in log lines, where it is a
// record's or a map's key.
func IsSensitiveKey(key string) bool {
	return sensitive.Classify(key) != sensitive.None
}
