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
	v := registerSinkVecs(metrics.OrDefault(reg), subsystem)
	return &sinkMetrics{
		pushed:      v.pushed.With(name),
		overflow:    v.overflow.With(name),
		dropped:     v.dropped.With(name),
		writes:      v.writes.With(name),
		writeErrors: v.writeErrors.With(name),
		flushes:     v.flushes,
		pending:     v.pending.With(name),
		writeDur:    v.writeDur.With(name),
	}
}

// RegisterSinkMetrics registers the metrics of the Sinks whose
// Config.Subsystem is subsystem ("" means DefaultSubsystem) on reg (nil
// means metrics.Default()) without building a Sink, so that a metrics
// manifest lists them before any Sink exists. New registers them too.
func RegisterSinkMetrics(reg *metrics.Registry, subsystem string) {
	if subsystem == "" {
		subsystem = DefaultSubsystem
	}
	registerSinkVecs(metrics.OrDefault(reg), subsystem)
}

// RegisterPeriodicMetrics registers the metrics of periodic workers on reg
// (nil means metrics.Default()) without starting one. Periodic.Start
// registers them too.
func RegisterPeriodicMetrics(reg *metrics.Registry) { registerPeriodicVecs(metrics.OrDefault(reg)) }

// sinkVecs are the vectors of the Sinks of one subsystem, labelled by sink.
type sinkVecs struct {
	pushed, overflow, dropped, writes, writeErrors, flushes *metrics.CounterVec
	pending                                                 *metrics.GaugeVec
	writeDur                                                *metrics.HistogramVec
}

func registerSinkVecs(r *metrics.Registry, subsystem string) sinkVecs {
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: subsystem, Name: n, Help: help, Unit: unit, Group: subsystem}
	}
	return sinkVecs{
		pushed:      r.CounterVec(o("pushed_total", "Items taken into the background sink queue.", ""), "sink"),
		overflow:    r.CounterVec(o("overflow_total", "Items refused because the background sink queue was full; they stayed with the caller.", ""), "sink"),
		dropped:     r.CounterVec(o("dropped_total", "Items taken by the background sink and lost because every write attempt failed.", ""), "sink"),
		writes:      r.CounterVec(o("writes_total", "Batches written by the background sink.", ""), "sink"),
		writeErrors: r.CounterVec(o("write_errors_total", "Failed batch write attempts of the background sink.", ""), "sink"),
		flushes:     r.CounterVec(o("flushes_total", "Durability flushes of the background sink by result (ok, error).", ""), "sink", "result"),
		pending:     r.GaugeVec(o("pending", "Items taken by the background sink and not yet written or dropped.", ""), "sink"),
		writeDur:    r.HistogramVec(o("write_seconds", "Duration of one batch write attempt of the background sink.", "seconds"), metrics.LatencyBuckets, "sink"),
	}
}

// periodicMetrics are one periodic worker's series.
type periodicMetrics struct {
	ticks   *metrics.CounterVec
	tickDur prometheus.Observer
	name    string
}

func newPeriodicMetrics(reg *metrics.Registry, name string) *periodicMetrics {
	ticks, tickDur := registerPeriodicVecs(metrics.OrDefault(reg))
	return &periodicMetrics{ticks: ticks, tickDur: tickDur.With(name), name: name}
}

func registerPeriodicVecs(r *metrics.Registry) (ticks *metrics.CounterVec, tickDur *metrics.HistogramVec) {
	ticks = r.CounterVec(metrics.Opts{Namespace: "keel", Subsystem: DefaultSubsystem, Name: "periodic_ticks_total",
		Help: "Ticks of a periodic worker by result (ok, error, panic).", Group: DefaultSubsystem}, "worker", "result")
	tickDur = r.HistogramVec(metrics.Opts{Namespace: "keel", Subsystem: DefaultSubsystem, Name: "periodic_tick_seconds",
		Help: "Duration of one tick of a periodic worker.", Unit: "seconds", Group: DefaultSubsystem}, metrics.LatencyBuckets, "worker")
	return ticks, tickDur
}
