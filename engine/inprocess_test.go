package engine_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
)

func payloads(ps ...string) []transport.Record {
	out := make([]transport.Record, len(ps))
	for i, p := range ps {
		out[i] = transport.Record{Payload: []byte(p)}
	}
	return out
}

func readSeq(_ context.Context, m *engine.Message) (int64, error) {
	n, ok := m.Field("seq").Int()
	if !ok {
		return 0, errors.New("no seq")
	}
	return n, nil
}

func jsonRecords(n int) []transport.Record {
	out := make([]transport.Record, n)
	for i := range out {
		out[i] = transport.Record{Payload: jsonLine(i)}
	}
	return out
}

func TestProcessRecordsOrderAndChunks(t *testing.T) {
	for _, tc := range []struct{ n, chunk int }{{0, 10}, {1, 10}, {10, 10}, {11, 10}, {25, 1}, {250, 100}, {20000, 0}} {
		t.Run(strconv.Itoa(tc.n)+"/"+strconv.Itoa(tc.chunk), func(t *testing.T) {
			e, _, _ := newEngine(t, engine.Config{MaxRecords: tc.chunk})
			res := engine.ProcessRecords(context.Background(), e, jsonRecords(tc.n), readSeq)
			if len(res) != tc.n {
				t.Fatalf("%d results for %d records", len(res), tc.n)
			}
			for i, r := range res {
				if r.Err != nil || r.Value != int64(i) || r.Index != i {
					t.Fatalf("result %d = %+v", i, r)
				}
			}
			if st := e.Stats(); st.Received != uint64(tc.n) || st.Processed != uint64(tc.n) || st.Errors != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestProcessRecordsInvalidMix(t *testing.T) {
	var recs []transport.Record
	for i := range 100 {
		if i%2 == 0 {
			recs = append(recs, transport.Record{Payload: jsonLine(i)})
		} else {
			recs = append(recs, transport.Record{Payload: []byte(`{"seq":` + strconv.Itoa(i))})
		}
	}
	e, reg, _ := newEngine(t, engine.Config{})
	res := engine.ProcessRecords(context.Background(), e, recs, readSeq)
	if len(res) != 100 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if i%2 == 0 {
			if r.Err != nil || r.Value != int64(i) {
				t.Fatalf("result %d = %+v", i, r)
			}
			continue
		}
		var re *engine.RecordError
		if !errors.Is(r.Err, engine.ErrRecordParse) || !errors.Is(r.Err, codec.ErrSyntax) || !errors.As(r.Err, &re) ||
			!strings.HasPrefix(re.Reason, "parse error: ") {
			t.Fatalf("result %d err = %v", i, r.Err)
		}
	}
	if st := e.Stats(); st.Processed != 50 || st.Errors != 50 || st.ParseErrors != 50 {
		t.Fatalf("stats %+v", st)
	}
	if counter(t, reg, "keel_engine_record_errors_total") != 50 {
		t.Fatal("record errors not emitted")
	}
	t.Run("all_invalid", func(t *testing.T) {
		e, _, _ := newEngine(t, engine.Config{})
		bad := make([]transport.Record, 20)
		for i := range bad {
			bad[i] = transport.Record{Payload: []byte("{nope")}
		}
		res := engine.ProcessRecords(context.Background(), e, bad, readSeq)
		for _, r := range res {
			if r.Err == nil {
				t.Fatal("an invalid record succeeded")
			}
		}
		if st := e.Stats(); len(res) != 20 || st.Errors != 20 || st.Processed != 0 {
			t.Fatalf("%d results, stats %+v", len(res), st)
		}
	})
}

func TestProcessRecordsParseActions(t *testing.T) {
	recs := payloads(`{"seq":0}`, `{"seq":1}`, `broken`, `{"seq":3}`, `{"seq":4}`)
	t.Run("skip", func(t *testing.T) {
		e, reg, _ := newEngine(t, engine.Config{ParseErrorAction: engine.ParseSkip})
		res := engine.ProcessRecords(context.Background(), e, recs, readSeq)
		if len(res) != 4 || res[2].Index != 3 || res[2].Value != 3 {
			t.Fatalf("results %+v", res)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("result %+v", r)
			}
		}
		if e.Stats().Skipped != 1 || e.Stats().Errors != 1 || counter(t, reg, "keel_engine_records_skipped_total") != 1 {
			t.Fatalf("stats %+v", e.Stats())
		}
	})
	t.Run("fail_batch", func(t *testing.T) {
		e, _, _ := newEngine(t, engine.Config{ParseErrorAction: engine.ParseFailBatch, MaxRecords: 2})
		var calls sync.Map
		res := engine.ProcessRecords(context.Background(), e, recs, func(ctx context.Context, m *engine.Message) (int64, error) {
			calls.Store(m.Index, true)
			return readSeq(ctx, m)
		})
		if len(res) != 3 {
			t.Fatalf("%d results, want up to and including the failing record", len(res))
		}
		for i := range 2 {
			if !errors.Is(res[i].Err, engine.ErrBatchFailed) || res[i].Value != 0 {
				t.Fatalf("result %d = %+v, want ErrBatchFailed", i, res[i])
			}
		}
		var re *engine.RecordError
		if !errors.As(res[2].Err, &re) || !errors.Is(res[2].Err, engine.ErrRecordParse) || !strings.Contains(re.Reason, "fail_batch") {
			t.Fatalf("failing result %+v", res[2])
		}
		for _, i := range []int{2, 3, 4} {
			if _, ok := calls.Load(i); ok {
				t.Fatalf("record %d transformed after the failure", i)
			}
		}
	})
}

func TestProcessRecordsPreRoute(t *testing.T) {
	cfg := engine.Config{
		RoutingField: "_table",
		PreRouteFilters: []engine.PreRouteFilter{
			{Type: engine.DropFieldMissing},
			{Type: engine.DeadLetterFieldValue, Value: "quarantine"},
			{Type: engine.DeadLetterFieldValue, Value: "42"},
		},
	}
	recs := payloads(
		`{"_table":"events","seq":0}`,
		`{"seq":1}`, // missing: filtered
		`{"_table":"quarantine","seq":2}`,
		`{"_table":42,"seq":3}`, // non-string compares by JSON text
		`broken`,                // parse error, not a filter decision
		`{"_table":"logs","seq":5}`,
	)
	e, reg, _ := newEngine(t, cfg)
	res := engine.ProcessRecords(context.Background(), e, recs, readSeq)
	if len(res) != 5 {
		t.Fatalf("%d results: the filtered record must have none", len(res))
	}
	wantIdx := []int{0, 2, 3, 4, 5}
	for i, r := range res {
		if r.Index != wantIdx[i] {
			t.Fatalf("result %d has index %d, want %d", i, r.Index, wantIdx[i])
		}
	}
	if res[0].Err != nil || res[4].Err != nil || res[4].Value != 5 {
		t.Fatalf("results %+v", res)
	}
	for _, i := range []int{1, 2} {
		var re *engine.RecordError
		if !errors.As(res[i].Err, &re) || !errors.Is(res[i].Err, engine.ErrRecordDeadLettered) ||
			!strings.Contains(re.Reason, "matches dead-letter rule") {
			t.Fatalf("result %d = %+v", i, res[i])
		}
	}
	if !errors.Is(res[3].Err, engine.ErrRecordParse) {
		t.Fatalf("result 3 = %+v", res[3])
	}
	st := e.Stats()
	if st.Received != 6 || st.Processed != 2 || st.Filtered != 1 || st.Errors != 3 {
		t.Fatalf("stats %+v", st)
	}
	if counter(t, reg, "keel_engine_records_filtered_total") != 1 {
		t.Fatal("filtered not emitted")
	}

	t.Run("invalid_with_drop_filter", func(t *testing.T) {
		e, _, _ := newEngine(t, engine.Config{RoutingField: "_table", PreRouteFilters: []engine.PreRouteFilter{{Type: engine.DropFieldMissing}}})
		res := engine.ProcessRecords(context.Background(), e,
			payloads(`{"_table":"a","seq":1}`, `{invalid`, `{"_table":"b","seq":2}`), readSeq)
		var ok int
		for _, r := range res {
			if r.Err == nil {
				ok++
			}
		}
		if st := e.Stats(); ok != 2 || st.Received != 3 || st.Processed != 2 {
			t.Fatalf("ok %d, stats %+v", ok, st)
		}
	})
	t.Run("all_filtered", func(t *testing.T) {
		e, _, _ := newEngine(t, engine.Config{RoutingField: "_table", PreRouteFilters: []engine.PreRouteFilter{{Type: engine.DropFieldMissing}}})
		res := engine.ProcessRecords(context.Background(), e, jsonRecords(30), readSeq)
		if len(res) != 0 || e.Stats().Filtered != 30 {
			t.Fatalf("%d results, stats %+v", len(res), e.Stats())
		}
	})
}

func TestProcessRecordsTransformFailures(t *testing.T) {
	e, _, _ := newEngine(t, engine.Config{})
	res := engine.ProcessRecords(context.Background(), e, jsonRecords(64), func(_ context.Context, m *engine.Message) (int, error) {
		switch {
		case m.Index == 10:
			return 0, errBoom
		case m.Index == 20:
			panic("transform bug")
		}
		return m.Index, nil
	})
	if !errors.Is(res[10].Err, errBoom) {
		t.Fatalf("result 10 = %+v", res[10])
	}
	var pe *pool.PanicError
	if !errors.As(res[20].Err, &pe) {
		t.Fatalf("result 20 = %+v, want a recovered panic", res[20])
	}
	if res[63].Err != nil || res[63].Value != 63 {
		t.Fatalf("result 63 = %+v", res[63])
	}
	if st := e.Stats(); st.Processed != 62 || st.Errors != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProcessRecordsAdversarial(t *testing.T) {
	records, valid := adversarial(t)
	e, _, _ := newEngine(t, engine.Config{})
	res := engine.ProcessRecords(context.Background(), e, records, func(_ context.Context, m *engine.Message) (string, error) {
		s, _ := m.Field("level").Str()
		return s, nil
	})
	if len(res) != len(records) {
		t.Fatalf("%d results", len(res))
	}
	var ok int
	for i, r := range res {
		if r.Err == nil {
			ok++
			continue
		}
		if !errors.Is(r.Err, engine.ErrRecordParse) {
			t.Fatalf("record %d: %v", i, r.Err)
		}
	}
	if ok != valid {
		t.Fatalf("%d ok, want %d", ok, valid)
	}
	for _, i := range []int{0, 1, 2} {
		if !errors.Is(res[i].Err, codec.ErrTooDeep) {
			t.Fatalf("bomb %d: %v, want ErrTooDeep", i, res[i].Err)
		}
	}
	if !errors.Is(res[7].Err, codec.ErrEmpty) {
		t.Fatalf("empty payload: %v", res[7].Err)
	}
	if res[13].Value != "warn" {
		t.Fatalf("MsgPack record read %q", res[13].Value)
	}
	if res[14].Value != "日本語" {
		t.Fatalf("Unicode record read %q", res[14].Value)
	}
}

func TestProcessRecordsSharedByFourGoroutines(t *testing.T) {
	e, _, _ := newEngine(t, engine.Config{MaxRecords: 64})
	const workers, per = 4, 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs := make([]transport.Record, per)
			for i := range recs {
				if i%10 == w {
					recs[i] = transport.Record{Payload: []byte("{bad")}
				} else {
					recs[i] = transport.Record{Payload: jsonLine(i)}
				}
			}
			res := engine.ProcessRecords(context.Background(), e, recs, readSeq)
			mu.Lock()
			defer mu.Unlock()
			for i, r := range res {
				if r.Err == nil {
					if r.Value != int64(i) {
						t.Errorf("worker %d result %d = %d", w, i, r.Value)
					}
					ok++
				} else {
					failed++
				}
			}
		}()
	}
	wg.Wait()
	st := e.Stats()
	if st.Received != workers*per || st.Processed != uint64(ok) || st.Errors != uint64(failed) || ok+failed != workers*per ||
		failed != workers*per/10 {
		t.Fatalf("stats %+v, ok %d, failed %d", st, ok, failed)
	}
}

func TestProcessRecordsCancelled(t *testing.T) {
	e, _, _ := newEngine(t, engine.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := engine.ProcessRecords(ctx, e, jsonRecords(100), readSeq)
	for _, r := range res {
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("result %+v after cancel", r)
		}
	}
	if e.Stats().Processed != 0 {
		t.Fatal("records processed after cancel")
	}
}

func TestProcessRecordsResultsOutliveReusedPayloads(t *testing.T) {
	buf := []byte(`{"level":"error"}`)
	e, _, _ := newEngine(t, engine.Config{InternKeys: true})
	res := engine.ProcessRecords(context.Background(), e, []transport.Record{{Payload: buf}},
		func(_ context.Context, m *engine.Message) (string, error) {
			s, _ := m.Field("level").Str()
			return s, nil
		})
	copy(buf, `{"level":"xxxxx"}`) // the caller reuses its buffer
	if res[0].Value != "error" {
		t.Fatalf("result changed with the payload buffer: %q", res[0].Value)
	}
	if e.Interner().Len() == 0 {
		t.Fatal("intern_keys did not intern")
	}
}
