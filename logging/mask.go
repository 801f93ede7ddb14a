package logging

import (
	"strings"

	"github.com/keel-go/keel/secret"
)

// MaskString redacts secrets in text that arrives already formatted (a
// config dump, an error string, a header block) using the default
// sensitive names. See Masker.MaskString.
func MaskString(s string) string { return defaultMasker.MaskString(s) }

// MaskString redacts secrets in already formatted text and returns it; it
// returns s itself, without allocating, when nothing needed masking.
//
// It finds a name followed by '=' or ':' (blanks and a closing quote
// allowed in between: password=x, "token": "x", 'pwd': 'x', \"secret\":\"x\",
// X-Api-Key: x, --password=x, DB_PASSWORD=x) and, when the name is
// sensitive (see Masker), replaces the value with [REDACTED]. A quoted
// value is replaced up to its closing quote (backslash escapes honoured, or
// to the end of the text if it never closes); an unquoted one up to the next
// blank, ',', ';', '&', ')', ']', '}' or quote, and an authorization scheme
// word (Bearer, Basic, Digest, Token, ...) takes the word after it along:
// "Authorization: Bearer xyz" -> "Authorization: [REDACTED]". A standalone
// "Bearer xyz" loses its token, and a URL keeps its user name but not its
// password: "postgres://u:pw@h/db" -> "postgres://u:[REDACTED]@h/db".
//
// An unquoted value that contains blanks ("password: two words") loses only
// its first word; quote such values.
func (m *Masker) MaskString(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	var out []byte
	last := 0
	redact := func(from, to int) {
		if out == nil {
			out = make([]byte, 0, len(s)+len(secret.Redacted))
		}
		out = append(out, s[last:from]...)
		out = append(out, secret.Redacted...)
		last = to
	}
	i := 0
	for i < len(s) {
		if !isKeyChar(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isKeyChar(s[j]) {
			j++
		}
		key := s[i:j]
		if strings.HasPrefix(s[j:], "://") {
			start := j + 3
			if vs, ve, ok := urlPassword(s, start); ok {
				redact(vs, ve)
				i = ve
				continue
			}
			i = start
			continue
		}
		if k, ok := m.separatorAfter(s, key, j); ok {
			// The value goes. A value that is itself followed by a
			// separator was a key ("pwd: \"password\": \"x\""): its value
			// goes too, and so on down the chain.
			vs, ve, next := valueSpan(s, k)
			if ve <= vs {
				i = j
				continue
			}
			for {
				redact(vs, ve)
				i = next
				k, ok := separatorAt(s, next)
				if !ok {
					break
				}
				if vs, ve, next = valueSpan(s, k); ve <= vs {
					break
				}
			}
			continue
		} else if equalFoldASCII(key, "bearer") {
			k := skipBlanks(s, j)
			if k > j && !strings.HasPrefix(s[k:], secret.Redacted) {
				if ve := tokenEnd(s, k); ve > k {
					redact(k, ve)
					i = ve
					continue
				}
			}
		}
		i = j
	}
	if out == nil {
		return s
	}
	out = append(out, s[last:]...)
	return string(out)
}

// maskMessage masks a log message or an error text: like MaskString,
// except that the leading "pkg: " labels of the Go message and error
// convention are not read as a key and its value.
//
// A label is a lower-case word of letters and digits at the start of the
// text (or right after another label), a colon and a blank, followed by
// free text (at least two words on the line, the first of letters only,
// maybe followed by '.', ',' or ';', and not an authorization scheme),
// by another label, or by a key=value pair whose key is sensitive. So
// "secrets: manager ready", "secrets: vault: login failed" and "session:
// expired for 3 users" are written as they are, while "password:
// hunter2", "password: hunter2 rejected" (the first word holds a digit),
// "token: abc", "authorization: basic dXNlcg== x" and "token=abc" are
// masked, as is everything after the labels: "secrets: token=abc" and
// "secrets: dial postgres://u:pw@h failed" lose the secret. A text that
// starts with a sensitive word, a colon and several words of letters only
// ("password: hunter rejected") reads as a label and keeps them: secrets
// belong in attributes, where their key masks them.
func (m *Masker) maskMessage(msg string) string {
	p := m.messageLabels(msg)
	if p == 0 {
		return m.MaskString(msg)
	}
	rest := msg[p:]
	masked := m.MaskString(rest)
	if len(masked) == len(rest) && masked == rest {
		return msg
	}
	return msg[:p] + masked
}

// messageLabels returns the length of the leading "pkg: " labels of a
// log message or an error text (see maskMessage), 0 when it has none.
func (m *Masker) messageLabels(msg string) int {
	p := 0
	for {
		i := p
		if i >= len(msg) || msg[i] < 'a' || msg[i] > 'z' {
			return p
		}
		for i < len(msg) && (msg[i] >= 'a' && msg[i] <= 'z' || msg[i] >= '0' && msg[i] <= '9') {
			i++
		}
		if i >= len(msg) || msg[i] != ':' {
			return p
		}
		j := skipBlanks(msg, i+1)
		if j == i+1 {
			return p // "key:value" is a pair, not a label
		}
		k := j
		for k < len(msg) && isKeyChar(msg[k]) {
			k++
		}
		switch {
		case k == j, k >= len(msg):
			return p
		case msg[k] == ':':
			p = j // maybe another label: "secrets: vault: login failed"
			continue
		case msg[k] == '=':
			if m.Sensitive(msg[j:k]) {
				return j // "secrets: token=abc": the pair is masked after the label
			}
			return p
		}
		w := strings.TrimSuffix(msg[j:k], ".")
		if w == "" || !lettersOnly(w) || isAuthScheme(w) {
			return p
		}
		if msg[k] == ',' || msg[k] == ';' {
			k++ // "secrets: unavailable, retrying"
		}
		if k >= len(msg) || (msg[k] != ' ' && msg[k] != '\t') {
			return p
		}
		if e := skipBlanks(msg, k); e >= len(msg) || msg[e] == '\n' || msg[e] == '\r' {
			return p
		}
		return j
	}
}

func lettersOnly(w string) bool {
	for i := 0; i < len(w); i++ {
		if c := w[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// separatorAfter looks for a separator after the key that ends at j
// (past a closing quote and blanks) and, when the key is sensitive,
// returns where its value starts.
func (m *Masker) separatorAfter(s, key string, j int) (int, bool) {
	k, ok := separatorAt(s, j)
	if !ok || !m.Sensitive(key) {
		return 0, false
	}
	return k, true
}

// separatorAt reports whether a separator ('=', ':', "=>", ":=") follows
// position j, after an optional closing quote and blanks, and returns
// where the value after it starts.
func separatorAt(s string, j int) (int, bool) {
	k := j
	switch {
	case k+1 < len(s) && s[k] == '\\' && s[k+1] == '"':
		k += 2
	case k < len(s) && (s[k] == '"' || s[k] == '\''):
		k++
	}
	k = skipBlanks(s, k)
	if k >= len(s) || (s[k] != '=' && s[k] != ':') {
		return 0, false
	}
	k++
	if k < len(s) && (s[k] == '>' || s[k] == '=') { // "=>", ":="
		k++
	}
	return skipBlanks(s, k), true
}

// valueSpan returns the span of the value that starts at k, and where the
// text after it (past a closing quote) resumes.
func valueSpan(s string, k int) (vs, ve, next int) {
	if k >= len(s) || strings.HasPrefix(s[k:], secret.Redacted) {
		return k, k, k // nothing, or already masked
	}
	switch {
	case k+1 < len(s) && s[k] == '\\' && s[k+1] == '"':
		// a quoted value inside an escaped JSON string: \"...\"
		if e := strings.Index(s[k+2:], `\"`); e >= 0 {
			return k + 2, k + 2 + e, k + 2 + e
		}
		return k + 2, len(s), len(s)
	case s[k] == '"' || s[k] == '\'':
		q := s[k]
		for e := k + 1; e < len(s); e++ {
			switch s[e] {
			case '\\':
				e++
			case q:
				return k + 1, e, e
			}
		}
		return k + 1, len(s), len(s)
	}
	e := tokenEnd(s, k)
	if isAuthScheme(s[k:e]) {
		n := skipBlanks(s, e)
		if n > e {
			if e2 := tokenEnd(s, n); e2 > n {
				e = e2
			}
		}
	}
	return k, e, e
}

// tokenEnd returns the end of the unquoted value that starts at k.
// A [REDACTED] marker inside it is part of it, so masking masked text
// again leaves it alone.
func tokenEnd(s string, k int) int {
	for k < len(s) {
		switch s[k] {
		case ' ', '\t', '\n', '\r', '\v', '\f', ',', ';', '&', ')', ']', '}', '"', '\'':
			return k
		case '[':
			if strings.HasPrefix(s[k:], secret.Redacted) {
				k += len(secret.Redacted)
				continue
			}
		}
		k++
	}
	return k
}

// urlPassword finds the password of a URL whose authority starts at
// start ("user:password@host").
func urlPassword(s string, start int) (int, int, bool) {
	end := start
	for end < len(s) {
		c := s[end]
		if c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' {
			break
		}
		end++
	}
	r := s[start:end]
	p := strings.IndexAny(r, "/?#")
	if p < 0 {
		p = len(r)
	}
	at := strings.LastIndexByte(r[:p], '@')
	if at < 0 {
		// a password holding '/', '?' or '#' unescaped
		at = strings.IndexByte(r, '@')
	}
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(r[:at], ':')
	if colon < 0 || colon+1 == at || strings.HasPrefix(r[colon+1:], secret.Redacted) {
		return 0, 0, false
	}
	return start + colon + 1, start + at, true
}

func skipBlanks(s string, k int) int {
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	return k
}

func isKeyChar(c byte) bool { return keyChars[c] }

var keyChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['-'], t['.'] = true, true, true
	return t
}()

// isAuthScheme reports an HTTP authorization scheme name, whose credential
// follows after a blank.
func isAuthScheme(w string) bool {
	switch len(w) {
	case 5:
		return equalFoldASCII(w, "basic") || equalFoldASCII(w, "token")
	case 6:
		return equalFoldASCII(w, "bearer") || equalFoldASCII(w, "digest") || equalFoldASCII(w, "apikey")
	case 4:
		return equalFoldASCII(w, "ntlm") || equalFoldASCII(w, "hoba")
	case 9:
		return equalFoldASCII(w, "negotiate")
	}
	return false
}

// mayHoldSecret is a cheap pre-check: text without '=', ':' or the word
// "bearer" has nothing MaskString would change.
func mayHoldSecret[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '=', ':':
			return true
		case 'b', 'B':
			if i+6 <= len(s) && equalFoldASCII(string(s[i:i+6]), "bearer") {
				return true
			}
		}
	}
	return false
}

// equalFoldASCII compares s with the lower-case ASCII word w, ignoring
// the case of s.
func equalFoldASCII(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}
