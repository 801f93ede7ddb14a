package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFanOutResultsCollectInOrder(t *testing.T) {
	p, reg := newTestPool(t, Config{MaxWorkers: 4})
	errBad := errors.New("bad")
	n := 200
	ch, err := FanOut(context.Background(), p, ints(n), func(_ context.Context, i int, item int) (string, error) {
		switch {
		case item%10 == 3:
			return "", errBad
		case item == 77:
			panic("seventy-seven")
		}
		return fmt.Sprint("v", item), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	var results []Result[string]
	for r := range ch {
		seen[r.Index]++
		results = append(results, r)
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("item %d reported %d times, want once", i, c)
		}
	}
	replay := make(chan Result[string], len(results))
	for _, r := range results {
		replay <- r
	}
	close(replay)
	vals, errs := Collect(replay, n)
	for i := range n {
		switch {
		case i == 77:
			var pe *PanicError
			if !errors.As(errs[i], &pe) || pe.Value != "seventy-seven" {
				t.Fatalf("errs[77] = %v, want the panic", errs[i])
			}
		case i%10 == 3:
			if !errors.Is(errs[i], errBad) {
				t.Fatalf("errs[%d] = %v", i, errs[i])
			}
		default:
			if errs[i] != nil || vals[i] != fmt.Sprint("v", i) {
				t.Fatalf("item %d: %q %v", i, vals[i], errs[i])
			}
		}
	}
	if s := p.Stats(); s.Items != uint64(n) || s.Errors != 21 || s.Panics != 1 || s.Active != 0 {
		t.Fatalf("stats = %+v", s)
	}
	if v := metricValue(t, reg, "keel_pool_item_duration_seconds", "t"); v != float64(n) {
		t.Fatalf("duration samples = %v, want one per FanOut item (%d)", v, n)
	}
}

func TestFanOutEmptyInput(t *testing.T) {
	p, _ := newTestPool(t, Config{})
	ch, err := FanOut(context.Background(), p, []int{}, func(context.Context, int, int) (int, error) { return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel of an empty FanOut must be closed with no result")
	}
	if s := p.Stats(); s.InFlight != 0 {
		t.Fatalf("InFlight = %d", s.InFlight)
	}
}

func TestFanOutNeverExceedsTarget(t *testing.T) {
	const target = 3
	p, _ := newTestPool(t, Config{MaxWorkers: 16, InitialWorkers: target})
	ctx := context.Background()
	var c concurrency
	full := newLatch(target)
	var never atomic.Bool
	ch, err := FanOut(ctx, p, ints(60), func(_ context.Context, i int, _ int) (int, error) {
		n := c.enter()
		defer c.leave()
		if n == target {
			full.open()
		}
		if !full.wait(ctx) {
			never.Store(true)
		}
		return i, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, errs := Collect(ch, 60)
	if errs != nil {
		t.Fatal(errors.Join(errs...))
	}
	if never.Load() {
		t.Fatal("FanOut never ran the target number of items at once")
	}
	if c.peak.Load() != target {
		t.Fatalf("peak = %d, want %d", c.peak.Load(), target)
	}
}

func TestFanOutItemTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	p, reg := newTestPool(t, Config{MaxWorkers: 4, ItemTimeout: timeout})
	stuck := make(chan struct{})
	var unstick sync.Once
	defer unstick.Do(func() { close(stuck) }) // a failed assertion must not hang Close
	var stuckReturned atomic.Bool
	ch, err := FanOut(context.Background(), p, []string{"fast", "ignores-ctx", "honours-ctx"}, func(ctx context.Context, _ int, kind string) (string, error) {
		switch kind {
		case "ignores-ctx":
			<-stuck
			stuckReturned.Store(true)
			return "late", nil
		case "honours-ctx":
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	vals, errs := Collect(ch, 3)
	if errs[0] != nil || vals[0] != "ok" {
		t.Fatalf("fast item: %q %v", vals[0], errs[0])
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(errs[i], ErrItemTimeout) || !errors.Is(errs[i], context.DeadlineExceeded) {
			t.Fatalf("item %d: err %v, want ErrItemTimeout and DeadlineExceeded", i, errs[i])
		}
		if !containsAll(errs[i].Error(), "worker_pool.item_timeout", fmt.Sprintf("item %d", i)) {
			t.Fatalf("item %d: message %q should name the key and the item", i, errs[i])
		}
		if vals[i] != "" {
			t.Fatalf("item %d: value %q, want the zero value", i, vals[i])
		}
	}
	if stuckReturned.Load() {
		t.Fatal("the result channel closed only after the stuck item returned")
	}
	// The stuck item keeps its slot until it returns (the ctx-honouring one
	// gives its slot back as soon as it sees the deadline), and Close waits
	// for it.
	waitFor(t, func() bool { return p.Active() == 1 })
	if a := p.Active(); a != 1 {
		t.Fatalf("Active() = %d while the timed-out item still runs, want 1", a)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	waitFor(t, func() bool { return p.Stats().Closed })
	select {
	case <-closed:
		t.Fatal("Close returned while a timed-out item was still running")
	default:
	}
	unstick.Do(func() { close(stuck) })
	<-closed
	if !stuckReturned.Load() || p.Active() != 0 {
		t.Fatalf("after Close: returned=%v active=%d", stuckReturned.Load(), p.Active())
	}
	if s := p.Stats(); s.Timeouts != 2 || s.Items != 3 || s.Errors != 2 {
		t.Fatalf("stats = %+v", s)
	}
	if v := metricValue(t, reg, "keel_pool_timeouts_total", "t"); v != 2 {
		t.Fatalf("keel_pool_timeouts_total = %v", v)
	}
}

func TestFanOutCancelStopsUnstartedItems(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := make(chan struct{})
	var calls atomic.Int64
	ch, err := FanOut(ctx, p, ints(20), func(ctx context.Context, i int, _ int) (int, error) {
		calls.Add(1)
		close(running)
		<-ctx.Done() // the running item sees the cancel and is waited for
		return 99, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	cancel()
	vals, errs := Collect(ch, 20)
	if calls.Load() != 1 {
		t.Fatalf("%d items ran, want 1", calls.Load())
	}
	if vals[0] != 99 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("running item: %d %v; want its own return", vals[0], errs[0])
	}
	for i := 1; i < 20; i++ {
		if !errors.Is(errs[i], context.Canceled) {
			t.Fatalf("errs[%d] = %v, want context.Canceled", i, errs[i])
		}
	}
}

func TestGoFuture(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 2})
	ctx := context.Background()
	f, err := Go(ctx, p, func(context.Context) (int, error) { return 42, nil })
	if err != nil {
		t.Fatal(err)
	}
	<-f.Done()
	if v, err := f.Wait(ctx); v != 42 || err != nil {
		t.Fatalf("Wait = %d, %v", v, err)
	}
	errX := errors.New("x")
	f, _ = Go(ctx, p, func(context.Context) (int, error) { return 1, errX })
	if v, err := f.Wait(ctx); v != 1 || !errors.Is(err, errX) {
		t.Fatalf("Wait = %d, %v", v, err)
	}
	f, _ = Go(ctx, p, func(context.Context) (int, error) { panic("go-panic") })
	var pe *PanicError
	if _, err := f.Wait(ctx); !errors.As(err, &pe) || pe.Value != "go-panic" {
		t.Fatalf("Wait = %v, want the panic", err)
	}
	// Wait bounded by its own ctx.
	hold := make(chan struct{})
	f, _ = Go(ctx, p, func(context.Context) (int, error) { <-hold; return 7, nil })
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Wait(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) = %v", err)
	}
	close(hold)
	if v, err := f.Wait(ctx); v != 7 || err != nil {
		t.Fatalf("second Wait = %d, %v", v, err)
	}
}

func TestGoBlocksForASlot(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 1})
	ctx := context.Background()
	hold := make(chan struct{})
	first, err := Go(ctx, p, func(context.Context) (int, error) { <-hold; return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
	// A submission whose ctx ends while queued fails with the ctx error.
	queued, cancel := context.WithCancel(ctx)
	go func() {
		waitFor(t, func() bool { return p.Stats().Waiting == 1 })
		cancel()
	}()
	if _, err := Go(queued, p, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Go with a ctx cancelled while queued = %v", err)
	}
	// A submission with a live ctx waits until the slot frees.
	var secondRan atomic.Bool
	got := make(chan *Future[int])
	go func() {
		f, err := Go(ctx, p, func(context.Context) (int, error) { secondRan.Store(true); return 2, nil })
		if err != nil {
			t.Error(err)
		}
		got <- f
	}()
	waitFor(t, func() bool { return p.Stats().Waiting == 1 })
	if secondRan.Load() {
		t.Fatal("second Go ran while the only slot was busy")
	}
	close(hold)
	second := <-got
	if v, _ := second.Wait(ctx); v != 2 {
		t.Fatalf("second = %d", v)
	}
	if v, _ := first.Wait(ctx); v != 1 {
		t.Fatalf("first = %d", v)
	}
}

func TestGoItemTimeout(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 1, ItemTimeout: 50 * time.Millisecond})
	f, err := Go(context.Background(), p, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, fmt.Errorf("gave up: %w", ctx.Err())
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Wait(context.Background())
	// Either the deadline watcher or fn's own "gave up" return reports
	// first; both must read as the item timeout.
	if !errors.Is(err, ErrItemTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
		!containsAll(err.Error(), "call ran past worker_pool.item_timeout (50ms)") {
		t.Fatalf("err = %v", err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("timeout error does not report Timeout(): %T", err)
	}
}

func TestAsyncNilPool(t *testing.T) {
	if _, err := Go(context.Background(), nil, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrNilPool) {
		t.Fatalf("Go(nil pool) = %v", err)
	}
	if _, err := FanOut(context.Background(), nil, ints(1), func(context.Context, int, int) (int, error) { return 0, nil }); !errors.Is(err, ErrNilPool) {
		t.Fatalf("FanOut(nil pool) = %v", err)
	}
}

func TestMapInsideGoRidesTheItemSlot(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 1})
	f, err := Go(context.Background(), p, func(ctx context.Context) (int, error) {
		res, errs := Map(ctx, p, ints(100), func(_ context.Context, _ int, v int) (int, error) { return v, nil })
		if errs != nil {
			return 0, errors.Join(errs...)
		}
		return res[99], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Wait(context.Background()); v != 99 || err != nil {
		t.Fatalf("nested Map in Go = %d, %v", v, err)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strContains(s, sub) {
			return false
		}
	}
	return true
}
