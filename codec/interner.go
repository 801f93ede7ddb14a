package codec

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Interner defaults.
const (
	// DefaultInternerEntries is the number of names an Interner keeps when
	// InternerConfig.MaxEntries is zero.
	DefaultInternerEntries = 4096
	// DefaultInternerMaxLen is the longest name an Interner keeps when
	// InternerConfig.MaxLen is zero.
	DefaultInternerMaxLen = 128
)

// InternerConfig bounds an Interner. The zero value means the defaults.
type InternerConfig struct {
	// MaxEntries is the most names kept. Once full, new names are returned
	// as they are, uninterned. Default DefaultInternerEntries.
	MaxEntries int
	// MaxLen is the longest name, in bytes, that is kept. Longer names are
	// returned uninterned. Default DefaultInternerMaxLen.
	MaxLen int
	// Preload lists names to intern up front, such as the routing fields
	// an application reads. They count towards MaxEntries.
	Preload []string
}

// Interner makes equal field names share one string, so the keys of many
// parsed records point at the same memory instead of each holding a copy.
// Parse uses it for the top-level keys of objects when
// ParseOptions.Interner is set; share one Interner across a whole block or
// a whole pipeline.
//
// It is safe for concurrent use. Lookups of names already published are
// lock-free: they read an immutable snapshot map. New names go to a locked
// map that is republished as the snapshot once it has missed as many times
// as it has entries, so a stable set of names settles on the lock-free path
// quickly. The size is bounded by MaxEntries and MaxLen, so hostile input
// with endless distinct keys cannot grow it without limit.
//
// Create one with NewInterner. A nil *Interner, and the zero Interner, are
// valid and intern nothing.
type Interner struct {
	maxEntries int
	maxLen     int

	read atomic.Pointer[map[string]string]
	// full is set once dirty holds maxEntries names and read is a copy of
	// it: then a miss needs no lock.
	full atomic.Bool

	mu     sync.Mutex
	dirty  map[string]string
	misses int
}

// NewInterner returns an Interner with the given bounds. It fails, wrapping
// ErrInvalidOptions, when a bound is negative.
func NewInterner(cfg InternerConfig) (*Interner, error) {
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("codec: %w: InternerConfig.MaxEntries is %d: use 0 for the default %d or a positive count",
			ErrInvalidOptions, cfg.MaxEntries, DefaultInternerEntries)
	}
	if cfg.MaxLen < 0 {
		return nil, fmt.Errorf("codec: %w: InternerConfig.MaxLen is %d: use 0 for the default %d or a positive length",
			ErrInvalidOptions, cfg.MaxLen, DefaultInternerMaxLen)
	}
	in := &Interner{
		maxEntries: cfg.MaxEntries,
		maxLen:     cfg.MaxLen,
		dirty:      make(map[string]string),
	}
	if in.maxEntries == 0 {
		in.maxEntries = DefaultInternerEntries
	}
	if in.maxLen == 0 {
		in.maxLen = DefaultInternerMaxLen
	}
	for _, s := range cfg.Preload {
		if len(in.dirty) >= in.maxEntries {
			break
		}
		if len(s) <= in.maxLen {
			c := strings.Clone(s)
			in.dirty[c] = c
		}
	}
	in.publishLocked()
	return in, nil
}

// Intern returns the shared copy of s. A new name is stored as a private
// copy when the Interner has room (so a name taken from a payload does not
// keep the payload alive); otherwise s comes back as it is.
func (in *Interner) Intern(s string) string {
	if in == nil || in.maxEntries == 0 || len(s) > in.maxLen {
		return s
	}
	if v, ok := (*in.read.Load())[s]; ok {
		return v
	}
	if in.full.Load() {
		return s
	}
	return in.slow(s)
}

// InternBytes is Intern for a name held in bytes. It does not allocate when
// the name is already interned.
func (in *Interner) InternBytes(b []byte) string {
	if in == nil || in.maxEntries == 0 || len(b) > in.maxLen {
		return string(b)
	}
	if v, ok := (*in.read.Load())[string(b)]; ok {
		return v
	}
	if in.full.Load() {
		return string(b)
	}
	return in.slow(string(b))
}

// Len returns the number of interned names.
func (in *Interner) Len() int {
	if in == nil {
		return 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.dirty)
}

func (in *Interner) slow(s string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	v, ok := in.dirty[s]
	if !ok {
		if len(in.dirty) >= in.maxEntries {
			in.publishLocked()
			return s
		}
		// Store a copy: s may be a view into a large payload, which an
		// interned name must not keep alive.
		v = strings.Clone(s)
		in.dirty[v] = v
	}
	in.misses++
	if in.misses >= len(in.dirty) {
		in.publishLocked()
	}
	return v
}

// publishLocked makes a copy of dirty the lock-free snapshot. in.mu is held.
func (in *Interner) publishLocked() {
	snap := make(map[string]string, len(in.dirty))
	for k, v := range in.dirty {
		snap[k] = v
	}
	in.read.Store(&snap)
	in.misses = 0
	if len(in.dirty) >= in.maxEntries {
		in.full.Store(true)
	}
}
