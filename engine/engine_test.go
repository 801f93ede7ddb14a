package engine_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fanOut(_ context.Context, b transport.Batch) (transport.Batch, error) {
	return b.MapRecords(func(r transport.Record) []transport.Record {
		c := r
		c.Key = []byte("copy")
		return []transport.Record{r, c}
	}), nil
}

func TestFanOutCommitsExactlyTheInputTokens(t *testing.T) {
	const n = 50
	tr := feed(t, n)
	e, reg, _ := newEngine(t, engine.Config{MaxRecords: 20})
	var col collector
	if err := e.Run(runCtx(t), tr, fanOut, col.sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	_, records, batches := col.snapshot()
	if records != 2*n {
		t.Fatalf("sink saw %d records, want %d", records, 2*n)
	}
	var tokens int
	for _, b := range batches {
		tokens += len(b.Tokens)
		if len(b.Records) != 2*len(b.Tokens) {
			t.Fatalf("block with %d records carries %d tokens; fan-out must keep the input tokens", len(b.Records), len(b.Tokens))
		}
	}
	if tokens != n {
		t.Fatalf("sink saw %d tokens, want %d", tokens, n)
	}
	if got := tr.Committed(); got != n {
		t.Fatalf("committed watermark %d, want %d", got, n)
	}
	if got := tr.Commits(); got != 3 { // 20 + 20 + 10
		t.Fatalf("%d commits, want 3 (one per block)", got)
	}
	st := e.Stats()
	if st.Received != n || st.Processed != n || st.Delivered != 2*n || st.Committed != 3 || st.Blocks != 3 {
		t.Fatalf("stats %+v", st)
	}
	if got := counter(t, reg, "keel_engine_records_received_total"); got != n {
		t.Fatalf("records_received_total %v", got)
	}
	if got := counter(t, reg, "keel_engine_records_processed_total"); got != n {
		t.Fatalf("records_processed_total %v, want %d (input records, not the fan-out)", got, n)
	}
	if got := counter(t, reg, "keel_engine_records_delivered_total"); got != 2*n {
		t.Fatalf("records_delivered_total %v", got)
	}
	if got := counter(t, reg, "keel_engine_commits_total"); got != 3 {
		t.Fatalf("commits_total %v", got)
	}
	if got := counter(t, reg, "keel_engine_received_bytes_total"); got != float64(st.ReceivedBytes) || got == 0 {
		t.Fatalf("received_bytes_total %v, stats %d", got, st.ReceivedBytes)
	}
	for _, h := range []string{"keel_engine_block_duration_seconds", "keel_engine_process_duration_seconds",
		"keel_engine_sink_duration_seconds", "keel_engine_commit_duration_seconds"} {
		if got := counter(t, reg, h); got != 3 {
			t.Fatalf("%s has %v observations, want 3", h, got)
		}
	}
	if got := counter(t, reg, "keel_engine_block_bytes"); got != 0 {
		t.Fatalf("in-flight block bytes %v after the run, want 0", got)
	}
}

func TestSinkErrorCommitsNothingAndStops(t *testing.T) {
	tr := feed(t, 10)
	e, reg, _ := newEngine(t, engine.Config{MaxRecords: 5})
	col := collector{fail: func(int, transport.Batch) error { return errBoom }}
	err := e.Run(runCtx(t), tr, passThrough, col.sink)
	if !errors.Is(err, engine.ErrSink) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want ErrSink wrapping the cause", err)
	}
	var se *engine.StageError
	if !errors.As(err, &se) || se.Stage != engine.StageSink || se.Records != 5 || se.Tokens != 5 {
		t.Fatalf("err = %#v", err)
	}
	if tr.Committed() != 0 || tr.Commits() != 0 {
		t.Fatalf("committed %d (%d commits) after a sink error", tr.Committed(), tr.Commits())
	}
	if tr.Len() != 5 {
		t.Fatalf("%d records left in the source, want 5: the loop must stop after the failed block", tr.Len())
	}
	if calls, _, _ := col.snapshot(); calls != 1 {
		t.Fatalf("sink called %d times", calls)
	}
	if got := labelled(t, reg, "keel_engine_failures_total", "stage", "sink"); got != 1 {
		t.Fatalf("failures_total{stage=sink} = %v", got)
	}
	if e.Stats().Failures != 1 {
		t.Fatalf("stats failures %d", e.Stats().Failures)
	}
}

func TestCommitErrorStops(t *testing.T) {
	tr := feed(t, 10)
	tr.FailNextCommit(errBoom)
	e, _, _ := newEngine(t, engine.Config{MaxRecords: 5})
	var col collector
	err := e.Run(runCtx(t), tr, passThrough, col.sink)
	if !errors.Is(err, engine.ErrCommit) || !errors.Is(err, transport.ErrCommit) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want ErrCommit wrapping the transport error", err)
	}
	if tr.Committed() != 0 {
		t.Fatalf("watermark moved to %d", tr.Committed())
	}
	if tr.Len() != 5 {
		t.Fatalf("%d records left, want 5: nothing after the failed block may be fetched", tr.Len())
	}
}

// barrierPath is one run loop driven with a ProcessFunc; the parsed path
// hands process the parsed block's Output.
type barrierPath struct {
	name string
	cfg  func(*engine.Config)
	run  func(e *engine.Engine, ctx context.Context, r transport.Receiver, p engine.ProcessFunc, s engine.SinkFunc) error
}

func barrierPaths() []barrierPath {
	return []barrierPath{
		{name: "whole_batch", run: (*engine.Engine).Run},
		{name: "streaming", run: (*engine.Engine).RunStreaming},
		{name: "governed", run: (*engine.Engine).RunGoverned, cfg: func(c *engine.Config) {
			c.Budget = &halvingBudget{bytes: 1 << 20, floor: 1}
		}},
		{name: "parsed", run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, p engine.ProcessFunc, s engine.SinkFunc) error {
			return e.RunParsed(ctx, r, func(ctx context.Context, pb *engine.ParsedBatch) (transport.Batch, error) {
				return p(ctx, pb.Output())
			}, s)
		}},
	}
}

// TestOrderedBarrier runs every terminal error of the block loop against
// an ordered source that hands out one record per receive: the first
// block fails, so exactly one block is fetched and the cumulative
// watermark never moves.
func TestOrderedBarrier(t *testing.T) {
	deadLetterFirst := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return b.WithDeadLetters(transport.DeadLetter{Record: b.Records[0], Reason: "bad record"}), nil
	}
	failingRoute := func(context.Context, []transport.DeadLetter) error { return errBoom }
	causes := []struct {
		name    string
		only    string // the one path the cause applies to, or ""
		cfg     func(*engine.Config)
		src     func(*orderedSource)
		process engine.ProcessFunc
		sinkErr error
		stage   string
		want    []error
	}{
		{name: "sink_failure", process: passThrough, sinkErr: errBoom, stage: "sink", want: []error{engine.ErrSink, errBoom}},
		{name: "commit_failure", src: func(s *orderedSource) { s.failCommit = errBoom }, process: passThrough,
			stage: "commit", want: []error{engine.ErrCommit, transport.ErrCommit, errBoom}},
		{name: "process_error", process: func(context.Context, transport.Batch) (transport.Batch, error) {
			return transport.Batch{}, errBoom
		}, stage: "process", want: []error{engine.ErrProcess, errBoom}},
		{name: "route_failure", cfg: func(c *engine.Config) { c.RouteDeadLetters = failingRoute },
			process: deadLetterFirst, stage: "route", want: []error{engine.ErrRoute, errBoom}},
		{name: "rejected_dead_letter", process: deadLetterFirst, stage: "route",
			want: []error{engine.ErrRoute, engine.ErrDeadLettersRejected}},
		{name: "fail_batch_parse_error", only: "parsed",
			cfg: func(c *engine.Config) { c.ParseErrorAction = engine.ParseFailBatch },
			src: func(s *orderedSource) { s.payloads[0] = []byte(`{"broken":`) }, process: passThrough,
			stage: "parse", want: []error{engine.ErrParseBatch, codec.ErrSyntax}},
	}
	for _, path := range barrierPaths() {
		for _, c := range causes {
			if c.only != "" && c.only != path.name {
				continue
			}
			t.Run(path.name+"/"+c.name, func(t *testing.T) {
				src := newOrderedSource(3)
				if c.src != nil {
					c.src(src)
				}
				var cfg engine.Config
				for _, f := range []func(*engine.Config){path.cfg, c.cfg} {
					if f != nil {
						f(&cfg)
					}
				}
				e, reg, _ := newEngine(t, cfg)
				col := collector{fail: func(int, transport.Batch) error { return c.sinkErr }}
				err := path.run(e, runCtx(t), src, c.process, col.sink)
				for _, w := range c.want {
					if !errors.Is(err, w) {
						t.Fatalf("err = %v, want it to match %v", err, w)
					}
				}
				fetched, wm := src.state()
				if fetched != 1 {
					t.Fatalf("%d blocks fetched, want 1: nothing after the failed block may be fetched", fetched)
				}
				if wm != 0 {
					t.Fatalf("watermark moved to %d after a terminal error", wm)
				}
				if got := labelled(t, reg, "keel_engine_failures_total", "stage", c.stage); got != 1 {
					t.Fatalf("failures_total{stage=%s} = %v, want 1", c.stage, got)
				}
			})
		}
	}
	t.Run("success_moves_watermark", func(t *testing.T) {
		src := newOrderedSource(3)
		e, _, _ := newEngine(t, engine.Config{})
		var col collector
		if err := e.Run(runCtx(t), src, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		if fetched, wm := src.state(); fetched != 3 || wm != 3 {
			t.Fatalf("fetched %d, watermark %d; want 3 and 3", fetched, wm)
		}
	})
}

func TestProcessErrorIsTerminal(t *testing.T) {
	tr := feed(t, 4)
	e, _, _ := newEngine(t, engine.Config{})
	var col collector
	err := e.Run(runCtx(t), tr, func(context.Context, transport.Batch) (transport.Batch, error) {
		return transport.Batch{}, errBoom
	}, col.sink)
	if !errors.Is(err, engine.ErrProcess) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	if calls, _, _ := col.snapshot(); calls != 0 || tr.Committed() != 0 {
		t.Fatalf("sink calls %d, committed %d", calls, tr.Committed())
	}
}

// TestBinaryPayloadsPassThrough: Run never parses, so payloads that are
// not JSON (NUL bytes, 0xff, invalid UTF-8) reach the sink byte for byte
// and the block commits.
func TestBinaryPayloadsPassThrough(t *testing.T) {
	payloads := [][]byte{
		{0x00},
		{0x00, 0x00, 0x00, 0x00},
		{0xff, 0xfe, 0xfd},
		{0xc3, 0x28},                   // invalid UTF-8 sequence
		{0xed, 0xa0, 0x80},             // UTF-16 surrogate encoded as UTF-8
		[]byte("{\"a\":\"\x80\x00\"}"), // JSON-looking with raw invalid bytes
		{0x81, 0xa1, 'k', 0xc0},        // MsgPack-looking
	}
	var records []transport.Record
	var total int
	for _, p := range payloads {
		records = append(records, transport.Record{Payload: bytes.Clone(p)})
		total += len(p)
	}
	tr := injectAll(t, records)
	e, _, _ := newEngine(t, engine.Config{})
	var col collector
	if err := e.Run(runCtx(t), tr, passThrough, col.sink); err != nil {
		t.Fatal(err)
	}
	_, _, batches := col.snapshot()
	var got [][]byte
	for _, b := range batches {
		for _, r := range b.Records {
			got = append(got, r.Payload)
		}
	}
	if len(got) != len(payloads) {
		t.Fatalf("sink saw %d records, want %d", len(got), len(payloads))
	}
	for i := range payloads {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Fatalf("record %d reached the sink as %x, want %x", i, got[i], payloads[i])
		}
	}
	if tr.Committed() != uint64(len(payloads)) {
		t.Fatalf("watermark %d, want %d: the block must commit", tr.Committed(), len(payloads))
	}
	if st := e.Stats(); st.ReceivedBytes != uint64(total) || st.ParseErrors != 0 {
		t.Fatalf("stats %+v: want %d bytes received and no parse", st, total)
	}
}

// TestFilteredCountsRecordsProcessDropped: a run loop counts as filtered
// the input records its process step returned neither as records nor as
// dead letters.
func TestFilteredCountsRecordsProcessDropped(t *testing.T) {
	// keepEven drops odd sequence numbers and dead-letters seq 4.
	keepEven := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		var dls []transport.DeadLetter
		out := b.MapRecords(func(r transport.Record) []transport.Record {
			v, err := codec.Parse(r.Payload, codec.ParseOptions{})
			if err != nil {
				return nil
			}
			seq, _ := v.Field("seq").Int()
			switch {
			case seq == 4:
				dls = append(dls, transport.DeadLetter{Record: r, Reason: "seq 4"})
				return nil
			case seq%2 == 1:
				return nil
			}
			return []transport.Record{r}
		})
		return out.WithDeadLetters(dls...), nil
	}
	const n = 10 // seq 0..9: 5 odd dropped, seq 4 dead-lettered, 4 kept
	for _, path := range barrierPaths() {
		t.Run(path.name, func(t *testing.T) {
			cfg := engine.Config{MaxRecords: 4, DeadLetterPolicy: engine.DeadLetterDiscard, SubBlockBytes: 400}
			if path.cfg != nil {
				path.cfg(&cfg)
			}
			tr := feed(t, n)
			e, reg, _ := newEngine(t, cfg)
			var col collector
			if err := path.run(e, runCtx(t), tr, keepEven, col.sink); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			if _, recs, _ := col.snapshot(); recs != 4 || tr.Committed() != n {
				t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
			}
			if st.Filtered != 5 || st.Discarded != 1 || st.Processed != n {
				t.Fatalf("stats %+v: want 5 filtered, 1 discarded, %d processed", st, n)
			}
			if got := counter(t, reg, "keel_engine_records_filtered_total"); got != 5 {
				t.Fatalf("records_filtered_total = %v, want 5", got)
			}
			if got := counter(t, reg, "keel_engine_records_processed_total"); got != n {
				t.Fatalf("records_processed_total = %v, want %d", got, n)
			}
		})
	}
	t.Run("fan_out_filters_nothing", func(t *testing.T) {
		tr := feed(t, n)
		e, reg, _ := newEngine(t, engine.Config{})
		var col collector
		if err := e.Run(runCtx(t), tr, fanOut, col.sink); err != nil {
			t.Fatal(err)
		}
		if e.Stats().Filtered != 0 || counter(t, reg, "keel_engine_records_filtered_total") != 0 {
			t.Fatalf("a fan-out counted filtered records: %+v", e.Stats())
		}
	})
	t.Run("parse_failures_are_not_filtered", func(t *testing.T) {
		tr, bad := mixedSource(t)
		e, reg, _ := newEngine(t, engine.Config{DeadLetterPolicy: engine.DeadLetterDiscard})
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, pb *engine.ParsedBatch) (transport.Batch, error) {
			return pb.Output(), nil
		}, col.sink)
		if err != nil {
			t.Fatal(err)
		}
		st := e.Stats()
		if st.Filtered != 0 || st.Discarded != uint64(bad) || st.Processed != uint64(10-bad) {
			t.Fatalf("stats %+v", st)
		}
		if counter(t, reg, "keel_engine_records_processed_total") != float64(10-bad) {
			t.Fatal("records_processed_total does not count the parsed records")
		}
	})
}

func TestAllFilteredBlockIsCommitted(t *testing.T) {
	t.Run("process_filters_everything", func(t *testing.T) {
		tr := feed(t, 8)
		e, _, _ := newEngine(t, engine.Config{})
		var col collector
		err := e.Run(runCtx(t), tr, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			return b.MapRecords(func(transport.Record) []transport.Record { return nil }), nil
		}, col.sink)
		if err != nil {
			t.Fatal(err)
		}
		if calls, _, _ := col.snapshot(); calls != 0 {
			t.Fatalf("sink called %d times for an empty out-batch", calls)
		}
		if tr.Committed() != 8 {
			t.Fatalf("watermark %d, want 8", tr.Committed())
		}
	})
	t.Run("inbound_filter_drops_everything", func(t *testing.T) {
		tr := feed(t, 8)
		rx := &filteringReceiver{Transport: tr, marker: "request", drop: true}
		e, _, _ := newEngine(t, engine.Config{})
		var processed atomic.Int32
		var col collector
		err := e.Run(runCtx(t), rx, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			processed.Add(1)
			return b, nil
		}, col.sink)
		if err != nil {
			t.Fatal(err)
		}
		if processed.Load() != 0 {
			t.Fatal("process called with zero records")
		}
		if calls, _, _ := col.snapshot(); calls != 0 || tr.Committed() != 8 {
			t.Fatalf("sink calls %d, watermark %d", calls, tr.Committed())
		}
	})
	t.Run("streaming", func(t *testing.T) {
		tr := feed(t, 8)
		rx := &filteringReceiver{Transport: tr, marker: "request", drop: true}
		e, _, _ := newEngine(t, engine.Config{})
		var col collector
		if err := e.RunStreaming(runCtx(t), rx, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		if calls, _, _ := col.snapshot(); calls != 0 || tr.Committed() != 8 || tr.Commits() != 1 {
			t.Fatalf("sink calls %d, watermark %d, commits %d", calls, tr.Committed(), tr.Commits())
		}
	})
}

func TestDeadLettersRoutedBeforeSinkAndCommit(t *testing.T) {
	tr := inmem.New(inmem.Config{Capacity: 16})
	ctx := runCtx(t)
	for _, p := range []string{`{"a":1}`, `{"bad":1}`, `{"a":2}`, `{"bad":2}`} {
		_ = tr.InjectPayloads(ctx, []byte(p))
	}
	tr.CloseInput()
	ev := &events{}
	rx := &filteringReceiver{Transport: tr, marker: "bad", ev: ev}
	var routed []transport.DeadLetter
	e, reg, _ := newEngine(t, engine.Config{RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
		ev.add("route")
		if tr.Committed() != 0 {
			t.Error("dead letters routed after the commit")
		}
		routed = append(routed, dls...)
		return nil
	}})
	sink := func(_ context.Context, b transport.Batch) error {
		ev.add("sink")
		if len(b.DeadLetters) != 0 {
			t.Error("sink saw dead letters; the engine routes them")
		}
		return nil
	}
	// process adds its own dead letter too.
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return b.WithDeadLetters(transport.DeadLetter{Record: b.Records[0], Reason: "process rejected"}), nil
	}
	if err := e.Run(ctx, rx, process, sink); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(ev.list(), ",")
	if got != "route,route,sink,commit:4" {
		t.Fatalf("events %q, want inbound route, process route, sink, commit", got)
	}
	if len(routed) != 3 || routed[0].Reason != "inbound filter bad" || routed[2].Reason != "process rejected" {
		t.Fatalf("routed %+v", routed)
	}
	if tr.Committed() != 4 {
		t.Fatalf("watermark %d", tr.Committed())
	}
	if e.Stats().DeadLettered != 3 || labelled(t, reg, "keel_engine_dead_letters_total", "action", "routed") != 3 {
		t.Fatalf("dead letters not counted: %+v", e.Stats())
	}
}

func TestDeadLetterPolicies(t *testing.T) {
	mk := func(t *testing.T) (*inmem.Transport, *filteringReceiver) {
		tr := feed(t, 6)
		// seq 0..5; the marker "seq\":1" matches seq 1 only.
		return tr, &filteringReceiver{Transport: tr, marker: `"seq":1}`}
	}
	t.Run("route_failure_is_terminal", func(t *testing.T) {
		tr, rx := mk(t)
		e, _, _ := newEngine(t, engine.Config{RouteDeadLetters: func(context.Context, []transport.DeadLetter) error { return errBoom }})
		var col collector
		err := e.Run(runCtx(t), rx, passThrough, col.sink)
		if !errors.Is(err, engine.ErrRoute) || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
		if calls, _, _ := col.snapshot(); calls != 0 || tr.Committed() != 0 {
			t.Fatalf("sink calls %d, committed %d after a routing failure", calls, tr.Committed())
		}
	})
	t.Run("reject_is_the_default", func(t *testing.T) {
		tr, rx := mk(t)
		e, reg, _ := newEngine(t, engine.Config{})
		var col collector
		err := e.Run(runCtx(t), rx, passThrough, col.sink)
		var dle *engine.DeadLetterError
		if !errors.Is(err, engine.ErrDeadLettersRejected) || !errors.Is(err, engine.ErrRoute) || !errors.As(err, &dle) || dle.Count != 1 {
			t.Fatalf("err = %v", err)
		}
		if tr.Committed() != 0 {
			t.Fatalf("committed %d", tr.Committed())
		}
		if labelled(t, reg, "keel_engine_dead_letters_total", "action", "rejected") != 1 {
			t.Fatal("rejection not counted")
		}
	})
	t.Run("reject_process_dead_letters", func(t *testing.T) {
		tr := feed(t, 3)
		e, _, _ := newEngine(t, engine.Config{DeadLetterPolicy: engine.DeadLetterReject})
		var col collector
		err := e.Run(runCtx(t), tr, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			return b.WithDeadLetters(transport.DeadLetter{Reason: "x"}), nil
		}, col.sink)
		if !errors.Is(err, engine.ErrDeadLettersRejected) || tr.Committed() != 0 {
			t.Fatalf("err = %v, committed %d", err, tr.Committed())
		}
	})
	t.Run("discard_is_counted", func(t *testing.T) {
		tr, rx := mk(t)
		e, reg, logs := newEngine(t, engine.Config{DeadLetterPolicy: engine.DeadLetterDiscard})
		var col collector
		if err := e.Run(runCtx(t), rx, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		if _, recs, _ := col.snapshot(); recs != 5 || tr.Committed() != 6 {
			t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
		}
		if e.Stats().Discarded != 1 || labelled(t, reg, "keel_engine_dead_letters_total", "action", "discarded") != 1 {
			t.Fatalf("discard not counted: %+v", e.Stats())
		}
		if !strings.Contains(logs.String(), "dead letters discarded") {
			t.Fatal("discard not logged")
		}
	})
}

func TestTokenCountChangeWarnsAndInputTokensAreCommitted(t *testing.T) {
	tr := feed(t, 5)
	e, reg, logs := newEngine(t, engine.Config{})
	var col collector
	err := e.Run(runCtx(t), tr, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return transport.FromRecords(b.Records...), nil // drops the tokens
	}, col.sink)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Committed() != 5 {
		t.Fatalf("watermark %d: the engine must commit the input tokens", tr.Committed())
	}
	if counter(t, reg, "keel_engine_token_count_changes_total") != 1 {
		t.Fatal("token change not counted")
	}
	if !strings.Contains(logs.String(), "process changed the number of commit tokens") {
		t.Fatalf("no warning in %q", logs.String())
	}
}

func TestSinkManagedCommit(t *testing.T) {
	tr := feed(t, 6)
	rx := &filteringReceiver{Transport: tr, marker: `"seq":5}`, drop: true}
	e, reg, _ := newEngine(t, engine.Config{MaxRecords: 3, CommitMode: engine.CommitSinkManaged})
	var calls int
	sink := func(ctx context.Context, b transport.Batch) error {
		calls++
		if tr.Commits() != calls-1 {
			t.Errorf("the engine committed under sink_managed")
		}
		return tr.Commit(ctx, b.Tokens)
	}
	// The second block's only surviving record is dropped by process, so
	// the sink still gets its tokens.
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return b.MapRecords(func(r transport.Record) []transport.Record {
			if strings.Contains(string(r.Payload), `"seq":3}`) || strings.Contains(string(r.Payload), `"seq":4}`) {
				return nil
			}
			return []transport.Record{r}
		}), nil
	}
	if err := e.Run(runCtx(t), rx, process, sink); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || tr.Committed() != 6 {
		t.Fatalf("sink calls %d, watermark %d", calls, tr.Committed())
	}
	if counter(t, reg, "keel_engine_commits_total") != 0 {
		t.Fatal("engine counted its own commit under sink_managed")
	}
}

func TestSinkManagedRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		run  func(*engine.Engine, context.Context, transport.Receiver, engine.ProcessFunc, engine.SinkFunc) error
	}{
		{"streaming", engine.Config{CommitMode: engine.CommitSinkManaged}, (*engine.Engine).RunStreaming},
		{"governed_with_budget", engine.Config{CommitMode: engine.CommitSinkManaged, Budget: &halvingBudget{bytes: 1024}}, (*engine.Engine).RunGoverned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := feed(t, 3)
			e, _, _ := newEngine(t, tc.cfg)
			var col collector
			err := tc.run(e, runCtx(t), tr, passThrough, col.sink)
			if !errors.Is(err, engine.ErrSinkManagedUnsupported) {
				t.Fatalf("err = %v", err)
			}
			if tr.Len() != 3 {
				t.Fatal("records were received before the refusal")
			}
		})
	}
	t.Run("governed_without_budget_allows_it", func(t *testing.T) {
		tr := feed(t, 3)
		e, _, _ := newEngine(t, engine.Config{CommitMode: engine.CommitSinkManaged})
		err := e.RunGoverned(runCtx(t), tr, passThrough, func(ctx context.Context, b transport.Batch) error {
			return tr.Commit(ctx, b.Tokens)
		})
		if err != nil || tr.Committed() != 3 {
			t.Fatalf("err %v, watermark %d", err, tr.Committed())
		}
	})
}

func TestRecvErrors(t *testing.T) {
	t.Run("fatal_is_terminal", func(t *testing.T) {
		tr := inmem.New(inmem.Config{})
		_ = tr.Close(context.Background()) // Recv now fails with ErrClosed...
		e, reg, _ := newEngine(t, engine.Config{})
		var col collector
		// ...which is the end of a finite source: nil.
		if err := e.Run(runCtx(t), tr, passThrough, col.sink); err != nil {
			t.Fatalf("closed source: %v", err)
		}
		bad := &brokenReceiver{err: transport.NewError(transport.ErrConnection, "broken", "recv", errBoom)}
		err := e.Run(runCtx(t), bad, passThrough, col.sink)
		if !errors.Is(err, engine.ErrRecv) || !errors.Is(err, transport.ErrConnection) || !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
		if labelled(t, reg, "keel_engine_failures_total", "stage", "recv") != 1 {
			t.Fatal("recv failure not counted")
		}
	})
	t.Run("nil_arguments", func(t *testing.T) {
		e, _, _ := newEngine(t, engine.Config{})
		tr := inmem.New(inmem.Config{})
		var col collector
		for _, err := range []error{
			e.Run(context.Background(), nil, passThrough, col.sink),
			e.Run(context.Background(), tr, nil, col.sink),
			e.RunStreaming(context.Background(), tr, passThrough, nil),
			e.RunParsed(context.Background(), tr, nil, col.sink),
		} {
			if !errors.Is(err, engine.ErrNilArgument) {
				t.Fatalf("err = %v", err)
			}
		}
	})
}

type brokenReceiver struct{ err error }

func (b *brokenReceiver) Recv(context.Context, transport.Limits) (transport.Batch, error) {
	return transport.Batch{}, b.err
}
func (b *brokenReceiver) Commit(context.Context, []transport.Token) error { return nil }
func (b *brokenReceiver) Close(context.Context) error                     { return nil }
func (b *brokenReceiver) Health(context.Context) error                    { return nil }
func (b *brokenReceiver) Name() string                                    { return "broken" }

func TestCancellation(t *testing.T) {
	t.Run("idle_source", func(t *testing.T) {
		tr := inmem.New(inmem.Config{})
		e, _, _ := newEngine(t, engine.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		var col collector
		go func() { done <- e.Run(ctx, tr, passThrough, col.sink) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	})
	// With a negative drain_timeout the block in flight is abandoned at
	// once (the graceful drain is covered in drain_test.go).
	t.Run("during_sink_no_drain", func(t *testing.T) {
		tr := feed(t, 3)
		e, reg, _ := newEngine(t, engine.Config{DrainTimeout: -1})
		ctx, cancel := context.WithCancel(context.Background())
		inSink := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- e.Run(ctx, tr, passThrough, func(ctx context.Context, _ transport.Batch) error {
				close(inSink)
				<-ctx.Done()
				return ctx.Err()
			})
		}()
		<-inSink
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v, want nil on cancellation", err)
		}
		if tr.Committed() != 0 {
			t.Fatal("a block interrupted by shutdown was committed")
		}
		if labelled(t, reg, "keel_engine_failures_total", "stage", "sink") != 0 {
			t.Fatal("shutdown counted as a failure")
		}
	})
	t.Run("already_cancelled", func(t *testing.T) {
		tr := feed(t, 3)
		e, _, _ := newEngine(t, engine.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var col collector
		if err := e.Run(ctx, tr, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		if tr.Len() != 3 {
			t.Fatal("a cancelled loop received records")
		}
	})
}

func TestTicker(t *testing.T) {
	tr := inmem.New(inmem.Config{Capacity: 100})
	const interval = 2 * time.Millisecond
	ticks := make(chan time.Time, 100)
	var inBlock, overlap atomic.Int32
	var n atomic.Int32
	cfg := engine.Config{
		TickInterval: interval,
		OnTick: func(context.Context) error {
			if inBlock.Load() != 0 {
				overlap.Add(1)
			}
			ticks <- time.Now()
			if n.Add(1) == 1 {
				return errBoom // the first tick fails; the loop must go on
			}
			return nil
		},
	}
	e, reg, logs := newEngine(t, cfg)
	ctx, cancel := context.WithCancel(runCtx(t))
	start := time.Now()
	done := make(chan error, 1)
	var col collector
	go func() {
		done <- e.Run(ctx, tr, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			inBlock.Add(1)
			defer inBlock.Add(-1)
			return b, nil
		}, col.sink)
	}()
	first := <-ticks
	if first.Sub(start) < interval {
		t.Fatalf("first tick %v after start, want at least one interval (%v)", first.Sub(start), interval)
	}
	// Records flow between ticks.
	for i := range 20 {
		if err := tr.InjectPayloads(ctx, jsonLine(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		<-ticks
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := e.Stats()
	if st.Ticks < 4 || st.TickErrors != 1 {
		t.Fatalf("ticks %d, tick errors %d", st.Ticks, st.TickErrors)
	}
	if overlap.Load() != 0 {
		t.Fatal("the ticker ran during a block")
	}
	if counter(t, reg, "keel_engine_tick_errors_total") != 1 {
		t.Fatal("tick error not counted")
	}
	if !strings.Contains(logs.String(), "engine ticker failed") {
		t.Fatal("tick error not logged")
	}
	if tr.Committed() != uint64(st.Received) {
		t.Fatalf("committed %d of %d received", tr.Committed(), st.Received)
	}
}

func TestMemoryLeaseReleasedOnEveryPath(t *testing.T) {
	parsedOutput := func(_ context.Context, pb *engine.ParsedBatch) (transport.Batch, error) { return pb.Output(), nil }
	deadLetterFirst := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return b.WithDeadLetters(transport.DeadLetter{Record: b.Records[0], Reason: "bad record"}), nil
	}
	for _, tc := range []struct {
		name    string
		cfg     engine.Config
		source  func(t *testing.T) *inmem.Transport
		run     func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error
		sinkErr error
		want    error
	}{
		{name: "success"},
		{name: "sink_error", sinkErr: errBoom, want: engine.ErrSink},
		{name: "process_error", want: engine.ErrProcess,
			run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
				return e.Run(ctx, r, func(context.Context, transport.Batch) (transport.Batch, error) {
					return transport.Batch{}, errBoom
				}, sink)
			}},
		{name: "route_error", want: engine.ErrRoute,
			cfg: engine.Config{RouteDeadLetters: func(context.Context, []transport.DeadLetter) error { return errBoom }},
			run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
				return e.Run(ctx, r, deadLetterFirst, sink)
			}},
		{name: "commit_error", want: engine.ErrCommit, source: func(t *testing.T) *inmem.Transport {
			tr := feed(t, 10)
			tr.FailNextCommit(errBoom)
			return tr
		}},
		{name: "parsed_success",
			run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
				return e.RunParsed(ctx, r, parsedOutput, sink)
			}},
		{name: "parsed_fail_batch", want: engine.ErrParseBatch, cfg: engine.Config{ParseErrorAction: engine.ParseFailBatch},
			source: func(t *testing.T) *inmem.Transport { tr, _ := mixedSource(t); return tr },
			run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
				return e.RunParsed(ctx, r, parsedOutput, sink)
			}},
		{name: "streaming_sink_error", sinkErr: errBoom, want: engine.ErrSink, cfg: engine.Config{SubBlockBytes: 1 << 10},
			run: func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
				return e.RunStreaming(ctx, r, passThrough, sink)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &accountant{}
			tc.cfg.Memory = acc
			var tr *inmem.Transport
			if tc.source != nil {
				tr = tc.source(t)
			} else {
				tr = feed(t, 10)
			}
			run := tc.run
			if run == nil {
				run = func(e *engine.Engine, ctx context.Context, r transport.Receiver, sink engine.SinkFunc) error {
					return e.Run(ctx, r, passThrough, sink)
				}
			}
			e, reg, _ := newEngine(t, tc.cfg)
			err := run(e, runCtx(t), tr, func(_ context.Context, b transport.Batch) error {
				if cur, _ := acc.state(); cur != b.PayloadBytes() {
					t.Errorf("lease during sink %d, want the bytes of the (sub-)block sunk, %d", cur, b.PayloadBytes())
				}
				return tc.sinkErr
			})
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			cur, high := acc.state()
			if high == 0 {
				t.Fatal("no block was leased")
			}
			if cur != 0 {
				t.Fatalf("lease after the run %d, want 0", cur)
			}
			if g := counter(t, reg, "keel_engine_block_bytes"); g != 0 {
				t.Fatalf("in-flight block bytes gauge %v after the run, want 0", g)
			}
		})
	}
	// A block abandoned when the drain deadline passes gives its lease back.
	t.Run("abandoned_after_drain_timeout", func(t *testing.T) {
		acc := &accountant{}
		e, reg, _ := newEngine(t, engine.Config{Memory: acc, DrainTimeout: 10 * time.Millisecond})
		src := feedOpen(t, 3)
		ctx, cancel := context.WithCancel(runCtx(t))
		inSink := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- e.Run(ctx, src, passThrough, func(sctx context.Context, _ transport.Batch) error {
				close(inSink)
				<-sctx.Done()
				return sctx.Err()
			})
		}()
		<-inSink
		if cur, _ := acc.state(); cur == 0 {
			t.Error("the block in the sink is not leased")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v, want nil when the drain deadline passes", err)
		}
		if src.Committed() != 0 {
			t.Fatal("the abandoned block was committed")
		}
		if labelled(t, reg, "keel_engine_drains_total", "result", "abandoned") != 1 {
			t.Fatal("the block was not abandoned by the drain deadline")
		}
		if cur, _ := acc.state(); cur != 0 {
			t.Fatalf("lease after the abandoned block %d, want 0", cur)
		}
	})
}

func TestGoverned(t *testing.T) {
	t.Run("budget_moves_limits_and_sub_blocks", func(t *testing.T) {
		tr := feed(t, 64)
		line := int64(len(jsonLine(10)))
		rx := &filteringReceiver{Transport: tr}
		budget := &halvingBudget{bytes: 16 * line, floor: 2 * line, cap: 12}
		acc := &accountant{}
		e, reg, _ := newEngine(t, engine.Config{Budget: budget, Memory: acc})
		var col collector
		if err := e.RunGoverned(runCtx(t), rx, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		if _, recs, _ := col.snapshot(); recs != 64 || tr.Committed() != 64 {
			t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
		}
		lim := rx.recvLimits()
		if lim[0].MaxRecords != 12 || lim[0].MaxBytes != 16*line {
			t.Fatalf("first recv limits %+v, want the budget's record cap and bytes", lim[0])
		}
		if last := lim[len(lim)-1]; last.MaxBytes >= lim[0].MaxBytes {
			t.Fatalf("recv byte cap did not follow the budget: first %d, last %d", lim[0].MaxBytes, last.MaxBytes)
		}
		obs := budget.observations()
		var sum int64
		for _, o := range obs {
			sum += o
		}
		if uint64(sum) != e.Stats().ReceivedBytes || len(obs) != tr.Commits() {
			t.Fatalf("observed %v (sum %d) for %d bytes in %d blocks", obs, sum, e.Stats().ReceivedBytes, tr.Commits())
		}
		if _, high := acc.state(); high > 16*line+line {
			t.Fatalf("peak lease %d above the largest budget plus one record (%d)", high, 17*line)
		}
		if len(obs) < 5 {
			t.Fatalf("only %d blocks; a halving budget must shrink the receives", len(obs))
		}
		if g := counter(t, reg, "keel_engine_budget_bytes"); g != float64(2*line) {
			t.Fatalf("budget gauge %v, want the floor %d", g, 2*line)
		}
	})
	// Each governed receive is capped at the budget: 64 records of 4 KiB
	// against a 16 KiB budget arrive in blocks of at most the budget plus
	// one record (the soft cap's floor), never the whole queue at once.
	t.Run("recv_bytes_within_budget_plus_one_record", func(t *testing.T) {
		const n, recBytes, budgetBytes, recordCap = 64, 4 << 10, 16 << 10, 4096
		tr := inmem.New(inmem.Config{Capacity: n})
		for i := range n {
			p := append([]byte(`{"seq":`+strconv.Itoa(i)+`,"pad":"`), bytes.Repeat([]byte("x"), recBytes)...)
			p = append(p[:recBytes-2], '"', '}')
			if err := tr.Inject(context.Background(), transport.Record{Payload: p}); err != nil {
				t.Fatal(err)
			}
		}
		tr.CloseInput()
		rx := &filteringReceiver{Transport: tr}
		budget := &halvingBudget{bytes: budgetBytes, floor: budgetBytes, cap: recordCap}
		e, _, _ := newEngine(t, engine.Config{Budget: budget})
		var col collector
		if err := e.RunGoverned(runCtx(t), rx, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		for i, l := range rx.recvLimits() {
			if l.MaxBytes != budgetBytes || l.MaxRecords != recordCap {
				t.Fatalf("receive %d limits %+v, want %d bytes and %d records", i, l, budgetBytes, recordCap)
			}
		}
		obs := budget.observations()
		var sum int64
		for i, o := range obs {
			if o > budgetBytes+recBytes {
				t.Fatalf("block %d holds %d payload bytes, over the budget plus one record (%d)", i, o, budgetBytes+recBytes)
			}
			sum += o
		}
		if sum != n*recBytes || tr.Committed() != n {
			t.Fatalf("%d bytes observed in %d blocks, committed %d; want %d bytes and %d records", sum, len(obs), tr.Committed(), n*recBytes, n)
		}
		if least := n * recBytes / (budgetBytes + recBytes); len(obs) < least {
			t.Fatalf("%d blocks; a 16 KiB budget needs at least %d", len(obs), least)
		}
	})
	t.Run("without_budget_is_run", func(t *testing.T) {
		tr := feed(t, 30)
		e, _, _ := newEngine(t, engine.Config{MaxRecords: 10})
		var col collector
		if err := e.RunGoverned(runCtx(t), tr, passThrough, col.sink); err != nil {
			t.Fatal(err)
		}
		calls, recs, _ := col.snapshot()
		if calls != 3 || recs != 30 || tr.Commits() != 3 || tr.Committed() != 30 {
			t.Fatalf("calls %d records %d commits %d watermark %d; want one sink call and one commit per block",
				calls, recs, tr.Commits(), tr.Committed())
		}
	})
}

func TestConcurrentLoopsShareOneEngine(t *testing.T) {
	e, _, _ := newEngine(t, engine.Config{MaxRecords: 7})
	const loops, per = 4, 100
	trs := make([]*inmem.Transport, loops)
	for i := range trs {
		trs[i] = feed(t, per)
	}
	errs := make(chan error, loops)
	var col collector
	for i := range loops {
		go func() { errs <- e.Run(runCtx(t), trs[i], fanOut, col.sink) }()
	}
	for range loops {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := e.Stats()
	if st.Received != loops*per || st.Processed != loops*per || st.Delivered != 2*loops*per {
		t.Fatalf("stats %+v", st)
	}
	for _, tr := range trs {
		if tr.Committed() != per {
			t.Fatalf("watermark %d", tr.Committed())
		}
	}
}
