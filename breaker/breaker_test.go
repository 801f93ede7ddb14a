package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T, cfg Config) (*Breaker, *fakeClock, *metrics.Registry) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	b, err := New(cfg, Options{Target: "down", Clock: clk, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	return b, clk, reg
}

func fail(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		tk, err := b.Allow()
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		tk.Failure()
	}
}

// The defaults: open after 5 consecutive failures, probe after 30 s.
func TestDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.FailureThreshold != 5 || c.OpenTimeout != 30*time.Second {
		t.Fatalf("defaults = %+v, want 5 failures and 30s", c)
	}
	if DefaultFailureThreshold != 5 || DefaultOpenTimeout != 30*time.Second || (Config{}).Threshold() != 5 {
		t.Fatalf("DefaultFailureThreshold %d, DefaultOpenTimeout %s", DefaultFailureThreshold, DefaultOpenTimeout)
	}
	// A zero-config breaker stays open 30 s, not a moment less.
	b, clk, _ := newTest(t, Config{})
	fail(t, b, 5)
	if got, want := b.OpenUntil(), clk.Now().Add(30*time.Second); !got.Equal(want) {
		t.Fatalf("OpenUntil = %s, want 30s from now (%s)", got, want)
	}
	clk.Advance(30*time.Second - time.Nanosecond)
	if s := b.State(); s != Open {
		t.Fatalf("state just before 30s = %s, want open", s)
	}
	clk.Advance(time.Nanosecond)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("state at 30s = %s, want half_open", s)
	}
}

func TestOpensAtThresholdAndSuccessResets(t *testing.T) {
	b, _, _ := newTest(t, Config{})
	fail(t, b, DefaultFailureThreshold-1)
	tk, _ := b.Allow()
	tk.Success() // resets the count
	fail(t, b, DefaultFailureThreshold-1)
	if s := b.State(); s != Closed {
		t.Fatalf("state after 4 failures = %s, want closed", s)
	}
	fail(t, b, 1)
	if s := b.State(); s != Open {
		t.Fatalf("state after 5 consecutive failures = %s, want open", s)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("Allow while open = %v, want ErrOpen", err)
	}
}

func TestTransitionsWithFakeClock(t *testing.T) {
	b, clk, reg := newTest(t, Config{FailureThreshold: 2, OpenTimeout: 10 * time.Second})
	fail(t, b, 2)
	if v := testutil.ToFloat64(b.gauge); v != 2 {
		t.Errorf("state gauge = %v, want 2 (open)", v)
	}
	clk.Advance(9 * time.Second)
	if s := b.State(); s != Open {
		t.Fatalf("state before the timeout = %s, want open", s)
	}
	if got := b.OpenUntil(); !got.Equal(clk.Now().Add(time.Second)) {
		t.Fatalf("OpenUntil = %v, want %v", got, clk.Now().Add(time.Second))
	}
	clk.Advance(time.Second)
	if s := b.State(); s != HalfOpen {
		t.Fatalf("state at the timeout = %s, want half_open", s)
	}
	// Probe fails: open again, for a full timeout from now.
	tk, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	tk.Failure()
	if s := b.State(); s != Open {
		t.Fatalf("state after failed probe = %s, want open", s)
	}
	clk.Advance(10 * time.Second)
	tk, err = b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	tk.Success()
	if s := b.State(); s != Closed {
		t.Fatalf("state after good probe = %s, want closed", s)
	}
	if v := testutil.ToFloat64(b.gauge); v != 0 {
		t.Errorf("state gauge = %v, want 0 (closed)", v)
	}
	if v := testutil.ToFloat64(b.trans.With("down", "closed", "open")); v != 1 {
		t.Errorf("closed->open transitions = %v, want 1", v)
	}
	if v := testutil.ToFloat64(b.trans.With("down", "half_open", "open")); v != 1 {
		t.Errorf("half_open->open transitions = %v, want 1", v)
	}
	if v := testutil.ToFloat64(b.trans.With("down", "open", "half_open")); v != 2 {
		t.Errorf("open->half_open transitions = %v, want 2", v)
	}
	if v := testutil.ToFloat64(b.trans.With("down", "half_open", "closed")); v != 1 {
		t.Errorf("half_open->closed transitions = %v, want 1", v)
	}
	n, err := testutil.GatherAndCount(reg.Gatherer(), "keel_breaker_state")
	if err != nil || n != 1 {
		t.Fatalf("keel_breaker_state series = %d, %v", n, err)
	}
}

func TestHalfOpenSingleProbe(t *testing.T) {
	b, clk, _ := newTest(t, Config{FailureThreshold: 1, OpenTimeout: time.Second})
	fail(t, b, 1)
	clk.Advance(time.Second)
	probe, err := b.Allow()
	if err != nil {
		t.Fatalf("first Allow in half-open: %v", err)
	}
	// Concurrent callers while the probe is in flight are all refused.
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 50 {
		wg.Go(func() {
			if _, err := b.Allow(); err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 0 {
		t.Fatalf("%d calls admitted beside the probe, want 0", admitted)
	}
	// An excluded outcome frees the slot without deciding.
	probe.Done(fmt.Errorf("full: %w", transport.ErrBackpressure))
	if s := b.State(); s != HalfOpen {
		t.Fatalf("state after ignored probe = %s, want half_open", s)
	}
	probe2, err := b.Allow()
	if err != nil {
		t.Fatalf("second probe refused: %v", err)
	}
	probe2.Done(nil)
	if s := b.State(); s != Closed {
		t.Fatalf("state = %s, want closed", s)
	}
}

func TestBackpressureDoesNotOpen(t *testing.T) {
	b, _, _ := newTest(t, Config{FailureThreshold: 2})
	for range 20 {
		tk, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(transport.NewError(transport.ErrBackpressure, "inmem", "send", errors.New("queue full")))
	}
	for range 20 {
		tk, _ := b.Allow()
		tk.Done(context.Canceled)
	}
	if s := b.State(); s != Closed {
		t.Fatalf("state after backpressure = %s, want closed", s)
	}
	tk, _ := b.Allow()
	tk.Done(errors.New("connection refused"))
	tk, _ = b.Allow()
	tk.Done(errors.New("connection refused"))
	if s := b.State(); s != Open {
		t.Fatalf("state after 2 real failures = %s, want open", s)
	}
}

func TestStaleTicketIgnoredAndDoubleReport(t *testing.T) {
	b, clk, _ := newTest(t, Config{FailureThreshold: 1, OpenTimeout: time.Second})
	slow, _ := b.Allow() // issued while closed
	fail(t, b, 1)        // opens
	clk.Advance(time.Second)
	slow.Success() // from an older generation: must not close
	if s := b.State(); s != HalfOpen {
		t.Fatalf("stale success changed state to %s", s)
	}
	b.Reset()
	tk, _ := b.Allow()
	tk.Failure()
	tk.Failure() // second report ignored... the first already opened it
	if s := b.State(); s != Open {
		t.Fatalf("state = %s, want open", s)
	}
	b.Reset()
	if s := b.State(); s != Closed || b.IsOpen() {
		t.Fatalf("after Reset state = %s", s)
	}
	var zero Ticket
	zero.Success() // no panic on the zero ticket
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	err := Config{FailureThreshold: -1, OpenTimeout: -time.Second}.ValidateAt("tiered.breaker")
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, key := range []string{"tiered.breaker.failure_threshold", "tiered.breaker.open_timeout"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	if _, err := New(Config{OpenTimeout: -1}, Options{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with bad config: %v", err)
	}
	if Closed.String() != "closed" || State(9).String() != "state(9)" {
		t.Fatal("State.String")
	}
}
