package memory

import (
	"runtime/debug"
	"testing"

	"github.com/keel-go/keel/metrics"
)

// gauge reads the value of an unlabelled metric from reg.
func gauge(t *testing.T, reg *metrics.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestMetricsReadAtScrapeTime(t *testing.T) {
	reg := testRegistry()
	g := newGuard(t, Config{LimitBytes: 1000}, nil, WithMetrics(reg))
	debug.SetMemoryLimit(900 * mib) // isolate (in newGuard) restores it

	check := func(name string, want float64) {
		t.Helper()
		if got := gauge(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("keel_memory_current_bytes", 0)
	check("keel_memory_limit_bytes", 1000)
	check("keel_memory_under_pressure", 0)
	check("keel_memory_reservations_refused_total", 0)

	g.Add(850)
	g.TryReserve(200)
	g.TryReserve(300)
	check("keel_memory_current_bytes", 850)
	check("keel_memory_accounted_bytes", 850)
	check("keel_memory_pressure_ratio", 0.85)
	check("keel_memory_under_pressure", 1)
	check("keel_memory_reservations_refused_total", 2)
	check("keel_memory_go_memory_limit_bytes", float64(900*mib))

	g.Release(850)
	check("keel_memory_current_bytes", 0)
	check("keel_memory_pressure_ratio", 0)
	check("keel_memory_under_pressure", 0)

	names := map[string]bool{}
	for _, d := range reg.Manifest().Metrics {
		names[d.Name] = d.Help != "" && d.Group == "memory"
	}
	for _, n := range []string{
		"keel_memory_current_bytes", "keel_memory_accounted_bytes", "keel_memory_limit_bytes",
		"keel_memory_pressure_ratio", "keel_memory_under_pressure", "keel_memory_go_memory_limit_bytes",
		"keel_memory_reservations_refused_total",
	} {
		if !names[n] {
			t.Errorf("%s missing from the manifest, or without help text or group", n)
		}
	}
}
