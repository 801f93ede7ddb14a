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
// sensitive (see Masker), replaces the value with [REDACTED]:
//
//   - a quoted value up to its closing quote (backslash escapes honoured,
//     or to the end of the text if it never closes);
//   - a value that opens a bracket ("tokens": ["a", "b"], {"v": "x"}, Go's
//     map[tokens:[a b]] or {User:u Pass:p}) up to the bracket that closes
//     it, quoted brackets aside, or to the end of the text if none does;
//   - a YAML "key: value" that starts its line (after indentation or a
//     "- " list marker) to the end of the line, and further lines indented
//     deeper than the key: "password: correct horse staple" loses all
//     three words;
//   - a YAML key with nothing after it on its line, or a block scalar
//     indicator ('|', '>', "|-", ...), together with the lines indented
//     deeper than the key (and "- " items at the key's own indentation),
//     so a PEM block or a list of tokens goes whole: "tokens:\n  - a\n  - b"
//     -> "tokens: [REDACTED]";
//   - any other value up to the next blank, ',', ';', '&', ')', ']', '}'
//     or quote outside brackets, and an authorization scheme word (Bearer,
//     Basic, Digest, Token, ...) takes the word after it along:
//     "Authorization=Bearer xyz" -> "Authorization=[REDACTED]".
//
// A standalone "Bearer xyz" loses its token. A URL loses its password but
// keeps its user name, "postgres://u:pw@h/db" -> "postgres://u:[REDACTED]@h/db",
// and loses user info that has no password, which is often a token:
// "https://ghp_x@github.com" -> "https://[REDACTED]@github.com".
//
// Elsewhere in a line an unquoted value that contains blanks ("user=bob
// password=two words") loses only its first word; quote such values.
func (m *Masker) MaskString(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	return m.mask(s)
}

// mask is MaskString past its cheap pre-check.
func (m *Masker) mask(s string) string {
	var out []byte
	last := 0
	redact := func(from, to int, pad bool) {
		if out == nil {
			out = make([]byte, 0, len(s)+len(secret.Redacted))
		}
		out = append(out, s[last:from]...)
		if pad {
			out = append(out, ' ')
		}
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
			if vs, ve, ok := urlUserinfo(s, start); ok {
				redact(vs, ve, false)
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
			vs, ve, next, pad := valueSpan(s, i, j, k)
			if ve <= vs {
				i = j
				continue
			}
			for {
				redact(vs, ve, pad)
				i = next
				k, ok := separatorAt(s, next)
				if !ok {
					break
				}
				if vs, ve, next, pad = valueSpan(s, -1, -1, k); ve <= vs {
					break
				}
			}
			continue
		} else if equalFoldASCII(key, "bearer") {
			k := skipBlanks(s, j)
			if k > j && !strings.HasPrefix(s[k:], secret.Redacted) {
				if ve := tokenEnd(s, k); ve > k {
					redact(k, ve, false)
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

// valueSpan returns the span of the value that starts at k, where the
// text after it (past a closing quote) resumes, and whether the
// replacement needs a blank before it (a value that started on the next
// line). ks and ke bound the key, or are -1 for a key that was itself a
// value.
func valueSpan(s string, ks, ke, k int) (vs, ve, next int, pad bool) {
	if k >= len(s) || strings.HasPrefix(s[k:], secret.Redacted) {
		return k, k, k, false // nothing, or already masked
	}
	yaml := ks >= 0 && yamlKey(s, ks, ke)
	switch {
	case s[k] == '\n' || s[k] == '\r':
		// Nothing on the key's line: a YAML key whose value is the
		// block below it.
		if !yaml {
			return k, k, k, false
		}
		e := blockEnd(s, ks, k, true)
		return k, e, e, s[k-1] != ' ' && s[k-1] != '\t'
	case k+1 < len(s) && s[k] == '\\' && s[k+1] == '"':
		// a quoted value inside an escaped JSON string: \"...\"
		if e := strings.Index(s[k+2:], `\"`); e >= 0 {
			return k + 2, k + 2 + e, k + 2 + e, false
		}
		return k + 2, len(s), len(s), false
	case s[k] == '"' || s[k] == '\'':
		q := s[k]
		for e := k + 1; e < len(s); e++ {
			switch s[e] {
			case '\\':
				e++
			case q:
				return k + 1, e, e, false
			}
		}
		return k + 1, len(s), len(s), false
	case yaml && (s[k] == '|' || s[k] == '>'):
		if eol := blockIndicatorEnd(s, k); eol >= 0 {
			e := blockEnd(s, ks, eol, false)
			return k, e, e, false
		}
	}
	e := tokenEnd(s, k)
	if yaml {
		// "key: value" starting a line: the rest of the line, and the
		// deeper lines that continue it.
		e = blockEnd(s, ks, lineEnd(s, e), false)
		return k, e, e, false
	}
	if isAuthScheme(s[k:e]) {
		n := skipBlanks(s, e)
		if n > e {
			if e2 := tokenEnd(s, n); e2 > n {
				e = e2
			}
		}
	}
	return k, e, e, false
}

// yamlKey reports whether the key s[ks:ke] is a YAML mapping key: it
// starts its line (after blanks and "- " list markers), is not quoted and
// is followed by ':' and a blank or the end of the line.
func yamlKey(s string, ks, ke int) bool {
	if ke >= len(s) || s[ke] != ':' {
		return false
	}
	if ke+1 < len(s) {
		if c := s[ke+1]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	for p := ks - 1; p >= 0; p-- {
		switch s[p] {
		case '\n', '\r':
			return true
		case ' ', '\t':
		case '-':
			if s[p+1] != ' ' && s[p+1] != '\t' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// blockIndicatorEnd returns the end of the line that holds a YAML block
// scalar indicator at k ("|", ">", "|-", ">+2", maybe followed by blanks
// and a comment), or -1 when the line holds anything else.
func blockIndicatorEnd(s string, k int) int {
	p := k + 1
	for p < len(s) && (s[p] == '-' || s[p] == '+' || s[p] >= '1' && s[p] <= '9') {
		p++
	}
	if b := skipBlanks(s, p); b > p {
		if p = b; p < len(s) && s[p] == '#' {
			return lineEnd(s, p) // a comment needs a blank before it
		}
	}
	if p < len(s) && s[p] != '\n' && s[p] != '\r' {
		return -1
	}
	return p
}

// lineEnd returns the position of the end of the line that holds p.
func lineEnd(s string, p int) int {
	for p < len(s) && s[p] != '\n' && s[p] != '\r' {
		p++
	}
	return p
}

// blockEnd returns the end of the YAML block under the key that starts
// at ks, whose line (or value) ends at eol: the lines after it indented
// deeper than the key, blank lines among them, and with seq also "- "
// items at the key's own indentation. It returns eol when no line
// follows.
func blockEnd(s string, ks, eol int, seq bool) int {
	col := 0
	for p := ks - 1; p >= 0 && s[p] != '\n' && s[p] != '\r'; p-- {
		col++
	}
	end := eol
	p := eol
	for p < len(s) {
		// past the line break ("\n", "\r\n" or "\r")
		if s[p] == '\r' && p+1 < len(s) && s[p+1] == '\n' {
			p += 2
		} else {
			p++
		}
		q := p
		for q < len(s) && (s[q] == ' ' || s[q] == '\t') {
			q++
		}
		if q >= len(s) || s[q] == '\n' || s[q] == '\r' {
			p = q // a blank line: part of the block if more follows
			continue
		}
		ind := q - p
		if ind <= col && !(seq && ind == col && s[q] == '-' && (q+1 == len(s) || s[q+1] == ' ' || s[q+1] == '\t' || s[q+1] == '\n' || s[q+1] == '\r')) {
			break
		}
		p = lineEnd(s, q)
		end = p
	}
	return end
}

// tokenEnd returns the end of the unquoted value that starts at k: the
// next blank, ',', ';', '&', ')', ']', '}' or quote outside brackets. A
// '[' or '{' opens a bracket that runs to its matching close (to the end
// of the text if none), across blanks, lines and double-quoted strings.
// A [REDACTED] marker inside it is part of it, so masking masked text
// again leaves it alone.
func tokenEnd(s string, k int) int {
	depth := 0
	for k < len(s) {
		c := s[k]
		if depth > 0 {
			switch c {
			case '\\':
				k++
			case '"':
				k = quoteEnd(s, k)
			case '[', '{':
				if c == '[' && strings.HasPrefix(s[k:], secret.Redacted) {
					k += len(secret.Redacted)
					continue
				}
				depth++
			case ']', '}':
				depth--
			}
			k++
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r', '\v', '\f', ',', ';', '&', ')', ']', '}', '"', '\'':
			return k
		case '[', '{':
			if c == '[' && strings.HasPrefix(s[k:], secret.Redacted) {
				k += len(secret.Redacted)
				continue
			}
			depth = 1
		}
		k++
	}
	return len(s)
}

// quoteEnd returns the position of the double quote that closes the
// string opening at k (backslash escapes honoured), or the end of s.
func quoteEnd(s string, k int) int {
	for k++; k < len(s); k++ {
		switch s[k] {
		case '\\':
			k++
		case '"':
			return k
		}
	}
	return len(s)
}

// urlUserinfo finds the credential in the user info of a URL whose
// authority starts at start: the password of "user:password@host", or
// the whole of "token@host".
func urlUserinfo(s string, start int) (int, int, bool) {
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
	inAuthority := at >= 0
	if at < 0 {
		// a password holding '/', '?' or '#' unescaped
		at = strings.IndexByte(r, '@')
	}
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(r[:at], ':')
	if colon < 0 {
		// user info without a password: a token used as a user name
		if !inAuthority || at == 0 || strings.HasPrefix(r, secret.Redacted) {
			return 0, 0, false
		}
		return start, start + at, true
	}
	if colon+1 == at || strings.HasPrefix(r[colon+1:], secret.Redacted) {
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
