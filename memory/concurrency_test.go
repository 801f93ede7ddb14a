package memory

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TestConcurrentReserveReleaseNeverExceedsTheLimit hammers TryReserve and
// Release from many goroutines, each holding up to a dozen reservations
// of ~1000 bytes against a 10000-byte limit (so even one goroutine alone
// reaches the limit), and watches the count from the workers and from a
// separate observer. Run with -race.
func TestConcurrentReserveReleaseNeverExceedsTheLimit(t *testing.T) {
	const (
		limit   = 10_000
		workers = 8
		iters   = 4000
		hold    = 12
	)
	g := limited(t, limit)
	var (
		observedMax atomic.Int64 // largest count anyone saw
		held        atomic.Int64 // bytes the workers believe they hold
		heldMax     atomic.Int64
		admitted    atomic.Int64
		done        = make(chan struct{})
		observer    sync.WaitGroup
	)
	observer.Add(1)
	go func() {
		defer observer.Done()
		for {
			select {
			case <-done:
				return
			default:
				storeMax(&observedMax, g.Current())
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			ring := make([]int64, 0, hold)
			for range iters {
				if len(ring) == hold || (len(ring) > 0 && rng.IntN(3) == 0) {
					n := ring[0]
					ring = ring[1:]
					held.Add(-n)
					g.Release(n)
				}
				n := int64(900 + rng.IntN(201))
				if g.TryReserve(n) {
					admitted.Add(1)
					storeMax(&heldMax, held.Add(n))
					storeMax(&observedMax, g.Current())
					ring = append(ring, n)
				}
			}
			for _, n := range ring {
				held.Add(-n)
				g.Release(n)
			}
		}()
	}
	wg.Wait()
	close(done)
	observer.Wait()

	if m := observedMax.Load(); m > limit {
		t.Fatalf("observed %d bytes accounted, above the limit %d", m, limit)
	}
	if m := heldMax.Load(); m > limit {
		t.Fatalf("workers held %d bytes at once, above the limit %d", m, limit)
	}
	if g.Current() != 0 || held.Load() != 0 {
		t.Fatalf("counts lost or corrupted: guard %d, held %d, want 0", g.Current(), held.Load())
	}
	if g.RefusedTotal() == 0 || admitted.Load() == 0 {
		t.Fatalf("the test never reached the limit: refused %d admitted %d", g.RefusedTotal(), admitted.Load())
	}
	if observedMax.Load() < limit-1100 {
		t.Fatalf("the count never came near the limit (max %d)", observedMax.Load())
	}
	t.Logf("admitted %d, refused %d, max observed %d of %d", admitted.Load(), g.RefusedTotal(), observedMax.Load(), limit)
}

// TestConcurrentAddReleaseConserves checks that unconditional Add and
// Release from many goroutines, with leases released twice, lose nothing.
func TestConcurrentAddReleaseConserves(t *testing.T) {
	g := limited(t, 1<<20)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				n := int64(1 + (w*31+i)%4096)
				if i%2 == 0 {
					g.Add(n)
					g.Release(n)
				} else {
					release := g.Lease(n)
					release()
					release()
				}
			}
		}()
	}
	wg.Wait()
	if g.Current() != 0 {
		t.Fatalf("after balanced Add/Release: %d bytes left", g.Current())
	}
}
