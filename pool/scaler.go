package pool

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// ErrScalerRunning is returned by Scaler.Run when another Run of the same
// Scaler is still going. One loop per Scaler is enough.
var ErrScalerRunning = errors.New("pool: scaler is already running; call Run once per Scaler")

// MemoryPressure is a source of the memory pressure ratio: bytes in use
// over the limit, 0 for none, 1 or more at the limit. *memory.Guard
// satisfies it.
type MemoryPressure interface {
	PressureRatio() float64
}

// CPUSampler reports the process's CPU utilisation since its previous call,
// as a share of the CPUs the process may use. *CPUMeter satisfies it. An
// error means no reading this time (ErrCPUBaseline on the first call of a
// CPUMeter); the scaler then holds the target steady.
type CPUSampler interface {
	Sample() (float64, error)
}

// ScalerOption changes how NewScaler builds a Scaler.
type ScalerOption func(*scalerOptions)

type scalerOptions struct {
	mem MemoryPressure
	cpu CPUSampler
}

// WithMemoryPressure wires the memory signal, usually the service's
// *memory.Guard. Without it (or with a nil source) the memory pressure is 0
// and only CPU moves the target.
func WithMemoryPressure(m MemoryPressure) ScalerOption {
	return func(o *scalerOptions) { o.mem = m }
}

// WithCPUSampler replaces the CPU signal. The default is a CPUMeter over
// the process's own CPU time and AvailableCPUs.
func WithCPUSampler(c CPUSampler) ScalerOption {
	return func(o *scalerOptions) { o.cpu = c }
}

// Scaler moves a Pool's target with the load: every scale_interval it
// measures the process's CPU utilisation and the memory pressure, applies
// Decide with the pool's thresholds and bounds, and calls Pool.SetTarget.
// Build it with NewScaler and start Run in its own goroutine; Tick is one
// step, for tests and for callers that drive their own loop. A Scaler is
// safe for concurrent use.
type Scaler struct {
	pool *Pool
	cfg  scaleConfig
	cpu  CPUSampler
	mem  MemoryPressure
	ins  *scalerInstruments

	running atomic.Bool

	mu     sync.Mutex // serialises Tick
	last   ScaleDecision
	ticked bool

	cpuErrLog rateLimit
}

// NewScaler builds a Scaler for p. It reads the scaling keys of the
// worker_pool section p was built with (scaling_enabled, scale_interval,
// grow_below, shrink_above, emergency_above, memory_pressure_cap; New has
// validated them) and reports on p's registry, labelled with p's name. It
// takes the first CPU reading, so the first Tick measures from here. It
// starts no goroutine.
func NewScaler(p *Pool, opts ...ScalerOption) (*Scaler, error) {
	if p == nil {
		return nil, ErrNilPool
	}
	var o scalerOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	s := &Scaler{pool: p, cfg: p.cfg.scale, mem: o.mem, cpu: o.cpu}
	if isNil(s.mem) {
		s.mem = nil
	}
	if isNil(s.cpu) {
		s.cpu = NewCPUMeter(CPUMeterConfig{})
	}
	s.cpuErrLog.every = time.Minute
	s.ins = newScalerInstruments(p.reg, p.name)
	return s, nil
}

// isNil reports whether v is nil or a nil pointer in an interface, which
// would panic on its first method call.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Enabled reports worker_pool.scaling_enabled: whether Run scales.
func (s *Scaler) Enabled() bool { return s.cfg.enabled }

// Interval returns worker_pool.scale_interval with its default applied.
func (s *Scaler) Interval() time.Duration { return s.cfg.interval }

// Thresholds returns the thresholds the Scaler decides with.
func (s *Scaler) Thresholds() Thresholds { return s.cfg.thresholds }

// Last returns the most recent decision and whether there was one.
func (s *Scaler) Last() (ScaleDecision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.ticked
}

// Tick runs one scaling step now and returns its decision: it samples CPU
// and memory, decides from the pool's current target, applies the new
// target with SetTarget, and updates the metrics. A target that moved
// counts one keel_pool_scale_events_total{direction}; a rule that fires at
// the bound it pushes towards moves nothing and counts nothing. Tick works
// whether or not scaling_enabled is set: calling it is an explicit request.
func (s *Scaler) Tick() ScaleDecision {
	s.mu.Lock()
	defer s.mu.Unlock()

	cpu, err := s.cpu.Sample()
	if err != nil {
		cpu = math.NaN() // no reading: steady unless memory caps
		if !errors.Is(err, ErrCPUBaseline) {
			if suppressed, ok := s.cpuErrLog.allow(); ok {
				s.pool.logger().Warn("worker pool scaler cannot read CPU utilisation; holding the target unless memory caps it",
					"pool", s.pool.name, "error", err, "suppressed", suppressed)
			}
		}
	}
	var mem float64
	if s.mem != nil {
		mem = s.mem.PressureRatio()
	}
	st := s.pool.Stats()
	d := Decide(ScaleInput{
		CPU: cpu, Memory: mem,
		Current: st.Target, Min: st.Min, Max: st.Max,
		Thresholds: s.cfg.thresholds,
	})
	if d.Target != st.Target {
		d.Target = s.pool.SetTarget(d.Target)
	}
	s.record(d)
	prev, had := s.last, s.ticked
	s.last, s.ticked = d, true
	s.log(d, prev, had)
	return d
}

func (s *Scaler) record(d ScaleDecision) {
	if !math.IsNaN(d.CPU) {
		s.ins.cpu.Set(d.CPU)
	}
	if !math.IsNaN(d.Memory) {
		s.ins.memory.Set(d.Memory)
	}
	if c, ok := s.ins.events[d.Direction]; ok && d.Changed() {
		c.Inc() // steady has no counter: it never moves the target
	}
}

// log reports a change of target at debug level, and the memory cap
// engaging (warn) and releasing (info) once per edge.
func (s *Scaler) log(d, prev ScaleDecision, had bool) {
	l := s.pool.logger()
	capped, wasCapped := d.Direction == DirectionMemoryCap, had && prev.Direction == DirectionMemoryCap
	switch {
	case capped && !wasCapped:
		l.Warn("worker pool target dropped to min_workers: memory pressure above worker_pool.memory_pressure_cap",
			"pool", s.pool.name, "memory_pressure", d.Memory, "memory_pressure_cap", s.cfg.thresholds.MemoryPressureCap,
			"from", d.From, "to", d.Target)
	case !capped && wasCapped:
		l.Info("worker pool memory pressure back under worker_pool.memory_pressure_cap; CPU drives the target again",
			"pool", s.pool.name, "memory_pressure", d.Memory, "target", d.Target)
	case d.Changed() && l.Enabled(context.Background(), slog.LevelDebug):
		l.Debug("worker pool scaler moved the target",
			"pool", s.pool.name, "direction", string(d.Direction), "from", d.From, "to", d.Target,
			"cpu_utilisation", d.CPU, "memory_pressure", d.Memory)
	}
}

// Run calls Tick every scale_interval until ctx is done, then returns nil.
// The first step comes one interval after Run starts. With
// scaling_enabled: false it returns nil at once without touching the
// target. A second Run of the same Scaler while one is going returns
// ErrScalerRunning. Stopping Run leaves the pool usable at its last target.
func (s *Scaler) Run(ctx context.Context) error {
	if !s.cfg.enabled {
		s.pool.logger().Info("worker pool scaling disabled (worker_pool.scaling_enabled: false); the target stays fixed",
			"pool", s.pool.name, "target", s.pool.Target())
		return nil
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrScalerRunning
	}
	defer s.running.Store(false)
	t := time.NewTicker(s.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if ctx.Err() != nil {
				return nil
			}
			s.Tick()
		}
	}
}
