package governor

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// ObserveActuator decorates inner so that each edge is logged and
// counted under the source label:
//
//   - a successful Pause sets keel_self_regulation_inbound_paused{source}
//     to 1, increments keel_self_regulation_inbound_pauses_total{source}
//     and logs a warning "inbound paused under pressure";
//   - a successful Resume sets the gauge to 0 and logs "inbound resumed";
//   - a failed call increments
//     keel_self_regulation_actuator_errors_total{source,op} and logs a
//     warning; the error is returned unchanged.
//
// The gate calls the actuator on edges only, so the metrics move on edges
// only. A nil inner is a NoopActuator. It takes WithMetrics and
// WithLogger.
func ObserveActuator(source string, inner Actuator, opts ...Option) Actuator {
	o := collect(opts)
	if inner == nil {
		inner = NoopActuator{}
	}
	if source == "" {
		source = "inbound"
	}
	m := newGateInstruments(o.registry())
	return &observedActuator{
		source:     source,
		inner:      inner,
		log:        o.logger(),
		pressure:   o.pressure,
		paused:     m.paused.With(source),
		pauses:     m.pauses.With(source),
		pauseErrs:  m.errors.With(source, "pause"),
		resumeErrs: m.errors.With(source, "resume"),
	}
}

type observedActuator struct {
	source     string
	inner      Actuator
	log        *slog.Logger
	pressure   *Pressure
	paused     prometheus.Gauge
	pauses     prometheus.Counter
	pauseErrs  prometheus.Counter
	resumeErrs prometheus.Counter
}

func (a *observedActuator) Pause(ctx context.Context) error {
	if err := a.inner.Pause(ctx); err != nil {
		a.pauseErrs.Inc()
		a.log.Warn("governor: inbound pause failed; the gate retries at its next evaluation",
			"source", a.source, "error", err.Error())
		return err
	}
	a.paused.Set(1)
	a.pauses.Inc()
	a.log.Warn("governor: inbound paused under pressure", a.attrs()...)
	return nil
}

func (a *observedActuator) Resume(ctx context.Context) error {
	if err := a.inner.Resume(ctx); err != nil {
		a.resumeErrs.Inc()
		a.log.Warn("governor: inbound resume failed; the gate retries at its next evaluation",
			"source", a.source, "error", err.Error())
		return err
	}
	a.paused.Set(0)
	a.log.Info("governor: inbound resumed", a.attrs()...)
	return nil
}

// attrs describes the source and, when the pressure is known, the level
// and the source that contributes most to it.
func (a *observedActuator) attrs() []any {
	attrs := []any{"source", a.source}
	if a.pressure == nil {
		return attrs
	}
	s := a.pressure.Snapshot()
	attrs = append(attrs, "level", s.Level, "hard_max", s.HardMax, "soft_max", s.SoftMax)
	top, best := "", -1.0
	for _, src := range s.Sources {
		if src.Effective > best {
			top, best = src.Name, src.Effective
		}
	}
	if top != "" {
		attrs = append(attrs, "top_source", top)
	}
	return attrs
}
