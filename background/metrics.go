package background

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// sinkMetrics are one Sink's series. Sinks with the same subsystem share
// the collectors and differ by the sink label.
type sinkMetrics struct {
	pushed      prometheus.Counter
	overflow    prometheus.Counter
	dropped     prometheus.Counter
	writes      prometheus.Counter
	writeErrors prometheus.Counter
	flushes     *metrics.CounterVec
	pending     prometheus.Gauge
	writeDur    prometheus.Observer
}

func newSinkMetrics(reg *metrics.Registry, subsystem, name string) *sinkMetrics {
	r := metrics.OrDefault(reg)
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: subsystem, Name: n, Help: help, Unit: unit, Group: subsystem}
	}
	return &sinkMetrics{
		pushed:      r.CounterVec(o("pushed_total", "Items taken into the background sink queue.", ""), "sink").With(name),
		overflow:    r.CounterVec(o("overflow_total", "Items refused because the background sink queue was full; they stayed with the caller.", ""), "sink").With(name),
		dropped:     r.CounterVec(o("dropped_total", "Items taken by the background sink and lost because every write attempt failed.", ""), "sink").With(name),
		writes:      r.CounterVec(o("writes_total", "Batches written by the background sink.", ""), "sink").With(name),
		writeErrors: r.CounterVec(o("write_errors_total", "Failed batch write attempts of the background sink.", ""), "sink").With(name),
		flushes:     r.CounterVec(o("flushes_total", "Durability flushes of the background sink by result (ok, error).", ""), "sink", "result"),
		pending:     r.GaugeVec(o("pending", "Items taken by the background sink and not yet written or dropped.", ""), "sink").With(name),
		writeDur:    r.HistogramVec(o("write_seconds", "Duration of one batch write attempt of the background sink.", "seconds"), metrics.LatencyBuckets, "sink").With(name),
	}
}

// periodicMetrics are one periodic worker's series.
type periodicMetrics struct {
	ticks   *metrics.CounterVec
	tickDur prometheus.Observer
	name    string
}

func newPeriodicMetrics(reg *metrics.Registry, name string) *periodicMetrics {
	r := metrics.OrDefault(reg)
	return &periodicMetrics{
		ticks: r.CounterVec(metrics.Opts{Namespace: "keel", Subsystem: DefaultSubsystem, Name: "periodic_ticks_total",
			Help: "Ticks of a periodic worker by result (ok, error, panic).", Group: DefaultSubsystem}, "worker", "result"),
		tickDur: r.HistogramVec(metrics.Opts{Namespace: "keel", Subsystem: DefaultSubsystem, Name: "periodic_tick_seconds",
			Help: "Duration of one tick of a periodic worker.", Unit: "seconds", Group: DefaultSubsystem}, metrics.LatencyBuckets, "worker").With(name),
		name: name,
	}
}
