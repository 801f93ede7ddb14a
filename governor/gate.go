package governor

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Actuator is the brake of one source: Pause stops intake, Resume starts
// it again. A Kafka consumer pauses its assigned partitions (it keeps
// polling, so it stays in the group); an HTTP receiver answers 503 with
// Retry-After while paused. The gate calls Pause once per rising edge and
// Resume once per falling edge, never both at once. An error leaves the
// gate in its previous state, so the call is repeated at the next
// evaluation.
type Actuator interface {
	// Pause stops intake.
	Pause(ctx context.Context) error
	// Resume restarts intake.
	Resume(ctx context.Context) error
}

// NoopActuator does nothing: for gates that are only consulted (Admit,
// Wait, Watch, or a gated receiver of package transport/gated).
type NoopActuator struct{}

// Pause does nothing.
func (NoopActuator) Pause(context.Context) error { return nil }

// Resume does nothing.
func (NoopActuator) Resume(context.Context) error { return nil }

// ActuatorFuncs adapts two functions into an Actuator; a nil function does
// nothing.
type ActuatorFuncs struct {
	// OnPause runs on a rising edge.
	OnPause func(ctx context.Context) error
	// OnResume runs on a falling edge.
	OnResume func(ctx context.Context) error
}

// Pause calls OnPause.
func (a ActuatorFuncs) Pause(ctx context.Context) error {
	if a.OnPause == nil {
		return nil
	}
	return a.OnPause(ctx)
}

// Resume calls OnResume.
func (a ActuatorFuncs) Resume(ctx context.Context) error {
	if a.OnResume == nil {
		return nil
	}
	return a.OnResume(ctx)
}

// Gate turns the latch into edges for one source: Evaluate samples the
// pressure, feeds the latch, and drives the actuator on a change only:
// Pause exactly once per rising edge, Resume exactly once per falling
// edge, nothing while the state holds. The gate starts open.
//
// Evaluations are serialised, so any number of goroutines may call
// Evaluate (the Run loop, a gated receiver, a test) without reordering
// Pause and Resume. Held and Admit read the state without evaluating and
// take no lock. All methods are safe on a nil *Gate, which is always open.
type Gate struct {
	source   string
	pressure *Pressure
	latch    *Latch
	act      Actuator
	log      *slog.Logger

	evalMu sync.Mutex // serialises Evaluate, held across the actuator call
	held   atomic.Bool

	stateMu sync.Mutex
	changed chan struct{} // closed and replaced on each edge

	level   atomic.Uint64 // float64 bits of the last evaluated level
	pauses  atomic.Uint64
	resumes atomic.Uint64
	errs    atomic.Uint64

	// onEval runs under evalMu at every evaluation with the highest hard
	// ratio of the same sampling; set before the gate is shared.
	onEval func(hard float64)

	lastErrLog atomic.Int64
}

// GateStats is a gate's state and edge counts.
type GateStats struct {
	// Source is the gate's source label.
	Source string `json:"source"`
	// Held reports whether the actuator was last driven to pause.
	Held bool `json:"held"`
	// Level is the pressure level seen by the last evaluation.
	Level float64 `json:"level"`
	// Pauses counts rising edges (successful Pause calls).
	Pauses uint64 `json:"pauses"`
	// Resumes counts falling edges (successful Resume calls).
	Resumes uint64 `json:"resumes"`
	// Errors counts failed actuator calls.
	Errors uint64 `json:"errors"`
}

// NewGate returns an open gate for the source label source, fed by the
// pressure p through the latch l, driving act. A nil latch means the
// default thresholds (0.80 and 0.65), a nil act NoopActuator, a nil p no
// pressure (the gate stays open). It takes WithLogger.
func NewGate(source string, p *Pressure, l *Latch, act Actuator, opts ...Option) *Gate {
	o := collect(opts)
	if l == nil {
		l = &Latch{pauseAt: DefaultPauseAt, resumeAt: DefaultResumeAt}
	}
	if act == nil {
		act = NoopActuator{}
	}
	if source == "" {
		source = "inbound"
	}
	return &Gate{source: source, pressure: p, latch: l, act: act, log: o.logger(), changed: make(chan struct{})}
}

// Evaluate samples the pressure once, feeds the latch and, on an edge,
// calls the actuator. It returns whether the gate is held afterwards. An
// actuator error is returned (wrapped, naming the source and the call)
// and leaves the gate as it was, so the next Evaluate tries again.
func (g *Gate) Evaluate(ctx context.Context) (held bool, err error) {
	if g == nil {
		return false, nil
	}
	g.evalMu.Lock()
	defer g.evalMu.Unlock()
	lvl, hard := g.pressure.levels()
	g.level.Store(math.Float64bits(lvl))
	want := g.latch.Update(lvl)
	if g.onEval != nil {
		g.onEval(hard)
	}
	cur := g.held.Load()
	if want == cur {
		return cur, nil
	}
	op := "resume"
	if want {
		op = "pause"
		err = g.act.Pause(ctx)
	} else {
		err = g.act.Resume(ctx)
	}
	if err != nil {
		g.errs.Add(1)
		return cur, fmt.Errorf("governor: %s the %s source at pressure level %.3f: %w (the gate retries at its next evaluation)",
			op, g.source, lvl, err)
	}
	if want {
		g.pauses.Add(1)
	} else {
		g.resumes.Add(1)
	}
	g.stateMu.Lock()
	g.held.Store(want)
	close(g.changed)
	g.changed = make(chan struct{})
	g.stateMu.Unlock()
	return want, nil
}

// Held reports whether the gate is held: the state the actuator was last
// driven to. It does not evaluate.
func (g *Gate) Held() bool { return g != nil && g.held.Load() }

// Admit reports whether intake may go on (the gate is open): the check for
// receivers that poll, such as an HTTP handler answering 503 with
// Retry-After while it returns false. It reads the state of the last
// evaluation, so something must evaluate the gate: Governor.Run, Gate.Run
// or a gated receiver (package transport/gated).
func (g *Gate) Admit() bool { return !g.Held() }

// Watch returns whether the gate is held and a channel that is closed at
// the gate's next edge (pause or resume). It does not evaluate. It lets a
// receiver wait for the release edge together with other events (a
// re-evaluation timer, its own shutdown) in one select; Wait is the plain
// form. A nil gate returns false and a nil channel.
func (g *Gate) Watch() (held bool, changed <-chan struct{}) {
	if g == nil {
		return false, nil
	}
	g.stateMu.Lock()
	defer g.stateMu.Unlock()
	return g.held.Load(), g.changed
}

// Wait blocks while the gate is held and returns nil once it is open, or
// ctx's error. It does not evaluate: it returns when an evaluation (Run,
// another goroutine) opens the gate.
func (g *Gate) Wait(ctx context.Context) error {
	if g == nil {
		return nil
	}
	for {
		held, ch := g.Watch()
		if !held {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run evaluates the gate at once and then every interval (DefaultInterval
// when interval <= 0) until ctx is done, and returns nil then. Actuator
// errors are logged (at most one line per 10 seconds) and retried at the
// next evaluation.
func (g *Gate) Run(ctx context.Context, interval time.Duration) error {
	if g == nil {
		return nil
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		g.runOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}

func (g *Gate) runOnce(ctx context.Context) {
	if _, err := g.Evaluate(ctx); err != nil && ctx.Err() == nil {
		now := time.Now().UnixNano()
		last := g.lastErrLog.Load()
		if (last == 0 || now-last >= int64(10*time.Second)) && g.lastErrLog.CompareAndSwap(last, now) {
			g.log.Warn("governor: gate actuator failed", "source", g.source, "errors_total", g.errs.Load(), "error", err.Error())
		}
	}
}

// Source returns the gate's source label.
func (g *Gate) Source() string {
	if g == nil {
		return ""
	}
	return g.source
}

// Latch returns the gate's latch (nil for a nil gate).
func (g *Gate) Latch() *Latch {
	if g == nil {
		return nil
	}
	return g.latch
}

// Stats returns the gate's state and counters.
func (g *Gate) Stats() GateStats {
	if g == nil {
		return GateStats{}
	}
	return GateStats{
		Source: g.source, Held: g.held.Load(), Level: math.Float64frombits(g.level.Load()),
		Pauses: g.pauses.Load(), Resumes: g.resumes.Load(), Errors: g.errs.Load(),
	}
}
