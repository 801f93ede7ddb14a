package scaling

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Metric names, for dashboards and the KEDA Prometheus trigger.
const (
	// MetricPressure is the gauge KEDA scales on: the pressure, 0 to 100.
	MetricPressure = "keel_scaling_pressure"
	// MetricComponent is the gauge of each component's signal, 0 to 1,
	// labelled component.
	MetricComponent = "keel_scaling_component"
)

// instruments are a Pressure's series, resolved at New so that Evaluate
// never looks a label up except on a component's first report.
type instruments struct {
	pressure    prometheus.Gauge
	components  *metrics.GaugeVec
	gateCircuit prometheus.Gauge
	gateMemory  prometheus.Gauge
	exprErrors  prometheus.Counter
	evals       map[Method]prometheus.Counter
}

func newInstruments(reg *metrics.Registry) *instruments {
	reg = metrics.OrDefault(reg)
	o := func(name, help string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "scaling", Name: name, Help: help, Group: "scaling"}
	}
	gates := reg.GaugeVec(o("gate",
		"1 while the condition of a hard gate of the scaling pressure holds (circuit_open forces 0, memory forces 100), else 0."), "gate")
	evals := reg.CounterVec(o("evaluations_total",
		"Evaluations of the scaling pressure, by how the value was computed: weighted, expression, fallback (the expression failed) or gate."), "method")
	in := &instruments{
		pressure: reg.Gauge(o("pressure",
			"Scaling pressure for KEDA, 0 to 100: the weighted components or scaling.expression, after the hard gates.")),
		components: reg.GaugeVec(o("component",
			"Signal of one scaling pressure component, 0 to 1 (lag normalised by scaling.lag_full)."), "component"),
		gateCircuit: gates.With(string(GateCircuitOpen)),
		gateMemory:  gates.With(string(GateMemory)),
		exprErrors: reg.Counter(o("expression_errors_total",
			"Evaluations of scaling.expression that failed at run time (error, cost limit, non-finite result); the weighted formula was used instead.")),
	}
	in.evals = make(map[Method]prometheus.Counter, 4)
	for _, m := range []Method{MethodWeighted, MethodExpression, MethodFallback, MethodGate} {
		in.evals[m] = evals.With(string(m))
	}
	return in
}
