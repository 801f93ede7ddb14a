package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type directKey struct{}

// directCtx marks a context as the test's own send, so the downstream can
// tell direct sends from the drainer's.
func directCtx() context.Context { return context.WithValue(context.Background(), directKey{}, true) }

// fakeDown is a controllable downstream: accepted records go into a real
// inmem queue (full queue = backpressure); it can be down (every call fails
// with a connection error), hang (block until the call's context ends),
// reject poison payloads per index, refuse a whole batch that holds a
// spoiling payload, and refuse every call.
type fakeDown struct {
	q *inmem.Transport

	mu          sync.Mutex
	cond        *sync.Cond
	down        bool
	hang        bool
	poison      map[string]error
	spoil       map[string]error
	refuseAll   error
	failEach    error
	refuseCalls int
	refuseErr   error
	got         []string
	seen        map[string]int
	calls       int
	directCalls int
	closed      bool
}

func newFakeDown(capacity int) *fakeDown {
	d := &fakeDown{q: inmem.New(inmem.Config{Capacity: capacity}), poison: map[string]error{}, spoil: map[string]error{}, seen: map[string]int{}}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *fakeDown) setDown(v bool) { d.mu.Lock(); d.down = v; d.mu.Unlock() }
func (d *fakeDown) setHang(v bool) { d.mu.Lock(); d.hang = v; d.mu.Unlock() }
func (d *fakeDown) setPoison(payload string, err error) {
	d.mu.Lock()
	d.poison[payload] = err
	d.mu.Unlock()
}

// setSpoil makes every call whose batch holds payload fail as a whole with
// err, nothing of it accepted (an HTTP endpoint answering 400 to an NDJSON
// body with one bad line).
func (d *fakeDown) setSpoil(payload string, err error) {
	d.mu.Lock()
	d.spoil[payload] = err
	d.mu.Unlock()
}

// setRefuseAll makes every call fail as a whole with err (nil: no more).
func (d *fakeDown) setRefuseAll(err error) { d.mu.Lock(); d.refuseAll = err; d.mu.Unlock() }

// setFailEach makes every call fail with a *transport.BatchError naming
// each record with err (nil: no more), as a Kafka producer reports
// delivery timeouts.
func (d *fakeDown) setFailEach(err error) { d.mu.Lock(); d.failEach = err; d.mu.Unlock() }

// refuseNext makes the next n calls fail as a whole with err.
func (d *fakeDown) refuseNext(n int, err error) {
	d.mu.Lock()
	d.refuseCalls, d.refuseErr = n, err
	d.mu.Unlock()
}

func (d *fakeDown) Name() string { return "fake" }

func (d *fakeDown) Send(ctx context.Context, rec transport.Record) error {
	return d.SendBatch(ctx, []transport.Record{rec})
}

func (d *fakeDown) SendBatch(ctx context.Context, recs []transport.Record) error {
	d.mu.Lock()
	d.calls++
	if ctx.Value(directKey{}) != nil {
		d.directCalls++
	}
	if d.hang {
		d.mu.Unlock()
		<-ctx.Done()
		return transport.NewError(transport.ErrTimeout, "fake", "send", ctx.Err())
	}
	defer d.mu.Unlock()
	if d.down {
		return transport.NewError(transport.ErrConnection, "fake", "send", errors.New("connection refused"))
	}
	if d.refuseCalls > 0 {
		d.refuseCalls--
		return d.refuseErr
	}
	if d.refuseAll != nil {
		return d.refuseAll
	}
	if d.failEach != nil {
		be := &transport.BatchError{}
		for i := range recs {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: d.failEach})
		}
		return be
	}
	for _, r := range recs {
		if err, bad := d.spoil[string(r.Payload)]; bad {
			return err
		}
	}
	var failed []transport.FailedRecord
	var good []transport.Record
	var goodIdx []int
	for i, r := range recs {
		if err, bad := d.poison[string(r.Payload)]; bad {
			failed = append(failed, transport.FailedRecord{Index: i, Err: err})
			continue
		}
		good = append(good, r)
		goodIdx = append(goodIdx, i)
	}
	accepted := len(good)
	if err := d.q.SendBatch(ctx, good); err != nil {
		var be *transport.BatchError
		if !errors.As(err, &be) {
			return err
		}
		accepted = len(good) - len(be.Failed)
		for _, f := range be.Failed {
			failed = append(failed, transport.FailedRecord{Index: goodIdx[f.Index], Err: f.Err})
		}
	}
	for _, r := range good[:accepted] {
		d.got = append(d.got, string(r.Payload))
		d.seen[string(r.Payload)]++
	}
	d.cond.Broadcast()
	if len(failed) > 0 {
		return &transport.BatchError{Failed: failed}
	}
	return nil
}

func (d *fakeDown) Close(context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

func (d *fakeDown) Health(context.Context) error { return nil }

// waitFor waits until n records were accepted.
func (d *fakeDown) waitFor(t *testing.T, n int) []string {
	t.Helper()
	stop := time.AfterFunc(20*time.Second, func() { d.mu.Lock(); d.cond.Broadcast(); d.mu.Unlock() })
	defer stop.Stop()
	deadline := time.Now().Add(20 * time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("downstream got %d records, want %d", len(d.got), n)
		}
		d.cond.Wait()
	}
	return append([]string(nil), d.got...)
}

func (d *fakeDown) stats() (calls, direct int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls, d.directCalls
}

// fakeClock drives the breaker.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// memDLQ is a dead-letter sink that keeps entries.
type memDLQ struct {
	mu      sync.Mutex
	entries []dlq.Entry
	fail    error
}

func (m *memDLQ) Write(_ context.Context, entries ...dlq.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.entries = append(m.entries, entries...)
	return nil
}

func (m *memDLQ) list() []dlq.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]dlq.Entry(nil), m.entries...)
}

type env struct {
	t     *testing.T
	dir   string
	reg   *metrics.Registry
	clock *fakeClock
	down  *fakeDown
	sink  *Sink
	idle  chan struct{}
}

func testConfig(dir string) Config {
	return Config{
		SendTimeout: 5 * time.Second,
		DrainBatch:  64,
		MaxAttempts: 3,
		Backoff:     Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond},
		// The tests move the fake clock by minutes to close the breaker;
		// the stall tests set their own timeout.
		StallTimeout: time.Hour,
		Spool: spool.Config{Dir: dir, Name: "t", Sync: spool.SyncNever, MinFreeBytes: -1,
			SegmentBytes: 1 << 20},
	}
}

func newEnv(t *testing.T, cfg Config, down *fakeDown, dl DeadLetterSink) *env {
	t.Helper()
	e := &env{t: t, dir: cfg.Spool.Dir, down: down, clock: &fakeClock{now: time.Unix(1_700_000_000, 0)},
		reg: metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})}
	e.idle = make(chan struct{}, 1)
	onIdle := func() {
		select {
		case e.idle <- struct{}{}:
		default:
		}
	}
	s, err := New(context.Background(), down, cfg, Options{DeadLetters: dl, Clock: e.clock, Metrics: e.reg, onIdle: onIdle, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.sink = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = s.Close(ctx)
	})
	return e
}

func payloads(prefix string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%05d", prefix, i))
	}
	return out
}

func records(ps []string) []transport.Record {
	out := make([]transport.Record, len(ps))
	for i, p := range ps {
		out[i] = transport.Record{Payload: []byte(p)}
	}
	return out
}

func sendAll(t *testing.T, s *Sink, ps []string, batch int) {
	t.Helper()
	for i := 0; i < len(ps); i += batch {
		if err := s.SendBatch(directCtx(), records(ps[i:min(i+batch, len(ps))])); err != nil {
			t.Fatalf("SendBatch: %v", err)
		}
	}
}

func assertExactlyOnce(t *testing.T, d *fakeDown, want []string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range want {
		if n := d.seen[p]; n != 1 {
			t.Fatalf("record %s delivered %d times, want 1", p, n)
		}
	}
	if len(d.got) != len(want) {
		t.Fatalf("downstream got %d records, want %d", len(d.got), len(want))
	}
}

func dlqFiles(t *testing.T, dir string) []dlq.Entry {
	t.Helper()
	var out []dlq.Entry
	err := filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.Contains(p, ".ndjson") {
			return err
		}
		es, rerr := dlq.ReadFile(p)
		if rerr != nil {
			return rerr
		}
		out = append(out, es...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
