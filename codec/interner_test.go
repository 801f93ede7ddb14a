package codec

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// fresh returns a copy of s in new memory.
func fresh(s string) string { return string([]byte(s)) }

func newTestInterner(t *testing.T, cfg InternerConfig) *Interner {
	t.Helper()
	in, err := NewInterner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInternerSharesStrings(t *testing.T) {
	in := newTestInterner(t, InternerConfig{})
	a := in.Intern(fresh("level"))
	b := in.Intern(fresh("level"))
	c := in.InternBytes([]byte("level"))
	if a != "level" || !sameString(a, b) || !sameString(a, c) {
		t.Fatal("equal names do not share one string")
	}
	if in.Len() != 1 {
		t.Fatalf("Len = %d", in.Len())
	}
	// Enough lookups publish the name to the lock-free snapshot; the
	// answer stays the same string.
	for range 10 {
		if !sameString(in.Intern(fresh("level")), a) {
			t.Fatal("answer changed after publication")
		}
	}
}

// TestInternerCopiesNames proves an interned name does not point into the
// buffer it came from, so the interner never keeps a payload alive.
func TestInternerCopiesNames(t *testing.T) {
	in := newTestInterner(t, InternerConfig{})
	payload := []byte(`{"service":"api"}` + strings.Repeat(" ", 1<<16))
	view := unsafe.String(&payload[2], 7) // "service", inside payload
	got := in.Intern(view)
	start := uintptr(unsafe.Pointer(&payload[0]))
	p := uintptr(unsafe.Pointer(unsafe.StringData(got)))
	if got != "service" || (p >= start && p < start+uintptr(len(payload))) {
		t.Fatal("interned name points into the payload")
	}
	// A JSON parse without copying still interns copies.
	v, err := Parse(payload, ParseOptions{ZeroCopy: true, Interner: in})
	if err != nil {
		t.Fatal(err)
	}
	for k := range v.Interface().(map[string]any) {
		p := uintptr(unsafe.Pointer(unsafe.StringData(k)))
		if p >= start && p < start+uintptr(len(payload)) {
			t.Fatal("interned key points into the payload")
		}
	}
}

func TestInternerBounds(t *testing.T) {
	in := newTestInterner(t, InternerConfig{MaxEntries: 3, MaxLen: 8})
	var kept []string
	// Multi-byte names: Go shares one-byte strings by itself.
	for _, n := range []string{"aa", "bb", "cc"} {
		kept = append(kept, in.Intern(fresh(n)))
	}
	// Full: a new name comes back as given, not stored.
	d1, d2 := in.Intern(fresh("dd")), in.Intern(fresh("dd"))
	if sameString(d1, d2) || in.Len() != 3 {
		t.Fatalf("a full interner stored a new name (Len %d)", in.Len())
	}
	// Names already held still intern.
	for i, n := range []string{"aa", "bb", "cc"} {
		if !sameString(in.Intern(fresh(n)), kept[i]) {
			t.Fatalf("%s lost after the interner filled", n)
		}
	}
	// Too long: not stored.
	long := strings.Repeat("x", 9)
	if sameString(in.Intern(fresh(long)), in.Intern(fresh(long))) {
		t.Fatal("an over-long name was interned")
	}
	l2 := newTestInterner(t, InternerConfig{MaxLen: 4})
	if x := l2.InternBytes([]byte("toolong")); x != "toolong" || l2.Len() != 0 {
		t.Fatalf("InternBytes of an over-long name = %q, Len %d", x, l2.Len())
	}
}

func TestInternerPreloadAndZero(t *testing.T) {
	in := newTestInterner(t, InternerConfig{MaxEntries: 2, Preload: []string{"_table", "host", "ignored"}})
	if in.Len() != 2 {
		t.Fatalf("Len = %d after preloading past the bound", in.Len())
	}
	if got := in.Intern(fresh("_table")); got != "_table" {
		t.Fatal(got)
	}
	var nilIn *Interner
	var zero Interner
	for _, z := range []*Interner{nilIn, &zero} {
		if z.Intern("a") != "a" || z.InternBytes([]byte("b")) != "b" || z.Len() != 0 {
			t.Fatal("nil or zero interner misbehaved")
		}
	}
	for _, cfg := range []InternerConfig{{MaxEntries: -1}, {MaxLen: -1}} {
		if _, err := NewInterner(cfg); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("NewInterner(%+v) = %v", cfg, err)
		}
	}
}

func TestInternBytesHitDoesNotAllocate(t *testing.T) {
	in := newTestInterner(t, InternerConfig{})
	key := []byte("service")
	in.InternBytes(key)
	for range 4 { // publish it
		in.InternBytes(key)
	}
	if n := testing.AllocsPerRun(100, func() { in.InternBytes(key) }); n != 0 {
		t.Errorf("InternBytes hit allocates %v times", n)
	}
}

// TestInternerConcurrent interns overlapping names from many goroutines
// (run with -race): every goroutine gets the same string for a name, and
// the bound holds.
func TestInternerConcurrent(t *testing.T) {
	const workers, names = 8, 300
	in := newTestInterner(t, InternerConfig{MaxEntries: 200})
	results := make([][]string, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res := make([]string, names)
			for round := range 3 {
				for i := range names {
					j := (i + w*37) % names
					s := in.Intern(fmt.Sprintf("field_%d", j))
					if round == 2 {
						res[j] = s
					}
				}
			}
			results[w] = res
		}()
	}
	close(start)
	wg.Wait()
	if in.Len() != 200 {
		t.Fatalf("Len = %d, want the bound 200", in.Len())
	}
	shared := 0
	for i := range names {
		canon := in.Intern(fmt.Sprintf("field_%d", i))
		all := true
		for w := range workers {
			if results[w][i] != canon {
				t.Fatalf("field_%d: wrong value %q", i, results[w][i])
			}
			all = all && sameString(results[w][i], canon)
		}
		if all {
			shared++
		}
	}
	if shared != 200 {
		t.Fatalf("%d names shared by every goroutine, want 200", shared)
	}
}

// TestParseInternsKeys proves records parsed with one interner share their
// top-level key strings, in both formats, and records parsed without one
// do not.
func TestParseInternsKeys(t *testing.T) {
	keysOf := func(v *Value) map[string]string {
		out := map[string]string{}
		for k := range v.Interface().(map[string]any) {
			out[k] = k
		}
		return out
	}
	mk := func(i int) [][]byte {
		return [][]byte{
			[]byte(fmt.Sprintf(`{"timestamp":"t%d","level":"info","nested":{"inner":1}}`, i)),
			mustMsgPack(t, map[string]any{"timestamp": fmt.Sprintf("t%d", i), "level": "info"}),
		}
	}
	for f := range 2 {
		in := newTestInterner(t, InternerConfig{})
		a, err := Parse(mk(1)[f], ParseOptions{Interner: in})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(mk(2)[f], ParseOptions{Interner: in})
		if err != nil {
			t.Fatal(err)
		}
		ka, kb := keysOf(a), keysOf(b)
		for k := range ka {
			if !sameString(ka[k], kb[k]) {
				t.Errorf("%v: key %q not shared", a.Format(), k)
			}
		}
		if ts, _ := b.Field("timestamp").Str(); ts != "t2" {
			t.Errorf("%v: timestamp %q", b.Format(), ts)
		}
		c, _ := Parse(mk(3)[f], ParseOptions{})
		for k, s := range keysOf(c) {
			if sameString(s, ka[k]) {
				t.Errorf("%v: key %q shared without an interner", c.Format(), k)
			}
		}
	}
}

// TestParseInternKeyLengths covers MsgPack keys of every length class:
// empty, short, longer than the pooled scratch buffer, and too long to
// intern. Each decodes to the right key; only the internable ones are kept.
func TestParseInternKeyLengths(t *testing.T) {
	in := newTestInterner(t, InternerConfig{MaxLen: 2000})
	keys := []string{"", "level", strings.Repeat("k", maxScratch+10), strings.Repeat("z", 2001)}
	obj := map[string]any{}
	for i, k := range keys {
		obj[k] = int64(i)
	}
	data := mustMsgPack(t, obj)
	for range 2 {
		v, err := Parse(data, ParseOptions{Interner: in})
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range keys {
			if n, ok := v.Field(k).Int(); !ok || n != int64(i) {
				t.Fatalf("key of %d bytes: %v, %v", len(k), n, ok)
			}
		}
	}
	if in.Len() != 3 {
		t.Fatalf("interner holds %d names, want 3", in.Len())
	}
}
