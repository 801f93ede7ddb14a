package tiered

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
)

// countDown is a healthy in-process downstream that counts records and
// signals when a target is reached.
type countDown struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (c *countDown) Name() string                 { return "count" }
func (c *countDown) Close(context.Context) error  { return nil }
func (c *countDown) Health(context.Context) error { return nil }
func (c *countDown) Send(ctx context.Context, r transport.Record) error {
	return c.SendBatch(ctx, []transport.Record{r})
}
func (c *countDown) SendBatch(_ context.Context, recs []transport.Record) error {
	if v := c.n.Add(int64(len(recs))); c.target > 0 && v >= c.target && c.done != nil {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
	return nil
}

func benchConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.DrainBatch = 500
	cfg.Spool.SegmentBytes = 64 << 20
	return cfg
}

func benchRecords(n int) []transport.Record {
	recs := make([]transport.Record, n)
	for i := range recs {
		recs[i] = transport.Record{Payload: fmt.Appendf(make([]byte, 0, 256), `{"id":%d,"name":"order","amount":12.5,"pad":"%0200d"}`, i, 0)}
	}
	return recs
}

// BenchmarkDrain measures the drain rate of a spooled backlog of ~256 B
// records into a healthy in-process downstream.
func BenchmarkDrain(b *testing.B) {
	dir := b.TempDir()
	cfg := benchConfig(dir)
	sp, err := spool.Open(context.Background(), cfg.Spool)
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(1000)
	payloads := make([][]byte, len(recs))
	for i, r := range recs {
		payloads[i] = EncodeRecord(nil, r)
	}
	for i := 0; i < b.N; i += len(payloads) {
		if _, _, err := sp.AppendBatch(context.Background(), payloads[:min(len(payloads), b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		b.Fatal(err)
	}
	down := &countDown{target: int64(b.N), done: make(chan struct{})}
	b.SetBytes(int64(len(recs[0].Payload)))
	b.ResetTimer()
	start := time.Now()
	s, err := New(context.Background(), down, cfg, Options{Logger: slog.New(slog.DiscardHandler),
		Metrics: metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true})})
	if err != nil {
		b.Fatal(err)
	}
	<-down.done
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSendDirect compares a send through a Sink with a healthy
// downstream against calling the downstream directly (the baseline), in
// batches of 500 records.
func BenchmarkSendDirect(b *testing.B) {
	recs := benchRecords(500)
	b.Run("baseline_downstream", func(b *testing.B) {
		down := &countDown{}
		b.ReportAllocs()
		for b.Loop() {
			if err := down.SendBatch(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("tiered", func(b *testing.B) {
		down := &countDown{}
		s, err := New(context.Background(), down, benchConfig(b.TempDir()), Options{Logger: slog.New(slog.DiscardHandler),
			Metrics: metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true})})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = s.Close(context.Background()) }()
		b.ReportAllocs()
		for b.Loop() {
			if err := s.SendBatch(context.Background(), recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
	})
}
