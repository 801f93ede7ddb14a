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

// serverError is what an HTTP downstream answers while its backend is down:
// httptransport maps 500 to transport.ErrSend, a permanent error.
func serverError() error {
	return transport.NewError(transport.ErrSend, "fake", "send", errors.New(`POST http://sink/ingest answered 500 Internal Server Error: ""`))
}

// waitUntil polls cond until it holds or 20 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A downstream answering a permanent error to every call, with the default
// breaker and attempts, is down: whether the spool holds one record or a
// backlog, the breaker opens, the sink reports that it cannot drain, no
// record is dead-lettered, and every record is delivered, in order and
// once, after the downstream recovers.
func TestRefusingDownstreamDeadLettersNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		count int
		batch int
	}{
		{"single record", 1, 1},
		{"backlog", 50, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.MaxAttempts = 0            // default 5
			cfg.Breaker = breaker.Config{} // default: 5 failures, 30 s open
			d := newFakeDown(100_000)
			dl := &memDLQ{}
			e := newEnv(t, cfg, d, dl)
			d.setRefuseAll(serverError())
			ps := payloads("h", 0, tc.count)
			sendAll(t, e.sink, ps, tc.batch)
			waitUntil(t, "the breaker to open", e.sink.CircuitOpen)
			if !e.sink.CannotDrain() {
				t.Fatal("CannotDrain is false with the breaker open")
			}
			// Several open periods: the probes are refused too.
			for range 3 {
				e.clock.Advance(31 * time.Second)
				waitUntil(t, "the probe to reopen the breaker", e.sink.CircuitOpen)
			}
			if es := dl.list(); len(es) != 0 {
				t.Fatalf("%d records dead-lettered by a downstream refusing everything, the first %q: %s", len(es), es[0].Payload, es[0].Reason)
			}
			if n := e.sink.Spool().Len(); n != int64(len(ps)) {
				t.Fatalf("spool holds %d records, want %d", n, len(ps))
			}
			d.setRefuseAll(nil)
			e.clock.Advance(31 * time.Second)
			if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
				t.Fatalf("after recovery got %v, want %v", got, ps)
			}
			waitEmpty(t, e)
			assertExactlyOnce(t, d, ps)
			if es := dl.list(); len(es) != 0 {
				t.Fatalf("%d records dead-lettered", len(es))
			}
		})
	}
}

// Low traffic during such an outage: one record at a time, each sent
// directly, refused and spooled; the breaker opens all the same, each
// probe reopens it, and nothing is dead-lettered.
func TestRefusingDownstreamTrickle(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.MaxAttempts = 0
	cfg.Breaker = breaker.Config{}
	d := newFakeDown(100_000)
	dl := &memDLQ{}
	e := newEnv(t, cfg, d, dl)
	d.setRefuseAll(serverError())
	ps := payloads("t", 0, 4)
	for _, p := range ps {
		sendAll(t, e.sink, []string{p}, 1)
		waitUntil(t, "the breaker to open", e.sink.CircuitOpen)
		if !e.sink.CannotDrain() {
			t.Fatal("CannotDrain is false with the breaker open")
		}
		e.clock.Advance(31 * time.Second)
	}
	waitUntil(t, "the probe to reopen the breaker", e.sink.CircuitOpen)
	if es := dl.list(); len(es) != 0 {
		t.Fatalf("%d records dead-lettered during the outage, the first %q: %s", len(es), es[0].Payload, es[0].Reason)
	}
	d.setRefuseAll(nil)
	e.clock.Advance(31 * time.Second)
	if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
		t.Fatalf("got %v, want %v", got, ps)
	}
	waitEmpty(t, e)
	assertExactlyOnce(t, d, ps)
}

// Kafka reports a broker outage as per-record errors: delivery timeouts,
// the call's deadline, retriable broker errors (all ErrTimeout), a lost
// connection, a closed producer. None of them is charged to the records,
// whether every record of a call fails so or only some (one partition
// without a leader): nothing is dead-lettered, and everything is delivered
// once the downstream recovers.
func TestPerRecordOutageErrorsNeverDeadLetter(t *testing.T) {
	kinds := []struct {
		name string
		err  error
	}{
		{"timeout", transport.NewError(transport.ErrTimeout, "kafka", "send", errors.New(`topic "out": context deadline exceeded`))},
		{"not leader", transport.NewError(transport.ErrTimeout, "kafka", "send", errors.New("NOT_LEADER_FOR_PARTITION"))},
		{"connection", transport.NewError(transport.ErrConnection, "kafka", "send", errors.New("broker connection lost"))},
		{"closed", transport.NewError(transport.ErrClosed, "kafka", "send", errors.New("producer closed"))},
	}
	for _, k := range kinds {
		t.Run("all/"+k.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.Breaker = breaker.Config{FailureThreshold: 3, OpenTimeout: time.Minute}
			d := newFakeDown(100_000)
			dl := &memDLQ{}
			e := newEnv(t, cfg, d, dl)
			d.setFailEach(k.err)
			ps := payloads("k", 0, 200)
			sendAll(t, e.sink, ps, 50)
			waitUntil(t, "the breaker to open", e.sink.CircuitOpen)
			for range 3 {
				e.clock.Advance(time.Minute)
				waitUntil(t, "the probe to reopen the breaker", e.sink.CircuitOpen)
			}
			if es := dl.list(); len(es) != 0 {
				t.Fatalf("%d records dead-lettered for %s", len(es), es[0].Reason)
			}
			d.setFailEach(nil)
			e.clock.Advance(time.Minute)
			if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
				t.Fatal("records out of order or missing after recovery")
			}
			waitEmpty(t, e)
			assertExactlyOnce(t, d, ps)
		})
		t.Run("subset/"+k.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.DrainBatch = 128 // one drain call holds them all
			cfg.Breaker = breaker.Config{FailureThreshold: 3, OpenTimeout: time.Minute}
			d := newFakeDown(100_000)
			dl := &memDLQ{}
			e := newEnv(t, cfg, d, dl)
			d.setDown(true)
			ps := payloads("p", 0, 100)
			sendAll(t, e.sink, ps, 100)
			var sub []string
			for i := 0; i < len(ps); i += 4 {
				sub = append(sub, ps[i])
				d.setPoison(ps[i], k.err)
			}
			d.setDown(false)
			e.clock.Advance(time.Minute)
			d.waitFor(t, len(ps)-len(sub))
			// The failing records are retried, never charged; rounds in
			// which the downstream takes none of them open the breaker,
			// and each probe reopens it.
			waitUntil(t, "the breaker to open", e.sink.CircuitOpen)
			for range 3 {
				e.clock.Advance(time.Minute)
				waitUntil(t, "the probe to reopen the breaker", e.sink.CircuitOpen)
			}
			if es := dl.list(); len(es) != 0 {
				t.Fatalf("%d records dead-lettered for %s", len(es), es[0].Reason)
			}
			d.mu.Lock()
			clear(d.poison)
			d.mu.Unlock()
			e.clock.Advance(time.Minute)
			got := d.waitFor(t, len(ps))
			waitEmpty(t, e)
			assertExactlyOnce(t, d, ps)
			if !slices.Equal(got[len(got)-len(sub):], sub) {
				t.Fatalf("the retried records arrived as %v, want %v", got[len(got)-len(sub):], sub)
			}
		})
	}
}

// A downstream that refuses a few calls in a row (a blip) and then takes
// everything dead-letters nothing: the record isolated by the refusals is
// tried alone again after a wait and delivered, the order kept.
func TestBlipOfRefusedCallsDeadLettersNothing(t *testing.T) {
	for _, n := range []int{4, 5} {
		t.Run(fmt.Sprintf("%d calls", n), func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.DrainBatch = 8
			cfg.Breaker = breaker.Config{FailureThreshold: 100, OpenTimeout: time.Minute}
			d := newFakeDown(100_000)
			dl := &memDLQ{}
			e := newEnv(t, cfg, d, dl)
			d.setDown(true)
			ps := payloads("b", 0, 8)
			sendAll(t, e.sink, ps, 8)
			d.mu.Lock()
			d.down = false
			d.refuseCalls, d.refuseErr = n, serverError()
			d.mu.Unlock()
			if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
				t.Fatalf("got %v, want %v", got, ps)
			}
			waitEmpty(t, e)
			assertExactlyOnce(t, d, ps)
			if es := dl.list(); len(es) != 0 {
				t.Fatalf("a blip of %d refused calls dead-lettered %q (attempts %d): %s", n, es[0].Payload, es[0].Attempts, es[0].Reason)
			}
		})
	}
}

// Without a dead-letter queue a poison record is not lost: it stays in the
// spool, the drainer holds at it and says so (Health at once, Stalled and
// CannotDrain after stall_timeout), and a sink opened later on the spool
// with a dead-letter queue puts it there. With tiered.drop_undeliverable
// it is discarded, counted and logged, and the rest flows.
func TestPoisonWithoutDLQ(t *testing.T) {
	reject := transport.NewError(transport.ErrSend, "fake", "send", errors.New("rejected"))
	setup := func(t *testing.T, drop bool) (Config, *env) {
		cfg := testConfig(t.TempDir())
		cfg.DropUndeliverable = drop
		cfg.StallTimeout = 30 * time.Second
		cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
		d := newFakeDown(100)
		e := newEnv(t, cfg, d, nil)
		d.setPoison("bad", reject)
		d.setDown(true)
		if err := e.sink.SendBatch(directCtx(), records([]string{"x", "bad", "y"})); err != nil {
			t.Fatal(err)
		}
		d.setDown(false)
		e.clock.Advance(time.Minute)
		return cfg, e
	}
	dropped := func(e *env) float64 {
		return testutil.ToFloat64(e.sink.mDropped.With(e.sink.name, "no_dead_letter_queue"))
	}

	t.Run("held", func(t *testing.T) {
		cfg, e := setup(t, false)
		d := e.down
		d.waitFor(t, 2)
		waitUntil(t, "the hold to show in Health", func() bool {
			return errors.Is(e.sink.Health(context.Background()), ErrNoDeadLetterQueue)
		})
		if !e.sink.CannotDrain() {
			t.Fatal("CannotDrain is false while the drainer holds a record")
		}
		// The record before the poison is acknowledged, the poison stays
		// and so does what follows it.
		waitUntil(t, "x acknowledged", func() bool { return e.sink.Spool().Len() == 2 })
		if v := dropped(e); v != 0 {
			t.Fatalf("dropped = %v without drop_undeliverable", v)
		}
		if e.sink.Stalled() {
			t.Fatal("stalled before stall_timeout")
		}
		e.clock.Advance(cfg.StallTimeout)
		if !e.sink.Stalled() || !e.sink.CannotDrain() {
			t.Fatalf("stalled %v, cannot drain %v while holding a poison record", e.sink.Stalled(), e.sink.CannotDrain())
		}
		if err := e.sink.Close(context.Background()); err != nil {
			t.Fatal(err)
		}

		d2 := newFakeDown(100)
		d2.setPoison("bad", reject)
		dl := &memDLQ{}
		e2 := newEnv(t, cfg, d2, dl)
		waitEmpty(t, e2)
		es := dl.list()
		if len(es) != 1 || string(es[0].Payload) != "bad" || !strings.Contains(es[0].Reason, "rejected") || es[0].Attempts != 1 {
			t.Fatalf("DLQ after reopening with one = %+v, want the poison record", es)
		}
		// y was delivered but not acknowledged behind the held record:
		// at least once across restarts.
		if got := d2.waitFor(t, 1); !slices.Equal(got, []string{"y"}) {
			t.Fatalf("reopened sink delivered %v", got)
		}
	})

	t.Run("drop_undeliverable", func(t *testing.T) {
		_, e := setup(t, true)
		waitEmpty(t, e)
		if v := dropped(e); v != 1 {
			t.Fatalf("dropped = %v, want 1", v)
		}
		if got := e.down.waitFor(t, 2); !slices.Equal(got, []string{"x", "y"}) {
			t.Fatalf("got %v", got)
		}
		if err := e.sink.Health(context.Background()); err != nil {
			t.Fatalf("Health after the drop: %v", err)
		}
	})
}
