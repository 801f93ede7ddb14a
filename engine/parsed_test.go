package engine_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// adversarial returns records that try to break a parser, and how many of
// them are valid.
func adversarial(t testing.TB) (records []transport.Record, valid int) {
	t.Helper()
	mp, err := msgpack.Marshal(map[string]any{"level": "warn", "seq": 7})
	if err != nil {
		t.Fatal(err)
	}
	big := `{"level":"info","blob":"` + strings.Repeat("x", 1<<20) + `"}`
	add := func(p []byte, ok bool) {
		records = append(records, transport.Record{Payload: p})
		if ok {
			valid++
		}
	}
	add([]byte(strings.Repeat("[", 5000)+strings.Repeat("]", 5000)), false)         // array bomb
	add([]byte(strings.Repeat(`{"a":`, 5000)+"1"+strings.Repeat("}", 5000)), false) // object bomb
	add(bytes.Repeat([]byte{0xdc, 0x00, 0x01}, 5000), false)                        // MsgPack array bomb
	add([]byte(big), true)                                                          // 1 MiB
	add([]byte{0, 0, 0, 0}, false)                                                  // NUL bytes
	add([]byte("{\"level\":\"a\x00b\"}"), false)                                    // raw NUL inside a string
	add([]byte(`{"level":"nul\u0000ok"}`), true)                                    // escaped NUL
	add([]byte{}, false)                                                            // empty
	add([]byte("   \n"), false)                                                     // whitespace only
	add([]byte(`{"level":`), false)                                                 // truncated
	add([]byte(`{"level":"info"} trailing`), false)                                 // trailing garbage
	add([]byte(`{"level":"info","seq":1}`), true)                                   // valid
	add([]byte(`not json at all`), false)                                           // garbage
	add(mp, true)                                                                   // MsgPack, auto-detected
	add([]byte(`{"level":"日本語","emoji":"🎉"}`), true)                                // Unicode
	add([]byte(strings.Repeat("[", 10)+strings.Repeat("]", 10)), true)              // shallow nesting
	return records, valid
}

func injectAll(t testing.TB, records []transport.Record) *inmem.Transport {
	t.Helper()
	tr := inmem.New(inmem.Config{Capacity: max(len(records), 1)})
	if err := tr.Inject(context.Background(), records...); err != nil {
		t.Fatal(err)
	}
	tr.CloseInput()
	return tr
}

func TestParsedBatchIsAlignedAndInterned(t *testing.T) {
	for _, intern := range []bool{true, false} {
		t.Run("intern_keys="+strconv.FormatBool(intern), func(t *testing.T) { testParsedBatch(t, intern) })
	}
}

func testParsedBatch(t *testing.T, intern bool) {
	tr := feed(t, 40)
	e, reg, _ := newEngine(t, engine.Config{MaxRecords: 20, InternKeys: intern})
	var keyPtrs sync.Map // one pointer per distinct "level" key string
	var col collector
	process := func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		if len(b.Records) != len(b.Values) || b.Len() != len(b.Records) || len(b.Tokens) != len(b.Records) {
			t.Errorf("records %d, values %d, tokens %d", len(b.Records), len(b.Values), len(b.Tokens))
		}
		for i, v := range b.Values {
			if !bytes.Equal(v.Raw(), b.Records[i].Payload) {
				t.Errorf("value %d is not record %d", i, i)
			}
			if _, ok := v.Field("seq").Int(); !ok {
				t.Errorf("value %d has no seq", i)
			}
			for k := range v.Interface().(map[string]any) {
				if k == "level" {
					keyPtrs.Store(unsafe.StringData(k), true)
				}
			}
		}
		if b.Intern("level") == "" || b.Interner != e.Interner() {
			t.Error("the batch does not share the engine's interner")
		}
		return b.Output(), nil
	}
	if err := e.RunParsed(runCtx(t), tr, process, col.sink); err != nil {
		t.Fatal(err)
	}
	distinct := 0
	keyPtrs.Range(func(any, any) bool { distinct++; return true })
	switch {
	case intern && distinct != 1:
		t.Fatalf("the key \"level\" of 40 records lives in %d strings, want 1 (interned)", distinct)
	case !intern && distinct != 40:
		t.Fatalf("without intern_keys the key \"level\" lives in %d strings, want one per payload (40)", distinct)
	}
	if _, recs, _ := col.snapshot(); recs != 40 || tr.Committed() != 40 {
		t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
	}
	if counter(t, reg, "keel_engine_parse_duration_seconds") != 2 {
		t.Fatal("parse duration not observed per block")
	}
}

func TestParsedMatchesOnDemand(t *testing.T) {
	enrich := func(v *codec.Value) error { return v.Set("region", "eu-west-1") }
	onDemand := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		var err error
		out := b.MapRecords(func(r transport.Record) []transport.Record {
			v, perr := codec.Parse(r.Payload, codec.ParseOptions{})
			if perr != nil {
				err = perr
				return nil
			}
			if err = enrich(v); err != nil {
				return nil
			}
			if r.Payload, err = v.Bytes(); err != nil {
				return nil
			}
			return []transport.Record{r}
		})
		return out, err
	}
	parsed := func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		for _, v := range b.Values {
			if err := enrich(v); err != nil {
				return transport.Batch{}, err
			}
		}
		return b.Output(), nil
	}
	e1, _, _ := newEngine(t, engine.Config{})
	e2, _, _ := newEngine(t, engine.Config{})
	var c1, c2 collector
	if err := e1.Run(runCtx(t), feed(t, 25), onDemand, c1.sink); err != nil {
		t.Fatal(err)
	}
	if err := e2.RunParsed(runCtx(t), feed(t, 25), parsed, c2.sink); err != nil {
		t.Fatal(err)
	}
	_, _, b1 := c1.snapshot()
	_, _, b2 := c2.snapshot()
	var p1, p2 [][]byte
	for _, b := range b1 {
		for _, r := range b.Records {
			p1 = append(p1, r.Payload)
		}
	}
	for _, b := range b2 {
		for _, r := range b.Records {
			p2 = append(p2, r.Payload)
		}
	}
	if len(p1) != 25 || len(p2) != 25 {
		t.Fatalf("%d and %d records", len(p1), len(p2))
	}
	for i := range p1 {
		if !bytes.Equal(p1[i], p2[i]) {
			t.Fatalf("record %d differs:\n%s\n%s", i, p1[i], p2[i])
		}
		if !bytes.Contains(p1[i], []byte(`"region":"eu-west-1"`)) {
			t.Fatalf("record %d not enriched: %s", i, p1[i])
		}
	}
}

func mixedSource(t testing.TB) (*inmem.Transport, int) {
	var recs []transport.Record
	for i := range 10 {
		p := jsonLine(i)
		if i%3 == 1 {
			p = []byte(`{"broken":` + strconv.Itoa(i))
		}
		recs = append(recs, transport.Record{Payload: p})
	}
	return injectAll(t, recs), 3 // records 1, 4, 7 are broken
}

func TestParseErrorActions(t *testing.T) {
	t.Run("dead_letter_is_routed_before_commit", func(t *testing.T) {
		tr, bad := mixedSource(t)
		var routed []transport.DeadLetter
		e, reg, _ := newEngine(t, engine.Config{RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
			if tr.Committed() != 0 {
				t.Error("routed after the commit")
			}
			routed = append(routed, dls...)
			return nil
		}})
		var col collector
		var seen int
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			seen = len(b.ParseFailures)
			return b.Output(), nil // the failures are not copied: the engine routes them
		}, col.sink)
		if err != nil {
			t.Fatal(err)
		}
		if len(routed) != bad || seen != bad {
			t.Fatalf("routed %d, batch showed %d, want %d", len(routed), seen, bad)
		}
		for _, dl := range routed {
			if !strings.HasPrefix(dl.Reason, "parse error: ") || !bytes.HasPrefix(dl.Record.Payload, []byte(`{"broken"`)) {
				t.Fatalf("dead letter %q %s", dl.Reason, dl.Record.Payload)
			}
		}
		if _, recs, _ := col.snapshot(); recs != 10-bad || tr.Committed() != 10 {
			t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
		}
		if st := e.Stats(); st.ParseErrors != uint64(bad) || st.Processed != uint64(10-bad) || st.DeadLettered != uint64(bad) {
			t.Fatalf("stats %+v", st)
		}
		if counter(t, reg, "keel_engine_parse_errors_total") != float64(bad) {
			t.Fatal("parse errors not counted")
		}
	})
	t.Run("dead_letter_rejected_by_default", func(t *testing.T) {
		tr, _ := mixedSource(t)
		e, _, _ := newEngine(t, engine.Config{})
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			return b.Output(), nil
		}, col.sink)
		if !errors.Is(err, engine.ErrDeadLettersRejected) || tr.Committed() != 0 {
			t.Fatalf("err %v, committed %d", err, tr.Committed())
		}
	})
	t.Run("skip_drops_and_counts", func(t *testing.T) {
		tr, bad := mixedSource(t)
		// The default reject policy proves skip produces no dead letter.
		e, reg, _ := newEngine(t, engine.Config{ParseErrorAction: engine.ParseSkip})
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			return b.Output(), nil
		}, col.sink)
		if err != nil {
			t.Fatal(err)
		}
		if _, recs, _ := col.snapshot(); recs != 10-bad || tr.Committed() != 10 {
			t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
		}
		if e.Stats().Skipped != uint64(bad) || counter(t, reg, "keel_engine_records_skipped_total") != float64(bad) {
			t.Fatalf("skips not counted: %+v", e.Stats())
		}
	})
	t.Run("fail_batch_is_terminal", func(t *testing.T) {
		tr, _ := mixedSource(t)
		e, reg, _ := newEngine(t, engine.Config{ParseErrorAction: engine.ParseFailBatch})
		var col collector
		var called bool
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			called = true
			return b.Output(), nil
		}, col.sink)
		var pe *engine.ParseError
		if !errors.Is(err, engine.ErrParseBatch) || !errors.Is(err, codec.ErrSyntax) || !errors.As(err, &pe) || pe.Index != 1 {
			t.Fatalf("err = %v", err)
		}
		if called || tr.Committed() != 0 {
			t.Fatalf("process called %v, committed %d", called, tr.Committed())
		}
		if calls, _, _ := col.snapshot(); calls != 0 {
			t.Fatal("sink called")
		}
		if labelled(t, reg, "keel_engine_failures_total", "stage", "parse") != 1 {
			t.Fatal("failure not counted under stage parse")
		}
	})
	t.Run("all_failed_block_commits_without_process", func(t *testing.T) {
		tr := injectAll(t, []transport.Record{{Payload: []byte("x")}, {Payload: []byte("{")}})
		e, _, _ := newEngine(t, engine.Config{DeadLetterPolicy: engine.DeadLetterDiscard})
		var called bool
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			called = true
			return b.Output(), nil
		}, col.sink)
		if err != nil || called || tr.Committed() != 2 || e.Stats().Discarded != 2 {
			t.Fatalf("err %v, process called %v, committed %d, stats %+v", err, called, tr.Committed(), e.Stats())
		}
	})
}

func TestParsedAdversarialRecords(t *testing.T) {
	records, valid := adversarial(t)
	tr := injectAll(t, records)
	var routed int
	e, _, _ := newEngine(t, engine.Config{RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
		for _, dl := range dls {
			if !strings.HasPrefix(dl.Reason, "parse error: ") {
				t.Errorf("reason %q", dl.Reason)
			}
			if strings.Contains(dl.Reason, "xxxx") {
				t.Error("a reason quotes the payload")
			}
		}
		routed += len(dls)
		return nil
	}})
	var col collector
	var msgpackLevel string
	err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		for _, v := range b.Values {
			if v.Format() == codec.MsgPack {
				msgpackLevel, _ = v.Field("level").Str()
			}
		}
		return b.Output(), nil
	}, col.sink)
	if err != nil {
		t.Fatal(err)
	}
	_, recs, _ := col.snapshot()
	if recs != valid || routed != len(records)-valid {
		t.Fatalf("sunk %d (want %d), routed %d (want %d)", recs, valid, routed, len(records)-valid)
	}
	if msgpackLevel != "warn" {
		t.Fatalf("MsgPack record not detected and read: level %q", msgpackLevel)
	}
	if tr.Committed() != uint64(len(records)) {
		t.Fatalf("committed %d of %d", tr.Committed(), len(records))
	}
}

func TestParsedOutputDeadLettersUnencodable(t *testing.T) {
	tr := feed(t, 2)
	var reasons []string
	e, _, _ := newEngine(t, engine.Config{RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
		for _, d := range dls {
			reasons = append(reasons, d.Reason)
		}
		return nil
	}})
	var col collector
	err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		_ = b.Values[0].Set("bad", make(chan int)) // cannot be encoded
		return b.Output(), nil
	}, col.sink)
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0], "encode error: ") {
		t.Fatalf("reasons %v", reasons)
	}
	if _, recs, _ := col.snapshot(); recs != 1 || tr.Committed() != 2 {
		t.Fatalf("sunk %d, committed %d", recs, tr.Committed())
	}
}

// msgpackLine returns a MsgPack map with a sequence number.
func msgpackLine(t testing.TB, i int) []byte {
	t.Helper()
	p, err := msgpack.Marshal(map[string]any{"level": "info", "seq": i})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// formatLockRun runs RunParsed with format_lock over payloads in blocks of
// two records, and returns the dead letters routed, the payloads sunk, the
// engine and its registry.
func formatLockRun(t *testing.T, cfg engine.Config, payloads [][]byte) (routed []transport.DeadLetter, sunk [][]byte, e *engine.Engine, reg *metrics.Registry) {
	t.Helper()
	records := make([]transport.Record, len(payloads))
	for i, p := range payloads {
		records[i] = transport.Record{Payload: p}
	}
	tr := injectAll(t, records)
	cfg.FormatLock = true
	cfg.MaxRecords = 2 // the lock holds across blocks
	cfg.RouteDeadLetters = func(_ context.Context, dls []transport.DeadLetter) error {
		routed = append(routed, dls...)
		return nil
	}
	e, reg, _ = newEngine(t, cfg)
	var col collector
	err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		return b.Output(), nil
	}, col.sink)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Committed() != uint64(len(payloads)) {
		t.Fatalf("committed %d of %d", tr.Committed(), len(payloads))
	}
	_, _, batches := col.snapshot()
	for _, b := range batches {
		for _, r := range b.Records {
			sunk = append(sunk, r.Payload)
		}
	}
	return routed, sunk, e, reg
}

func TestFormatLock(t *testing.T) {
	t.Run("stray_msgpack_in_a_json_stream_is_dead_lettered", func(t *testing.T) {
		stray := msgpackLine(t, 2)
		payloads := [][]byte{jsonLine(0), jsonLine(1), stray, jsonLine(3), jsonLine(4)}
		routed, sunk, e, reg := formatLockRun(t, engine.Config{}, payloads)
		if len(routed) != 1 || !bytes.Equal(routed[0].Record.Payload, stray) {
			t.Fatalf("routed %+v, want the MsgPack record alone", routed)
		}
		if want := "format mismatch: expected json, got msgpack (1 in a row)"; routed[0].Reason != want {
			t.Fatalf("reason %q, want %q", routed[0].Reason, want)
		}
		if len(sunk) != 4 {
			t.Fatalf("sunk %d records, want the 4 JSON ones", len(sunk))
		}
		for _, p := range sunk {
			if codec.Detect(p) != codec.JSON {
				t.Fatalf("sunk a non-JSON record %x", p)
			}
		}
		if st := e.Stats(); st.Errors != 1 || st.ParseErrors != 0 || st.DeadLettered != 1 || st.Processed != 4 {
			t.Fatalf("stats %+v: want one record error, no parse error", st)
		}
		if got := keeltest.MetricValue(t, reg.Gatherer(), "keel_codec_format_mismatches_total", map[string]string{"format": "msgpack"}); got != 1 {
			t.Fatalf("format_mismatches_total{format=msgpack} = %v, want 1", got)
		}
	})
	t.Run("a_run_of_msgpack_relocks", func(t *testing.T) {
		// json, json, then five MsgPack: the first three are mismatches (the
		// third completes the run and relocks), the next two parse; a JSON
		// record after the relock is the stray one.
		payloads := [][]byte{jsonLine(0), jsonLine(1)}
		for i := 2; i < 7; i++ {
			payloads = append(payloads, msgpackLine(t, i))
		}
		payloads = append(payloads, jsonLine(7))
		routed, sunk, _, reg := formatLockRun(t, engine.Config{FormatRelockAfter: 3}, payloads)
		want := []string{
			"format mismatch: expected json, got msgpack (1 in a row)",
			"format mismatch: expected json, got msgpack (2 in a row)",
			"format mismatch: expected json, got msgpack (3 in a row; now locked to msgpack)",
			"format mismatch: expected msgpack, got json (1 in a row)",
		}
		if len(routed) != len(want) {
			t.Fatalf("routed %d dead letters, want %d: %+v", len(routed), len(want), routed)
		}
		for i, w := range want {
			if routed[i].Reason != w {
				t.Fatalf("dead letter %d reason %q, want %q", i, routed[i].Reason, w)
			}
		}
		if !bytes.Equal(routed[3].Record.Payload, jsonLine(7)) {
			t.Fatal("the JSON record after the relock was not the one dead-lettered")
		}
		if len(sunk) != 4 || !bytes.Equal(sunk[2], payloads[5]) || !bytes.Equal(sunk[3], payloads[6]) {
			t.Fatalf("sunk %d records, want json 0, json 1 and the MsgPack records after the relock", len(sunk))
		}
		if got := keeltest.MetricValue(t, reg.Gatherer(), "keel_codec_format_relocks_total", map[string]string{"format": "msgpack"}); got != 1 {
			t.Fatalf("format_relocks_total{format=msgpack} = %v, want 1", got)
		}
	})
	t.Run("off_by_default_mixed_formats_parse", func(t *testing.T) {
		tr := injectAll(t, []transport.Record{{Payload: jsonLine(0)}, {Payload: msgpackLine(t, 1)}, {Payload: jsonLine(2)}})
		e, _, _ := newEngine(t, engine.Config{})
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			return b.Output(), nil
		}, col.sink)
		if err != nil {
			t.Fatalf("RunParsed without format_lock: %v", err)
		}
		if _, recs, _ := col.snapshot(); recs != 3 {
			t.Fatalf("sunk %d, want all 3", recs)
		}
	})
	t.Run("declared_formats_are_not_checked", func(t *testing.T) {
		// A transport that declares each record's format is believed: the
		// JSON-declared record after a MsgPack lock is not a mismatch.
		records := []transport.Record{{Payload: msgpackLine(t, 0)}, {Payload: jsonLine(1), Format: codec.JSON}}
		tr := injectAll(t, records)
		e, _, _ := newEngine(t, engine.Config{FormatLock: true})
		var col collector
		err := e.RunParsed(runCtx(t), tr, func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
			return b.Output(), nil
		}, col.sink)
		if err != nil {
			t.Fatalf("a declared format was treated as a mismatch: %v", err)
		}
		if _, recs, _ := col.snapshot(); recs != 2 {
			t.Fatalf("sunk %d, want 2", recs)
		}
	})
}
