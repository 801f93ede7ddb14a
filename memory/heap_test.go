package memory

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// heapStub is a heap source whose value the test sets and whose reads it
// counts.
type heapStub struct {
	v     atomic.Int64
	reads atomic.Int64
}

func (h *heapStub) read() int64 {
	h.reads.Add(1)
	return h.v.Load()
}

func TestUseHeapTakesTheLargerView(t *testing.T) {
	h := &heapStub{}
	h.v.Store(700)
	g := newGuard(t, Config{LimitBytes: 1000, UseHeap: true, HeapSampleInterval: time.Nanosecond}, nil, WithHeapSource(h.read))
	if g.Current() != 700 || g.Accounted() != 0 {
		t.Fatalf("heap 700, nothing accounted: current %d accounted %d", g.Current(), g.Accounted())
	}
	if s := g.Snapshot(); s.Source != "heap" || s.HeapBytes == nil || *s.HeapBytes != 700 {
		t.Fatalf("snapshot source %q heap %v", s.Source, s.HeapBytes)
	}
	if g.TryReserve(400) {
		t.Fatal("admitted 400 with a live heap of 700 under a limit of 1000")
	}
	if g.Accounted() != 0 {
		t.Fatalf("refused reservation counted: %d", g.Accounted())
	}
	if !g.TryReserve(300) || g.Accounted() != 300 || g.Current() != 700 {
		t.Fatalf("reserve 300: accounted %d current %d", g.Accounted(), g.Current())
	}
	h.v.Store(100)
	if g.Current() != 300 || g.Snapshot().Source != "accounted" {
		t.Fatalf("heap 100, accounted 300: current %d source %q", g.Current(), g.Snapshot().Source)
	}
	// The accounted view still caps reservations when the heap is low.
	if g.TryReserve(701) {
		t.Fatal("admitted 701 with 300 accounted under a limit of 1000")
	}
	h.v.Store(900)
	if !g.UnderPressure() || g.Level() != High {
		t.Fatalf("heap at 90%%: pressure %v level %v", g.UnderPressure(), g.Level())
	}
	g.Release(300)
	if g.Accounted() != 0 {
		t.Fatalf("release in heap mode: accounted %d", g.Accounted())
	}
}

func TestHeapSampledAtMostOncePerInterval(t *testing.T) {
	h := &heapStub{}
	h.v.Store(10)
	g := newGuard(t, Config{LimitBytes: 1000, UseHeap: true, HeapSampleInterval: time.Hour}, nil, WithHeapSource(h.read))
	h.v.Store(999)
	for range 1000 {
		if g.Current() != 10 {
			t.Fatalf("a sample was taken inside the interval: current %d", g.Current())
		}
		g.TryReserve(1)
		g.Release(1)
	}
	if n := h.reads.Load(); n != 1 {
		t.Fatalf("heap source read %d times within one interval, want 1", n)
	}
}

func TestHeapSourceUnusedWithoutUseHeap(t *testing.T) {
	h := &heapStub{}
	h.v.Store(5000)
	g := newGuard(t, Config{LimitBytes: 1000}, nil, WithHeapSource(h.read))
	if g.Current() != 0 || !g.TryReserve(1000) || h.reads.Load() != 0 {
		t.Fatalf("heap source used without use_heap: current %d reads %d", g.Current(), h.reads.Load())
	}
	if g.Snapshot().HeapBytes != nil {
		t.Fatal("snapshot reports heap bytes without use_heap")
	}
}

func TestNegativeHeapSourceIsZero(t *testing.T) {
	g := newGuard(t, Config{LimitBytes: 1000, UseHeap: true, HeapSampleInterval: time.Nanosecond}, nil,
		WithHeapSource(func() int64 { return -50 }))
	if g.Current() != 0 || !g.TryReserve(1000) {
		t.Fatalf("negative heap reading: current %d", g.Current())
	}
}

var keep [][]byte

func TestLiveHeapFromRuntimeMetrics(t *testing.T) {
	keep = make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 64<<10)
	}
	runtime.GC()
	defer func() { keep = nil }()
	if v := readLiveHeap(); v < 4<<20 {
		t.Fatalf("live heap %d bytes with 4 MiB reachable", v)
	}
	g := newGuard(t, Config{LimitBytes: 64 * gib, UseHeap: true}, nil)
	if s := g.Snapshot(); s.HeapBytes == nil || *s.HeapBytes < 4<<20 || g.Current() < 4<<20 {
		t.Fatalf("guard with use_heap: snapshot %+v current %d", s, g.Current())
	}
}
