package background

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// TickFunc is the work of a periodic worker. ctx ends when the worker
// stops.
type TickFunc func(ctx context.Context) error

// Periodic runs a function every Interval. The zero value is not usable:
// Interval must be set.
//
//   - The first tick comes one interval (with jitter) after the start, not
//     at once, so a fleet that starts together does not hit a downstream
//     together.
//   - The next wait starts when a tick ends: a slow tick delays the
//     following ones, it never makes them pile up.
//   - Stopping is checked before every tick; a tick in progress sees its
//     ctx end.
//   - A tick that returns an error or panics is logged (WARN and ERROR,
//     rate-limited) and counted, and the worker goes on.
//   - OnStop runs exactly once, after the last tick, when the worker stops.
//
// Metrics: keel_background_periodic_ticks_total{worker,result} and
// keel_background_periodic_tick_seconds{worker}.
type Periodic struct {
	// Name is the worker label of the metrics and logs. Empty means
	// "periodic".
	Name string
	// Interval is the time between the end of one tick and the start of
	// the next (before jitter). It must be positive.
	Interval time.Duration
	// Jitter, within [0, 1], stretches each wait by a random fraction of
	// up to Jitter × Interval, so each wait lies in
	// [Interval, Interval × (1 + Jitter)).
	Jitter float64
	// OnStop, when set, runs once when the worker stops.
	OnStop func()
	// Metrics receives the metrics. Nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives tick failures. Nil means slog.Default().
	Logger *slog.Logger

	// Test hooks: the random source of the jitter and the timer.
	rnd   func() float64
	after func(d time.Duration) (<-chan time.Time, func() bool)
}

// Validate reports an unusable Periodic.
func (p Periodic) Validate() error {
	var errs []error
	if p.Interval <= 0 {
		errs = append(errs, fmt.Errorf("%w: periodic worker %q: interval must be > 0 (got %s)", ErrInvalidConfig, p.name(), p.Interval))
	}
	if math.IsNaN(p.Jitter) || p.Jitter < 0 || p.Jitter > 1 {
		errs = append(errs, fmt.Errorf("%w: periodic worker %q: jitter must be within [0, 1] (got %v)", ErrInvalidConfig, p.name(), p.Jitter))
	}
	return errors.Join(errs...)
}

func (p *Periodic) name() string {
	if p.Name == "" {
		return "periodic"
	}
	return p.Name
}

// Run runs tick every interval until ctx ends, then runs OnStop and
// returns nil. It returns an error at once only for an invalid Periodic or
// a nil tick.
func (p Periodic) Run(ctx context.Context, tick TickFunc) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if tick == nil {
		return fmt.Errorf("%w: periodic worker %q needs a tick function", ErrInvalidArgument, p.name())
	}
	if p.OnStop != nil {
		defer p.OnStop()
	}
	m := newPeriodicMetrics(p.Metrics, p.name())
	warn := logging.Every(10 * time.Second)
	for {
		if ctx.Err() != nil {
			return nil
		}
		c, stop := p.timer(p.wait())
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		}
		// Stopping wins over a tick that became due at the same time.
		if ctx.Err() != nil {
			return nil
		}
		p.runTick(ctx, tick, m, warn)
	}
}

// Start runs Run on a new goroutine and returns its handle. Stop, or the
// end of ctx, stops it.
func (p Periodic) Start(ctx context.Context, tick TickFunc) (*Worker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if tick == nil {
		return nil, fmt.Errorf("%w: periodic worker %q needs a tick function", ErrInvalidArgument, p.name())
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Worker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		_ = p.Run(ctx, tick)
	}()
	return w, nil
}

// wait returns the next wait with its jitter.
func (p *Periodic) wait() time.Duration {
	if p.Jitter == 0 {
		return p.Interval
	}
	r := rand.Float64
	if p.rnd != nil {
		r = p.rnd
	}
	extra := time.Duration(float64(p.Interval) * p.Jitter * r())
	return p.Interval + extra
}

func (p *Periodic) timer(d time.Duration) (<-chan time.Time, func() bool) {
	if p.after != nil {
		return p.after(d)
	}
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func (p *Periodic) runTick(ctx context.Context, tick TickFunc, m *periodicMetrics, warn *logging.Sampler) {
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	start := time.Now()
	result := "ok"
	defer func() {
		m.tickDur.Observe(time.Since(start).Seconds())
		m.ticks.With(m.name, result).Inc()
	}()
	defer func() {
		if r := recover(); r != nil {
			result = "panic"
			logger.Error("periodic worker tick panicked; the worker goes on",
				"worker", m.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if err := tick(ctx); err != nil {
		result = "error"
		if ok, skipped := warn.Allow(); ok {
			logger.Warn("periodic worker tick failed; the worker goes on", "worker", m.name, "error", err, "suppressed", skipped)
		}
	}
}

// Worker is a running periodic worker.
type Worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop stops the worker and waits until its goroutine has ended (after
// the tick in progress, if any, and OnStop). It is idempotent.
func (w *Worker) Stop() {
	w.cancel()
	<-w.done
}

// Done is closed when the worker has stopped.
func (w *Worker) Done() <-chan struct{} { return w.done }
