package scaling_test

import (
	"testing"

	"github.com/keel-go/keel/scaling"
)

func TestGauges(t *testing.T) {
	p, e := newPressure(t, scaling.Config{})
	if v, ok := e.metricValue(t, scaling.MetricPressure); !ok || v != 0 {
		t.Fatalf("pressure gauge before evaluation: %v %v", v, ok)
	}
	mustSet(t, p, map[string]float64{scaling.CPU: 0.5, scaling.Memory: 0.2, scaling.Queue: 0.8, scaling.Lag: 50_000, scaling.Pool: 1})
	p.Evaluate()
	if v, _ := e.metricValue(t, scaling.MetricPressure); !near(v, 59.5) {
		t.Fatalf("keel_scaling_pressure = %v, want 59.5", v)
	}
	for name, want := range map[string]float64{"cpu": 0.5, "memory": 0.2, "queue": 0.8, "lag": 0.5, "pool": 1} {
		if v, ok := e.metricValue(t, scaling.MetricComponent, "component", name); !ok || !near(v, want) {
			t.Errorf("keel_scaling_component{component=%q} = %v (%v), want %v", name, v, ok, want)
		}
	}
	if n, _ := e.metricValue(t, "keel_scaling_evaluations_total", "method", "weighted"); n != 1 {
		t.Fatalf("weighted evaluations %v", n)
	}

	// Gates: the pressure gauge follows, and the gate gauges say which held.
	p.SetCircuitOpen(true)
	mustSet(t, p, map[string]float64{scaling.Memory: 0.95})
	p.Evaluate()
	if v, _ := e.metricValue(t, scaling.MetricPressure); v != 0 {
		t.Fatalf("circuit open: gauge %v", v)
	}
	for gate, want := range map[string]float64{"circuit_open": 1, "memory": 1} {
		if v, _ := e.metricValue(t, "keel_scaling_gate", "gate", gate); v != want {
			t.Errorf("gate %s = %v, want %v", gate, v, want)
		}
	}
	p.SetCircuitOpen(false)
	p.Evaluate()
	if v, _ := e.metricValue(t, scaling.MetricPressure); v != 100 {
		t.Fatalf("memory gate: gauge %v", v)
	}
	if v, _ := e.metricValue(t, "keel_scaling_gate", "gate", "circuit_open"); v != 0 {
		t.Fatalf("circuit gate gauge %v after closing", v)
	}
	if n, _ := e.metricValue(t, "keel_scaling_evaluations_total", "method", "gate"); n != 2 {
		t.Fatalf("gate evaluations %v", n)
	}
}

// Components that never reported have no series; labels stay the fixed set.
func TestComponentSeriesOnlyForReported(t *testing.T) {
	p, e := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.3})
	_ = p.Set("made_up", 1)
	p.Evaluate()
	if _, ok := e.metricValue(t, scaling.MetricComponent, "component", "lag"); ok {
		t.Fatal("lag never reported but has a series")
	}
	if _, ok := e.metricValue(t, scaling.MetricComponent, "component", "made_up"); ok {
		t.Fatal("an unknown name became a label value")
	}
	if v, ok := e.metricValue(t, scaling.MetricComponent, "component", "cpu"); !ok || v != 0.3 {
		t.Fatalf("cpu series %v %v", v, ok)
	}
}

// Two pressures on one registry share the collectors (idempotent
// registration) instead of failing.
func TestSharedRegistry(t *testing.T) {
	e := newEnv()
	for range 2 {
		if _, err := scaling.New(scaling.Config{}, e.opts()...); err != nil {
			t.Fatal(err)
		}
	}
}
