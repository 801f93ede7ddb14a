package engine_test

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/bytedance/sonic"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

const benchBlock = 10000

func benchRecords() ([]transport.Record, int64) {
	recs := make([]transport.Record, benchBlock)
	for i := range recs {
		recs[i] = transport.Record{Payload: jsonLine(i), Timestamp: time.Unix(1700000000, 0)}
	}
	return recs, transport.PayloadBytes(recs)
}

// cpuClock reads the CPU time (user + system) of the whole process, GC
// included. On a shared machine it is a steadier measure than wall time.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter reports wall-time throughput (records/s; MB/s through SetBytes)
// and the CPU-time equivalents (cpu-ns/op, cpu-MB/s) of a benchmark of
// 10 000-record blocks.
type meter struct {
	b     *testing.B
	bytes int64
	cpu   time.Duration

	paused, excluded time.Duration
}

func startMeter(b *testing.B, blockBytes int64) *meter {
	b.SetBytes(blockBytes)
	b.ReportAllocs()
	b.ResetTimer()
	return &meter{b: b, bytes: blockBytes, cpu: cpuClock()}
}

// pause stops both clocks (for set-up work inside the loop); resume
// restarts them.
func (m *meter) pause() {
	m.b.StopTimer()
	m.paused = cpuClock()
}

func (m *meter) resume() {
	m.excluded += cpuClock() - m.paused
	m.b.StartTimer()
}

func (m *meter) stop() {
	cpu := cpuClock() - m.cpu - m.excluded
	b := m.b
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*benchBlock/s, "records/s")
	}
	if cpu > 0 {
		perOp := float64(cpu.Nanoseconds()) / float64(b.N)
		b.ReportMetric(perOp, "cpu-ns/op")
		b.ReportMetric(float64(m.bytes)/perOp*1e3, "cpu-MB/s")
	}
}

func benchEngine(b *testing.B, cfg engine.Config) *engine.Engine {
	b.Helper()
	cfg.Metrics = metrics.New(metrics.Config{NoRuntimeCollectors: true})
	e, err := engine.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkPassThrough moves 10 000-record blocks of ~170-byte JSON lines
// from inmem through the engine (no parse) to a channel sink, committing
// each block; Bare does the same receive, channel hand-off and commit in a
// plain loop. Injecting the next block is outside the timer in both.
func BenchmarkPassThrough(b *testing.B) {
	recs, blockBytes := benchRecords()
	inject := func(m *meter, tr *inmem.Transport) {
		m.pause()
		if err := tr.Inject(context.Background(), recs...); err != nil {
			m.b.Fatal(err)
		}
		m.resume()
	}
	b.Run("Bare", func(b *testing.B) {
		tr := inmem.New(inmem.Config{Capacity: benchBlock})
		ch := make(chan transport.Batch, 1)
		ctx := context.Background()
		m := startMeter(b, blockBytes)
		for range b.N {
			inject(m, tr)
			blk, err := tr.Recv(ctx, transport.Limits{MaxRecords: benchBlock})
			if err != nil || len(blk.Records) != benchBlock {
				b.Fatalf("recv %d: %v", len(blk.Records), err)
			}
			ch <- blk
			got := <-ch
			if err := tr.Commit(ctx, got.Tokens); err != nil {
				b.Fatal(err)
			}
		}
		m.stop()
	})
	b.Run("Engine", func(b *testing.B) {
		tr := inmem.New(inmem.Config{Capacity: benchBlock})
		e := benchEngine(b, engine.Config{MaxRecords: benchBlock, Logger: discardLogger()})
		ch := make(chan transport.Batch, 1)
		n := 0
		var m *meter
		sink := func(_ context.Context, blk transport.Batch) error {
			ch <- blk
			<-ch
			if len(blk.Records) != benchBlock {
				b.Fatalf("block of %d", len(blk.Records))
			}
			n++
			return nil
		}
		// The next block is injected when the previous one was committed:
		// the receive is where the engine asks for it.
		rx := &pacedReceiver{Transport: tr, next: func() bool {
			if n >= b.N {
				tr.CloseInput()
				return false
			}
			inject(m, tr)
			return true
		}}
		m = startMeter(b, blockBytes)
		if err := e.Run(context.Background(), rx, passThrough, sink); err != nil {
			b.Fatal(err)
		}
		m.stop()
	})
}

// pacedReceiver injects the next block into the inmem transport right
// before each receive, until next reports false.
type pacedReceiver struct {
	*inmem.Transport
	next func() bool
}

func (p *pacedReceiver) Recv(ctx context.Context, l transport.Limits) (transport.Batch, error) {
	p.next()
	return p.Transport.Recv(ctx, l)
}

// replay hands out the same block with fresh tokens on every receive, so
// the benchmark measures the loop, not the source.
type replay struct {
	recs      []transport.Record
	tokens    []transport.Token
	left      int
	committed uint64
}

type replayToken uint64

func (t replayToken) String() string { return "replay" }

func newReplay(recs []transport.Record, blocks int) *replay {
	r := &replay{recs: recs, left: blocks, tokens: make([]transport.Token, len(recs))}
	for i := range r.tokens {
		r.tokens[i] = replayToken(i)
	}
	return r
}

func (r *replay) Recv(context.Context, transport.Limits) (transport.Batch, error) {
	if r.left == 0 {
		return transport.Batch{}, transport.ErrClosed
	}
	r.left--
	return transport.Batch{Records: r.recs, Tokens: r.tokens}, nil
}

func (r *replay) Commit(_ context.Context, tokens []transport.Token) error {
	r.committed += uint64(len(tokens))
	return nil
}
func (r *replay) Close(context.Context) error  { return nil }
func (r *replay) Health(context.Context) error { return nil }
func (r *replay) Name() string                 { return "replay" }

// BenchmarkLoopOverhead isolates the per-block cost of the engine loop:
// the receiver hands out a ready block, so Bare is nearly free and the
// difference is what the engine adds per block of 10 000 records.
func BenchmarkLoopOverhead(b *testing.B) {
	recs, blockBytes := benchRecords()
	b.Run("Bare", func(b *testing.B) {
		r := newReplay(recs, b.N)
		ch := make(chan transport.Batch, 1)
		ctx := context.Background()
		m := startMeter(b, blockBytes)
		for {
			blk, err := r.Recv(ctx, transport.Limits{})
			if err != nil {
				break
			}
			ch <- blk
			got := <-ch
			_ = r.Commit(ctx, got.Tokens)
		}
		m.stop()
	})
	b.Run("Engine", func(b *testing.B) {
		r := newReplay(recs, b.N)
		e := benchEngine(b, engine.Config{MaxRecords: benchBlock, Logger: discardLogger()})
		ch := make(chan transport.Batch, 1)
		sink := func(_ context.Context, blk transport.Batch) error { ch <- blk; <-ch; return nil }
		m := startMeter(b, blockBytes)
		if err := e.Run(context.Background(), r, passThrough, sink); err != nil {
			b.Fatal(err)
		}
		m.stop()
	})
}

// BenchmarkParsed compares the pre-parsed path (parse of the whole block on
// the pool, the engine loop, commit) with calling sonic directly on the
// same records into map[string]any. Pool1 limits the engine to one worker,
// the same CPU budget as the direct loop; PoolDefault uses GOMAXPROCS.
func BenchmarkParsed(b *testing.B) {
	recs, blockBytes := benchRecords()
	b.Run("SonicDirect", func(b *testing.B) {
		m := startMeter(b, blockBytes)
		for range b.N {
			for i := range recs {
				var m map[string]any
				if err := sonic.Unmarshal(recs[i].Payload, &m); err != nil {
					b.Fatal(err)
				}
			}
		}
		m.stop()
	})
	sink := func(context.Context, transport.Batch) error { return nil }
	process := func(_ context.Context, pb *engine.ParsedBatch) (transport.Batch, error) {
		return transport.Batch{Records: pb.Records, Tokens: pb.Tokens}, nil
	}
	for _, tc := range []struct {
		name    string
		workers int
	}{{"EnginePool1", 1}, {"EnginePoolDefault", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			p, err := pool.New(pool.Config{MaxWorkers: tc.workers}, pool.WithMetrics(metrics.New(metrics.Config{NoRuntimeCollectors: true})))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			e := benchEngine(b, engine.Config{MaxRecords: benchBlock, Pool: p, Logger: discardLogger()})
			r := newReplay(recs, b.N)
			m := startMeter(b, blockBytes)
			if err := e.RunParsed(context.Background(), r, process, sink); err != nil {
				b.Fatal(err)
			}
			m.stop()
		})
	}
}

// BenchmarkProcessRecords is the in-process helper: parse, no pre-route,
// read one field per record.
func BenchmarkProcessRecords(b *testing.B) {
	recs, blockBytes := benchRecords()
	e := benchEngine(b, engine.Config{MaxRecords: benchBlock, Logger: discardLogger()})
	fn := func(_ context.Context, m *engine.Message) (string, error) {
		s, _ := m.Field("level").Str()
		return s, nil
	}
	m := startMeter(b, blockBytes)
	for range b.N {
		engine.ProcessRecords(context.Background(), e, recs, fn)
	}
	m.stop()
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
