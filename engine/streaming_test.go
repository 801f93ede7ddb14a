package engine_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// feedSized returns a closed inmem transport holding n records of size
// bytes each.
func feedSized(t testing.TB, n, size int) *inmem.Transport {
	t.Helper()
	tr := inmem.New(inmem.Config{Capacity: n})
	for i := range n {
		p := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		if err := tr.InjectPayloads(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	tr.CloseInput()
	return tr
}

func TestStreamingPeakLeaseIsOneSubBlock(t *testing.T) {
	const n, size, target = 16, 64, 256
	acc := &accountant{}
	tr := feedSized(t, n, size)
	e, reg, _ := newEngine(t, engine.Config{SubBlockBytes: target, Memory: acc})
	var col collector
	col.fail = func(_ int, b transport.Batch) error {
		if cur, _ := acc.state(); cur > target || cur != b.PayloadBytes() {
			return errors.New("lease during sink is not exactly this sub-block")
		}
		if g := counter(t, reg, "keel_engine_block_bytes"); g != float64(b.PayloadBytes()) {
			return errors.New("block_bytes gauge does not show the sub-block")
		}
		return nil
	}
	if err := e.RunStreaming(runCtx(t), tr, passThrough, col.sink); err != nil {
		t.Fatal(err)
	}
	calls, records, batches := col.snapshot()
	if calls != n*size/target || records != n {
		t.Fatalf("%d sub-blocks with %d records; want %d sub-blocks", calls, records, n*size/target)
	}
	for _, b := range batches {
		if len(b.Tokens) != 0 {
			t.Fatal("a sub-block carried tokens")
		}
	}
	cur, high := acc.state()
	if cur != 0 {
		t.Fatalf("%d bytes still leased after the run", cur)
	}
	if high != target {
		t.Fatalf("peak lease %d, want one sub-block (%d)", high, target)
	}
	if got := counter(t, reg, "keel_engine_block_bytes"); got != 0 {
		t.Fatalf("block_bytes gauge %v after the run", got)
	}

	// The whole-batch path leases the whole block: the contrast shows the
	// streaming bound is real.
	acc2 := &accountant{}
	tr2 := feedSized(t, n, size)
	e2, _, _ := newEngine(t, engine.Config{Memory: acc2})
	var col2 collector
	if err := e2.Run(runCtx(t), tr2, passThrough, col2.sink); err != nil {
		t.Fatal(err)
	}
	if _, high2 := acc2.state(); high2 != n*size {
		t.Fatalf("whole-batch peak %d, want %d", high2, n*size)
	}
}

func TestStreamingCommitsOnceAfterTheLastSubBlock(t *testing.T) {
	const n = 12
	tr := feedSized(t, n, 10)
	e, _, _ := newEngine(t, engine.Config{SubBlockBytes: 30})
	var col collector
	col.fail = func(call int, _ transport.Batch) error {
		if tr.Commits() != 0 {
			return errors.New("committed before the last sub-block")
		}
		return nil
	}
	if err := e.RunStreaming(runCtx(t), tr, fanOut, col.sink); err != nil {
		t.Fatal(err)
	}
	calls, records, _ := col.snapshot()
	if calls != 4 || records != 2*n {
		t.Fatalf("%d sub-blocks, %d records", calls, records)
	}
	if tr.Commits() != 1 || tr.Committed() != n {
		t.Fatalf("%d commits up to %d; want exactly one with all %d tokens", tr.Commits(), tr.Committed(), n)
	}
}

func TestStreamingMiddleFailureCommitsNothing(t *testing.T) {
	tr := feedSized(t, 12, 10)
	e, _, _ := newEngine(t, engine.Config{SubBlockBytes: 30})
	col := collector{fail: func(call int, _ transport.Batch) error {
		if call == 2 {
			return errBoom
		}
		return nil
	}}
	err := e.RunStreaming(runCtx(t), tr, passThrough, col.sink)
	if !errors.Is(err, engine.ErrSink) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	var se *engine.StageError
	if !errors.As(err, &se) || se.Records != 3 || se.Tokens != 12 {
		t.Fatalf("err = %#v", err)
	}
	if calls, _, _ := col.snapshot(); calls != 2 {
		t.Fatalf("%d sink calls; the block must stop at the failed sub-block", calls)
	}
	if tr.Commits() != 0 || tr.Committed() != 0 {
		t.Fatal("committed after a middle sub-block failed")
	}
}

func TestStreamingSmallBlockIsOneSubBlock(t *testing.T) {
	tr := feedSized(t, 5, 10)
	e, _, _ := newEngine(t, engine.Config{SubBlockBytes: 1 << 20})
	var col collector
	if err := e.RunStreaming(runCtx(t), tr, passThrough, col.sink); err != nil {
		t.Fatal(err)
	}
	if calls, recs, _ := col.snapshot(); calls != 1 || recs != 5 || tr.Commits() != 1 {
		t.Fatalf("calls %d records %d commits %d", calls, recs, tr.Commits())
	}
}

func TestStreamingZeroTargetIsOneRecordEach(t *testing.T) {
	tr := feedSized(t, 4, 10)
	e, _, _ := newEngine(t, engine.Config{})
	var col collector
	if err := e.RunStreaming(runCtx(t), tr, passThrough, col.sink); err != nil {
		t.Fatal(err)
	}
	if calls, _, _ := col.snapshot(); calls != 4 || tr.Commits() != 1 || tr.Committed() != 4 {
		t.Fatalf("calls %d commits %d", calls, tr.Commits())
	}
}

func TestStreamingRoutesDeadLettersBeforeCommit(t *testing.T) {
	tr := feedSized(t, 6, 10)
	ev := &events{}
	rx := &filteringReceiver{Transport: tr, marker: "c", ev: ev} // the third record ("ccc...")
	e, _, _ := newEngine(t, engine.Config{SubBlockBytes: 20, RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
		for range dls {
			ev.add("route")
		}
		return nil
	}})
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		if bytes.HasPrefix(b.Records[0].Payload, []byte("d")) {
			b = b.WithDeadLetters(transport.DeadLetter{Record: b.Records[0], Reason: "process"})
		}
		return b, nil
	}
	sink := func(context.Context, transport.Batch) error { ev.add("sink"); return nil }
	if err := e.RunStreaming(runCtx(t), rx, process, sink); err != nil {
		t.Fatal(err)
	}
	got := ev.list()
	want := []string{"route", "sink", "route", "sink", "sink", "commit:6"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
}
