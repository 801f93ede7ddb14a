package logging

import (
	"reflect"
	"strings"
	"sync"
)

// Word lists behind the default key classification. A key is split into
// segments at '_', '-', '.', spaces and other punctuation, at camelCase
// humps ("userPassword" -> user|password, "XApiKey" -> x|api|key) and
// between letters and digits ("password2" -> password|2); segments are
// compared in lower case.
var (
	// anywhereWords mask a key when any of its segments equals one of them.
	anywhereWords = []string{
		"password", "passwords", "passwd", "pwd", "passphrase", "passcode",
		"secret", "secrets",
		"token", "tokens",
		"apikey", "apikeys", "accesskey", "secretkey", "privatekey", "privkey",
		"accesstoken", "refreshtoken", "authtoken", "clientsecret",
		"authorization", "bearer",
		"credential", "credentials", "creds",
		"cookie", "cookies",
		"jwt", "otp", "csrf", "xsrf", "sessionid",
		"ssn", "cvv", "cvc", "pin", "creditcard", "cardnumber",
	}
	// lastWords mask a key only when they are its last segment, the head
	// of the compound: "auth" and "db_pass" are masked, "auth_method" and
	// "pass_count" are not.
	lastWords = []string{"auth", "pass", "session"}
	// sequences mask a key when they appear as consecutive segments:
	// "x_api_key", "X-Api-Key" and "xApiKey" all hold api|key.
	sequences = []string{
		"api_key", "api_keys", "access_key", "private_key", "priv_key",
		"session_key", "session_id", "encryption_key", "signing_key",
		"master_key", "account_key", "shared_key",
		"credit_card", "card_number", "security_code",
	}
)

// DefaultSensitiveKeys returns the built-in names that mark an attribute,
// map key or struct field as sensitive. See Masker for how they match.
func DefaultSensitiveKeys() []string {
	out := make([]string, 0, len(anywhereWords)+len(lastWords)+len(sequences))
	out = append(out, anywhereWords...)
	out = append(out, lastWords...)
	return append(out, sequences...)
}

// Masker decides which keys are sensitive and redacts secrets in
// formatted text. It is immutable after NewMasker and safe for concurrent
// use.
//
// Matching works on key segments, not substrings. A key is cut at
// separators ('_', '-', '.', space and other punctuation), at camelCase
// humps and between letters and digits, then lower-cased:
// "X-Api-Key" -> x|api|key, "userPassword" -> user|password,
// "DB_PASSWORD2" -> db|password|2. A key is sensitive when one segment is
// a sensitive word (password, token, secret, cookie, pin, ...), when its
// last segment is one of auth, pass or session, or when consecutive
// segments spell a sensitive sequence (api|key, access|key,
// credit|card, ...).
//
// So "db_password", "X-Api-Key", "userPassword", "auth_token",
// "Authorization" and "auth" are masked, while "mapping", "author",
// "monkey", "keyboard", "bypass", "auth_method" and "tokenizer_name" are
// not: a segment must equal the word, and "tokenizer" is a different word
// from "token". A bare "key" is not sensitive (record keys, cache keys).
type Masker struct {
	// tab is an open-addressing set of segment hashes (words) and
	// combined hashes (sequences), each with how it matches.
	tab    []hashEntry
	maxSeq int
	fields sync.Map // reflect.Type -> []structField
}

type hashEntry struct {
	h   uint64 // 0 = empty slot
	how uint8
}

const (
	matchAnywhere uint8 = 1 << iota
	matchLast
	matchSeq
)

// maxSeqSegments bounds the segments of a sensitive sequence; longer
// extra names use their first maxSeqSegments segments.
const maxSeqSegments = 8

// NewMasker returns a masker with the default names plus extra ones.
// Extra names are split like keys: "tenant_id" masks keys holding the
// segments tenant|id in a row ("tenantId", "X-Tenant-ID"); a single word
// masks any key that has it as a segment.
func NewMasker(extra ...string) *Masker {
	type item struct {
		h   uint64
		how uint8
	}
	var items []item
	addName := func(name string, how uint8) {
		var hs []uint64
		forEachSegment(name, func(h uint64) bool {
			hs = append(hs, h)
			return len(hs) == maxSeqSegments
		})
		switch len(hs) {
		case 0:
		case 1:
			items = append(items, item{hs[0], how})
		default:
			h := hs[0]
			for _, x := range hs[1:] {
				h = combineHash(h, x)
			}
			items = append(items, item{h, matchSeq})
		}
	}
	for _, w := range anywhereWords {
		addName(w, matchAnywhere)
	}
	for _, w := range lastWords {
		addName(w, matchLast)
	}
	m := &Masker{}
	for _, q := range sequences {
		addName(q, matchSeq)
	}
	for _, e := range extra {
		addName(e, matchAnywhere)
	}
	size := 64
	for size < 4*len(items) {
		size *= 2
	}
	m.tab = make([]hashEntry, size)
	for _, it := range items {
		m.insert(it.h, it.how)
	}
	for _, q := range sequences {
		m.maxSeq = max(m.maxSeq, segmentCount(q))
	}
	for _, e := range extra {
		m.maxSeq = max(m.maxSeq, min(segmentCount(e), maxSeqSegments))
	}
	return m
}

func segmentCount(name string) int {
	n := 0
	forEachSegment(name, func(uint64) bool { n++; return false })
	return n
}

func (m *Masker) insert(h uint64, how uint8) {
	mask := uint64(len(m.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch m.tab[i].h {
		case 0:
			m.tab[i] = hashEntry{h: h, how: how}
			return
		case h:
			m.tab[i].how |= how
			return
		}
	}
}

func (m *Masker) lookup(h uint64) uint8 {
	mask := uint64(len(m.tab) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch m.tab[i].h {
		case 0:
			return 0
		case h:
			return m.tab[i].how
		}
	}
}

// defaultMasker backs the package-level functions. It is never modified.
var defaultMasker = NewMasker()

// IsSensitiveKey reports whether key is sensitive under the default names.
func IsSensitiveKey(key string) bool { return defaultMasker.Sensitive(key) }

// character classes used to cut keys into segments
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

// forEachSegment cuts key into segments and calls fn with the 64-bit
// FNV-1a hash of each, lower-cased, in order, until fn returns true.
// Segments end at separators (anything but letters, digits and non-ASCII
// bytes), before an upper-case letter that follows a lower-case one
// ("userPassword"), before the last capital of a run followed by a
// lower-case letter ("APIKey" -> api|key), and where letters and digits
// meet ("password2"). It reports whether fn stopped it.
func forEachSegment(key string, fn func(h uint64) bool) bool {
	h := uint64(fnvOffset)
	in := false
	prev := uint8(clsSep)
	for i := 0; i < len(key); i++ {
		c := key[i]
		cls := classTable[c]
		if cls == clsSep {
			if in && fn(h) {
				return true
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
		if boundary && fn(h) {
			return true
		}
		if !in || boundary {
			h = fnvOffset
			in = true
		}
		if cls == clsUpper {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * fnvPrime
		prev = cls
	}
	return in && fn(h)
}

// combineHash chains segment hashes into a sequence hash.
func combineHash(a, b uint64) uint64 {
	h := (a ^ 0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9
	h ^= b
	h *= 0x94D049BB133111EB
	return h ^ h>>31
}

// Sensitive reports whether values under key must be redacted. It does
// not allocate. Segments are compared by 64-bit hash: a collision can
// only mask a harmless key, never unmask a sensitive one.
func (m *Masker) Sensitive(key string) bool {
	if len(key) == 0 {
		return false
	}
	var ring [maxSeqSegments]uint64
	n := 0
	lastOnly := false
	hit := forEachSegment(key, func(h uint64) bool {
		how := m.lookup(h)
		if how&matchAnywhere != 0 {
			return true
		}
		lastOnly = how&matchLast != 0
		ring[n%maxSeqSegments] = h
		n++
		for k := 2; k <= m.maxSeq && k <= n; k++ {
			sh := ring[(n-k)%maxSeqSegments]
			for j := n - k + 1; j < n; j++ {
				sh = combineHash(sh, ring[j%maxSeqSegments])
			}
			if m.lookup(sh)&matchSeq != 0 {
				return true
			}
		}
		return false
	})
	return hit || lastOnly
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
