package background_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

type nopDrain struct{}

func (nopDrain) WriteBatch(context.Context, []int) error { return nil }
func (nopDrain) Flush(context.Context) error             { return nil }
func (nopDrain) Close(context.Context) error             { return nil }

// BenchmarkPush measures one item through the sink (admission, batching,
// a no-op drain) against the baseline of a buffered channel drained by a
// goroutine in batches of the same size, in the same run.
func BenchmarkPush(b *testing.B) {
	const batch = 256
	b.Run("sink_push", func(b *testing.B) {
		s, err := background.New[int](background.Config{BatchSize: batch,
			Metrics: metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true}), Logger: slog.New(slog.DiscardHandler)}, nopDrain{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.Push(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		_ = s.Close(ctx)
	})
	b.Run("sink_push_parallel", func(b *testing.B) {
		s, err := background.New[int](background.Config{BatchSize: batch,
			Metrics: metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true}), Logger: slog.New(slog.DiscardHandler)}, nopDrain{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Push(ctx, 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
		_ = s.Close(ctx)
	})
	b.Run("baseline_channel", func(b *testing.B) {
		ch := make(chan int, background.DefaultQueueCapacity)
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]int, 0, batch)
			for v := range ch {
				buf = append(buf, v)
				if len(buf) == batch {
					buf = buf[:0]
				}
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ch <- i
		}
		close(ch)
		<-done
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	})
}
