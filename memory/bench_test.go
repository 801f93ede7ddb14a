package memory

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAccounting measures the accounting pair on the hot path under
// b.RunParallel, against two baselines in the same run: a bare
// atomic.Int64 Add pair (the floor) and a mutex-guarded counter (what a
// lock would cost).
//
//	go test -run '^$' -bench Accounting -benchmem ./memory/
func BenchmarkAccounting(b *testing.B) {
	const n = 4096
	b.Run("baseline_atomic_add_pair", func(b *testing.B) {
		var c atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.Add(n)
				c.Add(-n)
			}
		})
	})
	b.Run("baseline_mutex_pair", func(b *testing.B) {
		var mu sync.Mutex
		var c int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				c += n
				mu.Unlock()
				mu.Lock()
				c -= n
				mu.Unlock()
			}
		})
	})
	b.Run("guard_try_reserve_release", func(b *testing.B) {
		g := benchGuard(b, Config{LimitBytes: 64 << 20})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if g.TryReserve(n) {
					g.Release(n)
				}
			}
		})
	})
	b.Run("guard_add_release", func(b *testing.B) {
		g := benchGuard(b, Config{LimitBytes: 64 << 20})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				g.Add(n)
				g.Release(n)
			}
		})
	})
	b.Run("guard_try_reserve_release_use_heap", func(b *testing.B) {
		g := benchGuard(b, Config{LimitBytes: 64 << 20, UseHeap: true, HeapSampleInterval: 100 * time.Millisecond})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if g.TryReserve(n) {
					g.Release(n)
				}
			}
		})
	})
	b.Run("guard_under_pressure", func(b *testing.B) {
		g := benchGuard(b, Config{LimitBytes: 64 << 20})
		g.Add(32 << 20)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if g.UnderPressure() {
					b.Error("under pressure at 50%")
				}
			}
		})
	})
}

func benchGuard(b *testing.B, cfg Config) *Guard {
	b.Helper()
	g, err := New(cfg, WithPlatform(emptyMachine(b)), WithMetrics(testRegistry()), WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	return g
}
