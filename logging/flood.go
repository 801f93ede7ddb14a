package logging

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// flood is the per-message token bucket table behind FloodControl.
type flood struct {
	rate  float64 // tokens per nanosecond
	burst float64
	max   int

	mu        sync.Mutex
	buckets   map[string]*bucket
	overflow  bucket
	lastSweep int64

	total atomic.Uint64 // lines dropped, ever
}

type bucket struct {
	tokens  float64
	last    int64  // unix nanoseconds of the last refill
	pending uint64 // lines dropped since the last one written
}

func newFlood(f FloodControl) *flood {
	return &flood{
		rate:     f.Rate / float64(time.Second),
		burst:    float64(f.Burst),
		max:      f.MaxMessages,
		buckets:  make(map[string]*bucket),
		overflow: bucket{tokens: float64(f.Burst)},
	}
}

func (b *bucket) refill(now int64, rate, burst float64) {
	if now > b.last {
		b.tokens += float64(now-b.last) * rate
		if b.tokens > burst {
			b.tokens = burst
		}
		b.last = now
	}
}

// allow takes a token for msg at time now (unix nanoseconds). When the
// line may be written it returns true and the number of lines of the
// same bucket dropped since the last one written.
func (f *flood) allow(msg string, now int64) (bool, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.buckets[msg]
	if b == nil {
		if len(f.buckets) >= f.max {
			f.sweep(now)
		}
		if len(f.buckets) < f.max {
			b = &bucket{tokens: f.burst, last: now}
			f.buckets[strings.Clone(msg)] = b
		} else {
			b = &f.overflow
		}
	}
	b.refill(now, f.rate, f.burst)
	if b.tokens >= 1 {
		b.tokens--
		n := b.pending
		b.pending = 0
		return true, n
	}
	b.pending++
	f.total.Add(1)
	return false, 0
}

// sweep forgets messages whose bucket is full again and owes no report,
// at most once a second so that a flood of distinct messages stays cheap.
func (f *flood) sweep(now int64) {
	if f.lastSweep != 0 && now-f.lastSweep < int64(time.Second) && now >= f.lastSweep {
		return
	}
	f.lastSweep = now
	for k, b := range f.buckets {
		if b.pending != 0 {
			continue
		}
		b.refill(now, f.rate, f.burst)
		if b.tokens >= f.burst {
			delete(f.buckets, k)
		}
	}
}
