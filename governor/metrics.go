package governor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Subsystem is the metric subsystem of the governor:
// keel_self_regulation_*.
const Subsystem = "self_regulation"

func opts(name, help, unit string) metrics.Opts {
	return metrics.Opts{Namespace: "keel", Subsystem: Subsystem, Name: name, Help: help, Unit: unit, Group: Subsystem}
}

type gateInstruments struct {
	paused *metrics.GaugeVec
	pauses *metrics.CounterVec
	errors *metrics.CounterVec
}

func newGateInstruments(reg *metrics.Registry) gateInstruments {
	return gateInstruments{
		paused: reg.GaugeVec(opts("inbound_paused",
			"1 while the inbound gate of the source holds intake under pressure, else 0.", ""), "source"),
		pauses: reg.CounterVec(opts("inbound_pauses_total",
			"Rising edges of the inbound gate: times the source was paused under pressure.", ""), "source"),
		errors: reg.CounterVec(opts("actuator_errors_total",
			"Failed pause or resume calls of a source's actuator; the gate retries at its next evaluation.", ""), "source", "op"),
	}
}

type budgetInstruments struct {
	bytes     prometheus.Gauge
	block     prometheus.Gauge
	decreases *metrics.CounterVec
}

func newBudgetInstruments(reg *metrics.Registry) budgetInstruments {
	return budgetInstruments{
		bytes: reg.Gauge(opts("byte_budget_bytes",
			"Current AIMD byte budget: the byte cap of the next governed receive and the target size of its sub-blocks.", "bytes")),
		block: reg.Gauge(opts("recv_block_bytes",
			"Payload bytes of the last block the byte budget observed.", "bytes")),
		decreases: reg.CounterVec(opts("byte_budget_decreases_total",
			"Multiplicative decreases of the byte budget, by reason: behind (utilisation above target_rho while memory is at risk) or pressure (hard memory pressure at or above pause_at, held until resume_at).", ""), "reason"),
	}
}

func registerPressureGauge(reg *metrics.Registry, p *Pressure) {
	reg.GaugeFunc(opts("pressure_ratio",
		"Combined pressure level in [0, 1]: the highest hard source ratio or weighted soft source ratio.", "ratio"), p.Level)
}
