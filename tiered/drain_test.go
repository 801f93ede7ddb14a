package tiered

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/spool"
)

// A downstream that answers with backpressure forever never opens the
// breaker, but once the spool has held records for stall_timeout without
// one drained, the sink reports that it cannot drain; it recovers as soon
// as records drain again.
func TestStalledWhileBackpressured(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.StallTimeout = 30 * time.Second
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour}
	d := newFakeDown(5)
	e := newEnv(t, cfg, d, &memDLQ{})
	ps := payloads("s", 0, 40)
	sendAll(t, e.sink, ps, 10)
	if e.sink.Spool().Len() == 0 {
		t.Fatal("nothing spooled while the downstream is full")
	}
	// The stall clock starts when the drainer meets the backlog: wait for
	// its first call before moving the clock.
	deadline := time.Now().Add(20 * time.Second)
	for calls, direct := d.stats(); calls == direct; calls, direct = d.stats() {
		if time.Now().After(deadline) {
			t.Fatal("the drainer never called the downstream")
		}
		time.Sleep(time.Millisecond)
	}
	if e.sink.Stalled() || e.sink.CannotDrain() {
		t.Fatal("stalled before stall_timeout passed")
	}
	if err := e.sink.Health(context.Background()); err != nil {
		t.Fatalf("Health before stall_timeout: %v", err)
	}
	e.clock.Advance(29 * time.Second)
	if e.sink.Stalled() {
		t.Fatal("stalled after 29s of a 30s stall_timeout")
	}
	e.clock.Advance(time.Second)
	if !e.sink.Stalled() || !e.sink.CannotDrain() {
		t.Fatalf("stalled %v, cannot drain %v after stall_timeout without progress", e.sink.Stalled(), e.sink.CannotDrain())
	}
	if e.sink.CircuitOpen() {
		t.Fatal("backpressure opened the breaker")
	}
	err := e.sink.Health(context.Background())
	if !errors.Is(err, ErrStalled) || !errors.Is(err, ErrCannotDrain) || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("Health while stalled = %v, want ErrStalled and ErrCannotDrain", err)
	}

	// The downstream's consumer catches up: records drain, the stall ends.
	d.q.Drain()
	deadline = time.Now().Add(20 * time.Second)
	for e.sink.Stalled() || e.sink.Spool().Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still stalled %v with %d spooled after the downstream recovered", e.sink.Stalled(), e.sink.Spool().Len())
		}
		d.q.Drain()
		time.Sleep(time.Millisecond)
	}
	if e.sink.CannotDrain() {
		t.Fatal("CannotDrain after the spool emptied")
	}
	if err := e.sink.Health(context.Background()); err != nil {
		t.Fatalf("Health after recovery: %v", err)
	}
	assertExactlyOnce(t, d, ps)
}

// A full spool means the downstream does not keep up: the sink reports that
// it cannot drain, which can only push the scaling pressure down.
func TestFullSpoolCannotDrain(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Spool.MaxRecords = 10
	cfg.Spool.FullPolicy = spool.DropNewest
	cfg.Breaker = breaker.Config{FailureThreshold: 1000, OpenTimeout: time.Hour}
	d := newFakeDown(100)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	sendAll(t, e.sink, payloads("f", 0, 5), 5)
	if e.sink.CannotDrain() {
		t.Fatal("CannotDrain with the spool half full, the breaker closed and no stall")
	}
	sendAll(t, e.sink, payloads("f", 5, 12), 7)
	if r := e.sink.PressureRatio(); r != 1 {
		t.Fatalf("PressureRatio = %v, want 1", r)
	}
	if !e.sink.CannotDrain() || e.sink.CircuitOpen() || e.sink.Stalled() {
		t.Fatalf("full spool: cannot drain %v, circuit open %v, stalled %v", e.sink.CannotDrain(), e.sink.CircuitOpen(), e.sink.Stalled())
	}
	if err := e.sink.Health(context.Background()); !errors.Is(err, spool.ErrFull) || !errors.Is(err, ErrCannotDrain) {
		t.Fatalf("Health with a full spool = %v, want spool.ErrFull and ErrCannotDrain", err)
	}
}

// Close with a downstream that keeps failing while the breaker stays closed
// drains for close_drain_timeout at most, then leaves the records spooled
// and returns nil well before its context ends.
func TestCloseBoundedWhileDownstreamFails(t *testing.T) {
	for _, tc := range []struct {
		name         string
		drainTimeout time.Duration
		ctxTimeout   time.Duration
	}{
		{"close_drain_timeout", 50 * time.Millisecond, time.Minute},
		{"half the context", time.Hour, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.CloseDrainTimeout = tc.drainTimeout
			cfg.Breaker = breaker.Config{FailureThreshold: 1_000_000, OpenTimeout: time.Hour}
			d := newFakeDown(10_000)
			e := newEnv(t, cfg, d, &memDLQ{})
			d.setDown(true)
			ps := payloads("k", 0, 30)
			sendAll(t, e.sink, ps, 10)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctxTimeout)
			defer cancel()
			if err := e.sink.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if ctx.Err() != nil {
				t.Fatal("Close held on until its context ended")
			}
			if e.sink.CircuitOpen() {
				t.Fatal("the breaker opened; the case is a closed breaker")
			}
			sp, err := spool.Open(context.Background(), cfg.Spool)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sp.Close() }()
			if n := sp.Len(); n != int64(len(ps)) {
				t.Fatalf("reopened spool holds %d records, want %d", n, len(ps))
			}
		})
	}
}

// A low drain rate limit caps what reaches the downstream: in any window
// at most the burst (drain_batch) plus rate × elapsed records.
func TestRateLimitCapsDrain(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.RateLimit = 50
	cfg.DrainBatch = 5
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(10_000)
	e := newEnv(t, cfg, d, &memDLQ{})
	d.setDown(true)
	ps := payloads("r", 0, 40)
	sendAll(t, e.sink, ps, 10)
	// The limiter's bucket holds at most drain_batch tokens at any time,
	// so counting from any instant before the drain resumes is safe.
	start := time.Now()
	d.setDown(false)
	e.clock.Advance(time.Minute)
	time.Sleep(300 * time.Millisecond)
	d.mu.Lock()
	delivered := len(d.got)
	d.mu.Unlock()
	elapsed := time.Since(start)
	if limit := float64(cfg.DrainBatch) + cfg.RateLimit*elapsed.Seconds(); float64(delivered) > limit {
		t.Fatalf("%d records delivered in %s at %v records/s (burst %d): more than %.0f", delivered, elapsed, cfg.RateLimit, cfg.DrainBatch, limit)
	}
	if got := d.waitFor(t, len(ps)); !slices.Equal(got, ps) {
		t.Fatal("rate-limited drain lost or reordered records")
	}
}

// The drainer's wait doubles from backoff.initial, is capped at backoff.max,
// and is drawn between half and all of it.
func TestBackoff(t *testing.T) {
	s := &Sink{cfg: Config{Backoff: Backoff{Initial: 100 * time.Millisecond, Max: time.Second}}.normalized()}
	for _, tc := range []struct {
		n    int
		base time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{6, time.Second},
		{1000, time.Second},
	} {
		lo, hi := tc.base, time.Duration(0)
		for range 2000 {
			w := s.backoff(tc.n)
			if w < tc.base/2 || w > tc.base {
				t.Fatalf("backoff(%d) = %s, outside [%s, %s]", tc.n, w, tc.base/2, tc.base)
			}
			lo, hi = min(lo, w), max(hi, w)
		}
		// Jitter spreads the waits over the range: 2000 draws reach both
		// of its outer tenths.
		if span := tc.base / 2; lo > tc.base/2+span/10 || hi < tc.base-span/10 {
			t.Fatalf("backoff(%d) drew only [%s, %s] of [%s, %s]", tc.n, lo, hi, tc.base/2, tc.base)
		}
	}
}
