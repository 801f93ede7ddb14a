package config

import (
	"strings"
	"unicode"
)

// IsSensitiveKey reports whether a configuration key, or any segment of a
// dotted key path, names a value that must not be shown: a password,
// secret, token, key, credential, auth setting, private material,
// certificate, DSN or connection string. Matching ignores case and works on
// words, split at '.', '_', '-', other punctuation and camelCase
// boundaries, so "api_key", "privateKey", "DB_PASSWORD" and "auth.mechanism"
// are sensitive while "keyboard", "monkey" and "author" are not.
//
// It also accepts environment variable names (MYAPP_DATABASE__PASSWORD).
// The logging and admin packages use it so that one list decides what is
// redacted everywhere.
func IsSensitiveKey(key string) bool {
	for seg := range strings.SplitSeq(key, ".") {
		if sensitiveSegment(seg) {
			return true
		}
	}
	return false
}

// sensitiveSegment applies the word rules to one key segment.
func sensitiveSegment(seg string) bool {
	if seg == "" {
		return false
	}
	var joined strings.Builder
	ws := words(seg)
	for i, w := range ws {
		// "key" before a word that names where a key is read from
		// ("key_header", "key_field") names a place, not key material.
		if w == "key" && i+1 < len(ws) && keySources[ws[i+1]] {
			joined.WriteString(w)
			continue
		}
		if sensitiveWord(w) {
			return true
		}
		// "keys" alone is a plural of anything ("intern_keys", "sort_keys");
		// it is sensitive after a word that makes it key material
		// ("api_keys", "ssh_keys", "signing_keys") or on its own.
		if w == "keys" && (len(ws) == 1 || (i > 0 && keyQualifiers[ws[i-1]])) {
			return true
		}
		joined.WriteString(w)
	}
	j := joined.String()
	return strings.Contains(j, "connectionstring") || strings.Contains(j, "connstr")
}

// Substrings that mark a word as sensitive wherever they appear in it.
var sensitiveSubstrings = []string{"password", "passwd", "passphrase", "secret", "credential", "private"}

// keyQualifiers make a following "keys" name key material.
var keyQualifiers = map[string]bool{
	"api": true, "access": true, "secret": true, "private": true,
	"signing": true, "encryption": true, "master": true, "ssh": true, "hmac": true,
	"shared": true, "client": true, "tls": true, "crypto": true, "license": true,
}

// keySources follow "key" in the name of where a record key is read from.
var keySources = map[string]bool{"header": true, "field": true, "column": true}

// Words that are sensitive only as a whole word.
var sensitiveWords = map[string]bool{
	"key": true, "pwd": true, "dsn": true, "bearer": true, "jwt": true,
	"cert": true, "certs": true, "token": true, "tokens": true,
	// compounds written as one word
	"apikey": true, "apikeys": true, "accesskey": true, "secretkey": true, "privatekey": true,
	"signingkey": true, "encryptionkey": true, "masterkey": true, "sshkey": true,
	"hmackey": true, "sharedkey": true, "clientkey": true, "tlskey": true,
	"connectionstring": true, "connstr": true,
}

func sensitiveWord(w string) bool {
	if sensitiveWords[w] {
		return true
	}
	for _, s := range sensitiveSubstrings {
		if strings.Contains(w, s) {
			return true
		}
	}
	switch {
	case strings.HasSuffix(w, "token"), strings.HasSuffix(w, "tokens"): // accesstoken, authtoken
		return true
	case strings.HasSuffix(w, "dsn"): // sentrydsn
		return true
	case strings.HasPrefix(w, "certificate"), strings.HasSuffix(w, "cert"), strings.HasSuffix(w, "certs"): // cacert
		return w != "concert"
	case w == "auth", strings.HasSuffix(w, "auth"): // oauth, basicauth
		return true
	case strings.HasPrefix(w, "auth"):
		// authorization, authentication, authn, authz; not author, authority.
		return !strings.HasPrefix(w, "author") || strings.HasPrefix(w, "authoriz")
	}
	return false
}

// words splits s into lower-case words at non-alphanumeric characters and
// camelCase boundaries ("APIKey" -> "api", "key"; "db_password" -> "db",
// "password").
func words(s string) []string {
	var out []string
	var cur []rune
	rs := []rune(s)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if unicode.IsUpper(r) && len(cur) > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return out
}
