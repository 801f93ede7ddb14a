// Package sensitive decides which key names hold secrets. It is the one
// list behind both the configuration dump (config.IsSensitiveKey) and the
// log masker (logging.Masker), so a key that one redacts the other does
// not print in clear.
//
// A key is cut into words at separators ('_', '-', '.', spaces and other
// punctuation), at camelCase humps and where letters and digits meet:
// "X-Api-Key" -> x|api|key, "userPassword" -> user|password,
// "DB_PASSWORD2" -> db|password|2. Words are compared without regard to
// case. A key is a Secret when one of its words
//
//   - contains password, passwd, passphrase, credential, private, secret
//     or connectionstring ("dbpassword", "clientsecret"; not "secretary");
//   - ends in token, tokens, dsn, cert, certs or auth ("accesstoken",
//     "sentrydsn", "cacert", "oauth"; not "concert"), or starts with
//     certificate, session or auth other than author ("authorization",
//     "authn"; not "author", "authority");
//   - is one of pass, pwd, passcode, creds, jwt, otp, csrf, xsrf, cookie,
//     cookies, ssn, cvv, cvc, pin, bearer and the one-word compounds apikey,
//     accesskey, privkey, clientkey, tlskey, connstr, creditcard, ... ;
//
// or when consecutive words spell api|key, access|key, client|key,
// tls|key, ssh|key, signing|key, encryption|key, master|key, shared|key,
// account|key (and the same with keys), credit|card, card|number,
// security|code, connection|string(s) or conn|str.
//
// So "mapping", "author", "monkey", "keyboard", "bypass", "passenger" and
// "tokenizer" are not sensitive: a rule applies to a word, not to any
// substring of the key.
//
// A key whose last word names a measure or a switch rather than a value
// (timeout, interval, ttl, ms, seconds, period, delay, duration, count,
// retries, attempts, enabled) is never sensitive:
// "session_timeout", "token_ttl" and "secret_refresh_interval" hold a
// number about a secret, not the secret, and stay visible.
//
// A lone "key" or "keys" word is its own class, Key: in a configuration it
// names key material (tls.key, key_file) and is redacted, while in a log
// line it is usually a record's, a cache's or a configuration key's name
// and stays visible. "key" followed in the same dotted segment by header,
// field or column names where a key is read from (key_header,
// partition_key_column) and is not sensitive at all; "keys" counts only
// when it is the whole dotted segment ("keys", "tls.keys"), not as a plural
// ("sort_keys", "intern_keys").
package sensitive

// Class is how sensitive a key name is.
type Class uint8

const (
	// None is a key that names no secret.
	None Class = iota
	// Key is a key whose only sensitive word is a lone "key" or "keys":
	// key material in a configuration, a record's or a map's key in a
	// log line.
	Key
	// Secret is a key naming a password, token, secret, credential,
	// certificate, DSN or another secret.
	Secret
)

// Built-in words that make a key a Secret when a word equals them. The
// rules in secretWord cover password, secret, token, dsn, cert, auth,
// session and their compounds.
var secretWords = []string{
	"pass", "pwd", "passcode", "creds", "jwt", "otp", "csrf", "xsrf",
	"cookie", "cookies", "ssn", "cvv", "cvc", "pin", "bearer",
	"apikey", "apikeys", "accesskey", "privkey", "signingkey", "encryptionkey",
	"masterkey", "sshkey", "hmackey", "sharedkey", "clientkey", "tlskey", "accountkey",
	"connstr", "connectionstring", "creditcard", "cardnumber",
}

// ruleWords name the rules of secretWord, for Names.
var ruleWords = []string{
	"password", "passwd", "passphrase", "secret", "credential", "private",
	"token", "dsn", "cert", "certificate", "auth", "authorization", "authentication", "session",
}

// keyQualifiers make a following "key" or "keys" key material.
var keyQualifiers = []string{
	"api", "access", "priv", "signing", "encryption", "master", "ssh", "hmac",
	"shared", "client", "tls", "crypto", "license", "account",
}

// Other sequences of words that make a key a Secret.
var secretSequences = []string{
	"credit_card", "card_number", "security_code", "connection_string", "connection_strings", "conn_str",
}

// keySources follow "key" in the name of where a key is read from.
var keySources = []string{"header", "field", "column"}

// measureWords end keys that hold a measure or a switch, never a secret.
var measureWords = []string{
	"timeout", "timeouts", "interval", "ttl", "ms", "sec", "secs", "seconds", "period", "delay",
	"duration", "count", "retries", "attempts", "enabled",
}

// Names returns the built-in words and word sequences (joined by '_')
// that make a key a Secret, for documentation; see the package comment
// for how they match.
func Names() []string {
	out := make([]string, 0, len(ruleWords)+len(secretWords)+2*len(keyQualifiers)+len(secretSequences))
	out = append(out, ruleWords...)
	out = append(out, secretWords...)
	for _, q := range keyQualifiers {
		out = append(out, q+"_key", q+"_keys")
	}
	return append(out, secretSequences...)
}

// Matcher classifies key names by the built-in rules plus extra names. It
// is immutable after New and safe for concurrent use.
type Matcher struct {
	// tab is an open-addressing set of word hashes and combined hashes
	// of word sequences, each with its flags.
	tab    []entry
	maxSeq int
}

type entry struct {
	h     uint64 // 0 = empty slot
	flags uint8
}

const (
	fWord      uint8 = 1 << iota // a word equal to it is a Secret
	fSeq                         // consecutive words combining to it are a Secret
	fKey                         // the word "key"
	fKeys                        // the word "keys"
	fKeySource                   // header, field, column
	fMeasure                     // a last word that makes the key plain
)

// MaxSeqWords bounds the words of a sequence; a longer extra name uses
// its first MaxSeqWords words.
const MaxSeqWords = 8

// Default is the matcher with the built-in rules only.
var Default = New()

// Classify classifies key with the built-in rules.
func Classify(key string) Class { return Default.Classify(key) }

// New returns a matcher with the built-in rules plus extra names. An
// extra name is cut into words like a key: a single word makes any key
// holding that word a Secret ("msisdn" masks "callerMSISDN"), several
// words make keys holding them in a row a Secret ("tenant_id" masks
// "tenantId" and "X-Tenant-ID", not "tenant").
func New(extra ...string) *Matcher {
	type item struct {
		h     uint64
		flags uint8
	}
	var items []item
	maxSeq := 2
	add := func(name string, single uint8) {
		var hs []uint64
		forEachWord(name, func(_, _ int, h uint64, _ bool) bool {
			hs = append(hs, h)
			return len(hs) == MaxSeqWords
		})
		switch len(hs) {
		case 0:
		case 1:
			items = append(items, item{hs[0], single})
		default:
			h := hs[0]
			for _, x := range hs[1:] {
				h = combineHash(h, x)
			}
			items = append(items, item{h, fSeq})
			maxSeq = max(maxSeq, len(hs))
		}
	}
	for _, w := range secretWords {
		add(w, fWord)
	}
	for _, q := range keyQualifiers {
		add(q+"_key", 0)
		add(q+"_keys", 0)
	}
	for _, s := range secretSequences {
		add(s, 0)
	}
	add("key", fKey)
	add("keys", fKeys)
	for _, s := range keySources {
		add(s, fKeySource)
	}
	for _, s := range measureWords {
		add(s, fMeasure)
	}
	for _, e := range extra {
		add(e, fWord)
	}
	size := 64
	for size < 4*len(items) {
		size *= 2
	}
	m := &Matcher{tab: make([]entry, size), maxSeq: maxSeq}
	for _, it := range items {
		m.insert(it.h, it.flags)
	}
	return m
}

func (m *Matcher) insert(h uint64, flags uint8) {
	mask := uint64(len(m.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch m.tab[i].h {
		case 0:
			m.tab[i] = entry{h: h, flags: flags}
			return
		case h:
			m.tab[i].flags |= flags
			return
		}
	}
}

func (m *Matcher) lookup(h uint64) uint8 {
	mask := uint64(len(m.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch m.tab[i].h {
		case 0:
			return 0
		case h:
			return m.tab[i].flags
		}
	}
}

// Classify reports how sensitive key is. It does not allocate. Words are
// compared by 64-bit hash: a collision can only make a harmless key
// sensitive, never hide a sensitive one.
func (m *Matcher) Classify(key string) Class {
	var (
		ring    [MaxSeqWords]uint64
		n       int  // words seen
		inDot   int  // words seen in the current dotted segment
		keyOpen bool // a lone "key" waits for the next word of its segment
		keysSet bool // a "keys" opened its segment and waits for its end
		class   = None
	)
	// settle decides a pending "key" or "keys" at the end of a dotted
	// segment or, for "key", at the next word (next is its flags).
	settle := func(segmentEnd bool, next uint8) {
		if keyOpen && (segmentEnd || next&fKeySource == 0) {
			class = Key
		}
		keyOpen = false
		if keysSet && segmentEnd {
			class = Key
		}
		keysSet = false
	}
	hit := forEachWord(key, func(start, end int, h uint64, dot bool) bool {
		flags := m.lookup(h)
		if dot {
			settle(true, 0)
			inDot = 0
		} else if keyOpen || keysSet {
			settle(false, flags)
		}
		inDot++
		if flags&fWord != 0 || secretWord(key[start:end]) {
			return true
		}
		ring[n%MaxSeqWords] = h
		n++
		for k := 2; k <= m.maxSeq && k <= n; k++ {
			sh := ring[(n-k)%MaxSeqWords]
			for j := n - k + 1; j < n; j++ {
				sh = combineHash(sh, ring[j%MaxSeqWords])
			}
			if m.lookup(sh)&fSeq != 0 {
				return true
			}
		}
		switch {
		case flags&fKey != 0:
			keyOpen = true
		case flags&fKeys != 0 && inDot == 1:
			keysSet = true
		}
		return false
	})
	// The measure-word exemption is checked only for a key that matched,
	// so the common, plain key pays for one scan.
	if hit {
		if m.endsInMeasure(key) {
			return None
		}
		return Secret
	}
	settle(true, 0)
	if class != None && m.endsInMeasure(key) {
		return None
	}
	return class
}

// endsInMeasure reports whether the last word of key is a measure word.
func (m *Matcher) endsInMeasure(key string) bool {
	var last uint64
	forEachWord(key, func(_, _ int, h uint64, _ bool) bool { last = h; return false })
	return last != 0 && m.lookup(last)&fMeasure != 0
}

// secretWord applies the built-in rules to one word (any case).
func secretWord(w string) bool {
	n := len(w)
	if n < 3 {
		return false
	}
	if n >= 6 {
		for i := 0; i+6 <= n; i++ {
			switch w[i] | 0x20 {
			case 'p':
				if hasPrefixFold(w[i:], "passw") || hasPrefixFold(w[i:], "passphrase") || hasPrefixFold(w[i:], "private") {
					return true // password, passwd
				}
			case 's':
				if hasPrefixFold(w[i:], "secret") && !hasPrefixFold(w[i:], "secretar") {
					return true // not secretary, secretariat
				}
			case 'c':
				if hasPrefixFold(w[i:], "credential") || hasPrefixFold(w[i:], "connectionstring") {
					return true
				}
			}
		}
	}
	switch {
	case hasSuffixFold(w, "token"), hasSuffixFold(w, "tokens"), hasSuffixFold(w, "dsn"), hasSuffixFold(w, "auth"):
		return true
	case hasSuffixFold(w, "cert"), hasSuffixFold(w, "certs"):
		return !hasSuffixFold(w, "concert") && !hasSuffixFold(w, "concerts")
	case hasPrefixFold(w, "certificate"), hasPrefixFold(w, "session"):
		return true
	case hasPrefixFold(w, "auth"):
		// authorization, authentication, authn, authz; not author, authority
		return !hasPrefixFold(w, "author") || hasPrefixFold(w, "authoriz")
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII word p,
// ignoring the case of s.
func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if s[i]|0x20 != p[i] {
			return false
		}
	}
	return true
}

// hasSuffixFold reports whether s ends with the lower-case ASCII word p,
// ignoring the case of s.
func hasSuffixFold(s, p string) bool {
	return len(s) >= len(p) && hasPrefixFold(s[len(s)-len(p):], p)
}

// character classes used to cut keys into words
const (
	clsSep = iota
	clsLower
	clsUpper
	clsDigit
	clsOther // non-ASCII bytes: part of a word, no case
)

var classTable = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z':
			t[c] = clsLower
		case c >= 'A' && c <= 'Z':
			t[c] = clsUpper
		case c >= '0' && c <= '9':
			t[c] = clsDigit
		case c >= 0x80:
			t[c] = clsOther
		default:
			t[c] = clsSep
		}
	}
	return t
}()

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// CountWords returns the number of words key is cut into.
func CountWords(key string) int {
	n := 0
	forEachWord(key, func(_, _ int, _ uint64, _ bool) bool { n++; return false })
	return n
}

// forEachWord cuts key into words and calls fn with each word's bounds in
// key, the 64-bit FNV-1a hash of its lower-case form, and whether a '.'
// separates it from the previous word, in order, until fn returns true.
// Words end at separators (anything but letters, digits and non-ASCII
// bytes), before an upper-case letter that follows a lower-case one
// ("userPassword"), before the last capital of a run followed by a
// lower-case letter ("APIKey" -> api|key), and where letters and digits
// meet ("password2"). It reports whether fn stopped it.
func forEachWord(key string, fn func(start, end int, h uint64, dot bool) bool) bool {
	h := uint64(fnvOffset)
	in := false
	dot := false
	start := 0
	prev := uint8(clsSep)
	for i := 0; i < len(key); i++ {
		c := key[i]
		cls := classTable[c]
		if cls == clsSep {
			if in {
				if fn(start, i, h, dot) {
					return true
				}
				dot = false
			}
			if c == '.' {
				dot = true
			}
			in = false
			prev = clsSep
			continue
		}
		boundary := false
		switch {
		case !in:
		case cls == clsDigit || prev == clsDigit:
			boundary = cls != prev
		case cls == clsUpper && prev == clsLower:
			boundary = true
		case cls == clsUpper && prev == clsUpper && i+1 < len(key) && classTable[key[i+1]] == clsLower:
			boundary = true
		}
		if boundary {
			if fn(start, i, h, dot) {
				return true
			}
			dot = false
		}
		if !in || boundary {
			h = fnvOffset
			in = true
			start = i
		}
		if cls == clsUpper {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * fnvPrime
		prev = cls
	}
	return in && fn(start, len(key), h, dot)
}

// combineHash chains word hashes into a sequence hash.
func combineHash(a, b uint64) uint64 {
	h := (a ^ 0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9
	h ^= b
	h *= 0x94D049BB133111EB
	return h ^ h>>31
}
