package scaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// Gate names a hard gate of the pressure.
type Gate string

// The gates, in order of precedence: the first that holds decides.
const (
	// GateNone: no gate held; the value is the weighted formula or the
	// expression.
	GateNone Gate = "none"
	// GateDisabled: scaling.enabled is false; the value is 0.
	GateDisabled Gate = "disabled"
	// GateCircuitOpen: the downstream circuit is open; the value is 0,
	// because pods added now could not drain either.
	GateCircuitOpen Gate = "circuit_open"
	// GateMemory: the memory signal is at or above scaling.memory_gate;
	// the value is 100.
	GateMemory Gate = "memory"
)

// Method says how the value of an evaluation was computed.
type Method string

// The methods.
const (
	// MethodWeighted: the weighted formula (no expression configured).
	MethodWeighted Method = "weighted"
	// MethodExpression: scaling.expression.
	MethodExpression Method = "expression"
	// MethodFallback: scaling.expression failed at run time and the
	// weighted formula was used; Result.Error says why.
	MethodFallback Method = "fallback"
	// MethodGate: a gate decided the value; Result.Gate says which.
	MethodGate Method = "gate"
)

// Result is one evaluation of the pressure, as served on /scaling/pressure.
type Result struct {
	// Value is the pressure, in [0,100].
	Value float64 `json:"value"`
	// Method says how Value was computed.
	Method Method `json:"method"`
	// Gate is the gate that decided Value, or GateNone.
	Gate Gate `json:"gate"`
	// GatesHeld lists every gate whose condition held, in precedence
	// order; Gate is the first of them. It shows, for example, that the
	// memory gate held but the open circuit won.
	GatesHeld []Gate `json:"gates_held"`
	// Weighted is the weighted formula's value, in [0,100], whatever
	// decided Value.
	Weighted float64 `json:"weighted"`
	// Expression is scaling.expression, if configured.
	Expression string `json:"expression,omitempty"`
	// Error is the run-time error of the expression when Method is
	// MethodFallback.
	Error string `json:"error,omitempty"`
	// CircuitOpen reports the downstream circuit state used.
	CircuitOpen bool `json:"circuit_open"`
	// MemoryGate is the threshold of the memory gate.
	MemoryGate float64 `json:"memory_gate"`
	// Components lists every component, built-in first, then custom ones
	// in registration order.
	Components []ComponentValue `json:"components"`
	// EvaluatedAt is when the evaluation ran.
	EvaluatedAt time.Time `json:"evaluated_at"`
}

// ComponentValue is one component in a Result.
type ComponentValue struct {
	// Name is the component name (the label of keel_scaling_component).
	Name string `json:"name"`
	// Custom is true for a component registered with WithCustom.
	Custom bool `json:"custom,omitempty"`
	// Reported is false when the application gave no value (never set,
	// set to NaN, or its source returned NaN or panicked); such a
	// component is left out of the weighted formula and is 0 in the
	// expression.
	Reported bool `json:"reported"`
	// Raw is the value as reported (for lag, in messages); 0 when not
	// reported; infinities are shown as ±math.MaxFloat64.
	Raw float64 `json:"raw"`
	// Value is the signal in [0,1] (lag divided by scaling.lag_full).
	Value float64 `json:"value"`
	// Weight is the configured weight.
	Weight float64 `json:"weight"`
	// Share is the component's part of the weighted formula in this
	// evaluation: Weight over the sum of the weights of the reported
	// components; 0 when not reported or when Weight is 0.
	Share float64 `json:"share"`
	// Contribution is 100 × Share × Value, its points in Weighted.
	Contribution float64 `json:"contribution"`
}

var nanBits = math.Float64bits(math.NaN())

// component is one named signal.
type component struct {
	name   string
	custom bool
	lag    bool
	weight float64
	raw    atomic.Uint64 // float64 bits; NaN = not reported
	src    atomic.Pointer[func() float64]
	gauge  prometheus.Gauge // created on the first report, under evalMu
}

// Option configures New.
type Option func(*options)

type options struct {
	metrics    *metrics.Registry
	logger     *slog.Logger
	clock      func() time.Time
	customs    []customSpec
	sources    []sourceSpec
	circuitSrc func() bool
	costLimit  uint64
}

type customSpec struct {
	name   string
	weight float64
}

type sourceSpec struct {
	name string
	f    func() float64
}

// WithMetrics sets the registry of the keel_scaling_* metrics. nil (the
// default) means metrics.Default().
func WithMetrics(r *metrics.Registry) Option { return func(o *options) { o.metrics = r } }

// WithLogger sets the logger. nil (the default) means slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces time.Now for the evaluation time (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithCustom registers a custom component: a signal in [0,1] named name
// (1 to 32 lower-case letters, digits and underscores, starting with a
// letter; not a built-in name nor max, min, abs, clamp or a CEL keyword)
// with a default weight (scaling.weights.<name> overrides it). It becomes a
// label value of keel_scaling_component and a variable of the expression.
// At most MaxCustomComponents may be registered.
func WithCustom(name string, weight float64) Option {
	return func(o *options) { o.customs = append(o.customs, customSpec{name, weight}) }
}

// WithSource registers f as the source of the signal name at build time;
// see Pressure.Source.
func WithSource(name string, f func() float64) Option {
	return func(o *options) { o.sources = append(o.sources, sourceSpec{name, f}) }
}

// WithCircuitSource registers f as the source of the downstream circuit
// state at build time; see Pressure.CircuitSource.
func WithCircuitSource(f func() bool) Option { return func(o *options) { o.circuitSrc = f } }

// Pressure computes the 0–100 scaling pressure KEDA scales on from named
// component signals the application reports. Set, Source, SetCircuitOpen
// and CircuitSource are safe for concurrent use and lock-free; Evaluate
// may be called concurrently with them (evaluations run one at a time).
type Pressure struct {
	enabled    bool
	memoryGate float64
	lagFull    float64
	interval   time.Duration
	comps      []*component
	index      map[string]int
	known      []string
	expr       *expression

	circuit    atomic.Bool
	circuitSrc atomic.Pointer[func() bool]

	clock  func() time.Time
	logger *slog.Logger
	exprLog,
	srcLog logging.Sampler
	inst *instruments

	evalMu sync.Mutex
	vals   []float64 // scratch for the expression, under evalMu
	last   atomic.Pointer[Result]
}

// logEvery is the shortest time between two log lines about the same kind
// of run-time failure (expression errors, panicking sources).
const logEvery = time.Minute

// New builds a Pressure from the scaling section and the options. It
// returns an error (matching ErrInvalidConfig, ErrInvalidExpression or
// ErrInvalidOption) for a bad section, an expression that does not compile
// to a number over the known signals, a weight for an unknown component,
// weights that are all 0, or a bad option. It starts nothing; call Run for
// the periodic evaluation.
func New(cfg Config, opts ...Option) (*Pressure, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{costLimit: ExpressionCostLimit}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	d := cfg.WithDefaults()
	p := &Pressure{
		enabled:    d.IsEnabled(),
		memoryGate: d.MemoryGate,
		lagFull:    d.LagFull,
		interval:   d.Interval,
		index:      make(map[string]int),
		clock:      o.clock,
		logger:     o.logger,
	}
	if p.clock == nil {
		p.clock = time.Now
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	p.exprLog.Interval, p.srcLog.Interval = logEvery, logEvery

	add := func(name string, custom bool, weight float64) {
		c := &component{name: name, custom: custom, lag: name == Lag, weight: weight}
		c.raw.Store(nanBits)
		p.index[name] = len(p.comps)
		p.comps = append(p.comps, c)
		p.known = append(p.known, name)
	}
	for _, b := range builtins {
		add(b.name, false, d.Weights[b.name])
	}
	if len(o.customs) > MaxCustomComponents {
		return nil, fmt.Errorf("scaling: %d custom components registered, more than the %d allowed; merge some: %w",
			len(o.customs), MaxCustomComponents, ErrInvalidOption)
	}
	for _, cs := range o.customs {
		if err := checkComponentName(cs.name); err != nil {
			return nil, fmt.Errorf("scaling: WithCustom: %w: %w", err, ErrInvalidOption)
		}
		if _, dup := p.index[cs.name]; dup {
			return nil, fmt.Errorf("scaling: WithCustom(%q): the component exists already (built-in or registered twice); pick another name: %w", cs.name, ErrInvalidOption)
		}
		if math.IsNaN(cs.weight) || math.IsInf(cs.weight, 0) || cs.weight < 0 {
			return nil, fmt.Errorf("scaling: WithCustom(%q, %v): the weight must be a finite number >= 0: %w", cs.name, cs.weight, ErrInvalidOption)
		}
		w := cs.weight
		if v, ok := cfg.Weights[cs.name]; ok {
			w = v
		}
		add(cs.name, true, w)
	}
	var errs []error
	keys := make([]string, 0, len(cfg.Weights))
	for k := range cfg.Weights {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, ok := p.index[k]; !ok {
			errs = append(errs, &ConfigError{
				Key: Section + ".weights." + k,
				Msg: fmt.Sprintf("%s.weights.%s names no component (known: %v); fix the name, or register the custom component with scaling.WithCustom",
					Section, k, p.known),
			})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sum := 0.0
	for _, c := range p.comps {
		sum += c.weight
	}
	if sum <= 0 {
		return nil, &ConfigError{
			Key: Section + ".weights",
			Msg: Section + ".weights gives every component a weight of 0; give at least one component a weight > 0 (the weighted formula is also the fallback of scaling.expression)",
		}
	}
	if cfg.Expression != "" {
		x, err := compileExpression(cfg.Expression, p.known, o.costLimit)
		if err != nil {
			return nil, err
		}
		p.expr = x
		p.vals = make([]float64, len(p.comps))
	}
	for _, s := range o.sources {
		if err := p.Source(s.name, s.f); err != nil {
			return nil, fmt.Errorf("scaling: WithSource: %w: %w", err, ErrInvalidOption)
		}
	}
	if o.circuitSrc != nil {
		p.CircuitSource(o.circuitSrc)
	}
	p.inst = newInstruments(o.metrics)
	return p, nil
}

// Interval returns the evaluation period of Run (scaling.interval with its
// default applied).
func (p *Pressure) Interval() time.Duration {
	if p == nil {
		return 0
	}
	return p.interval
}

// Enabled reports scaling.enabled.
func (p *Pressure) Enabled() bool { return p != nil && p.enabled }

// Components returns the names of the components, built-in first, then
// custom ones in registration order.
func (p *Pressure) Components() []string {
	if p == nil {
		return nil
	}
	return slices.Clone(p.known)
}

// Set reports the signal name. For lag, v is the consumer lag in messages
// (normalised by scaling.lag_full); for every other component it is a
// fraction, clamped to [0,1] (negative values count as 0). NaN clears the
// component: it is then not reported, and left out of the weighted
// formula. A name that is neither built-in nor registered with WithCustom
// is refused with an *UnknownSignalError (ErrUnknownSignal); the value is
// then dropped. A source registered for name overwrites the value at the
// next evaluation.
func (p *Pressure) Set(name string, v float64) error {
	if p == nil {
		return ErrNilPressure
	}
	c, err := p.lookup(name)
	if err != nil {
		return err
	}
	c.raw.Store(math.Float64bits(v))
	return nil
}

// Source registers f, sampled at every evaluation, as the source of the
// signal name (same units as Set; NaN means "no reading now"). A panic in f
// is recovered, logged (rate-limited) and counts as no reading. A nil f
// removes the source; the last value stays until the next Set. Unknown
// names are refused as by Set.
func (p *Pressure) Source(name string, f func() float64) error {
	if p == nil {
		return ErrNilPressure
	}
	c, err := p.lookup(name)
	if err != nil {
		return err
	}
	if f == nil {
		c.src.Store(nil)
		return nil
	}
	c.src.Store(&f)
	return nil
}

func (p *Pressure) lookup(name string) (*component, error) {
	i, ok := p.index[name]
	if !ok {
		return nil, &UnknownSignalError{Name: name, Known: slices.Clone(p.known)}
	}
	return p.comps[i], nil
}

// SetCircuitOpen reports the state of the downstream circuit breaker. While
// it is open the pressure is 0: pods added now could not drain either.
func (p *Pressure) SetCircuitOpen(open bool) {
	if p != nil {
		p.circuit.Store(open)
	}
}

// CircuitSource registers f, sampled at every evaluation, as the source of
// the circuit state (it replaces SetCircuitOpen's value). A panic in f is
// recovered and logged, and the last known state is kept. nil removes it.
func (p *Pressure) CircuitSource(f func() bool) {
	if p == nil {
		return
	}
	if f == nil {
		p.circuitSrc.Store(nil)
		return
	}
	p.circuitSrc.Store(&f)
}

// Value returns the pressure of the last evaluation (0 before the first).
func (p *Pressure) Value() float64 {
	if p == nil {
		return 0
	}
	if r := p.last.Load(); r != nil {
		return r.Value
	}
	return 0
}

// Last returns the last evaluation, and false before the first.
func (p *Pressure) Last() (Result, bool) {
	if p == nil {
		return Result{}, false
	}
	r := p.last.Load()
	if r == nil {
		return Result{}, false
	}
	out := *r
	out.GatesHeld = slices.Clone(r.GatesHeld)
	out.Components = slices.Clone(r.Components)
	return out, true
}

// Evaluate samples the sources, computes the pressure, publishes it (the
// gauges keel_scaling_pressure and keel_scaling_component, Value, Last and
// the HTTP handler) and returns it. Run calls it every interval; call it
// directly in tests or to refresh on demand.
//
// The gates come first, in this order: disabled → 0; circuit open → 0;
// memory at or above scaling.memory_gate → 100. The open circuit wins over
// the memory gate: while the downstream cannot take data, new pods would
// only fill up too, and relieving memory is the job of the pod's own
// backpressure, not of more replicas. Then scaling.expression if
// configured (clamped to [0,100]; on a run-time error the weighted formula,
// counted in keel_scaling_expression_errors_total and logged at most once a
// minute), else the weighted formula:
//
//	100 × Σ weight_i × signal_i / Σ weight_i
//
// over the components that are reported and have a weight above 0.
func (p *Pressure) Evaluate() Result {
	if p == nil {
		return Result{Method: MethodGate, Gate: GateDisabled, GatesHeld: []Gate{GateDisabled}}
	}
	return p.evaluate(context.Background())
}

func (p *Pressure) evaluate(ctx context.Context) Result {
	p.evalMu.Lock()
	defer p.evalMu.Unlock()

	now := p.clock()
	r := Result{
		MemoryGate:  p.memoryGate,
		Expression:  p.exprSource(),
		Components:  make([]ComponentValue, len(p.comps)),
		EvaluatedAt: now,
	}
	// Sample, normalise, and sum the weights of the reported components.
	sumW := 0.0
	memory := math.NaN()
	for i, c := range p.comps {
		raw := p.sample(c)
		cv := ComponentValue{Name: c.name, Custom: c.custom, Weight: c.weight}
		if !math.IsNaN(raw) {
			v := raw
			if c.lag {
				v = raw / p.lagFull
			}
			cv.Reported, cv.Raw, cv.Value = true, finite(raw), clamp01(v)
			if c.weight > 0 {
				sumW += c.weight
			}
			if c.name == Memory {
				memory = cv.Value
			}
		}
		r.Components[i] = cv
	}
	for i := range r.Components {
		cv := &r.Components[i]
		if cv.Reported && cv.Weight > 0 {
			cv.Share = cv.Weight / sumW
			cv.Contribution = 100 * cv.Share * cv.Value
			r.Weighted += cv.Contribution
		}
	}
	r.Weighted = clampPct(r.Weighted)
	r.CircuitOpen = p.sampleCircuit()

	memHeld := !math.IsNaN(memory) && memory >= p.memoryGate
	if !p.enabled {
		r.GatesHeld = append(r.GatesHeld, GateDisabled)
	}
	if r.CircuitOpen {
		r.GatesHeld = append(r.GatesHeld, GateCircuitOpen)
	}
	if memHeld {
		r.GatesHeld = append(r.GatesHeld, GateMemory)
	}
	if len(r.GatesHeld) == 0 {
		r.GatesHeld = []Gate{}
	}

	switch {
	case !p.enabled:
		r.Method, r.Gate, r.Value = MethodGate, GateDisabled, 0
	case r.CircuitOpen:
		r.Method, r.Gate, r.Value = MethodGate, GateCircuitOpen, 0
	case memHeld:
		r.Method, r.Gate, r.Value = MethodGate, GateMemory, 100
	case p.expr != nil:
		r.Gate = GateNone
		for i := range r.Components {
			p.vals[i] = r.Components[i].Value
		}
		v, err := p.expr.eval(ctx, p.vals)
		if err != nil {
			r.Method, r.Value, r.Error = MethodFallback, r.Weighted, err.Error()
			p.inst.exprErrors.Inc()
			if ok, suppressed := p.exprLog.AllowAt(now); ok {
				p.logger.Warn("scaling: expression failed; using the weighted formula",
					"error", err.Error(), "expression", truncate(p.expr.src, 200),
					"weighted", r.Weighted, "suppressed", suppressed)
			}
		} else {
			r.Method, r.Value = MethodExpression, clampPct(v)
		}
	default:
		r.Method, r.Gate, r.Value = MethodWeighted, GateNone, r.Weighted
	}
	p.publish(&r)
	return r
}

func (p *Pressure) exprSource() string {
	if p.expr == nil {
		return ""
	}
	return p.expr.src
}

// sample returns the component's raw value, reading its source if any.
func (p *Pressure) sample(c *component) float64 {
	f := c.src.Load()
	if f == nil {
		return math.Float64frombits(c.raw.Load())
	}
	v := p.callSource(c.name, *f)
	c.raw.Store(math.Float64bits(v))
	return v
}

func (p *Pressure) callSource(name string, f func() float64) (v float64) {
	defer func() {
		if rec := recover(); rec != nil {
			v = math.NaN()
			if ok, suppressed := p.srcLog.Allow(); ok {
				p.logger.Error("scaling: signal source panicked; the component counts as not reported",
					"component", name, "panic", fmt.Sprint(rec), "suppressed", suppressed)
			}
		}
	}()
	return f()
}

func (p *Pressure) sampleCircuit() bool {
	f := p.circuitSrc.Load()
	if f == nil {
		return p.circuit.Load()
	}
	func() {
		defer func() {
			if rec := recover(); rec != nil {
				if ok, suppressed := p.srcLog.Allow(); ok {
					p.logger.Error("scaling: circuit source panicked; keeping the last known circuit state",
						"panic", fmt.Sprint(rec), "circuit_open", p.circuit.Load(), "suppressed", suppressed)
				}
			}
		}()
		p.circuit.Store((*f)())
	}()
	return p.circuit.Load()
}

// publish sets the gauges and stores r as the last result. Called under
// evalMu.
func (p *Pressure) publish(r *Result) {
	p.inst.pressure.Set(r.Value)
	for i, c := range p.comps {
		cv := r.Components[i]
		if !cv.Reported && c.gauge == nil {
			continue
		}
		if c.gauge == nil {
			c.gauge = p.inst.components.With(c.name)
		}
		c.gauge.Set(cv.Value)
	}
	p.inst.gateCircuit.Set(b2f(r.CircuitOpen))
	p.inst.gateMemory.Set(b2f(slices.Contains(r.GatesHeld, GateMemory)))
	p.inst.evals[r.Method].Inc()
	stored := *r
	stored.GatesHeld = slices.Clone(r.GatesHeld)
	stored.Components = slices.Clone(r.Components)
	p.last.Store(&stored) // never mutated; Last hands out copies
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// clampPct maps v into [0,100].
func clampPct(v float64) float64 {
	switch {
	case math.IsNaN(v) || v <= 0:
		return 0
	case v >= 100:
		return 100
	}
	return v
}

// finite replaces infinities by the largest finite value of the same sign,
// so that a Result always encodes as JSON.
func finite(v float64) float64 {
	switch {
	case math.IsInf(v, 1):
		return math.MaxFloat64
	case math.IsInf(v, -1):
		return -math.MaxFloat64
	}
	return v
}
