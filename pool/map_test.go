package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// spin does a little CPU work that varies with i, so workers finish their
// chunks out of step.
func spin(i int) int {
	x := i
	for k := 0; k < (i%7)*50; k++ {
		x = x*31 + k
	}
	return x
}

func TestMapKeepsInputOrder(t *testing.T) {
	for _, cfg := range []Config{
		{MaxWorkers: 1},
		{MaxWorkers: 4},
		{MaxWorkers: 4, ChunkSize: 1},
		{MaxWorkers: 3, ChunkSize: 7},
		{MaxWorkers: 8, InlineBelow: 1},
	} {
		p, _ := newTestPool(t, cfg)
		for _, n := range []int{0, 1, 2, 31, 32, 33, 255, 256, 257, 1000, 5003} {
			t.Run(fmt.Sprintf("%+v/n=%d", cfg, n), func(t *testing.T) {
				var calls atomic.Int64
				res, errs := Map(context.Background(), p, ints(n), func(_ context.Context, i int, item int) (string, error) {
					calls.Add(1)
					if i != item {
						return "", fmt.Errorf("index %d got item %d", i, item)
					}
					spin(i)
					return fmt.Sprint("r", item), nil
				})
				if errs != nil {
					t.Fatalf("errs = %v, want nil", errs)
				}
				if len(res) != n || calls.Load() != int64(n) {
					t.Fatalf("len(res) = %d, calls = %d, want %d", len(res), calls.Load(), n)
				}
				for i, r := range res {
					if r != fmt.Sprint("r", i) {
						t.Fatalf("res[%d] = %q", i, r)
					}
				}
			})
		}
		if a := p.Active(); a != 0 {
			t.Fatalf("Active() after all calls = %d, want 0", a)
		}
	}
}

func TestMapKeepsPerItemErrors(t *testing.T) {
	p, reg := newTestPool(t, Config{MaxWorkers: 4})
	errOdd := errors.New("odd")
	n := 1000
	res, errs := Map(context.Background(), p, ints(n), func(_ context.Context, i int, item int) (int, error) {
		if item%7 == 3 {
			return -item, fmt.Errorf("item %d: %w", item, errOdd)
		}
		return item * 2, nil
	})
	if len(errs) != n {
		t.Fatalf("len(errs) = %d, want %d", len(errs), n)
	}
	failed := 0
	for i := range n {
		if i%7 == 3 {
			failed++
			if !errors.Is(errs[i], errOdd) || res[i] != -i {
				t.Fatalf("item %d: err %v res %d; want errOdd and the value returned with it", i, errs[i], res[i])
			}
			continue
		}
		if errs[i] != nil || res[i] != i*2 {
			t.Fatalf("item %d: err %v res %d", i, errs[i], res[i])
		}
	}
	s := p.Stats()
	if s.Items != uint64(n) || s.Errors != uint64(failed) || s.Panics != 0 {
		t.Fatalf("stats = %+v, want %d items, %d errors", s, n, failed)
	}
	if v := metricValue(t, reg, "keel_pool_items_total", "t"); v != float64(n) {
		t.Errorf("keel_pool_items_total = %v, want %d", v, n)
	}
	if v := metricValue(t, reg, "keel_pool_item_errors_total", "t"); v != float64(failed) {
		t.Errorf("keel_pool_item_errors_total = %v, want %d", v, failed)
	}
	if v := metricValue(t, reg, "keel_pool_item_duration_seconds", "t"); v < 1 || v > float64(n) {
		t.Errorf("keel_pool_item_duration_seconds count = %v, want a sample per chunk", v)
	}
	if v := metricValue(t, reg, "keel_pool_active_workers", "t"); v != 0 {
		t.Errorf("keel_pool_active_workers = %v after the call", v)
	}
}

func TestMapIsolatesPanics(t *testing.T) {
	sentinel := errors.New("boom")
	panicky := map[int]any{5: "five", 300: sentinel, 777: 42, 999: nil}
	for _, cfg := range []Config{{MaxWorkers: 1}, {MaxWorkers: 4}, {MaxWorkers: 4, ChunkSize: 3}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			p, reg := newTestPool(t, cfg)
			n := 1000
			res, errs := Map(context.Background(), p, ints(n), func(_ context.Context, i int, item int) (int, error) {
				if v, ok := panicky[i]; ok {
					panic(v)
				}
				return item + 1, nil
			})
			if len(errs) != n {
				t.Fatalf("errs has %d entries, want %d", len(errs), n)
			}
			for i := range n {
				v, ok := panicky[i]
				if !ok {
					if errs[i] != nil || res[i] != i+1 {
						t.Fatalf("item %d: res %d err %v; a panic elsewhere must not touch it", i, res[i], errs[i])
					}
					continue
				}
				var pe *PanicError
				if !errors.As(errs[i], &pe) {
					t.Fatalf("item %d: err %T %v, want *PanicError", i, errs[i], errs[i])
				}
				if v != nil && pe.Value != v {
					t.Fatalf("item %d: panic value %v, want %v", i, pe.Value, v)
				}
				if !strings.Contains(string(pe.Stack), "pool.TestMapIsolatesPanics") {
					t.Fatalf("item %d: stack does not show the panicking function:\n%s", i, pe.Stack)
				}
			}
			if !errors.Is(errs[300], sentinel) {
				t.Errorf("panic(err) must unwrap to err, got %v", errs[300])
			}
			if s := p.Stats(); s.Panics != uint64(len(panicky)) || s.Items != uint64(n) || s.Active != 0 {
				t.Errorf("stats = %+v", s)
			}
			if v := metricValue(t, reg, "keel_pool_panics_total", "t"); v != float64(len(panicky)) {
				t.Errorf("keel_pool_panics_total = %v", v)
			}
			// The pool is still whole.
			res2, errs2 := Map(context.Background(), p, ints(100), func(_ context.Context, _ int, item int) (int, error) { return item, nil })
			if errs2 != nil || res2[99] != 99 {
				t.Fatalf("pool unusable after panics: %v", errs2)
			}
		})
	}
}

func TestMapLogsPanicsRateLimited(t *testing.T) {
	reg := newRegistry()
	rec := &recordHandler{}
	p, err := New(Config{MaxWorkers: 2}, WithMetrics(reg), WithLogger(slogNew(rec)), WithName("logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.panicLog.every = 1 << 62 // one line for the whole test
	_, errs := Map(context.Background(), p, ints(3), func(context.Context, int, int) (int, error) { panic("secret-free value") })
	if len(errs) != 3 {
		t.Fatalf("errs = %v", errs)
	}
	recs := rec.all()
	if len(recs) != 1 {
		t.Fatalf("got %d log lines for 3 panics within the limit window, want 1", len(recs))
	}
	attrs := recs[0]
	for _, k := range []string{"pool", "item_index", "panic", "stack", "suppressed"} {
		if _, ok := attrs[k]; !ok {
			t.Errorf("panic log line misses key %q: %v", k, attrs)
		}
	}
	if attrs["pool"] != "logs" || attrs["panic"] != "secret-free value" {
		t.Errorf("log attrs = %v", attrs)
	}
}

func TestMapNeverExceedsTarget(t *testing.T) {
	for _, target := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("target=", target), func(t *testing.T) {
			p, _ := newTestPool(t, Config{MaxWorkers: 8, InitialWorkers: target})
			ctx := context.Background()
			var c concurrency
			full := newLatch(target)
			var blocked atomic.Bool
			_, errs := Map(ctx, p, ints(400), func(_ context.Context, i int, _ int) (int, error) {
				n := c.enter()
				defer c.leave()
				if n > int64(target) {
					return 0, fmt.Errorf("item %d ran with %d in flight, target %d", i, n, target)
				}
				if n == int64(target) {
					full.open()
				}
				// Hold every item until the pool has been seen full once, so
				// the peak must reach the target if the pool allows it.
				if !full.wait(ctx) {
					blocked.Store(true)
				}
				spin(i)
				return i, nil
			})
			if errs != nil {
				for _, e := range errs {
					if e != nil {
						t.Fatal(e)
					}
				}
			}
			if blocked.Load() {
				t.Fatalf("the pool never ran %d items at once", target)
			}
			if got := c.peak.Load(); got != int64(target) {
				t.Fatalf("peak concurrency = %d, want exactly the target %d", got, target)
			}
		})
	}
}

func TestMapTargetIsSharedAcrossCalls(t *testing.T) {
	const target = 3
	p, _ := newTestPool(t, Config{MaxWorkers: 8, InitialWorkers: target})
	var c concurrency
	var over atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			Map(context.Background(), p, ints(300), func(_ context.Context, i int, _ int) (int, error) {
				if c.enter() > target {
					over.Add(1)
				}
				spin(i)
				c.leave()
				return i, nil
			})
		})
	}
	wg.Wait()
	if over.Load() > 0 || c.peak.Load() > target {
		t.Fatalf("peak concurrency over 6 concurrent calls = %d (%d items over), target %d", c.peak.Load(), over.Load(), target)
	}
}

func TestMapLoweredTargetAppliesToLaterItems(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 4, InitialWorkers: 4})
	ctx := context.Background()
	var c concurrency
	firstWave := newLatch(4) // opens when 4 items are inside at once
	release := make(chan struct{})
	var entered atomic.Int64
	var lowered atomic.Bool
	var late, lateOver atomic.Int64
	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		_, errs = Map(ctx, p, ints(400), func(_ context.Context, i int, _ int) (int, error) {
			n := c.enter()
			defer c.leave()
			if entered.Add(1) <= 4 {
				firstWave.arrive()
				<-release
				return i, nil
			}
			if lowered.Load() {
				late.Add(1)
				if n > 1 {
					lateOver.Add(1)
				}
			}
			spin(i)
			return i, nil
		})
	}()
	if !firstWave.wait(ctx) {
		t.Fatal("4 items never ran at once with target 4")
	}
	if got := p.SetTarget(1); got != 1 {
		t.Fatalf("SetTarget(1) = %d", got)
	}
	lowered.Store(true)
	close(release)
	<-done
	if errs != nil {
		t.Fatalf("errs = %v", errs)
	}
	if late.Load() != 396 {
		t.Fatalf("%d items ran after the target moved, want 396", late.Load())
	}
	if lateOver.Load() != 0 {
		t.Fatalf("%d items started with more than 1 item in flight after SetTarget(1)", lateOver.Load())
	}
	if a := p.Active(); a != 0 {
		t.Fatalf("Active() = %d after the call", a)
	}
}

func TestMapRaisedTargetAppliesToLaterItems(t *testing.T) {
	p, _ := newTestPool(t, Config{MinWorkers: 1, MaxWorkers: 4, InitialWorkers: 1})
	ctx := context.Background()
	var c concurrency
	started := make(chan struct{})
	release := make(chan struct{})
	var raised atomic.Bool
	three := newLatch(3)
	var first sync.Once
	var never atomic.Bool
	done := make(chan struct{})
	var errs []error
	go func() {
		defer close(done)
		_, errs = Map(ctx, p, ints(400), func(_ context.Context, i int, _ int) (int, error) {
			n := c.enter()
			defer c.leave()
			isFirst := false
			first.Do(func() { isFirst = true })
			if isFirst {
				close(started)
				<-release
				return i, nil
			}
			if !raised.Load() {
				return 0, fmt.Errorf("item %d started before the target was raised, with target 1 busy", i)
			}
			if n == 3 {
				three.open()
			}
			if !three.wait(ctx) {
				never.Store(true)
			}
			return i, nil
		})
	}()
	<-started
	if c.peak.Load() != 1 {
		t.Fatalf("peak %d with target 1", c.peak.Load())
	}
	raised.Store(true)
	p.SetTarget(3)
	close(release)
	<-done
	if errs != nil {
		t.Fatalf("errs = %v", errs)
	}
	if never.Load() {
		t.Fatal("after SetTarget(3) the call never ran 3 items at once")
	}
	if got := c.peak.Load(); got != 3 {
		t.Fatalf("peak = %d, want 3", got)
	}
}

func TestMapCancelStopsUnstartedItems(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 1})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls atomic.Int64
		_, errs := Map(ctx, p, ints(100), func(_ context.Context, i int, _ int) (int, error) {
			calls.Add(1)
			if i == 10 {
				cancel()
			}
			return i, nil
		})
		if calls.Load() != 11 {
			t.Fatalf("%d items ran, want 11 (up to the one that cancelled)", calls.Load())
		}
		for i, err := range errs {
			if i <= 10 && err != nil || i > 10 && !errors.Is(err, context.Canceled) {
				t.Fatalf("errs[%d] = %v", i, err)
			}
		}
	})
	t.Run("parallel", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 4, ChunkSize: 8})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 2000
		ran := make([]atomic.Bool, n)
		_, errs := Map(ctx, p, ints(n), func(_ context.Context, i int, _ int) (int, error) {
			ran[i].Store(true)
			if i == 50 {
				cancel()
			}
			return i, nil
		})
		cancelled := 0
		for i := range n {
			switch {
			case ran[i].Load() && errs[i] == nil:
			case !ran[i].Load() && errors.Is(errs[i], context.Canceled):
				cancelled++
			default:
				t.Fatalf("item %d: ran=%v err=%v; want run and nil, or not run and context.Canceled", i, ran[i].Load(), errs[i])
			}
		}
		if cancelled == 0 {
			t.Fatal("no item was left unstarted after the cancel")
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 2})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var calls atomic.Int64
		_, errs := Map(ctx, p, ints(500), func(context.Context, int, int) (int, error) { calls.Add(1); return 0, nil })
		if calls.Load() != 0 || len(errs) != 500 || !errors.Is(errs[0], context.Canceled) || !errors.Is(errs[499], context.Canceled) {
			t.Fatalf("calls %d, errs %d", calls.Load(), len(errs))
		}
	})
	t.Run("cancelled while queued for a slot", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 1})
		hold := make(chan struct{})
		f, err := Go(context.Background(), p, func(context.Context) (int, error) { <-hold; return 0, nil })
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for p.Stats().Waiting == 0 {
				runtimeGosched()
			}
			cancel()
		}()
		var calls atomic.Int64
		_, errs := Map(ctx, p, ints(50), func(context.Context, int, int) (int, error) { calls.Add(1); return 0, nil })
		if calls.Load() != 0 || !errors.Is(errs[0], context.Canceled) || !errors.Is(errs[49], context.Canceled) {
			t.Fatalf("calls %d errs[0] %v", calls.Load(), errs[0])
		}
		if w := p.Stats().Waiting; w != 0 {
			t.Fatalf("Waiting = %d after the cancelled caller left", w)
		}
		close(hold)
		if _, err := f.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMapNilPoolRunsSequentially(t *testing.T) {
	var c concurrency
	res, errs := Map(context.Background(), nil, ints(300), func(_ context.Context, i int, item int) (int, error) {
		c.enter()
		defer c.leave()
		if i == 7 {
			panic("seven")
		}
		return item * 3, nil
	})
	if c.peak.Load() != 1 {
		t.Fatalf("peak %d with a nil pool", c.peak.Load())
	}
	var pe *PanicError
	if !errors.As(errs[7], &pe) || res[8] != 24 || errs[8] != nil {
		t.Fatalf("errs[7] = %v, res[8] = %d", errs[7], res[8])
	}
}

func TestMapNestedCallsDoNotDeadlock(t *testing.T) {
	for _, target := range []int{1, 2, 4} {
		t.Run(fmt.Sprint("target=", target), func(t *testing.T) {
			p, _ := newTestPool(t, Config{MaxWorkers: 4, InitialWorkers: target, ChunkSize: 2})
			var c concurrency
			outer, errs := Map(context.Background(), p, ints(40), func(ctx context.Context, i int, _ int) (int, error) {
				inner, errs := Map(ctx, p, ints(100), func(_ context.Context, j int, item int) (int, error) {
					if c.enter() > int64(target) {
						c.leave()
						return 0, fmt.Errorf("inner item ran over the target %d", target)
					}
					defer c.leave()
					return item, nil
				})
				if errs != nil {
					return 0, errors.Join(errs...)
				}
				sum := 0
				for _, v := range inner {
					sum += v
				}
				return sum + i, nil
			})
			if errs != nil {
				t.Fatal(errors.Join(errs...))
			}
			for i, v := range outer {
				if v != 4950+i {
					t.Fatalf("outer[%d] = %d", i, v)
				}
			}
		})
	}
}

func TestMapAfterCloseFailsEveryItem(t *testing.T) {
	p, _ := newTestPool(t, Config{})
	p.Close()
	var calls atomic.Int64
	res, errs := Map(context.Background(), p, ints(10), func(context.Context, int, int) (int, error) { calls.Add(1); return 1, nil })
	if calls.Load() != 0 || len(res) != 10 || len(errs) != 10 {
		t.Fatalf("calls %d res %d errs %d", calls.Load(), len(res), len(errs))
	}
	for i, err := range errs {
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("errs[%d] = %v, want ErrClosed", i, err)
		}
	}
}

func TestMapEmptyInput(t *testing.T) {
	p, _ := newTestPool(t, Config{})
	res, errs := Map(context.Background(), p, []int(nil), func(context.Context, int, int) (int, error) {
		t.Fatal("fn called for empty input")
		return 0, nil
	})
	if res == nil || len(res) != 0 || errs != nil {
		t.Fatalf("res %v errs %v", res, errs)
	}
}

func TestMapGoexitInAnItem(t *testing.T) {
	t.Run("on a helper", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 2, ChunkSize: 1, InlineBelow: 1})
		helperDone := make(chan struct{})
		res, errs := Map(context.Background(), p, ints(10), func(_ context.Context, i int, v int) (int, error) {
			switch i {
			case 0: // the caller claims item 0 first; hold it until item 1 is over
				<-helperDone
			case 1:
				close(helperDone)
				runtime.Goexit()
			}
			return v, nil
		})
		if len(errs) != 10 || !errors.Is(errs[1], ErrGoexit) {
			t.Fatalf("errs = %v, want ErrGoexit for item 1", errs)
		}
		for i := range 10 {
			if i != 1 && (errs[i] != nil || res[i] != i) {
				t.Fatalf("item %d: %d %v", i, res[i], errs[i])
			}
		}
		if s := p.Stats(); s.Active != 0 || s.InFlight != 0 {
			t.Fatalf("stats = %+v", s)
		}
	})
	t.Run("on the caller", func(t *testing.T) {
		p, _ := newTestPool(t, Config{MaxWorkers: 1})
		done := make(chan struct{})
		returned := false
		go func() {
			defer close(done)
			Map(context.Background(), p, ints(3), func(context.Context, int, int) (int, error) {
				runtime.Goexit()
				return 0, nil
			})
			returned = true
		}()
		<-done
		if returned {
			t.Fatal("Map returned although its goroutine called Goexit")
		}
		// The slot and the in-flight count were given back on the way out.
		if s := p.Stats(); s.Active != 0 || s.InFlight != 0 {
			t.Fatalf("stats = %+v", s)
		}
	})
}
