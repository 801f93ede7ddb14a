package scaling

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and bounds of NewRateWindow.
const (
	// DefaultRateWindow is the window of a RateWindow built with window <= 0.
	DefaultRateWindow = time.Minute
	// DefaultRateBuckets is the bucket count of a RateWindow built with
	// buckets <= 0.
	DefaultRateBuckets = 60
	// MaxRateBuckets bounds the bucket count.
	MaxRateBuckets = 3600
	// MinRateBucket is the narrowest bucket; more buckets than the window
	// holds of them are reduced.
	MinRateBucket = time.Millisecond
)

// RateWindow measures a per-second rate of events over a sliding window,
// for example records or bytes per second to feed a scaling component. The
// window is split into buckets; events count in the bucket of the time they
// are added, and buckets older than the window no longer count, so the
// window slides one bucket at a time.
//
// Add is lock-free within a bucket; the first Add of a new bucket takes a
// mutex once to recycle the slot. Rate and Sum read without locking. All
// methods are safe for concurrent use. An Add delayed (between reading the
// clock and counting) by more than a whole window may count in the newest
// bucket instead of its own; nothing is ever counted twice. Add reads the
// clock once, which is most of its cost: on a per-record hot path, add
// per batch.
type RateWindow struct {
	width   int64 // bucket width, ns
	n       int64
	origin  time.Time
	clock   func() time.Time
	mu      sync.Mutex // serialises slot recycling only
	buckets []rateBucket
}

type rateBucket struct {
	epoch atomic.Int64 // index of the bucket period held; MinInt64 = never used
	count atomic.Int64
}

// RateOption configures NewRateWindow.
type RateOption func(*RateWindow)

// WithRateClock replaces time.Now (tests inject a fake clock). The clock
// must not go backwards by more than a bucket; times before the window's
// creation count as its creation.
func WithRateClock(now func() time.Time) RateOption {
	return func(r *RateWindow) {
		if now != nil {
			r.clock = now
		}
	}
}

// NewRateWindow returns a RateWindow over window split into buckets. A
// window <= 0 means DefaultRateWindow; buckets <= 0 means
// DefaultRateBuckets; buckets is capped at MaxRateBuckets and so that a
// bucket is at least MinRateBucket wide. More buckets make the window slide
// more smoothly at the cost of a longer Rate.
func NewRateWindow(window time.Duration, buckets int, opts ...RateOption) *RateWindow {
	if window <= 0 {
		window = DefaultRateWindow
	}
	if buckets <= 0 {
		buckets = DefaultRateBuckets
	}
	buckets = min(buckets, MaxRateBuckets, max(int(window/MinRateBucket), 1))
	r := &RateWindow{
		width:   int64(window) / int64(buckets),
		n:       int64(buckets),
		clock:   time.Now,
		buckets: make([]rateBucket, buckets),
	}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	for i := range r.buckets {
		r.buckets[i].epoch.Store(math.MinInt64)
	}
	r.origin = r.clock()
	return r
}

// elapsed returns the nanoseconds since creation, never negative.
func (r *RateWindow) elapsed(now time.Time) int64 {
	return max(int64(now.Sub(r.origin)), 0)
}

// Add counts n events now. n <= 0 is ignored.
func (r *RateWindow) Add(n int64) {
	if r == nil || n <= 0 {
		return
	}
	idx := r.elapsed(r.clock()) / r.width
	b := &r.buckets[idx%r.n]
	if b.epoch.Load() == idx {
		b.count.Add(n)
		return
	}
	r.mu.Lock()
	switch e := b.epoch.Load(); {
	case e == idx:
		b.count.Add(n)
	case e < idx:
		// Recycle the slot: the count first, so that an Add that sees the
		// new epoch adds to the fresh count.
		b.count.Store(n)
		b.epoch.Store(idx)
	default:
		// The slot already holds a later period: this event is older than
		// the window as seen from that period, so it no longer counts.
	}
	r.mu.Unlock()
}

// Sum returns the events counted in the window now.
func (r *RateWindow) Sum() int64 {
	if r == nil {
		return 0
	}
	sum, _ := r.sum(r.clock())
	return sum
}

// sum returns the events in the window at now and the span they cover, ns.
func (r *RateWindow) sum(now time.Time) (sum, span int64) {
	el := r.elapsed(now)
	cur := el / r.width
	lo := cur - r.n + 1
	for i := range r.buckets {
		b := &r.buckets[i]
		if e := b.epoch.Load(); e >= lo && e <= cur {
			sum += b.count.Load()
		}
	}
	return sum, el - max(lo, 0)*r.width
}

// Rate returns the events per second over the window: the events in the
// buckets that still count, over the time those buckets cover (the full
// buckets plus the elapsed part of the current one, or the time since
// creation while the window is not yet full, and at least one bucket).
func (r *RateWindow) Rate() float64 {
	if r == nil {
		return 0
	}
	sum, span := r.sum(r.clock())
	if sum == 0 {
		return 0
	}
	span = max(span, r.width)
	return float64(sum) / (float64(span) / float64(time.Second))
}

// Window returns the window length (the bucket width times the bucket
// count, which may be a little shorter than asked when it does not divide).
func (r *RateWindow) Window() time.Duration {
	if r == nil {
		return 0
	}
	return time.Duration(r.width * r.n)
}

// Buckets returns the bucket count.
func (r *RateWindow) Buckets() int {
	if r == nil {
		return 0
	}
	return int(r.n)
}
