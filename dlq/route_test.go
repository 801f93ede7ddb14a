package dlq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// deadLetterBad is a process step that dead-letters records whose payload
// contains "bad", with the source token of each, and passes the rest.
func deadLetterBad(_ context.Context, b transport.Batch) (transport.Batch, error) {
	out := transport.Batch{Tokens: b.Tokens}
	for i, r := range b.Records {
		if bytes.Contains(r.Payload, []byte("bad")) {
			out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{
				Record: r, Reason: "validation failed: bad record", Destination: "orders", Source: b.Tokens[i].String(),
			})
			continue
		}
		out.Records = append(out.Records, r)
	}
	return out, nil
}

func injectN(t *testing.T, in *inmem.Transport, n int, bad func(i int) bool) {
	t.Helper()
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf(`{"n":%d}`, i)
		if bad(i) {
			p = fmt.Sprintf(`{"n":%d,"bad":true}`, i)
		}
		must(t, in.InjectPayloads(ctxT(t), []byte(p)))
	}
	in.CloseInput()
}

// routeProbe wraps a route and records, for each call, the committed
// sequence at the time and the highest sequence of its letters.
type routeProbe struct {
	mu    sync.Mutex
	calls []struct{ committedBefore, maxSeq uint64 }
}

func (p *routeProbe) wrap(in *inmem.Transport, route engine.DeadLetterRouter) engine.DeadLetterRouter {
	return func(ctx context.Context, letters []transport.DeadLetter) error {
		var maxSeq uint64
		for _, l := range letters {
			seq, _ := strconv.ParseUint(l.Source[len("inmem:"):], 10, 64)
			maxSeq = max(maxSeq, seq)
		}
		p.mu.Lock()
		p.calls = append(p.calls, struct{ committedBefore, maxSeq uint64 }{in.Committed(), maxSeq})
		p.mu.Unlock()
		return route(ctx, letters)
	}
}

func TestEngineRouteEndToEnd(t *testing.T) {
	in := inmem.New(inmem.Config{Capacity: 100})
	out := inmem.New(inmem.Config{Capacity: 100})
	injectN(t, in, 20, func(i int) bool { return i%4 == 3 }) // 3, 7, 11, 15, 19
	dir := t.TempDir()
	q, reg := newDLQ(t, dlq.Config{File: dlq.FileConfig{Enabled: true, Path: dir}}, dlq.Options{Service: "loader"})
	probe := &routeProbe{}
	eng, err := engine.New(engine.Config{MaxRecords: 5, RouteDeadLetters: probe.wrap(in, q.Router()),
		Metrics: newReg(), Logger: quietLogger()})
	must(t, err)
	ctx := ctxT(t)
	if err := eng.Run(ctx, in, deadLetterBad, engine.SinkTo(out)); err != nil {
		t.Fatalf("Run: %v", err)
	}
	must(t, q.Flush(ctx))

	got := readDir(t, dir+"/loader")
	if len(got) != 5 {
		t.Fatalf("%d entries in the DLQ, want 5", len(got))
	}
	for k, e := range got {
		seq := 4*k + 3
		if e.Source == nil || e.Source.Token != fmt.Sprintf("inmem:%d", seq) {
			t.Fatalf("entry %d source %+v, want token inmem:%d", k, e.Source, seq)
		}
		if e.Reason != "validation failed: bad record" || e.Destination != "orders" || e.Service != "loader" ||
			string(e.Payload) != fmt.Sprintf(`{"n":%d,"bad":true}`, seq) || e.Time.IsZero() {
			t.Fatalf("entry %d: %+v", k, e)
		}
	}
	if in.Committed() != 20 {
		t.Fatalf("committed %d, want 20", in.Committed())
	}
	if n := len(out.Drain()); n != 15 {
		t.Fatalf("%d good records delivered, want 15", n)
	}
	// Every route call ran before the block holding its letters was
	// committed.
	for _, c := range probe.calls {
		if c.committedBefore >= c.maxSeq {
			t.Fatalf("route for seq %d ran after commit %d", c.maxSeq, c.committedBefore)
		}
	}
	if len(probe.calls) != 4 { // blocks 1-5, 6-10, 11-15, 16-20 each hold one or two bad records
		t.Fatalf("route called %d times", len(probe.calls))
	}
	if v := metricValue(t, reg, "keel_dlq_routed_total", nil); v != 5 {
		t.Fatalf("routed_total %v", v)
	}
}

func TestEngineRouteFullQueueStopsBeforeCommit(t *testing.T) {
	col := newCollector(t)
	col.hold()
	in := inmem.New(inmem.Config{Capacity: 100})
	injectN(t, in, 10, func(i int) bool { return i == 2 || i == 7 })
	q, reg := newDLQ(t, dlq.Config{QueueCapacity: 1, BatchSize: 1, Mode: dlq.ModeSingle,
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL}}, dlq.Options{})
	route := q.Router(dlq.RouteWait(0))
	// The first block's dead letter is queued and held in the write.
	eng, err := engine.New(engine.Config{MaxRecords: 5, RouteDeadLetters: func(ctx context.Context, l []transport.DeadLetter) error {
		err := route(ctx, l)
		if err == nil {
			recv(t, col.entered) // it is being written, and still fills the queue
		}
		return err
	}, Metrics: newReg(), Logger: quietLogger()})
	must(t, err)
	ctx := ctxT(t)
	err = eng.Run(ctx, in, deadLetterBad, func(context.Context, transport.Batch) error { return nil })
	if !errors.Is(err, engine.ErrRoute) || !errors.Is(err, dlq.ErrQueueFull) {
		t.Fatalf("Run with a full DLQ queue: %v", err)
	}
	if in.Committed() != 5 {
		t.Fatalf("committed %d: the block whose dead letter was refused must not be committed", in.Committed())
	}
	if v := metricValue(t, reg, "keel_dlq_route_rejected_total", nil); v != 1 {
		t.Fatalf("route_rejected_total %v", v)
	}
	col.release()
	must(t, q.Flush(ctx))
	if got := col.entries(); len(got) != 1 || got[0].Source.Token != "inmem:2" {
		t.Fatalf("collector got %+v", got)
	}
}

func TestEngineRouteWaitsForRoomThenSucceeds(t *testing.T) {
	col := newCollector(t)
	col.hold()
	q, _ := newDLQ(t, dlq.Config{QueueCapacity: 1, BatchSize: 1, Mode: dlq.ModeSingle,
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL}}, dlq.Options{})
	route := q.Router() // waits up to route_wait (5 s) for room
	ctx := ctxT(t)
	letter := func(seq int) []transport.DeadLetter {
		return []transport.DeadLetter{{Record: transport.Record{Payload: []byte("x")}, Reason: "r", Source: fmt.Sprintf("inmem:%d", seq)}}
	}
	must(t, route(ctx, letter(1)))
	recv(t, col.entered)
	res := make(chan error, 1)
	go func() { res <- route(ctx, letter(2)) }()
	col.release()
	if err := recv(t, res); err != nil {
		t.Fatalf("route that waited for room: %v", err)
	}
	must(t, q.Flush(ctx))
	if n := len(col.entries()); n != 2 {
		t.Fatalf("collector got %d", n)
	}
}

func TestEngineRouteDurableWritesBeforeCommit(t *testing.T) {
	in := inmem.New(inmem.Config{Capacity: 100})
	injectN(t, in, 6, func(i int) bool { return i == 4 })
	dir := t.TempDir()
	q, _ := newDLQ(t, dlq.Config{FlushInterval: time.Hour, File: dlq.FileConfig{Enabled: true, Path: dir}}, dlq.Options{})
	route := q.Router(dlq.RouteDurable(true))
	var inFileAtRoute int
	eng, err := engine.New(engine.Config{MaxRecords: 10, RouteDeadLetters: func(ctx context.Context, l []transport.DeadLetter) error {
		if err := route(ctx, l); err != nil {
			return err
		}
		inFileAtRoute = len(readDir(t, dir+"/svc"))
		return nil
	}, Metrics: newReg(), Logger: quietLogger()})
	must(t, err)
	must(t, eng.Run(ctxT(t), in, deadLetterBad, func(context.Context, transport.Batch) error { return nil }))
	if inFileAtRoute != 1 {
		t.Fatalf("durable route returned with %d entries on disk, want 1", inFileAtRoute)
	}
	if in.Committed() != 6 {
		t.Fatalf("committed %d", in.Committed())
	}
}

func TestDisabledRouteRefuses(t *testing.T) {
	q, err := dlq.New(ctxT(t), dlq.Config{}, dlq.Options{})
	must(t, err)
	err = q.Router()(ctxT(t), []transport.DeadLetter{{Reason: "r"}})
	if !errors.Is(err, dlq.ErrDisabled) {
		t.Fatalf("disabled route: %v", err)
	}
	if err := q.Router()(ctxT(t), nil); err != nil {
		t.Fatalf("no letters: %v", err)
	}
}

func TestEntryFromDeadLetter(t *testing.T) {
	e := dlq.EntryFromDeadLetter(transport.DeadLetter{Record: transport.Record{Payload: []byte("p")}, Source: "kafka:events:3:12"})
	if e.Reason != "dead-lettered" || string(e.Payload) != "p" || e.Source.Topic != "events" || *e.Source.Partition != 3 || *e.Source.Offset != 12 {
		t.Fatalf("%+v", e)
	}
	rec := transport.Record{Payload: []byte("p"), Key: []byte("user-7"), Headers: []transport.Header{{Key: "h", Value: []byte("v")}}}
	if e := dlq.EntryFromDeadLetter(transport.DeadLetter{Record: rec}); string(e.Key) != "user-7" || len(e.Headers) != 1 || string(e.Headers[0].Value) != "v" {
		t.Fatalf("key and headers not carried: %+v", e)
	}
	if e := dlq.EntryFromDeadLetter(transport.DeadLetter{Reason: "r"}); e.Source != nil {
		t.Fatalf("no source text must give no source: %+v", e.Source)
	}
}
