package governor_test

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// The governor's collectors, looked up the way the package registers them:
// registration is idempotent, so asking again returns the same collector.
func o(name string) metrics.Opts {
	return metrics.Opts{Namespace: "keel", Subsystem: "self_regulation", Name: name, Help: "x", Group: "self_regulation"}
}

func paused(reg *metrics.Registry, src string) prometheus.Gauge {
	return reg.GaugeVec(o("inbound_paused"), "source").With(src)
}

func pausesTotal(reg *metrics.Registry, src string) prometheus.Counter {
	return reg.CounterVec(o("inbound_pauses_total"), "source").With(src)
}

func actuatorErrors(reg *metrics.Registry, src, op string) prometheus.Counter {
	return reg.CounterVec(o("actuator_errors_total"), "source", "op").With(src, op)
}

func budgetGauge(reg *metrics.Registry) prometheus.Gauge { return reg.Gauge(o("byte_budget_bytes")) }

func blockGauge(reg *metrics.Registry) prometheus.Gauge { return reg.Gauge(o("recv_block_bytes")) }

func decreases(reg *metrics.Registry, reason string) prometheus.Counter {
	return reg.CounterVec(o("byte_budget_decreases_total"), "reason").With(reason)
}
