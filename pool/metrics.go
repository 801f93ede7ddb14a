package pool

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// itemDurationBuckets are the buckets of keel_pool_item_duration_seconds,
// from 1 µs (a parse) to 30 s (a slow call in Go or FanOut).
var itemDurationBuckets = []float64{1e-6, 5e-6, 25e-6, 1e-4, 5e-4, 2.5e-3, 0.01, 0.05, 0.25, 1, 5, 30}

// instruments are one pool's series, resolved once at New so that the hot
// path never looks a label up.
type instruments struct {
	target     prometheus.Gauge
	saturation prometheus.Gauge
	active     prometheus.Gauge
	min        prometheus.Gauge
	max        prometheus.Gauge
	items      prometheus.Counter
	errors     prometheus.Counter
	panics     prometheus.Counter
	timeouts   prometheus.Counter
	duration   prometheus.Observer
}

func newInstruments(reg *metrics.Registry, name string) *instruments {
	reg = metrics.OrDefault(reg)
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "pool", Name: n, Help: help, Unit: unit, Group: "pool"}
	}
	return &instruments{
		target: reg.GaugeVec(o("target_workers",
			"Concurrency target of the worker pool: the most items it runs at once.", ""), "pool").With(name),
		saturation: reg.GaugeVec(o("saturation_ratio",
			"Concurrency target of the worker pool over its max_workers: 1 means the scaler has no room left to grow.", "ratio"), "pool").With(name),
		active: reg.GaugeVec(o("active_workers",
			"Worker slots of the pool in use now (items running).", ""), "pool").With(name),
		min: reg.GaugeVec(o("min_workers",
			"Lowest concurrency target the pool accepts (worker_pool.min_workers).", ""), "pool").With(name),
		max: reg.GaugeVec(o("max_workers",
			"Highest concurrency target the pool accepts (worker_pool.max_workers).", ""), "pool").With(name),
		items: reg.CounterVec(o("items_total",
			"Items the pool ran (Map, Go and FanOut), whatever their outcome.", ""), "pool").With(name),
		errors: reg.CounterVec(o("item_errors_total",
			"Items that returned an error, panicked or timed out.", ""), "pool").With(name),
		panics: reg.CounterVec(o("panics_total",
			"Items whose function panicked; the panic became the item's error.", ""), "pool").With(name),
		timeouts: reg.CounterVec(o("timeouts_total",
			"Items of Go or FanOut that ran past worker_pool.item_timeout.", ""), "pool").With(name),
		duration: reg.HistogramVec(o("item_duration_seconds",
			"Run time of one item. Map times one item per chunk (a sample); Go and FanOut time every item.", "seconds"),
			itemDurationBuckets, "pool").With(name),
	}
}

// scalerInstruments are a Scaler's series, on its pool's registry and
// labelled with its pool's name. Every direction's event counter is
// created at zero so that the series exist before the first event.
type scalerInstruments struct {
	cpu    prometheus.Gauge
	memory prometheus.Gauge
	events map[Direction]prometheus.Counter
}

func newScalerInstruments(reg *metrics.Registry, name string) *scalerInstruments {
	reg = metrics.OrDefault(reg)
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "pool", Name: n, Help: help, Unit: unit, Group: "pool"}
	}
	ins := &scalerInstruments{
		cpu: reg.GaugeVec(o("cpu_utilisation_ratio",
			"CPU utilisation of the process over the last scaling window, as a share of the CPUs it may use (cgroup quota, else GOMAXPROCS).", "ratio"),
			"pool").With(name),
		memory: reg.GaugeVec(o("memory_utilisation_ratio",
			"Memory pressure ratio the scaler saw at its last step (0 when no memory source is wired).", "ratio"),
			"pool").With(name),
		events: make(map[Direction]prometheus.Counter, 4),
	}
	events := reg.CounterVec(o("scale_events_total",
		"Scaling steps that moved the pool's target, by the rule that fired: up, down, emergency_down or memory_cap.", ""),
		"pool", "direction")
	for _, d := range Directions() {
		if d != DirectionSteady {
			ins.events[d] = events.With(name, string(d))
		}
	}
	return ins
}
