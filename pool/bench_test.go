package pool

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// benchLines are syslog-like JSON records of about 170 bytes, the block the
// engine hands Map to parse.
func benchLines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = fmt.Appendf(nil,
			`{"_table":"events","_timestamp":%d,"host":"web-%03d","source_type":"nginx","msg":"GET /api/v1/items/%d 200 %dms","level":"info"}`,
			1700000000000+i, i%512, i, i%97)
	}
	return lines
}

// parseLike is about 200 ns of parse-shaped work: one pass over the bytes
// hashing keys and counting fields.
func parseLike(b []byte) (uint64, error) {
	h := uint64(14695981039346656037)
	fields := 0
	inStr := false
	for _, c := range b {
		switch {
		case c == '"':
			inStr = !inStr
		case c == ':' && !inStr:
			fields++
		}
		h ^= uint64(c)
		h *= 1099511628211
	}
	if fields == 0 {
		return 0, fmt.Errorf("no fields")
	}
	return h ^ uint64(fields), nil
}

func reportPerItem(b *testing.B, n int) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(per, "ns/item")
	b.ReportMetric(1e9/per, "items/s")
}

func benchPool(b *testing.B, cfg Config) *Pool {
	p, err := New(cfg, WithMetrics(newRegistry()), WithLogger(quietLogger()), WithName("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

// BenchmarkMap10k compares Map over a 10 000-record block with the two
// baselines in the same run: a plain sequential loop and a goroutine per
// item with a WaitGroup.
func BenchmarkMap10k(b *testing.B) {
	const n = 10_000
	lines := benchLines(n)
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	fn := func(_ context.Context, _ int, l []byte) (uint64, error) { return parseLike(l) }

	b.Run("baseline=sequential-loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]uint64, n)
			var errs []error
			for i, l := range lines {
				v, err := parseLike(l)
				out[i] = v
				if err != nil {
					if errs == nil {
						errs = make([]error, n)
					}
					errs[i] = err
				}
			}
			if errs != nil {
				b.Fatal(errs)
			}
		}
		reportPerItem(b, n)
	})
	b.Run("baseline=goroutine-per-item", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]uint64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, l := range lines {
				wg.Go(func() { out[i], errs[i] = parseLike(l) })
			}
			wg.Wait()
		}
		reportPerItem(b, n)
	})
	b.Run("map/nil-pool", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := Map(ctx, nil, lines, fn); errs != nil {
				b.Fatal(errs)
			}
		}
		reportPerItem(b, n)
	})
	for _, target := range []int{1, procs} {
		b.Run(fmt.Sprintf("map/target=%d", target), func(b *testing.B) {
			p := benchPool(b, Config{MaxWorkers: procs, InitialWorkers: target})
			b.ReportAllocs()
			for b.Loop() {
				if _, errs := Map(ctx, p, lines, fn); errs != nil {
					b.Fatal(errs)
				}
			}
			reportPerItem(b, n)
		})
	}
	b.Run(fmt.Sprintf("map/target=%d/chunk=1", procs), func(b *testing.B) {
		p := benchPool(b, Config{MaxWorkers: procs, ChunkSize: 1})
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := Map(ctx, p, lines, fn); errs != nil {
				b.Fatal(errs)
			}
		}
		reportPerItem(b, n)
	})
	b.Run(fmt.Sprintf("map/target=%d/cancellable-ctx", procs), func(b *testing.B) {
		p := benchPool(b, Config{MaxWorkers: procs})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if _, errs := Map(cctx, p, lines, fn); errs != nil {
				b.Fatal(errs)
			}
		}
		reportPerItem(b, n)
	})
}

// BenchmarkMapSmall measures the fixed cost of a call on the inline path.
func BenchmarkMapSmall(b *testing.B) {
	const n = 8
	lines := benchLines(n)
	ctx := context.Background()
	fn := func(_ context.Context, _ int, l []byte) (uint64, error) { return parseLike(l) }
	b.Run("baseline=sequential-loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]uint64, n)
			for i, l := range lines {
				out[i], _ = parseLike(l)
			}
		}
		reportPerItem(b, n)
	})
	b.Run("map/inline", func(b *testing.B) {
		p := benchPool(b, Config{})
		b.ReportAllocs()
		for b.Loop() {
			Map(ctx, p, lines, fn)
		}
		reportPerItem(b, n)
	})
}

// BenchmarkItemTiming is why Map samples one item per chunk for
// keel_pool_item_duration_seconds: timing every item costs this much on
// top of the 200 ns item.
func BenchmarkItemTiming(b *testing.B) {
	const n = 10_000
	lines := benchLines(n)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Help: "x", Buckets: itemDurationBuckets})
	b.Run("untimed", func(b *testing.B) {
		for b.Loop() {
			for _, l := range lines {
				_, _ = parseLike(l)
			}
		}
		reportPerItem(b, n)
	})
	b.Run("timed-every-item", func(b *testing.B) {
		for b.Loop() {
			for _, l := range lines {
				t0 := time.Now()
				_, _ = parseLike(l)
				h.Observe(time.Since(t0).Seconds())
			}
		}
		reportPerItem(b, n)
	})
}

// BenchmarkFanOut compares FanOut with a goroutine per item and a
// WaitGroup, unbounded and bounded by a channel semaphore, for short calls.
func BenchmarkFanOut(b *testing.B) {
	const n = 1000
	lines := benchLines(n)
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	b.Run("baseline=goroutine-per-item", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]uint64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, l := range lines {
				wg.Go(func() { out[i], errs[i] = parseLike(l) })
			}
			wg.Wait()
		}
		reportPerItem(b, n)
	})
	b.Run(fmt.Sprintf("baseline=goroutine-per-item-chan-semaphore=%d", procs), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]uint64, n)
			errs := make([]error, n)
			sem := make(chan struct{}, procs)
			var wg sync.WaitGroup
			for i, l := range lines {
				sem <- struct{}{}
				wg.Go(func() {
					out[i], errs[i] = parseLike(l)
					<-sem
				})
			}
			wg.Wait()
		}
		reportPerItem(b, n)
	})
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("fanout/target=%d/item_timeout=%s", procs, timeout), func(b *testing.B) {
			p := benchPool(b, Config{MaxWorkers: procs, ItemTimeout: timeout})
			b.ReportAllocs()
			for b.Loop() {
				ch, err := FanOut(ctx, p, lines, func(_ context.Context, _ int, l []byte) (uint64, error) { return parseLike(l) })
				if err != nil {
					b.Fatal(err)
				}
				if _, errs := Collect(ch, n); errs != nil {
					b.Fatal(errs)
				}
			}
			reportPerItem(b, n)
		})
	}
}

// BenchmarkMapOverhead isolates the pool's cost per item with an item that
// does nothing: the same function called from a plain loop is the baseline.
func BenchmarkMapOverhead(b *testing.B) {
	const n = 10_000
	items := ints(n)
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	fn := func(_ context.Context, _ int, v int) (int, error) { return v + 1, nil }
	b.Run("baseline=sequential-loop", func(b *testing.B) {
		for b.Loop() {
			out := make([]int, n)
			for i, v := range items {
				r, err := fn(ctx, i, v)
				if err != nil {
					b.Fatal(err)
				}
				out[i] = r
			}
		}
		reportPerItem(b, n)
	})
	for _, target := range []int{1, procs} {
		b.Run(fmt.Sprintf("map/target=%d", target), func(b *testing.B) {
			p := benchPool(b, Config{MaxWorkers: procs, InitialWorkers: target})
			for b.Loop() {
				if _, errs := Map(ctx, p, items, fn); errs != nil {
					b.Fatal(errs)
				}
			}
			reportPerItem(b, n)
		})
	}
}
