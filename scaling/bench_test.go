package scaling_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/scaling"
)

var sinkF float64

// BenchmarkEvaluate measures one evaluation with and without an expression.
// The baseline is the bare weighted sum over five floats: what the
// formula costs without sampling, gates, the report and the gauges.
//
//	go test -run '^$' -bench . -benchmem ./scaling/
func BenchmarkEvaluate(b *testing.B) {
	signals := map[string]float64{
		scaling.CPU: 0.5, scaling.Memory: 0.2, scaling.Queue: 0.8, scaling.Lag: 50_000, scaling.Pool: 1,
	}
	b.Run("baseline_plain_weighted_sum", func(b *testing.B) {
		w := []float64{0.20, 0.10, 0.25, 0.35, 0.10}
		v := []float64{0.5, 0.2, 0.8, 0.5, 1}
		for b.Loop() {
			sw, swv := 0.0, 0.0
			for i := range w {
				sw += w[i]
				swv += w[i] * v[i]
			}
			sinkF = 100 * swv / sw
		}
	})
	for _, bc := range []struct{ name, expr string }{
		{"weighted", ""},
		{"expression_max", "max(cpu, memory) * 100"},
		{"expression_ternary", "lag > 0.5 ? 100 : cpu * 100"},
		{"expression_long", "clamp(0.35*lag + 0.25*queue + 0.2*cpu + 0.1*memory + 0.1*pool, 0, 1) * 100"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv()
			p, err := scaling.New(scaling.Config{Expression: bc.expr}, e.opts()...)
			if err != nil {
				b.Fatal(err)
			}
			for k, v := range signals {
				if err := p.Set(k, v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				sinkF = p.Evaluate().Value
			}
		})
	}
	b.Run("set", func(b *testing.B) {
		p, err := scaling.New(scaling.Config{}, newEnv().opts()...)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Set(scaling.Queue, 0.5)
		}
	})
}

// BenchmarkRateWindow measures Add (serial and from all Ps) and Rate,
// against a bare atomic counter and a bare clock read (Add reads the
// clock once) as the baselines.
func BenchmarkRateWindow(b *testing.B) {
	b.Run("baseline_atomic_add", func(b *testing.B) {
		var n atomic.Int64
		for b.Loop() {
			n.Add(1)
		}
	})
	b.Run("baseline_atomic_add_parallel", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
	b.Run("baseline_time_now", func(b *testing.B) {
		var t time.Time
		for b.Loop() {
			t = time.Now()
		}
		_ = t
	})
	b.Run("add", func(b *testing.B) {
		w := scaling.NewRateWindow(time.Minute, 60)
		b.ReportAllocs()
		for b.Loop() {
			w.Add(1)
		}
	})
	b.Run("add_parallel", func(b *testing.B) {
		w := scaling.NewRateWindow(time.Minute, 60)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w.Add(1)
			}
		})
	})
	b.Run("rate_60_buckets", func(b *testing.B) {
		w := scaling.NewRateWindow(time.Minute, 60)
		w.Add(1000)
		b.ReportAllocs()
		for b.Loop() {
			sinkF = w.Rate()
		}
	})
}
