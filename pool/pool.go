package pool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/metrics"
)

// Pool bounds how many items run at once across every Map, Go and FanOut
// that use it. The bound, the target, moves at run time between the
// configured min and max (SetTarget), so a scaler can follow CPU and memory
// pressure. Lowering it never interrupts an item: workers over the target
// give their slot back before starting their next item.
//
// A Pool is safe for concurrent use. Close or Shutdown it when done: both
// refuse new work with ErrClosed and wait for what was accepted.
type Pool struct {
	cfg  resolved
	name string
	lim  *limiter
	log  *slog.Logger
	reg  *metrics.Registry
	ins  *instruments

	mu       sync.Mutex
	closed   bool
	inflight int
	idle     chan struct{} // closed when inflight drops to 0; nil when nobody waits

	items    atomic.Uint64
	errs     atomic.Uint64
	panics   atomic.Uint64
	timeouts atomic.Uint64

	panicLog rateLimit
}

// Option changes how New builds a Pool.
type Option func(*options)

type options struct {
	reg  *metrics.Registry
	log  *slog.Logger
	name string
}

// WithMetrics sets the registry for the pool's keel_pool_* metrics. The
// default is metrics.Default().
func WithMetrics(reg *metrics.Registry) Option { return func(o *options) { o.reg = reg } }

// WithLogger sets the logger. The default is slog.Default() at the time of
// each log line.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithName sets the value of the pool label on the metrics and the pool key
// in log lines, for a process with several pools. The default is "default".
// Use a fixed name, never one built from data.
func WithName(name string) Option { return func(o *options) { o.name = name } }

// New validates cfg (see Config.Validate) and builds a Pool with its target
// at cfg.InitialWorkers. It starts no goroutine.
func New(cfg Config, opts ...Option) (*Pool, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	o := options{name: "default"}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.name == "" {
		o.name = "default"
	}
	p := &Pool{cfg: r, name: o.name, log: o.log, reg: metrics.OrDefault(o.reg)}
	p.ins = newInstruments(p.reg, o.name)
	p.ins.min.Set(float64(r.min))
	p.ins.max.Set(float64(r.max))
	p.ins.target.Set(float64(r.initial))
	p.ins.saturation.Set(float64(r.initial) / float64(r.max))
	active := p.ins.active
	p.lim = newLimiter(r.initial, func(n int64) { active.Set(float64(n)) })
	active.Set(0)
	p.panicLog.every = time.Second
	return p, nil
}

func (p *Pool) logger() *slog.Logger {
	if p.log != nil {
		return p.log
	}
	return slog.Default()
}

// Name returns the name given with WithName, or "default".
func (p *Pool) Name() string { return p.name }

// SetTarget moves the concurrency target to n clamped to
// [min_workers, max_workers] and returns the target now in force. Raising it
// lets waiting work start at once; lowering it takes effect as running
// items finish: no item starts while more slots are in use than the new
// target allows.
func (p *Pool) SetTarget(n int) int {
	t := min(max(n, p.cfg.min), p.cfg.max)
	old := int(p.lim.target.Load())
	p.lim.setTarget(t)
	p.ins.target.Set(float64(t))
	p.ins.saturation.Set(float64(t) / float64(p.cfg.max))
	if l := p.logger(); old != t && l.Enabled(context.Background(), slog.LevelDebug) {
		l.Debug("worker pool target changed", "pool", p.name, "from", old, "to", t, "requested", n)
	}
	return t
}

// Target returns the current concurrency target.
func (p *Pool) Target() int { return int(p.lim.target.Load()) }

// Active returns how many worker slots are in use now, that is how many
// items are running (a Map worker holds its slot between two items of its
// chunk). It may briefly exceed Target after SetTarget lowered it.
func (p *Pool) Active() int { return int(p.lim.leased.Load()) }

// Stats is a point-in-time view of a Pool, for a scaler or a status page.
type Stats struct {
	// Min and Max are the bounds of the target.
	Min, Max int
	// Target is the concurrency target.
	Target int
	// Active is the number of worker slots in use.
	Active int
	// Waiting is the number of callers and workers queued for a slot.
	Waiting int
	// InFlight is the number of accepted calls (Map, Go, FanOut) not yet
	// finished.
	InFlight int
	// Items counts the items run since New, whatever their outcome.
	Items uint64
	// Errors counts the items that returned an error, panicked or timed out.
	Errors uint64
	// Panics counts the items that panicked.
	Panics uint64
	// Timeouts counts the items of Go and FanOut that ran past item_timeout.
	Timeouts uint64
	// Closed reports whether Close or Shutdown was called.
	Closed bool
}

// Saturation returns Target/Max, the share of the pool's ceiling in use as
// a target: 1 means the scaler has nowhere left to grow.
func (s Stats) Saturation() float64 {
	if s.Max == 0 {
		return 0
	}
	return float64(s.Target) / float64(s.Max)
}

// Stats returns the pool's current figures.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	inflight, closed := p.inflight, p.closed
	p.mu.Unlock()
	return Stats{
		Min:      p.cfg.min,
		Max:      p.cfg.max,
		Target:   p.Target(),
		Active:   p.Active(),
		Waiting:  p.lim.waiting(),
		InFlight: inflight,
		Items:    p.items.Load(),
		Errors:   p.errs.Load(),
		Panics:   p.panics.Load(),
		Timeouts: p.timeouts.Load(),
		Closed:   closed,
	}
}

// enter registers one accepted call; it fails once the pool is closed.
func (p *Pool) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inflight++
	return true
}

// exit ends a call registered by enter.
func (p *Pool) exit() {
	p.mu.Lock()
	p.inflight--
	if p.inflight == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
}

// idleCh returns a channel closed when no call is in flight, or nil if none
// is in flight now.
func (p *Pool) idleCh() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == 0 {
		return nil
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

// Wait blocks until no accepted call is in flight. New calls may still be
// accepted meanwhile; use Close to stop them.
func (p *Pool) Wait() {
	if ch := p.idleCh(); ch != nil {
		<-ch
	}
}

// Close stops accepting work (later calls fail with ErrClosed) and waits for
// every accepted call to finish, including items of Go and FanOut that
// outlived their item_timeout. It is safe to call more than once.
func (p *Pool) Close() {
	_ = p.Shutdown(context.Background())
}

// Shutdown is Close bounded by ctx: it returns ctx's error if accepted work
// is still running when ctx is done. The pool stays closed either way.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	ch := p.idleCh()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pool %q: shutdown: %d call(s) still running: %w", p.name, p.Stats().InFlight, ctx.Err())
	}
}

// counts are one worker's tallies, added to the pool once per chunk.
type counts struct {
	ran, failed, panicked, timedOut uint64
}

func (p *Pool) account(c counts) {
	if c.ran == 0 {
		return
	}
	p.items.Add(c.ran)
	p.ins.items.Add(float64(c.ran))
	if c.failed > 0 {
		p.errs.Add(c.failed)
		p.ins.errors.Add(float64(c.failed))
	}
	if c.panicked > 0 {
		p.panics.Add(c.panicked)
		p.ins.panics.Add(float64(c.panicked))
	}
	if c.timedOut > 0 {
		p.timeouts.Add(c.timedOut)
		p.ins.timeouts.Add(float64(c.timedOut))
	}
}

// logPanic logs a recovered panic at most once per second per pool, with the
// number of panics left unlogged since the last line.
func (p *Pool) logPanic(index int, pe *PanicError) {
	if suppressed, ok := p.panicLog.allow(); ok {
		p.logger().Error("worker pool item panicked; the panic is the item's error",
			"pool", p.name, "item_index", index, "panic", fmt.Sprint(pe.Value),
			"stack", string(pe.Stack), "suppressed", suppressed)
	}
}

// rateLimit lets one event through per interval and counts the rest.
type rateLimit struct {
	every      time.Duration
	last       atomic.Int64 // unix nanos of the last allowed event
	suppressed atomic.Uint64
}

func (r *rateLimit) allow() (suppressed uint64, ok bool) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if last != 0 && now-last < int64(r.every) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return 0, false
	}
	return r.suppressed.Swap(0), true
}

// workerKey marks a context handed to an item, so a Map called from inside
// an item of the same pool runs on the slot the item already holds instead
// of queueing for a second one (which could deadlock a full pool).
type workerKey struct{}

func (p *Pool) workerCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, workerKey{}, p)
}

func (p *Pool) insideItem(ctx context.Context) bool {
	q, _ := ctx.Value(workerKey{}).(*Pool)
	return q == p
}
