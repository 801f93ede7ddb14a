package tiered

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/transport"
)

// badRequest is what an HTTP downstream in NDJSON framing returns for a body
// with one line it cannot take: the whole call fails with a permanent error.
func badRequest() error {
	return transport.NewError(transport.ErrSend, "fake", "send", errors.New(`POST http://sink/ingest answered 400 Bad Request: "line 7: not an object"`))
}

// A downstream that refuses a whole batch whenever it holds the poison
// record: the drainer splits the batch until the poison is alone, tries it
// alone max_attempts times, proves it at fault by the record after it, and
// dead-letters it with its reason and attempts; the rest arrives in order,
// each record once, and the breaker stays closed.
func TestSpoiledBatchPoisonIsolatedFromSpool(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	dl := &memDLQ{}
	e := newEnv(t, cfg, d, dl)
	const poison = "a-00137"
	d.setSpoil(poison, badRequest())
	d.setDown(true)
	ps := payloads("a", 0, 300)
	sendAll(t, e.sink, ps, 10) // all spooled: the breaker opens at the first failure
	if n := e.sink.Spool().Len(); n != int64(len(ps)) {
		t.Fatalf("spool holds %d records, want %d", n, len(ps))
	}
	d.setDown(false)
	e.clock.Advance(time.Minute)
	want := slices.DeleteFunc(slices.Clone(ps), func(p string) bool { return p == poison })
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("delivered records differ from the non-poison ones in order")
	}
	waitEmpty(t, e)
	assertExactlyOnce(t, d, want)
	es := dl.list()
	if len(es) != 1 {
		t.Fatalf("DLQ holds %d entries, want the poison alone: %+v", len(es), es)
	}
	en := es[0]
	if string(en.Payload) != poison || en.Attempts != cfg.MaxAttempts || en.Destination != "fake" ||
		!strings.Contains(en.Reason, "400 Bad Request") || !strings.Contains(en.Reason, "refused alone") {
		t.Fatalf("DLQ entry: payload %q attempts %d destination %q reason %q", en.Payload, en.Attempts, en.Destination, en.Reason)
	}
	if en.Source == nil || !strings.HasPrefix(en.Source.Token, "spool:t:") {
		t.Fatalf("DLQ entry source = %+v", en.Source)
	}
	if v := testutil.ToFloat64(e.sink.mDead.With(e.sink.name, "attempts")); v != 1 {
		t.Fatalf("dead-lettered = %v, want 1", v)
	}
	if st := e.sink.Breaker().State(); st != breaker.Closed {
		t.Fatalf("breaker %s after isolating a poison record, want closed", st)
	}
}

// The same on the direct path: a batch sent while the downstream is up,
// refused as a whole for one record, goes to the spool; the refusal counts
// one breaker failure (nothing tells it from a failing downstream yet),
// and the drainer isolates the record and closes the count again.
func TestSpoiledBatchPoisonIsolatedFromDirectSend(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Breaker = breaker.Config{FailureThreshold: 2, OpenTimeout: time.Hour}
	d := newFakeDown(100_000)
	dl := &memDLQ{}
	e := newEnv(t, cfg, d, dl)
	const poison = "b-00042"
	d.setSpoil(poison, badRequest())
	ps := payloads("b", 0, 200)
	sendAll(t, e.sink, ps, 8)
	want := slices.DeleteFunc(slices.Clone(ps), func(p string) bool { return p == poison })
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("delivered records differ from the non-poison ones in order")
	}
	waitEmpty(t, e)
	assertExactlyOnce(t, d, want)
	es := dl.list()
	if len(es) != 1 || string(es[0].Payload) != poison || es[0].Attempts < 1 || !strings.Contains(es[0].Reason, "400 Bad Request") {
		t.Fatalf("DLQ = %+v, want the poison with its reason and attempts", es)
	}
	if v := spooledCount(e.sink, spoolRejected); v != 8 {
		t.Fatalf("records spooled after the refused direct batch = %v, want 8", v)
	}
	if st := e.sink.Breaker().State(); st != breaker.Closed {
		t.Fatalf("a refused batch opened the breaker (threshold 2): %s", st)
	}
}

// Two poison records in a row: neither proves the other at fault, so the
// first, once refused alone max_attempts times, is passed for the second,
// and both are dead-lettered when the record after them is accepted; the
// rest arrives in order.
func TestAdjacentPoisonRecords(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxAttempts = 3
	cfg.Breaker = breaker.Config{FailureThreshold: 100, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	dl := &memDLQ{}
	e := newEnv(t, cfg, d, dl)
	d.setSpoil("c-00010", badRequest())
	d.setSpoil("c-00011", badRequest())
	d.setDown(true)
	ps := payloads("c", 0, 40)
	sendAll(t, e.sink, ps, 40)
	d.setDown(false)
	want := slices.DeleteFunc(slices.Clone(ps), func(p string) bool { return p == "c-00010" || p == "c-00011" })
	if got := d.waitFor(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("delivered records differ from the non-poison ones in order")
	}
	waitEmpty(t, e)
	assertExactlyOnce(t, d, want)
	es := dl.list()
	if len(es) != 2 || string(es[0].Payload) != "c-00010" || string(es[1].Payload) != "c-00011" {
		t.Fatalf("DLQ = %+v, want c-00010 then c-00011", es)
	}
	for _, en := range es {
		if en.Attempts < cfg.MaxAttempts || !strings.Contains(en.Reason, "400 Bad Request") ||
			!strings.Contains(en.Reason, fmt.Sprintf("after %d attempts", en.Attempts)) {
			t.Fatalf("DLQ entry of %s: attempts %d reason %q", en.Payload, en.Attempts, en.Reason)
		}
	}
}

// A downstream that refuses every call with a permanent error is failing,
// not its records: the breaker opens and no record is dead-lettered before
// it failed alone max_attempts times.
func TestRefuseEverythingOpensBreakerKeepsRecords(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxAttempts = 5
	cfg.Breaker = breaker.Config{FailureThreshold: 2, OpenTimeout: time.Hour}
	d := newFakeDown(100_000)
	dl := &memDLQ{}
	e := newEnv(t, cfg, d, dl)
	d.setRefuseAll(transport.NewError(transport.ErrSend, "fake", "send", errors.New("answered 500 Internal Server Error")))
	ps := payloads("d", 0, 100)
	sendAll(t, e.sink, ps, 10)
	deadline := time.Now().Add(20 * time.Second)
	for !e.sink.CircuitOpen() {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never opened against a downstream refusing every call")
		}
		time.Sleep(time.Millisecond)
	}
	if !e.sink.CannotDrain() {
		t.Fatal("CannotDrain is false with the breaker open")
	}
	if es := dl.list(); len(es) != 0 {
		t.Fatalf("%d records dead-lettered by a downstream that refuses everything", len(es))
	}
	if n := e.sink.Spool().Len(); n != int64(len(ps)) {
		t.Fatalf("spool holds %d records, want all %d", n, len(ps))
	}
	if calls, _ := d.stats(); calls > 100 {
		t.Fatalf("%d calls before the breaker opened", calls)
	}
	if err := e.sink.Health(context.Background()); !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrCannotDrain) {
		t.Fatalf("Health = %v, want ErrCircuitOpen and ErrCannotDrain", err)
	}
}
