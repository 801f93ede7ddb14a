package dlq_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// ndjson encodes entries as a DLQ file holds them, with extra raw lines
// after the entry of each index in after.
func ndjson(es []dlq.Entry, after map[int]string) *bytes.Buffer {
	var b bytes.Buffer
	for i, e := range es {
		b.Write(dlq.Encode(e).JSON)
		b.WriteByte('\n')
		if raw, ok := after[i]; ok {
			b.WriteString(raw + "\n")
		}
	}
	return &b
}

func TestReplaySendsTheOriginalRecordsInOrder(t *testing.T) {
	es := entries(0, 10)
	es[3].Destination = "billing"
	es[7].Destination = "billing"
	q := inmem.New(inmem.Config{Capacity: 100})
	defer func() { _ = q.Close(context.Background()) }()
	st, err := dlq.Replay(context.Background(), dlq.NewReader(ndjson(es, map[int]string{4: `{"torn`})), q, dlq.ReplayOptions{
		Filter:        func(e dlq.Entry) bool { return e.Destination == "orders" },
		BatchSize:     3,
		SkipMalformed: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if st != (dlq.ReplayStats{Read: 10, Filtered: 2, Malformed: 1, Sent: 8}) {
		t.Fatalf("stats %+v", st)
	}
	got := q.Drain()
	var want []dlq.Entry
	for _, e := range es {
		if e.Destination == "orders" {
			want = append(want, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d records replayed, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		if !bytes.Equal(r.Payload, w.Payload) || !bytes.Equal(r.Key, w.Key) || len(r.Headers) != len(w.Headers) {
			t.Fatalf("record %d = %q key %q headers %v; want %q key %q headers %v", i, r.Payload, r.Key, r.Headers, w.Payload, w.Key, w.Headers)
		}
		for k := range r.Headers {
			if r.Headers[k].Key != w.Headers[k].Key || !bytes.Equal(r.Headers[k].Value, w.Headers[k].Value) {
				t.Fatalf("record %d header %d = %+v, want %+v", i, k, r.Headers[k], w.Headers[k])
			}
		}
	}
}

func TestReplayStopsAtAMalformedLine(t *testing.T) {
	q := inmem.New(inmem.Config{Capacity: 100})
	defer func() { _ = q.Close(context.Background()) }()
	st, err := dlq.Replay(context.Background(), dlq.NewReader(ndjson(entries(0, 5), map[int]string{1: "not json"})), q, dlq.ReplayOptions{})
	var le *dlq.LineError
	if !errors.As(err, &le) || le.Line != 3 || !errors.Is(err, dlq.ErrMalformedEntry) {
		t.Fatalf("err = %v, want the *LineError of line 3", err)
	}
	// What was read before the bad line is sent, nothing after it.
	if st.Sent != 2 || q.Len() != 2 {
		t.Fatalf("sent %d, queued %d; want the 2 entries before the bad line", st.Sent, q.Len())
	}
}

// flakySender refuses the first fails calls with backpressure, then fails
// for good from call fatalAt (0: never), recording what it accepted.
type flakySender struct {
	mu      sync.Mutex
	calls   int
	fails   int
	fatalAt int
	got     []string
}

func (f *flakySender) Name() string { return "flaky" }
func (f *flakySender) Send(ctx context.Context, r transport.Record) error {
	return f.SendBatch(ctx, []transport.Record{r})
}

func (f *flakySender) SendBatch(_ context.Context, rs []transport.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fails {
		return transport.NewError(transport.ErrBackpressure, "flaky", "send", errors.New("busy"))
	}
	if f.fatalAt > 0 && f.calls >= f.fatalAt {
		return transport.NewError(transport.ErrSend, "flaky", "send", errors.New("schema rejected"))
	}
	for _, r := range rs {
		f.got = append(f.got, string(r.Payload))
	}
	return nil
}
func (f *flakySender) Health(context.Context) error { return nil }
func (f *flakySender) Close(context.Context) error  { return nil }

func TestReplayRetriesBackpressureAndStopsOnAFatalError(t *testing.T) {
	fast := []engine.SinkOption{engine.WithBackoff(time.Millisecond, 2*time.Millisecond)}
	s := &flakySender{fails: 3}
	st, err := dlq.Replay(context.Background(), dlq.NewReader(ndjson(entries(0, 6), nil)), s, dlq.ReplayOptions{BatchSize: 4, Sink: fast})
	if err != nil || st.Sent != 6 || len(s.got) != 6 || s.got[0] != `{"n":0}` || s.got[5] != `{"n":5}` {
		t.Fatalf("after backpressure: sent %d, got %v, err %v", st.Sent, s.got, err)
	}

	s = &flakySender{fatalAt: 2}
	st, err = dlq.Replay(context.Background(), dlq.NewReader(ndjson(entries(0, 10), nil)), s, dlq.ReplayOptions{BatchSize: 4, Sink: fast})
	if !errors.Is(err, transport.ErrSend) || st.Sent != 4 {
		t.Fatalf("fatal on the second batch: sent %d, err %v; want 4 sent and the send error", st.Sent, err)
	}
	if !strings.Contains(err.Error(), "after 4 records") {
		t.Fatalf("error %q does not say how far the replay got", err)
	}
}

func TestReplayHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := inmem.New(inmem.Config{Capacity: 10})
	defer func() { _ = q.Close(context.Background()) }()
	if _, err := dlq.Replay(ctx, dlq.NewReader(ndjson(entries(0, 3), nil)), q, dlq.ReplayOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if q.Len() != 0 {
		t.Fatalf("%d records sent after cancel", q.Len())
	}
}
