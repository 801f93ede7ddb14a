package scaling_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/scaling"
)

func newWindow(t *testing.T, window time.Duration, buckets int) (*scaling.RateWindow, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	return scaling.NewRateWindow(window, buckets, scaling.WithRateClock(c.Now)), c
}

func TestRateWindowRatesAndSliding(t *testing.T) {
	w, c := newWindow(t, 10*time.Second, 10) // 1 s buckets
	if w.Rate() != 0 || w.Sum() != 0 {
		t.Fatal("empty window")
	}
	w.Add(10) // t=0, bucket 0
	c.Advance(500 * time.Millisecond)
	// Less than one bucket covered: the span is one bucket.
	if r := w.Rate(); !near(r, 10) {
		t.Fatalf("t=0.5s: %v, want 10/s", r)
	}
	c.Advance(4500 * time.Millisecond) // t=5
	w.Add(40)                          // bucket 5
	// Window not yet full: 50 events over the 5 s since creation.
	if r := w.Rate(); !near(r, 10) || w.Sum() != 50 {
		t.Fatalf("t=5s: rate %v sum %d, want 10/s and 50", r, w.Sum())
	}
	c.Advance(5 * time.Second) // t=10: bucket 0 has left the window
	if r, s := w.Rate(), w.Sum(); s != 40 || !near(r, 40.0/9) {
		t.Fatalf("t=10s: rate %v sum %d, want %v and 40", r, s, 40.0/9)
	}
	c.Advance(200 * time.Millisecond) // t=10.2: bucket 10 reuses slot 0
	w.Add(3)
	if r, s := w.Rate(), w.Sum(); s != 43 || !near(r, 43/9.2) {
		t.Fatalf("t=10.2s: rate %v sum %d, want %v and 43 (slot 0 recycled, old count gone)", r, s, 43/9.2)
	}
	c.Advance(5 * time.Second) // t=15.2: bucket 5 expired
	if s := w.Sum(); s != 3 {
		t.Fatalf("t=15.2s: sum %d, want 3", s)
	}
	c.Advance(10 * time.Second) // t=25.2: everything expired
	if r, s := w.Rate(), w.Sum(); r != 0 || s != 0 {
		t.Fatalf("t=25.2s: rate %v sum %d, want 0", r, s)
	}
}

func TestRateWindowSteadyRate(t *testing.T) {
	w, c := newWindow(t, time.Minute, 60)
	// 100 events every 100 ms for 3 minutes: 1000/s.
	for range 1800 {
		w.Add(100)
		c.Advance(100 * time.Millisecond)
	}
	// At t=180 s buckets 121..179 count (180 is empty): 59 000 events
	// over 59 s.
	if r, s := w.Rate(), w.Sum(); !near(r, 1000) || s != 59_000 {
		t.Fatalf("steady: rate %v sum %d, want 1000/s and 59000", r, s)
	}
}

func TestRateWindowIgnoresNonPositiveAndOldEvents(t *testing.T) {
	w, _ := newWindow(t, 4*time.Second, 4)
	w.Add(0)
	w.Add(-5)
	if w.Sum() != 0 {
		t.Fatal("non-positive adds must be ignored")
	}

	// A scripted clock: creation, then the times of each call.
	t0 := time.Now()
	times := []time.Duration{0, 6 * time.Second, 2500 * time.Millisecond, 6 * time.Second}
	var i int
	clock := func() time.Time { d := times[min(i, len(times)-1)]; i++; return t0.Add(d) }
	w = scaling.NewRateWindow(4*time.Second, 4, scaling.WithRateClock(clock))
	w.Add(1) // t=6 s: bucket 6, slot 2
	// An Add stamped t=2.5 s (bucket 2, the same slot, older period) arrives
	// late: it is outside the window and must not reset bucket 6.
	w.Add(100)
	if s := w.Sum(); s != 1 { // read at t=6 s
		t.Fatalf("sum %d, want 1", s)
	}
}

func TestRateWindowClockBeforeCreation(t *testing.T) {
	c := newFakeClock()
	w := scaling.NewRateWindow(time.Second, 10, scaling.WithRateClock(c.Now))
	c.Advance(-time.Hour)
	w.Add(5) // counts as at creation
	c.Advance(time.Hour)
	if w.Sum() != 5 {
		t.Fatalf("sum %d", w.Sum())
	}
}

func TestRateWindowDefaultsAndBounds(t *testing.T) {
	w := scaling.NewRateWindow(0, 0)
	if w.Window() != scaling.DefaultRateWindow || w.Buckets() != scaling.DefaultRateBuckets {
		t.Fatalf("defaults: %v %d", w.Window(), w.Buckets())
	}
	w = scaling.NewRateWindow(5*time.Millisecond, 100)
	if w.Buckets() != 5 || w.Window() != 5*time.Millisecond {
		t.Fatalf("1 ms bucket floor: %d buckets over %v", w.Buckets(), w.Window())
	}
	w = scaling.NewRateWindow(24*time.Hour, 1_000_000)
	if w.Buckets() != scaling.MaxRateBuckets {
		t.Fatalf("bucket cap: %d", w.Buckets())
	}
	w = scaling.NewRateWindow(time.Nanosecond, 3)
	if w.Buckets() != 1 {
		t.Fatalf("tiny window: %d buckets", w.Buckets())
	}
	var nilW *scaling.RateWindow
	nilW.Add(1)
	if nilW.Rate() != 0 || nilW.Sum() != 0 || nilW.Window() != 0 || nilW.Buckets() != 0 {
		t.Fatal("nil window")
	}
}

// Concurrent adders lose nothing within a bucket and across a rotation.
func TestRateWindowConcurrentAdds(t *testing.T) {
	w, c := newWindow(t, 10*time.Second, 10)
	const workers, per = 8, 2000
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				w.Add(1)
				if i == 0 && j == per/2 {
					c.Advance(time.Second) // rotate into a fresh bucket mid-run
				}
			}
		}()
	}
	wg.Wait()
	if s := w.Sum(); s != workers*per {
		t.Fatalf("sum %d, want %d", s, workers*per)
	}
}
