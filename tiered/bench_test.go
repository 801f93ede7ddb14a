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
// signals when a target is reached. With gate set, calls wait until it is
// closed.
type countDown struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
	gate   chan struct{}
}

func (c *countDown) Name() string                 { return "count" }
func (c *countDown) Close(context.Context) error  { return nil }
func (c *countDown) Health(context.Context) error { return nil }
func (c *countDown) Send(ctx context.Context, r transport.Record) error {
	return c.SendBatch(ctx, []transport.Record{r})
}
func (c *countDown) SendBatch(_ context.Context, recs []transport.Record) error {
	if c.gate != nil {
		<-c.gate
	}
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
// records into a healthy in-process downstream. baseline_peek_ack is the
// same work without the sink: Peek a drain batch from the same spool,
// decode the records, send them to the same downstream, Ack. Both open the
// spool before the timer starts.
func BenchmarkDrain(b *testing.B) {
	recs := benchRecords(1000)
	encoded := make([][]byte, len(recs))
	for i, r := range recs {
		encoded[i] = EncodeRecord(nil, r)
	}
	b.Run("baseline_peek_ack", func(b *testing.B) {
		cfg := benchConfig(b.TempDir())
		fillSpool(b, cfg, encoded, b.N)
		sp, err := spool.Open(context.Background(), cfg.Spool)
		if err != nil {
			b.Fatal(err)
		}
		down := &countDown{}
		ctx := context.Background()
		b.SetBytes(int64(len(recs[0].Payload)))
		b.ResetTimer()
		start := time.Now()
		for n := 0; n < b.N; {
			entries, err := sp.Peek(ctx, cfg.DrainBatch, DefaultDrainBytes)
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]transport.Record, len(entries))
			for i, e := range entries {
				if batch[i], err = DecodeRecord(e.Payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := down.SendBatch(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if err := sp.Ack(entries[len(entries)-1].Seq); err != nil {
				b.Fatal(err)
			}
			n += len(entries)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		if err := sp.Close(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("tiered", func(b *testing.B) {
		cfg := benchConfig(b.TempDir())
		fillSpool(b, cfg, encoded, b.N)
		down := &countDown{target: int64(b.N), done: make(chan struct{}), gate: make(chan struct{})}
		s, err := New(context.Background(), down, cfg, Options{Logger: slog.New(slog.DiscardHandler),
			Metrics: metrics.New(metrics.Config{Namespace: "bench", NoRuntimeCollectors: true})})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(recs[0].Payload)))
		b.ResetTimer()
		start := time.Now()
		close(down.gate)
		<-down.done
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		if err := s.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
}

// fillSpool appends n records, cycling through encoded, to the spool of cfg
// and closes it.
func fillSpool(b *testing.B, cfg Config, encoded [][]byte, n int) {
	b.Helper()
	sp, err := spool.Open(context.Background(), cfg.Spool)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += len(encoded) {
		if _, _, err := sp.AppendBatch(context.Background(), encoded[:min(len(encoded), n-i)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
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
