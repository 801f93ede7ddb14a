package governor

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

// ByteBudget is the method set of the batch engine's byte budget (the
// engine's ByteBudget interface): Governor.Budget returns one, nil when
// self-regulation is off, and *Budget implements it.
type ByteBudget interface {
	// Bytes returns the byte cap of the next receive and the sub-block
	// target of the next block.
	Bytes() int64
	// RecordCap returns the most records one receive may return.
	RecordCap() int
	// Observe reports one block's bytes, process time and receive interval.
	Observe(bytes int64, processTime, ingestInterval time.Duration)
}

var _ ByteBudget = (*Budget)(nil)

// Governor is self-regulation: the pressure sources combined into one
// level, the inbound gates that pause intake under pressure with
// hysteresis, and the AIMD byte budget that sizes each receive and
// sub-block. It brakes sources only; it never wraps or gates a sender,
// because the drain is what frees memory.
//
// A nil *Governor is what New returns with self_regulation.enabled false:
// all its methods are safe and leave the data path as it is without
// self-regulation (Budget returns nil, so the engine's RunGoverned runs as
// Run; Gate returns nil, a gate that never holds, so a receiver wrapped
// with package transport/gated passes through; Run returns at once).
type Governor struct {
	cfg      Config // with defaults
	pressure *Pressure
	budget   *Budget
	gate     *Gate
	reg      *metrics.Registry
	log      *slog.Logger

	mu    sync.Mutex
	gates []*Gate

	// hardLatch is the hold the hard sources alone would cause: the
	// latch of pause_at and resume_at fed the highest hard ratio at every
	// gate evaluation and at every Observe. Soft sources brake intake
	// through the gates but never force the budget down.
	hardLatch *Latch
	// pressured is set by every gate evaluation that finds hardLatch
	// engaged and consumed by the budget's next Observe, so that pressure
	// seen while a block was in flight shrinks the next block even when
	// the block's memory was released before Observe.
	pressured atomic.Bool
	// hardPeak holds the float64 bits of the highest hard ratio seen by a
	// gate evaluation since the budget's previous Observe.
	hardPeak atomic.Uint64
}

// New builds the governor of the self_regulation section cfg. With
// enabled false it builds nothing and returns (nil, nil). A bad section is
// an error naming the key (matching ErrInvalidConfig); bad budget
// overrides are repaired with a warning (see NewBudget).
//
// Sources come from WithMemory (the hard source) and WithSource; the
// Governor's own gate takes WithActuator; metrics and logs go to
// WithMetrics and WithLogger. New starts no goroutine: call Run.
//
// The budget's start_bytes, min_bytes and max_bytes are capped at the
// block ceiling, the memory guard's limit times
// self_regulation.max_block_fraction (1/16 by default; see BlockCeiling),
// so that one block fits in memory with a process step that expands it
// ten times. Without a guard, or with a guard without a limit, the budget
// keeps its profile's envelope.
func New(cfg Config, opts ...Option) (*Governor, error) {
	o := collect(opts)
	log := o.logger()
	if !cfg.IsEnabled() {
		log.Info("governor: self_regulation.enabled is false; no pressure, gate or byte budget is built")
		return nil, nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.WithDefaults()
	g := &Governor{cfg: c, pressure: &Pressure{}, reg: o.registry(), log: log,
		hardLatch: &Latch{pauseAt: c.PauseAt, resumeAt: c.ResumeAt}}

	used := make(map[string]bool, len(c.Weights))
	hard := 0
	for _, s := range o.sources {
		name := s.Name()
		w, weighted := c.Weights[name]
		if IsHard(s) {
			hard++
			g.pressure.AddHard(s)
			if weighted {
				used[name] = true
				log.Warn("governor: a weight is set for a hard pressure source and is ignored: hard sources are never weighted",
					"key", Section+".weights."+name)
			}
			continue
		}
		if !weighted {
			w = DefaultSoftWeight
		}
		used[name] = true
		g.pressure.AddSoft(s, w)
	}
	names := make([]string, 0, len(c.Weights))
	for name := range c.Weights {
		if !used[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		log.Warn("governor: a weight names no pressure source; check the source's name", "key", Section+".weights."+name)
	}
	if hard == 0 {
		log.Warn("governor: no hard pressure source; the gate and the budget see soft sources and utilisation only. Pass governor.WithMemory(guard)")
	}
	registerPressureGauge(g.reg, g.pressure)
	ceiling := blockCeiling(o.sources, c.MaxBlockFraction, log)
	budgetOpts := []Option{WithMetrics(g.reg), WithLogger(log), WithPressureSignal(g.pressureSignal), WithBlockCeiling(ceiling)}
	if hard > 0 {
		budgetOpts = append(budgetOpts, WithMemoryRisk(g.memoryAtRisk))
	}
	g.budget = NewBudget(c.Profile, c.Budget, budgetOpts...)
	g.gate = g.NewGate(o.actSource, o.act)
	log.Info("governor: self-regulation on", "profile", c.Profile.String(), "pause_at", c.PauseAt, "resume_at", c.ResumeAt,
		"interval", c.Interval.String(), "sources", g.pressure.Len(), "hard_sources", hard,
		"block_ceiling_bytes", ceiling, "budget", g.budget.Config())
	return g, nil
}

// blockCeiling is the budget's block ceiling: the lowest limit of the
// memory guards among sources times fraction (see BlockCeiling), or 0
// when no guard has a limit.
func blockCeiling(sources []Source, fraction float64, log *slog.Logger) int64 {
	var limit int64
	guards := 0
	for _, s := range sources {
		mg, ok := s.(*memory.Guard)
		if !ok {
			continue
		}
		guards++
		if l := mg.Limit(); l > 0 && (limit == 0 || l < limit) {
			limit = l
		}
	}
	if guards > 0 && limit == 0 {
		log.Warn("governor: the memory guard has no limit (memory.enabled is false, or no limit was found); the byte budget keeps its profile's size. Set memory.limit_bytes",
			"key", memory.Section+".limit_bytes")
	}
	return BlockCeiling(limit, fraction)
}

// pressureSignal is the budget's hard-pressure signal: the hard latch
// was engaged at a gate evaluation since the previous Observe, or is
// engaged now, fed the hard level of this moment. Only hard sources count:
// a saturated soft source holds the gates (it brakes intake) but does not
// shrink the budget.
func (g *Governor) pressureSignal() bool {
	held := g.hardLatch.Update(g.pressure.HardLevel())
	return g.pressured.Swap(false) || held
}

// memoryAtRisk is the budget's memory-risk signal: the highest hard ratio
// seen by a gate evaluation since the previous Observe, or sampled now,
// is at or above resume_at. Under it a block found behind does not shrink
// the budget (see Budget).
func (g *Governor) memoryAtRisk() bool {
	peak := math.Float64frombits(g.hardPeak.Swap(0))
	return max(peak, g.pressure.HardLevel()) >= g.cfg.ResumeAt
}

// noteHard records the hard ratio sampled by a gate evaluation: it feeds
// the hard latch, marks the budget's next Observe as pressured when the
// latch is engaged, and raises the peak memoryAtRisk reads.
func (g *Governor) noteHard(hard float64) {
	if g.hardLatch.Update(hard) {
		g.pressured.Store(true)
	}
	for {
		cur := g.hardPeak.Load()
		if hard <= math.Float64frombits(cur) || g.hardPeak.CompareAndSwap(cur, math.Float64bits(hard)) {
			return
		}
	}
}

// NewGate adds a gate for another source, sharing the governor's pressure
// and thresholds: act (nil for none) is decorated with ObserveActuator
// under the label source, and Run evaluates the gate with the others. Use
// one gate per source. On a nil *Governor it returns nil, a gate that is
// always open.
func (g *Governor) NewGate(source string, act Actuator) *Gate {
	if g == nil {
		return nil
	}
	if source == "" {
		source = "inbound"
	}
	// The thresholds were validated by New.
	l := &Latch{pauseAt: g.cfg.PauseAt, resumeAt: g.cfg.ResumeAt}
	obs := ObserveActuator(source, act, WithMetrics(g.reg), WithLogger(g.log), withPressure(g.pressure))
	gt := NewGate(source, g.pressure, l, obs, WithLogger(g.log))
	gt.onEval = g.noteHard
	g.mu.Lock()
	g.gates = append(g.gates, gt)
	g.mu.Unlock()
	return gt
}

func (g *Governor) gateList() []*Gate {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.gates)
}

// Gate returns the governor's own gate (see WithActuator); nil, always
// open, on a nil *Governor.
func (g *Governor) Gate() *Gate {
	if g == nil {
		return nil
	}
	return g.gate
}

// Budget returns the byte budget for the engine's Config.Budget, or nil on
// a nil *Governor, so that RunGoverned runs as Run when self-regulation is
// off. The value is a *Budget.
func (g *Governor) Budget() ByteBudget {
	if g == nil {
		return nil
	}
	return g.budget
}

// Pressure returns the combined pressure (nil on a nil *Governor).
func (g *Governor) Pressure() *Pressure {
	if g == nil {
		return nil
	}
	return g.pressure
}

// Level samples the combined pressure level (0 on a nil *Governor).
func (g *Governor) Level() float64 {
	if g == nil {
		return 0
	}
	return g.pressure.Level()
}

// Config returns the section with defaults applied; the zero Config on a
// nil *Governor.
func (g *Governor) Config() Config {
	if g == nil {
		return Config{}
	}
	return g.cfg
}

// Enabled reports whether self-regulation is on: g is not nil.
func (g *Governor) Enabled() bool { return g != nil }

// Run evaluates every gate at once and then every self_regulation.interval
// until ctx is done, then returns nil. On a nil *Governor it returns nil
// at once. Actuator errors are logged (rate-limited) and retried at the
// next evaluation.
func (g *Governor) Run(ctx context.Context) error {
	if g == nil {
		return nil
	}
	tk := time.NewTicker(g.cfg.Interval)
	defer tk.Stop()
	for {
		for _, gt := range g.gateList() {
			gt.runOnce(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
	}
}

// Stats is the governor's state, for admin endpoints and dashboards.
type Stats struct {
	// Enabled is false for a nil *Governor.
	Enabled bool `json:"enabled"`
	// Pressure is one sampling of the sources.
	Pressure PressureSnapshot `json:"pressure"`
	// Gates lists every gate, the governor's own first.
	Gates []GateStats `json:"gates"`
	// Budget is the byte budget's state.
	Budget BudgetStats `json:"budget"`
}

// Stats samples the pressure and reads the gates and the budget.
func (g *Governor) Stats() Stats {
	if g == nil {
		return Stats{}
	}
	s := Stats{Enabled: true, Pressure: g.pressure.Snapshot(), Budget: g.budget.Stats()}
	for _, gt := range g.gateList() {
		s.Gates = append(s.Gates, gt.Stats())
	}
	return s
}
