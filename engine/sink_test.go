package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// drain receives want records from tr in a goroutine and returns them on
// the channel.
func drain(ctx context.Context, tr *inmem.Transport, want int) <-chan []transport.Record {
	out := make(chan []transport.Record, 1)
	go func() {
		var got []transport.Record
		for len(got) < want {
			b, err := tr.Recv(ctx, transport.Limits{MaxRecords: 2})
			if err != nil {
				break
			}
			got = append(got, b.Records...)
		}
		out <- got
	}()
	return out
}

func TestSinkToRetriesBackpressure(t *testing.T) {
	ctx := runCtx(t)
	out := inmem.New(inmem.Config{Capacity: 3})
	got := drain(ctx, out, 10)
	sink := engine.SinkTo(out, engine.WithBackoff(100*time.Microsecond, time.Millisecond))
	recs := jsonRecords(10)
	if err := sink(ctx, transport.Batch{Records: recs}); err != nil {
		t.Fatalf("sink: %v", err)
	}
	delivered := <-got
	if len(delivered) != 10 {
		t.Fatalf("%d records delivered", len(delivered))
	}
	for i, r := range delivered {
		if !bytes.Equal(r.Payload, recs[i].Payload) {
			t.Fatalf("record %d out of order or duplicated", i)
		}
	}
}

func TestSinkToRunUnderBackpressure(t *testing.T) {
	ctx := runCtx(t)
	src := feed(t, 40)
	out := inmem.New(inmem.Config{Capacity: 4})
	got := drain(ctx, out, 40)
	e, _, _ := newEngine(t, engine.Config{MaxRecords: 10})
	if err := e.Run(ctx, src, passThrough, e.SinkTo(out, engine.WithBackoff(50*time.Microsecond, time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if n := len(<-got); n != 40 || src.Committed() != 40 {
		t.Fatalf("delivered %d, committed %d", n, src.Committed())
	}
}

func TestSinkToFatal(t *testing.T) {
	out := inmem.New(inmem.Config{})
	out.CloseInput()
	err := engine.SinkTo(out)(context.Background(), transport.Batch{Records: jsonRecords(2)})
	if !errors.Is(err, transport.ErrClosed) || transport.Classify(err) != transport.Fatal {
		t.Fatalf("err = %v", err)
	}
}

func TestSinkToMaxAttempts(t *testing.T) {
	out := inmem.New(inmem.Config{Capacity: 1})
	err := engine.SinkTo(out, engine.WithMaxAttempts(3), engine.WithBackoff(time.Microsecond, time.Microsecond))(
		context.Background(), transport.Batch{Records: jsonRecords(3)})
	if !errors.Is(err, transport.ErrBackpressure) {
		t.Fatalf("err = %v", err)
	}
	if out.Len() != 1 {
		t.Fatalf("%d records queued, want 1", out.Len())
	}
}

func TestSinkToStopsOnCancel(t *testing.T) {
	out := inmem.New(inmem.Config{Capacity: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := engine.SinkTo(out)(ctx, transport.Batch{Records: jsonRecords(3)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// filteringSender is an inmem sender with an outbound dead-letter filter:
// records containing marker are refused with ErrDeadLettered.
type filteringSender struct {
	*inmem.Transport
	marker []byte
}

func (f *filteringSender) SendBatch(ctx context.Context, records []transport.Record) error {
	be := &transport.BatchError{}
	for i, r := range records {
		if bytes.Contains(r.Payload, f.marker) {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i,
				Err: transport.NewError(transport.ErrDeadLettered, "filtering", "send", fmt.Errorf("outbound rule %q", f.marker))})
			continue
		}
		if err := f.Send(ctx, r); err != nil {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: err})
		}
	}
	if len(be.Failed) > 0 {
		return be
	}
	return nil
}

func TestSinkToDeadLettered(t *testing.T) {
	recs := payloads(`{"a":1}`, `{"drop":1}`, `{"a":2}`)
	t.Run("no_route_fails", func(t *testing.T) {
		s := &filteringSender{Transport: inmem.New(inmem.Config{Capacity: 10}), marker: []byte("drop")}
		err := engine.SinkTo(s)(context.Background(), transport.Batch{Records: recs})
		if !errors.Is(err, transport.ErrDeadLettered) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("engine_policy_routes", func(t *testing.T) {
		s := &filteringSender{Transport: inmem.New(inmem.Config{Capacity: 10}), marker: []byte("drop")}
		var routed []transport.DeadLetter
		e, _, _ := newEngine(t, engine.Config{RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
			routed = append(routed, dls...)
			return nil
		}})
		if err := e.SinkTo(s)(context.Background(), transport.Batch{Records: recs}); err != nil {
			t.Fatal(err)
		}
		if len(routed) != 1 || !bytes.Contains(routed[0].Record.Payload, []byte("drop")) || s.Len() != 2 {
			t.Fatalf("routed %+v, delivered %d", routed, s.Len())
		}
	})
	t.Run("engine_reject_fails", func(t *testing.T) {
		s := &filteringSender{Transport: inmem.New(inmem.Config{Capacity: 10}), marker: []byte("drop")}
		e, _, _ := newEngine(t, engine.Config{})
		err := e.SinkTo(s)(context.Background(), transport.Batch{Records: recs})
		if !errors.Is(err, engine.ErrDeadLettersRejected) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("explicit_route_overrides", func(t *testing.T) {
		s := &filteringSender{Transport: inmem.New(inmem.Config{Capacity: 10}), marker: []byte("drop")}
		e, _, _ := newEngine(t, engine.Config{})
		var n int
		err := e.SinkTo(s, engine.WithDeadLetterRoute(func(_ context.Context, dls []transport.DeadLetter) error {
			n += len(dls)
			return nil
		}))(context.Background(), transport.Batch{Records: recs})
		if err != nil || n != 1 {
			t.Fatalf("err %v, routed %d", err, n)
		}
	})
}
