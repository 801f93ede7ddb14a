package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// watchedReceiver counts the receives that started after the run context
// was cancelled: the drain must never take more input.
type watchedReceiver struct {
	*inmem.Transport
	lateRecvs atomic.Int32
	commits   atomic.Int32
}

func (w *watchedReceiver) Recv(ctx context.Context, l transport.Limits) (transport.Batch, error) {
	if ctx.Err() != nil {
		w.lateRecvs.Add(1)
	}
	return w.Transport.Recv(ctx, l)
}

func (w *watchedReceiver) Commit(ctx context.Context, tokens []transport.Token) error {
	w.commits.Add(1)
	return w.Transport.Commit(ctx, tokens)
}

// runMode runs one engine mode with a pass-through process.
type runMode struct {
	name string
	cfg  engine.Config
	run  func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error
}

func drainModes() []runMode {
	return []runMode{
		{name: "on_demand", run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
			return e.Run(ctx, r, passThrough, sink)
		}},
		{name: "parsed", run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
			return e.RunParsed(ctx, r, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
				return b.Output(), nil
			}, sink)
		}},
		// One record per sub-block: the drain has sub-blocks left to
		// finish after the one in the sink at cancellation.
		{name: "streaming", cfg: engine.Config{SubBlockBytes: 0}, run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
			return e.RunStreaming(ctx, r, passThrough, sink)
		}},
		{name: "governed", run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
			return e.RunGoverned(ctx, r, passThrough, sink)
		}},
	}
}

// feedOpen returns an inmem transport holding n JSON records, input open.
func feedOpen(t testing.TB, n int) *inmem.Transport {
	t.Helper()
	tr := inmem.New(inmem.Config{Capacity: n})
	for i := range n {
		if err := tr.InjectPayloads(context.Background(), jsonLine(i)); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// TestDrainCommitsBlockInFlight cancels the run while the sink holds the
// first block: the block is finished and committed after the
// cancellation, under a live context, and nothing more is received.
func TestDrainCommitsBlockInFlight(t *testing.T) {
	for _, m := range drainModes() {
		t.Run(m.name, func(t *testing.T) {
			const block, total = 4, 8
			src := &watchedReceiver{Transport: feedOpen(t, total)}
			cfg := m.cfg
			cfg.MaxRecords = block
			if m.name == "governed" {
				cfg.Budget = &halvingBudget{bytes: 1 << 20, floor: 1 << 20}
			}
			e, reg, logs := newEngine(t, cfg)

			ctx, cancel := context.WithCancel(runCtx(t))
			inSink := make(chan struct{})
			cancelled := make(chan struct{})
			var calls, delivered atomic.Int32
			var sinkErr atomic.Value
			sink := func(sctx context.Context, b transport.Batch) error {
				if calls.Add(1) == 1 {
					close(inSink)
					<-cancelled
				}
				if sctx.Err() != nil {
					sinkErr.Store("the sink's context was cancelled during the drain")
				}
				delivered.Add(int32(len(b.Records)))
				return nil
			}
			done := make(chan error, 1)
			go func() { done <- m.run(e, ctx, src, sink) }()
			<-inSink
			cancel()
			close(cancelled)
			if err := <-done; err != nil {
				t.Fatalf("run: %v, want nil after a drained shutdown", err)
			}
			if v := sinkErr.Load(); v != nil {
				t.Fatal(v)
			}
			if got := src.Committed(); got != block {
				t.Fatalf("committed up to %d, want the block in flight (%d) committed", got, block)
			}
			if n := src.commits.Load(); n != 1 {
				t.Fatalf("%d commits, want exactly one for the drained block", n)
			}
			if delivered.Load() != block {
				t.Fatalf("delivered %d records, want %d", delivered.Load(), block)
			}
			if n := src.lateRecvs.Load(); n != 0 {
				t.Fatalf("%d receive(s) after the cancellation", n)
			}
			if src.Len() != total-block {
				t.Fatalf("%d records left in the source, want %d: the loop took more input after the cancellation", src.Len(), total-block)
			}
			if labelled(t, reg, "keel_engine_drains_total", "result", "committed") != 1 {
				t.Fatal("drain not counted as committed")
			}
			if !strings.Contains(logs.String(), "drained the block in flight") {
				t.Fatal("drain not logged")
			}
		})
	}
}

// TestDrainTimeoutAbandonsBlock makes the sink slower than the drain
// timeout: the loop returns nil once the deadline passed, nothing of the
// block is committed, and the sink saw ErrDrainTimeout as the cause.
func TestDrainTimeoutAbandonsBlock(t *testing.T) {
	for _, m := range drainModes() {
		t.Run(m.name, func(t *testing.T) {
			const block = 4
			src := &watchedReceiver{Transport: feedOpen(t, block*2)}
			cfg := m.cfg
			cfg.MaxRecords = block
			cfg.DrainTimeout = 20 * time.Millisecond
			if m.name == "governed" {
				cfg.Budget = &halvingBudget{bytes: 1 << 20, floor: 1 << 20}
			}
			e, reg, _ := newEngine(t, cfg)

			ctx, cancel := context.WithCancel(runCtx(t))
			inSink := make(chan struct{})
			var once sync.Once
			var cause atomic.Value
			sink := func(sctx context.Context, _ transport.Batch) error {
				once.Do(func() { close(inSink) })
				<-sctx.Done() // slower than any drain timeout
				cause.Store(context.Cause(sctx))
				return sctx.Err()
			}
			done := make(chan error, 1)
			go func() { done <- m.run(e, ctx, src, sink) }()
			<-inSink
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v, want nil when the drain deadline passes", err)
			}
			if c, _ := cause.Load().(error); !errors.Is(c, engine.ErrDrainTimeout) {
				t.Fatalf("sink context cause %v, want ErrDrainTimeout", c)
			}
			if src.Committed() != 0 || src.commits.Load() != 0 {
				t.Fatalf("committed %d (%d commits): a block cut short by the drain deadline must not be committed",
					src.Committed(), src.commits.Load())
			}
			if src.lateRecvs.Load() != 0 {
				t.Fatal("received after the cancellation")
			}
			if labelled(t, reg, "keel_engine_drains_total", "result", "abandoned") != 1 {
				t.Fatal("abandoned drain not counted")
			}
			if labelled(t, reg, "keel_engine_failures_total", "stage", "sink") != 0 {
				t.Fatal("a drain cut short by the deadline counted as a sink failure")
			}
		})
	}
}

// TestDrainStreamingFinishesRemainingSubBlocks cancels during the first
// of four sub-blocks: the other three are processed and sunk under the
// drain context and the block is committed once, after the last.
func TestDrainStreamingFinishesRemainingSubBlocks(t *testing.T) {
	const n = 4
	src := &watchedReceiver{Transport: feedOpen(t, n)}
	e, _, _ := newEngine(t, engine.Config{MaxRecords: n})
	ctx, cancel := context.WithCancel(runCtx(t))
	inSink := make(chan struct{})
	cancelled := make(chan struct{})
	var ev events
	sink := func(_ context.Context, b transport.Batch) error {
		ev.add("sink")
		if len(ev.list()) == 1 {
			close(inSink)
			<-cancelled
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- e.RunStreaming(ctx, src, passThrough, sink) }()
	<-inSink
	cancel()
	close(cancelled)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(ev.list()); got != n {
		t.Fatalf("%d sub-blocks sunk, want all %d", got, n)
	}
	if src.Committed() != n || src.commits.Load() != 1 {
		t.Fatalf("committed %d in %d commits, want %d in one", src.Committed(), src.commits.Load(), n)
	}
}

// TestDrainStreamingDeadlineCommitsNothing lets the first sub-block
// through and holds the second past the drain deadline: the block is not
// committed at all, though one sub-block was already delivered.
func TestDrainStreamingDeadlineCommitsNothing(t *testing.T) {
	const n = 4
	src := &watchedReceiver{Transport: feedOpen(t, n)}
	e, _, _ := newEngine(t, engine.Config{MaxRecords: n, DrainTimeout: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(runCtx(t))
	inSink := make(chan struct{})
	cancelled := make(chan struct{})
	var calls atomic.Int32
	sink := func(sctx context.Context, _ transport.Batch) error {
		switch calls.Add(1) {
		case 1:
			close(inSink)
			<-cancelled
			return nil
		default:
			<-sctx.Done()
			return sctx.Err()
		}
	}
	done := make(chan error, 1)
	go func() { done <- e.RunStreaming(ctx, src, passThrough, sink) }()
	<-inSink
	cancel()
	close(cancelled)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d sink calls, want 2 (the second cut short)", calls.Load())
	}
	if src.Committed() != 0 || src.commits.Load() != 0 {
		t.Fatalf("committed %d: half a block must never be committed", src.Committed())
	}
}

// TestDrainSinkIgnoringContextIsNotCommitted has a sink that ignores its
// context and returns success only after the drain deadline: the commit
// is refused, because the deadline passed before it.
func TestDrainSinkIgnoringContextIsNotCommitted(t *testing.T) {
	src := &watchedReceiver{Transport: feedOpen(t, 2)}
	e, _, _ := newEngine(t, engine.Config{DrainTimeout: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(runCtx(t))
	inSink := make(chan struct{})
	sink := func(sctx context.Context, _ transport.Batch) error {
		close(inSink)
		<-sctx.Done()
		return nil // claims success after the deadline
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src, passThrough, sink) }()
	<-inSink
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if src.commits.Load() != 0 {
		t.Fatal("a block whose sink returned after the drain deadline was committed")
	}
}

// TestDrainBlockErrorIsReturned: a block that fails for its own reason
// during the drain is a terminal error, not a clean stop.
func TestDrainBlockErrorIsReturned(t *testing.T) {
	src := &watchedReceiver{Transport: feedOpen(t, 2)}
	e, _, _ := newEngine(t, engine.Config{})
	ctx, cancel := context.WithCancel(runCtx(t))
	inSink := make(chan struct{})
	cancelled := make(chan struct{})
	sink := func(context.Context, transport.Batch) error {
		close(inSink)
		<-cancelled
		return errBoom
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src, passThrough, sink) }()
	<-inSink
	cancel()
	close(cancelled)
	err := <-done
	if !errors.Is(err, engine.ErrSink) || !errors.Is(err, errBoom) {
		t.Fatalf("run: %v, want the sink's error", err)
	}
	if src.commits.Load() != 0 {
		t.Fatal("a failed block was committed")
	}
}

// gatheringReceiver holds its records until the receive is cancelled,
// then hands back what it gathered together with the context error, as
// the contract allows: those records left the source and must be
// drained, not lost.
type gatheringReceiver struct {
	*inmem.Transport
	waiting chan struct{}
}

func (g *gatheringReceiver) Recv(ctx context.Context, l transport.Limits) (transport.Batch, error) {
	if ctx.Err() != nil {
		return transport.Batch{}, ctx.Err()
	}
	close(g.waiting)
	<-ctx.Done()
	b, err := g.Transport.Recv(context.Background(), l)
	if err != nil {
		return b, err
	}
	return b, ctx.Err()
}

func TestDrainRecordsGatheredByCancelledRecv(t *testing.T) {
	src := &gatheringReceiver{Transport: feedOpen(t, 3), waiting: make(chan struct{})}
	e, _, _ := newEngine(t, engine.Config{})
	ctx, cancel := context.WithCancel(runCtx(t))
	var col collector
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src, passThrough, col.sink) }()
	<-src.waiting
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, records, _ := col.snapshot(); records != 3 || src.Committed() != 3 {
		t.Fatalf("delivered %d, committed %d: records handed back by a cancelled receive were lost", records, src.Committed())
	}
}
