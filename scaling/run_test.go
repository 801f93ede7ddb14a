package scaling_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keel-go/keel/scaling"
)

func TestRunEvaluatesUntilCancelled(t *testing.T) {
	sampled := make(chan struct{}, 16)
	p, e := newPressure(t, scaling.Config{Interval: scaling.MinInterval, Weights: map[string]float64{scaling.Queue: 1}},
		scaling.WithSource(scaling.Queue, func() float64 {
			select {
			case sampled <- struct{}{}:
			default:
			}
			return 0.25
		}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// The first evaluation runs at once, then one per interval.
	for range 3 {
		<-sampled
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
	if v, _ := e.metricValue(t, scaling.MetricPressure); !near(v, 25) {
		t.Fatalf("gauge after Run: %v", v)
	}
	if n, _ := e.metricValue(t, "keel_scaling_evaluations_total", "method", "weighted"); n < 3 {
		t.Fatalf("evaluations %v, want >= 3", n)
	}
}

func TestRunDisabledEvaluatesOnceAndReturns(t *testing.T) {
	p, e := newPressure(t, scaling.Config{Enabled: ptr(false)})
	mustSet(t, p, map[string]float64{scaling.CPU: 1})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, ok := p.Last(); !ok || r.Gate != scaling.GateDisabled {
		t.Fatalf("last %+v %v", r, ok)
	}
	if n, _ := e.metricValue(t, "keel_scaling_evaluations_total", "method", "gate"); n != 1 {
		t.Fatalf("evaluations %v", n)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Last(); ok {
		t.Fatal("a cancelled Run must not evaluate")
	}
	var nilP *scaling.Pressure
	if err := nilP.Run(context.Background()); !errors.Is(err, scaling.ErrNilPressure) {
		t.Fatalf("nil Run: %v", err)
	}
}

// Set and Evaluate race freely (run with -race).
func TestConcurrentSetAndEvaluate(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Expression: "max(cpu, queue) * 100"})
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				_ = p.Set(scaling.CPU, float64(i%10)/10)
				_ = p.Set(scaling.Queue, float64(w)/4)
				p.SetCircuitOpen(i%7 == 0)
			}
		}()
	}
	for range 200 {
		r := p.Evaluate()
		if r.Value < 0 || r.Value > 100 {
			t.Fatalf("value %v", r.Value)
		}
		_ = p.Value()
	}
	for range 4 {
		<-done
	}
}
