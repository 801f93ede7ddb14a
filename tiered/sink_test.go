package tiered

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
)

func spooledCount(s *Sink, reason string) float64 {
	return testutil.ToFloat64(s.mSpooled.With(s.name, reason))
}

// A downstream that fails for a while and then recovers receives every
// record, in order, exactly once; after the spool empties new records go
// directly again.
func TestFailThenRecoverStrict(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	e := newEnv(t, cfg, d, &memDLQ{})

	first := payloads("a", 0, 20)
	sendAll(t, e.sink, first, 5)
	if got := d.waitFor(t, 20); !slices.Equal(got, first) {
		t.Fatalf("healthy phase: got %v", got)
	}
	d.setDown(true)
	outage := payloads("b", 0, 1000)
	sendAll(t, e.sink, outage, 10)
	if !e.sink.CircuitOpen() || !e.sink.Draining() {
		t.Fatalf("during the outage: circuit open %v, draining %v", e.sink.CircuitOpen(), e.sink.Draining())
	}
	if err := e.sink.Health(context.Background()); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Health during the outage = %v, want ErrCircuitOpen", err)
	}
	if e.sink.Spool().Len() != 1000 {
		t.Fatalf("spool holds %d records, want 1000", e.sink.Spool().Len())
	}
	d.setDown(false)
	// Healthy again, but the breaker is open and the spool is not empty:
	// these go behind the spooled ones.
	recovering := payloads("c", 0, 100)
	sendAll(t, e.sink, recovering, 10)
	_, directBefore := d.stats()
	e.clock.Advance(time.Minute) // the drainer's probe closes the breaker
	want := slices.Concat(first, outage, recovering)
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("records out of order or missing after recovery")
	}
	assertExactlyOnce(t, d, want)
	if _, directAfter := d.stats(); directAfter != directBefore {
		t.Fatalf("strict mode sent %d records directly while the spool was not empty", directAfter-directBefore)
	}

	// Once the spool is empty, new records go directly.
	waitEmpty(t, e)
	more := payloads("d", 0, 10)
	sendAll(t, e.sink, more, 10)
	want = append(want, more...)
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatal("records after recovery out of order")
	}
	if v := testutil.ToFloat64(e.sink.cDirect); v != 30 {
		t.Fatalf("direct records = %v, want 30", v)
	}
	if v := spooledCount(e.sink, spoolOrdering); v != 1090 {
		t.Fatalf("records spooled for ordering = %v, want 1090", v)
	}
	if v := testutil.ToFloat64(e.sink.cDrained); v != 1100 {
		t.Fatalf("drained records = %v, want 1100", v)
	}
}

// waitEmpty waits until the drainer has emptied the spool and switched
// strict mode back to direct sends.
func waitEmpty(t *testing.T, e *env) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		e.sink.mu.Lock()
		sp := e.sink.spooling
		e.sink.mu.Unlock()
		if !sp && e.sink.sp.Len() == 0 {
			return
		}
		select {
		case <-e.idle:
		case <-timeout:
			t.Fatalf("spool not emptied: %d records", e.sink.sp.Len())
		}
	}
}

// Interleaved mode: every record arrives exactly once; new records go
// directly while the spool drains.
func TestFailThenRecoverInterleaved(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Ordering = OrderingInterleaved
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	outage := payloads("b", 0, 300)
	sendAll(t, e.sink, outage, 10)
	d.setDown(false)
	e.clock.Advance(time.Minute)
	d.waitFor(t, len(outage))
	after := payloads("c", 0, 50)
	sendAll(t, e.sink, after, 5)
	want := slices.Concat(outage, after)
	d.waitFor(t, len(want))
	assertExactlyOnce(t, d, want)
}

// The breaker opens after N failures; a send then goes straight to the
// spool without calling the downstream.
func TestBreakerOpenSkipsDownstream(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Ordering = OrderingInterleaved
	cfg.Breaker = breaker.Config{FailureThreshold: 3, OpenTimeout: time.Hour}
	d := newFakeDown(1000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	for i := range 3 {
		if err := e.sink.Send(directCtx(), transport.Record{Payload: fmt.Appendf(nil, "x%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !e.sink.CircuitOpen() {
		t.Fatal("breaker not open after 3 failures")
	}
	_, direct := d.stats()
	if direct > 3 {
		t.Fatalf("%d direct calls for 3 sends", direct)
	}
	for i := range 5 {
		if err := e.sink.Send(directCtx(), transport.Record{Payload: fmt.Appendf(nil, "y%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := d.stats(); after != direct {
		t.Fatalf("downstream called %d times with the breaker open", after-direct)
	}
	// The 5 later sends all met the open breaker. One of the first 3 may
	// have too: the drainer's own failed replay counts against the breaker
	// and can open it before the third send.
	if v := spooledCount(e.sink, spoolOpen); v < 5 || v > 6 {
		t.Fatalf("records spooled past the open breaker = %v, want 5 (or 6)", v)
	}
	if e.sink.Spool().Len() != 8 {
		t.Fatalf("spool holds %d, want 8", e.sink.Spool().Len())
	}
}

// A downstream call that hangs past send_timeout counts as a failure and
// its record is spooled.
func TestTimeoutSpoolsAndCounts(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Ordering = OrderingInterleaved
	cfg.SendTimeout = 20 * time.Millisecond
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour}
	d := newFakeDown(1000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setHang(true)
	if err := e.sink.Send(directCtx(), transport.Record{Payload: []byte("slow")}); err != nil {
		t.Fatal(err)
	}
	if !e.sink.CircuitOpen() {
		t.Fatal("a timeout did not count as a failure")
	}
	if v := spooledCount(e.sink, spoolTimeout); v != 1 {
		t.Fatalf("spooled on timeout = %v, want 1", v)
	}
}

// Backpressure from the downstream spools the records without opening the
// breaker, on the send path and in the drainer.
func TestBackpressureDoesNotOpenBreaker(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Ordering = OrderingInterleaved
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour}
	d := newFakeDown(5)
	e := newEnv(t, cfg, d, &memDLQ{})
	ps := payloads("p", 0, 40)
	sendAll(t, e.sink, ps, 4)
	if st := e.sink.Breaker().State(); st != breaker.Closed {
		t.Fatalf("breaker %s after backpressure, want closed", st)
	}
	if v := spooledCount(e.sink, spoolBackpressur); v == 0 {
		t.Fatal("nothing spooled for backpressure")
	}
	if err := e.sink.Health(context.Background()); err != nil {
		t.Fatalf("Health under backpressure: %v", err)
	}
	// Consume the downstream queue; the drainer delivers the rest.
	got := 0
	for got < len(ps) {
		d.waitFor(t, got+1)
		got += len(d.q.Drain())
		if st := e.sink.Breaker().State(); st != breaker.Closed {
			t.Fatalf("breaker %s while draining under backpressure", st)
		}
	}
	assertExactlyOnce(t, d, ps)
}

// A poison record (fatal per-index error) ends in the dead-letter queue with
// its reason and attempts; the rest is delivered in order.
func TestPoisonRecordToDLQ(t *testing.T) {
	dir := t.TempDir()
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	q, err := dlq.New(context.Background(), dlq.Config{Enabled: true, Mode: dlq.ModeSingle,
		File: dlq.FileConfig{Enabled: true, Path: dir + "/dlq"}}, dlq.Options{Service: "svc", Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = q.Close(context.Background()) }()

	cfg := testConfig(dir + "/spool")
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(10_000)
	e := newEnv(t, cfg, d, q)
	reject := transport.NewError(transport.ErrSend, "fake", "send", errors.New("schema mismatch"))
	d.setPoison("a-00013", reject) // reaches the drainer through the spool
	d.setPoison("a-00150", reject) // sent directly first
	d.setDown(true)
	first := payloads("a", 0, 100)
	sendKeyed(t, e.sink, first, 10)
	d.setDown(false)
	e.clock.Advance(time.Minute)
	second := payloads("a", 100, 200)
	sendKeyed(t, e.sink, second, 10)
	want := slices.DeleteFunc(slices.Concat(first, second), func(p string) bool { return p == "a-00013" || p == "a-00150" })
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("delivered records differ from the non-poison ones in order")
	}
	waitEmpty(t, e)
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	entries := dlqFiles(t, dir+"/dlq")
	if len(entries) != 2 {
		t.Fatalf("DLQ holds %d entries, want 2: %+v", len(entries), entries)
	}
	for _, en := range entries {
		if p := string(en.Payload); p != "a-00013" && p != "a-00150" {
			t.Errorf("unexpected DLQ payload %q", p)
		}
		// a-00013 is refused in a batch whose other records are accepted:
		// at once. a-00150 is spooled alone after its direct batch, and is
		// at once too if the records after it are spooled before the
		// drainer reads it; otherwise it is refused alone max_attempts
		// times before the record after it proves it at fault.
		if !strings.Contains(en.Reason, "schema mismatch") || en.Attempts < 1 || en.Attempts > cfg.MaxAttempts ||
			(string(en.Payload) == "a-00013" && en.Attempts != 1) || en.Destination != "fake" {
			t.Errorf("DLQ entry = reason %q attempts %d destination %q", en.Reason, en.Attempts, en.Destination)
		}
		if en.Source == nil || !strings.HasPrefix(en.Source.Token, "spool:t:") {
			t.Errorf("DLQ entry source = %+v", en.Source)
		}
		// The record's key and headers survive the spool and reach the DLQ.
		if p := string(en.Payload); string(en.Key) != "k-"+p || len(en.Headers) != 1 || string(en.Headers[0].Value) != p {
			t.Errorf("DLQ entry of %s: key %q headers %+v", p, en.Key, en.Headers)
		}
	}
	if v := testutil.ToFloat64(e.sink.mDead.With(e.sink.name, "fatal")) + testutil.ToFloat64(e.sink.mDead.With(e.sink.name, "attempts")); v != 2 {
		t.Fatalf("dead-lettered = %v, want 2", v)
	}
}

// sendKeyed sends ps in batches, each record keyed "k-<payload>" with an
// "origin" header holding its payload.
func sendKeyed(t *testing.T, s *Sink, ps []string, batch int) {
	t.Helper()
	recs := records(ps)
	for i := range recs {
		recs[i].Key = []byte("k-" + ps[i])
		recs[i].Headers = []transport.Header{{Key: "origin", Value: []byte(ps[i])}}
	}
	for i := 0; i < len(recs); i += batch {
		if err := s.SendBatch(directCtx(), recs[i:min(i+batch, len(recs))]); err != nil {
			t.Fatalf("SendBatch: %v", err)
		}
	}
}

// A record the downstream refuses alone, round after round, while it
// accepts the record after it, is dead-lettered after max_attempts with
// its reason and attempts, and a refusing DLQ keeps it in the spool until
// it accepts.
func TestAttemptsExhausted(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxAttempts = 3
	cfg.Breaker = breaker.Config{FailureThreshold: 100, OpenTimeout: time.Minute}
	d := newFakeDown(10_000)
	dl := &memDLQ{fail: errors.New("dlq down")}
	e := newEnv(t, cfg, d, dl)
	d.setSpoil("slow", badRequest())
	d.setDown(true)
	if err := e.sink.SendBatch(directCtx(), records([]string{"ok-1", "slow", "ok-2"})); err != nil {
		t.Fatal(err)
	}
	d.setDown(false)
	d.waitFor(t, 2)
	if e.sink.Spool().Len() == 0 {
		t.Fatal("record acknowledged although the DLQ refused it")
	}
	waitUntil(t, "Health to report the refusing DLQ", func() bool {
		err := e.sink.Health(context.Background())
		return err != nil && strings.Contains(err.Error(), "dlq down")
	})
	dl.mu.Lock()
	dl.fail = nil
	dl.mu.Unlock()
	waitEmpty(t, e)
	es := dl.list()
	if len(es) != 1 || string(es[0].Payload) != "slow" || es[0].Attempts != 3 || !strings.Contains(es[0].Reason, "after 3 attempts") ||
		!strings.Contains(es[0].Reason, "400 Bad Request") {
		t.Fatalf("DLQ = %+v", es)
	}
	if got := d.waitFor(t, 2); !slices.Equal(got, []string{"ok-1", "ok-2"}) {
		t.Fatalf("delivered %v", got)
	}
	if v := testutil.ToFloat64(e.sink.mDead.With(e.sink.name, "attempts")); v != 1 {
		t.Fatalf("dead-lettered{attempts} = %v, want 1", v)
	}
}

// Close leaves undelivered records in the spool; a new Sink on the same
// directory delivers them.
func TestCloseLeavesSpooledAndReopenDelivers(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour}
	d := newFakeDown(10_000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	ps := payloads("k", 0, 50)
	sendAll(t, e.sink, ps, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.sink.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.sink.Send(context.Background(), transport.Record{Payload: []byte("late")}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := e.sink.Health(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close = %v", err)
	}
	if !d.closed {
		t.Fatal("downstream not closed")
	}

	d2 := newFakeDown(10_000)
	e2 := newEnv(t, cfg, d2, &memDLQ{})
	if got := d2.waitFor(t, len(ps)); !slices.Equal(got, ps) {
		t.Fatal("reopened sink did not deliver the spooled records in order")
	}
	more := payloads("m", 0, 5)
	sendAll(t, e2.sink, more, 5)
	d2.waitFor(t, len(ps)+5)
	assertExactlyOnce(t, d2, slices.Concat(ps, more))
	// Close with time to spare drains everything first.
	if err := e2.sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Close with a healthy downstream drains the spool before returning.
func TestCloseDrains(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(10_000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	ps := payloads("z", 0, 200)
	sendAll(t, e.sink, ps, 20)
	d.setDown(false)
	e.clock.Advance(time.Minute)
	if err := e.sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, d, ps)
}

// While the downstream is down, records go to disk: the spool grows by the
// burst and the heap does not hold it.
func TestMemoryBoundedWhileDown(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Spool.SegmentBytes = 8 << 20
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour}
	d := newFakeDown(10)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	const recSize, burst = 64 << 10, 50 << 20
	payload := make([]byte, recSize)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < burst/recSize; i++ {
		payload[0] = byte(i)
		rec := transport.Record{Payload: slices.Clone(payload)}
		if err := e.sink.Send(directCtx(), rec); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if b := e.sink.Spool().Bytes(); b < burst {
		t.Fatalf("spool holds %d bytes, want >= %d", b, burst)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth > 16<<20 {
		t.Fatalf("heap grew by %d MiB for a %d MiB burst while down", growth>>20, burst>>20)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(context.Background(), nil, Config{}, Options{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil downstream: %v", err)
	}
	if _, err := New(context.Background(), newFakeDown(1), Config{Ordering: "fifo"}, Options{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad ordering: %v", err)
	}
	dir := t.TempDir()
	cfg := testConfig(dir)
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	s, err := New(context.Background(), newFakeDown(1), cfg, Options{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(context.Background()) }()
	if _, err := New(context.Background(), newFakeDown(1), cfg, Options{Metrics: reg}); !errors.Is(err, spool.ErrLocked) {
		t.Fatalf("second sink on one spool dir: %v, want spool.ErrLocked", err)
	}
	if s.Name() != "tiered:fake" || s.PressureRatio() != 0 || s.Draining() {
		t.Fatalf("Name %q PressureRatio %v Draining %v", s.Name(), s.PressureRatio(), s.Draining())
	}
	if err := s.SendBatch(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// The drain rate limit paces the drainer without losing records.
func TestRateLimitedDrain(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RateLimit = 1e6
	cfg.DrainBatch = 16
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(10_000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	ps := payloads("r", 0, 100)
	sendAll(t, e.sink, ps, 10)
	d.setDown(false)
	e.clock.Advance(time.Minute)
	if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
		t.Fatal("rate-limited drain lost or reordered records")
	}
}
