package memory

import "github.com/keel-go/keel/metrics"

// registerMetrics registers the keel_memory_* series. Every gauge reads
// the guard at scrape time, so the accounting path touches no metric; only
// a refusal increments a counter. The registry keeps the first function of
// a gauge name, so with several guards on one registry the gauges show the
// first: build one guard per process (or one registry per guard).
func (g *Guard) registerMetrics(reg *metrics.Registry) {
	o := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "memory", Name: name, Help: help, Unit: unit, Group: "memory"}
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.GaugeFunc(o("current_bytes",
		"Bytes the memory guard compares with its limit: accounted in-flight bytes, or with memory.use_heap the larger of those and the live Go heap.", "bytes"),
		func() float64 { return float64(g.Current()) })
	reg.GaugeFunc(o("accounted_bytes",
		"Bytes accounted through the memory guard (reserved or added) and not yet released.", "bytes"),
		func() float64 { return float64(g.Accounted()) })
	reg.GaugeFunc(o("limit_bytes",
		"Limit of the memory guard in bytes; 0 means unlimited (guard disabled or no limit found).", "bytes"),
		func() float64 { return float64(g.Limit()) })
	reg.GaugeFunc(o("pressure_ratio",
		"Current bytes divided by the memory guard's limit; above 1 when unconditional adds went over it.", "ratio"),
		g.PressureRatio)
	reg.GaugeFunc(o("under_pressure",
		"1 while the memory guard reports pressure (ratio at or above memory.pressure_threshold, or a refused reservation that still does not fit), else 0.", ""),
		func() float64 { return b2f(g.UnderPressure()) })
	reg.GaugeFunc(o("go_memory_limit_bytes",
		"Go runtime soft memory limit (GOMEMLIMIT or debug.SetMemoryLimit) in force; 0 means none.", "bytes"),
		func() float64 { return float64(runtimeMemoryLimit()) })
	g.refusedTotal = reg.Counter(o("reservations_refused_total",
		"Reservations the memory guard refused because they would have gone over its limit.", ""))
}
