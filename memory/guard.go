package memory

import (
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

// Name is the name the guard gives itself as a pressure source.
const Name = "memory"

// logEvery is the shortest interval between two warnings of one kind
// logged from the hot path (refusals, over-releases).
const logEvery = 10 * time.Second

// Option configures New.
type Option func(*options)

type options struct {
	reg      *metrics.Registry
	log      *slog.Logger
	platform platform.Detector
	heap     func() int64
}

// WithMetrics registers the guard's metrics on r instead of
// metrics.Default(). A nil r means the default.
func WithMetrics(r *metrics.Registry) Option { return func(o *options) { o.reg = r } }

// WithLogger logs through l instead of slog.Default(). A nil l means the
// default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithPlatform reads the cgroup files, /proc/meminfo and GOMEMLIMIT
// through d instead of the real machine (tests point d.Root at a fixture
// directory).
func WithPlatform(d platform.Detector) Option { return func(o *options) { o.platform = d } }

// WithHeapSource replaces the live-heap reading (runtime/metrics
// /gc/heap/live:bytes) used when memory.use_heap is on. f returns bytes in
// use; it is called at most once per memory.heap_sample_interval, from
// whichever goroutine asks first, and must be safe for concurrent use.
// Without use_heap the source is not used.
func WithHeapSource(f func() int64) Option { return func(o *options) { o.heap = f } }

// Guard accounts the bytes a service holds in flight against a memory
// limit and publishes the pressure. It never allocates on its own behalf,
// never frees anything and never kills the process: callers decide what to
// do with a refusal or with pressure, and they brake intake, never the
// drain. All methods are safe for concurrent use; the accounting methods
// use atomics only.
type Guard struct {
	cur atomic.Int64 // accounted bytes, never negative
	// Keep the hot counter on its own cache line: refusals write need and
	// refused, and they must not slow down the CAS loops on cur.
	_    [56]byte
	need atomic.Int64 // last refused reservation that fits under the limit; 0 = none

	refused    atomic.Int64
	logRefused atomic.Int64 // time of the last refusal warning, ns since epoch
	logOver    atomic.Int64 // time of the last over-release warning

	admit     int64 // admission cap: the limit, or MaxInt64 when unlimited
	limit     int64 // reported limit; 0 = unlimited
	threshold float64
	enabled   bool
	heap      *heapSampler // nil unless use_heap

	cfg    Config // with defaults
	limits Limits
	log    *slog.Logger
	epoch  time.Time

	refusedTotal prometheus.Counter
}

// New resolves the limit (see Resolve), registers the keel_memory_*
// metrics and returns the guard. It returns a *ConfigError (matching
// ErrInvalidConfig) for a bad memory section, a malformed GOMEMLIMIT, or a
// memory.limit_bytes above the Go runtime memory limit. New does not touch
// the Go runtime: call ApplyGoMemoryLimit for that.
func New(cfg Config, opts ...Option) (*Guard, error) {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	lim, err := Resolve(cfg, o.platform)
	if err != nil {
		return nil, err
	}
	c := cfg.WithDefaults()
	g := &Guard{
		admit:     math.MaxInt64,
		threshold: c.PressureThreshold,
		enabled:   c.IsEnabled(),
		cfg:       c,
		limits:    lim,
		log:       o.log,
		epoch:     time.Now(),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.enabled && lim.Bytes > 0 {
		g.admit, g.limit = lim.Bytes, lim.Bytes
	}
	if g.enabled && c.UseHeap {
		read := o.heap
		if read == nil {
			read = readLiveHeap
		}
		g.heap = newHeapSampler(read, c.HeapSampleInterval)
	}
	g.registerMetrics(metrics.OrDefault(o.reg))
	g.logStart()
	return g, nil
}

func (g *Guard) logStart() {
	lim := g.limits
	if lim.Warning != nil {
		g.log.Warn("memory: some limit files could not be read; their values are ignored", "error", lim.Warning.Error())
	}
	switch lim.Source {
	case SourceDisabled:
		g.log.Info("memory: guard disabled (memory.enabled=false); bytes are counted but never refused")
		return
	case SourceNone:
		g.log.Warn("memory: no memory limit found (no cgroup limit, no GOMEMLIMIT, no /proc/meminfo); the guard admits everything, set memory.limit_bytes")
	}
	g.log.Info("memory: guard ready",
		"limit_bytes", lim.Bytes,
		"limit_source", string(lim.Source),
		"cgroup_version", lim.CgroupVersion,
		"cgroup_limit_bytes", lim.CgroupBytes,
		"system_bytes", lim.SystemBytes,
		"go_memory_limit_bytes", lim.GoBytes,
		"go_memory_limit_source", string(lim.GoSource),
		"pressure_threshold", g.threshold,
		"use_heap", g.heap != nil,
	)
}

// TryReserve accounts n more bytes if they fit: the accounted bytes plus n
// must not exceed the limit (landing exactly on it is admitted), and with
// use_heap the live heap plus n must not either. It reports whether the
// bytes were accounted; a refused reservation changes nothing but the
// refusal count, and puts the guard under pressure until enough is
// released for n to fit. Give the bytes back with Release. n == 0 is
// always admitted; a negative n is refused and changes nothing.
func (g *Guard) TryReserve(n int64) bool {
	if n <= 0 {
		return n == 0
	}
	if g.heap != nil {
		if h := g.heap.bytes(); n > g.admit-h {
			g.refuse(n, h)
			return false
		}
	}
	for {
		cur := g.cur.Load()
		// admit-cur cannot overflow (0 <= cur) and is negative when Add
		// went over the limit: then nothing fits.
		if n > g.admit-cur {
			g.refuse(n, cur)
			return false
		}
		if g.cur.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

func (g *Guard) refuse(n, seen int64) {
	total := g.refused.Add(1)
	g.refusedTotal.Inc()
	if n <= g.admit && g.need.Load() != n {
		g.need.Store(n)
	}
	if g.every(&g.logRefused) {
		g.log.Warn("memory: reservation refused, intake should slow down",
			"requested_bytes", n, "current_bytes", seen, "limit_bytes", g.limit,
			"reservations_refused_total", total)
	}
}

// Add accounts n bytes unconditionally, for data that is already in
// memory (a block taken off the wire). The total may exceed the limit;
// TryReserve then refuses until enough is released. A negative n is
// ignored. Add and Release make the guard an engine MemoryAccountant.
func (g *Guard) Add(n int64) {
	if n <= 0 {
		return
	}
	for {
		cur := g.cur.Load()
		next := cur + n
		if next < cur { // overflow: saturate
			next = math.MaxInt64
		}
		if g.cur.CompareAndSwap(cur, next) {
			return
		}
	}
}

// Release gives back n bytes accounted by TryReserve or Add. The count
// never goes below zero: releasing more than is accounted clamps it at
// zero and logs a (rate-limited) warning, since it means an Add/Release
// mismatch in the caller. A non-positive n is ignored.
func (g *Guard) Release(n int64) {
	if n <= 0 {
		return
	}
	for {
		cur := g.cur.Load()
		next := cur - n
		if next < 0 {
			next = 0
		}
		if g.cur.CompareAndSwap(cur, next) {
			if need := g.need.Load(); need > 0 && need <= g.admit-next {
				g.need.CompareAndSwap(need, 0)
			}
			if n > cur && g.every(&g.logOver) {
				g.log.Warn("memory: released more bytes than were accounted; the count was clamped at zero (Add/Release mismatch in the caller)",
					"released_bytes", n, "accounted_bytes", cur)
			}
			return
		}
	}
}

// every reports whether a hot-path warning stored in at may be logged
// now, at most once per logEvery.
func (g *Guard) every(at *atomic.Int64) bool {
	now := int64(time.Since(g.epoch)) + 1 // never 0, the "never logged" value
	last := at.Load()
	if last != 0 && now-last < int64(logEvery) {
		return false
	}
	return at.CompareAndSwap(last, now)
}

// Current returns the bytes the guard compares with its limit: the
// accounted bytes, or with use_heap the larger of those and the last
// live-heap sample.
func (g *Guard) Current() int64 {
	cur := g.cur.Load()
	if g.heap != nil {
		cur = max(cur, g.heap.bytes())
	}
	return cur
}

// Accounted returns the bytes accounted through TryReserve and Add and not
// yet released.
func (g *Guard) Accounted() int64 { return g.cur.Load() }

// Limit returns the guard's limit in bytes; 0 means unlimited (no limit
// was found, or the guard is disabled).
func (g *Guard) Limit() int64 { return g.limit }

// Threshold returns the pressure threshold (memory.pressure_threshold).
func (g *Guard) Threshold() float64 { return g.threshold }

// Enabled reports whether the guard is on (memory.enabled).
func (g *Guard) Enabled() bool { return g.enabled }

// Limits returns what Resolve found when the guard was built.
func (g *Guard) Limits() Limits { return g.limits }

// PressureRatio returns Current / Limit. It exceeds 1 when Add went over
// the limit, and is 0 when the guard has no limit.
func (g *Guard) PressureRatio() float64 { return g.ratio(g.Current()) }

func (g *Guard) ratio(cur int64) float64 {
	if g.limit == 0 {
		return 0
	}
	return float64(cur) / float64(g.limit)
}

// Level classifies the pressure ratio (see Level for the cut-offs).
func (g *Guard) Level() Level { return levelOf(g.PressureRatio(), g.threshold) }

// UnderPressure reports whether intake should slow down: the pressure
// ratio is at or above the threshold, or a reservation was refused and
// not enough has been released since for it to fit. It is computed from
// the live counts on every call, so it cannot stay stuck after the bytes
// are released.
func (g *Guard) UnderPressure() bool { return g.underPressure(g.Current()) }

func (g *Guard) underPressure(cur int64) bool {
	if g.limit == 0 {
		return false
	}
	if g.ratio(cur) >= g.threshold {
		return true
	}
	need := g.need.Load()
	if need == 0 {
		return false
	}
	if need > g.admit-cur {
		return true
	}
	g.need.CompareAndSwap(need, 0) // it fits now: forget it
	return false
}

// Hard reports whether the guard is a hard pressure source: one whose
// ratio a pressure combiner must take as it is, never weighted down,
// because it answers "will the process run out of memory". It is true for
// an enabled guard with a limit; a disabled or unlimited guard's ratio is
// always 0 and carries no such meaning.
func (g *Guard) Hard() bool { return g.enabled && g.limit > 0 }

// Name returns "memory", the guard's name as a pressure source.
func (g *Guard) Name() string { return Name }

// RefusedTotal returns how many reservations the guard refused.
func (g *Guard) RefusedTotal() int64 { return g.refused.Load() }

// Lease accounts n bytes with Add and returns the function that releases
// them. The function is idempotent: only its first call releases, so it
// is safe to defer it and also call it early.
func (g *Guard) Lease(n int64) (release func()) {
	g.Add(n)
	return g.releaser(n)
}

// TryLease is TryReserve with a lease: when the n bytes fit, it accounts
// them and returns their idempotent release function and true. When they
// do not, it returns a release function that does nothing and false, so
// "release, ok := g.TryLease(n); defer release()" is always safe.
func (g *Guard) TryLease(n int64) (release func(), ok bool) {
	if !g.TryReserve(n) {
		return func() {}, false
	}
	return g.releaser(n), true
}

func (g *Guard) releaser(n int64) func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			g.Release(n)
		}
	}
}

// Snapshot is a consistent reading of the guard: every field is derived
// from one read of the accounted bytes and one of the heap. It is the body
// of the /memory/pressure endpoint.
type Snapshot struct {
	// Ratio is CurrentBytes / LimitBytes (0 without a limit).
	Ratio float64 `json:"ratio"`
	// CurrentBytes is what the guard compares with its limit.
	CurrentBytes int64 `json:"current_bytes"`
	// LimitBytes is the guard's limit; 0 means unlimited.
	LimitBytes int64 `json:"limit_bytes"`
	// UnderPressure is UnderPressure().
	UnderPressure bool `json:"under_pressure"`
	// Level is the Level of Ratio.
	Level Level `json:"level"`
	// Source is the view CurrentBytes comes from: "accounted", or "heap"
	// when use_heap is on and the live heap is the larger.
	Source string `json:"source"`
	// AccountedBytes is Accounted().
	AccountedBytes int64 `json:"accounted_bytes"`
	// HeapBytes is the last live-heap sample; present with use_heap only.
	HeapBytes *int64 `json:"heap_bytes,omitempty"`
	// Threshold is the pressure threshold.
	Threshold float64 `json:"threshold"`
	// LimitSource says where LimitBytes comes from.
	LimitSource Source `json:"limit_source"`
	// GoMemoryLimitBytes is the Go runtime memory limit in force now; 0
	// means none.
	GoMemoryLimitBytes int64 `json:"go_memory_limit_bytes"`
	// RefusedTotal is RefusedTotal().
	RefusedTotal int64 `json:"reservations_refused_total"`
}

// Snapshot returns the guard's state now.
func (g *Guard) Snapshot() Snapshot {
	acc := g.cur.Load()
	s := Snapshot{
		CurrentBytes:       acc,
		LimitBytes:         g.limit,
		Source:             "accounted",
		AccountedBytes:     acc,
		Threshold:          g.threshold,
		LimitSource:        g.limits.Source,
		GoMemoryLimitBytes: runtimeMemoryLimit(),
		RefusedTotal:       g.refused.Load(),
	}
	if g.heap != nil {
		h := g.heap.bytes()
		s.HeapBytes = &h
		if h > acc {
			s.CurrentBytes, s.Source = h, "heap"
		}
	}
	s.Ratio = g.ratio(s.CurrentBytes)
	s.Level = levelOf(s.Ratio, g.threshold)
	s.UnderPressure = g.underPressure(s.CurrentBytes)
	return s
}
