package governor

import (
	"log/slog"

	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

// Option configures New, NewBudget, NewGate and ObserveActuator. Each
// takes the options that concern it and ignores
// the others.
type Option func(*options)

type options struct {
	reg       *metrics.Registry
	log       *slog.Logger
	sources   []Source
	actSource string
	act       Actuator
	pressured func() bool
	atRisk    func() bool
	pressure  *Pressure
	ceiling   int64
}

func collect(opts []Option) options {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

func (o *options) logger() *slog.Logger {
	if o.log != nil {
		return o.log
	}
	return slog.Default()
}

func (o *options) registry() *metrics.Registry { return metrics.OrDefault(o.reg) }

// WithMetrics registers the keel_self_regulation_* metrics on r instead of
// metrics.Default(). A nil r means the default.
func WithMetrics(r *metrics.Registry) Option { return func(o *options) { o.reg = r } }

// WithLogger logs through l instead of slog.Default(). A nil l means the
// default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMemory adds the memory guard as a pressure source of New: the hard
// source (while the guard is enabled and has a limit). A nil guard is
// ignored.
//
// The guard's limit also sets the block ceiling of New's budget: its
// start, floor and ceiling are capped at limit ×
// self_regulation.max_block_fraction (see BlockCeiling); with several
// guards, the lowest limit. A guard without a limit (disabled, or no limit
// found) sets no ceiling.
func WithMemory(g *memory.Guard) Option {
	return func(o *options) {
		if g != nil {
			o.sources = append(o.sources, g)
		}
	}
}

// WithSource adds a pressure source to New: hard when it implements
// HardSource and says so, otherwise soft with the weight
// self_regulation.weights gives its name (DefaultSoftWeight when absent).
// A nil source is ignored.
func WithSource(s Source) Option {
	return func(o *options) {
		if s != nil {
			o.sources = append(o.sources, s)
		}
	}
}

// WithActuator gives the Governor's own gate (Governor.Gate) an actuator
// and the source label of its metrics and logs, for example a Kafka
// consumer's pause and resume under "kafka". Without it the gate has no
// actuator (NoopActuator) and the label "inbound": receivers consult it
// through Admit, Wait or Watch, or are wrapped by package transport/gated.
func WithActuator(source string, a Actuator) Option {
	return func(o *options) { o.actSource, o.act = source, a }
}

// WithBlockCeiling caps the start_bytes, min_bytes and max_bytes of
// NewBudget's envelope, overrides included, at n bytes; n <= 0 means no
// cap. New derives it from the memory guard (see WithMemory and
// BlockCeiling) and ignores this option.
func WithBlockCeiling(n int64) Option { return func(o *options) { o.ceiling = n } }

// WithPressureSignal gives NewBudget the hard-pressure signal: when f
// returns true at an Observe, the budget decreases whatever the
// utilisation says. New wires its own signal (see Governor).
func WithPressureSignal(f func() bool) Option { return func(o *options) { o.pressured = f } }

// WithMemoryRisk gives NewBudget the memory-risk signal: with it, a
// block that finds the pipeline behind shrinks the budget only when f
// returns true at its Observe, and grows it by a step otherwise. Without
// it every behind block shrinks the budget. New wires its own signal
// when it has a hard source: the hard level at or above
// self_regulation.resume_at (see Budget).
func WithMemoryRisk(f func() bool) Option { return func(o *options) { o.atRisk = f } }

// withPressure lets ObserveActuator log the pressure breakdown at each
// edge.
func withPressure(p *Pressure) Option { return func(o *options) { o.pressure = p } }
