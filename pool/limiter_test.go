package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLimiterGrantsInFIFOOrder(t *testing.T) {
	l := newLimiter(1, nil)
	ctx := context.Background()
	if err := l.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var order []int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() {
			if err := l.acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, k)
			mu.Unlock()
			l.release()
		})
		waitFor(t, func() bool { return l.waiting() == k+1 })
	}
	if l.tryAcquire() {
		t.Fatal("tryAcquire succeeded while the only slot is held and others queue")
	}
	l.release()
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2 3]" {
		t.Fatalf("grant order = %v, want FIFO", order)
	}
	if l.leased.Load() != 0 || l.waiting() != 0 {
		t.Fatalf("leased %d waiting %d at rest", l.leased.Load(), l.waiting())
	}
}

func TestLimiterRaisedTargetWakesWaiters(t *testing.T) {
	var gauge atomic.Int64
	l := newLimiter(1, func(n int64) { gauge.Store(n) })
	ctx := context.Background()
	_ = l.acquire(ctx)
	got := make(chan struct{}, 3)
	for range 3 {
		go func() {
			if l.acquire(ctx) == nil {
				got <- struct{}{}
			}
		}()
	}
	waitFor(t, func() bool { return l.waiting() == 3 })
	l.setTarget(3) // two more slots: two waiters run, one still waits
	<-got
	<-got
	if l.waiting() != 1 || l.leased.Load() != 3 || gauge.Load() != 3 {
		t.Fatalf("waiting %d leased %d gauge %d; want 1, 3, 3", l.waiting(), l.leased.Load(), gauge.Load())
	}
	l.release()
	<-got
	for range 3 {
		l.release()
	}
	if l.leased.Load() != 0 || gauge.Load() != 0 {
		t.Fatalf("leased %d gauge %d at rest", l.leased.Load(), gauge.Load())
	}
}

func TestLimiterCancelledWaiterLeavesTheQueue(t *testing.T) {
	l := newLimiter(1, nil)
	_ = l.acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- l.acquire(ctx) }()
	waitFor(t, func() bool { return l.waiting() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire = %v", err)
	}
	if l.waiting() != 0 || l.leased.Load() != 1 {
		t.Fatalf("waiting %d leased %d", l.waiting(), l.leased.Load())
	}
	l.release()
	if !l.tryAcquire() {
		t.Fatal("slot lost after a cancelled waiter")
	}
}

func TestLimiterReleaseIfOverIsExact(t *testing.T) {
	l := newLimiter(5, nil)
	for range 5 {
		_ = l.acquire(context.Background())
	}
	l.setTarget(2)
	var released atomic.Int64
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if l.releaseIfOver() {
				released.Add(1)
			}
		})
	}
	wg.Wait()
	if released.Load() != 3 || l.leased.Load() != 2 {
		t.Fatalf("released %d leased %d; want exactly 3 given back, 2 kept", released.Load(), l.leased.Load())
	}
}

func TestLimiterCancelRacingGrantKeepsCount(t *testing.T) {
	l := newLimiter(2, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(2) == 0 {
					cancel()
				} else {
					go cancel()
				}
				if l.acquire(ctx) == nil {
					if l.leased.Load() > l.target.Load() {
						t.Error("more leases than the target")
					}
					l.release()
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if l.leased.Load() != 0 || l.waiting() != 0 {
		t.Fatalf("leased %d waiting %d after the storm", l.leased.Load(), l.waiting())
	}
}

// TestStressMovingTarget mixes Map (flat and nested), FanOut and Go on one
// pool while another goroutine moves the target. Every result must come
// back right and the pool must end at rest. KEEL_SOAK=1 runs it longer.
func TestStressMovingTarget(t *testing.T) {
	rounds := 3
	if os.Getenv("KEEL_SOAK") == "1" {
		rounds = 300
	}
	const maxW = 6
	p, _ := newTestPool(t, Config{MaxWorkers: maxW, ChunkSize: 0})
	ctx := context.Background()
	var c concurrency
	stop := make(chan struct{})
	moverDone := make(chan struct{})
	go func() {
		defer close(moverDone)
		r := rand.New(rand.NewPCG(7, 7))
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.SetTarget(1 + r.IntN(maxW))
			runtimeGosched()
		}
	}()
	item := func(_ context.Context, i int, v int) (int, error) {
		c.enter()
		spin(i)
		c.leave()
		return v * 2, nil
	}
	check := func(res []int, errs []error) {
		if errs != nil {
			t.Error(errors.Join(errs...))
			return
		}
		for i, v := range res {
			if v != i*2 {
				t.Errorf("res[%d] = %d", i, v)
				return
			}
		}
	}
	for range rounds {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				switch g {
				case 0, 1:
					check(Map(ctx, p, ints(700), item))
				case 2:
					_, errs := Map(ctx, p, ints(12), func(ctx context.Context, i int, v int) (int, error) {
						res, errs := Map(ctx, p, ints(90), item)
						check(res, errs)
						return v, nil
					})
					if errs != nil {
						t.Error(errors.Join(errs...))
					}
				case 3:
					ch, err := FanOut(ctx, p, ints(60), item)
					if err != nil {
						t.Error(err)
						return
					}
					check(Collect(ch, 60))
					f, err := Go(ctx, p, func(ctx context.Context) (int, error) { return item(ctx, 3, 3) })
					if err != nil {
						t.Error(err)
						return
					}
					if v, err := f.Wait(ctx); v != 6 || err != nil {
						t.Errorf("Go = %d %v", v, err)
					}
				}
			})
		}
		wg.Wait()
	}
	close(stop)
	<-moverDone
	if c.peak.Load() > maxW {
		t.Fatalf("peak %d over max_workers %d", c.peak.Load(), maxW)
	}
	if s := p.Stats(); s.Active != 0 || s.Waiting != 0 || s.InFlight != 0 {
		t.Fatalf("pool not at rest: %+v", s)
	}
}
