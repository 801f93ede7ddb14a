package logging

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type countingCounter struct{ n atomic.Uint64 }

func (c *countingCounter) Inc() { c.n.Add(1) }

func TestStateChangeTruthTable(t *testing.T) {
	var c countingCounter
	s := StateChange[string]{Counter: &c}
	if _, ok := s.Value(); ok {
		t.Fatal("zero StateChange has a value")
	}
	seq := []string{"up", "up", "down", "down", "down", "up", "up"}
	want := []bool{true, false, true, false, false, true, false}
	for i, v := range seq {
		if got := s.Changed(v); got != want[i] {
			t.Fatalf("call %d Changed(%q) = %v, want %v", i, v, got, want[i])
		}
	}
	if v, ok := s.Value(); !ok || v != "up" {
		t.Fatalf("Value = %q, %v", v, ok)
	}
	if s.Events() != 7 || s.Changes() != 3 || s.Suppressed() != 4 || c.n.Load() != 7 {
		t.Fatalf("events=%d changes=%d suppressed=%d counter=%d", s.Events(), s.Changes(), s.Suppressed(), c.n.Load())
	}
}

func TestEveryNTruthTable(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "events_total", Help: "h"})
	e := EveryN{N: 3, Counter: c}
	var got []bool
	var reports []uint64
	for range 8 {
		ok, n := e.Allow()
		got = append(got, ok)
		if ok {
			reports = append(reports, n)
		}
	}
	want := []bool{true, false, false, true, false, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Allow sequence = %v, want %v", got, want)
		}
	}
	if len(reports) != 3 || reports[0] != 0 || reports[1] != 2 || reports[2] != 2 {
		t.Fatalf("suppressed reports = %v, want [0 2 2]", reports)
	}
	if e.Events() != 8 || e.Suppressed() != 5 || testutil.ToFloat64(c) != 8 {
		t.Fatalf("events=%d suppressed=%d counter=%v", e.Events(), e.Suppressed(), testutil.ToFloat64(c))
	}
	var all EveryN // N 0: everything passes
	for range 3 {
		if ok, _ := all.Allow(); !ok {
			t.Fatal("EveryN{N: 0} dropped an event")
		}
	}
}

func TestSamplerTruthTable(t *testing.T) {
	var c countingCounter
	s := Every(10 * time.Second)
	s.Counter = &c
	t0 := time.Now()
	steps := []struct {
		at   time.Duration
		ok   bool
		skip uint64
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{15 * time.Second, false, 0},
		{time.Minute, true, 1},
	}
	for i, st := range steps {
		ok, n := s.AllowAt(t0.Add(st.at))
		if ok != st.ok || n != st.skip {
			t.Fatalf("step %d (+%v): ok=%v n=%d, want ok=%v n=%d", i, st.at, ok, n, st.ok, st.skip)
		}
	}
	if s.Events() != 6 || s.Suppressed() != 3 || c.n.Load() != 6 {
		t.Fatalf("events=%d suppressed=%d counter=%d", s.Events(), s.Suppressed(), c.n.Load())
	}
	if ok, _ := (&Sampler{}).Allow(); !ok {
		t.Fatal("zero Sampler must let events through")
	}
}

// TestHelpersCountEveryEventConcurrently: under contention each helper
// counts every call, and allowed + suppressed always equals the calls.
func TestHelpersCountEveryEventConcurrently(t *testing.T) {
	const workers, per = 8, 1000
	var sc StateChange[int]
	e := EveryN{N: 7}
	smp := Every(time.Hour)
	var changed, allowedN, allowedS, reportedN, reportedS atomic.Uint64
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				if sc.Changed((w + i) % 3) {
					changed.Add(1)
				}
				if ok, n := e.Allow(); ok {
					allowedN.Add(1)
					reportedN.Add(n)
				}
				if ok, n := smp.AllowAt(t0); ok { // same instant: one winner
					allowedS.Add(1)
					reportedS.Add(n)
				}
			}
		})
	}
	wg.Wait()
	total := uint64(workers * per)
	if sc.Events() != total || sc.Changes() != changed.Load() || sc.Changes()+sc.Suppressed() != total {
		t.Fatalf("StateChange events=%d changes=%d (seen %d) suppressed=%d", sc.Events(), sc.Changes(), changed.Load(), sc.Suppressed())
	}
	if e.Events() != total || allowedN.Load()+e.Suppressed() != total || allowedN.Load() != (total+6)/7 {
		t.Fatalf("EveryN events=%d allowed=%d suppressed=%d", e.Events(), allowedN.Load(), e.Suppressed())
	}
	if allowedS.Load() != 1 || smp.Events() != total || smp.Suppressed() != total-1 {
		t.Fatalf("Sampler allowed=%d events=%d suppressed=%d", allowedS.Load(), smp.Events(), smp.Suppressed())
	}
	// the suppressed counts reported on allowed events plus those still
	// pending add up to every suppressed event
	if reportedN.Load()+e.skipped.Load() != e.Suppressed() {
		t.Fatalf("EveryN reported %d + pending %d != suppressed %d", reportedN.Load(), e.skipped.Load(), e.Suppressed())
	}
	if reportedS.Load()+smp.skipped.Load() != smp.Suppressed() {
		t.Fatalf("Sampler reported %d + pending %d != suppressed %d", reportedS.Load(), smp.skipped.Load(), smp.Suppressed())
	}
}

func TestHelpersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var sc StateChange[bool]
	sc.Changed(true)
	e := EveryN{N: 10}
	s := Every(time.Hour)
	for name, fn := range map[string]func(){
		"StateChange": func() { sc.Changed(true) },
		"EveryN":      func() { e.Allow() },
		"Sampler":     func() { s.Allow() },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
