package governor_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
)

// The baseline of the hot-path benchmarks: one atomic add, the least any
// shared accounting can cost.
func BenchmarkBaselineAtomicAdd(b *testing.B) {
	var n atomic.Int64
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			n.Add(1)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
}

func BenchmarkBudgetObserve(b *testing.B) {
	var pressured atomic.Bool
	bud := governor.NewBudget(governor.ProfileThroughput, governor.BudgetConfig{},
		governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()), governor.WithPressureSignal(pressured.Load))
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			bud.Observe(1<<20, time.Duration(i%7)*time.Millisecond, 5*time.Millisecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				bud.Observe(1<<20, time.Duration(i%7)*time.Millisecond, 5*time.Millisecond)
			}
		})
	})
	b.Run("bytes_parallel", func(b *testing.B) {
		var sink atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			var s int64
			for pb.Next() {
				s += bud.Bytes()
			}
			sink.Add(s)
		})
	})
}

func BenchmarkGateEvaluate(b *testing.B) {
	guard, err := memory.New(memory.Config{LimitBytes: 1 << 30}, memory.WithMetrics(testRegistry()), memory.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	gov, err := governor.New(governor.Config{}, governor.WithMemory(guard),
		governor.WithSource(governor.FuncSource("queue", func() float64 { return 0.1 })),
		governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	g := gov.Gate()
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := g.Evaluate(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, _ = g.Evaluate(ctx)
			}
		})
	})
	b.Run("admit_parallel", func(b *testing.B) {
		var open atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			var n int64
			for pb.Next() {
				if g.Admit() {
					n++
				}
			}
			open.Add(n)
		})
	})
}
