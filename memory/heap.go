package memory

import (
	"sync/atomic"
	"time"
)

// liveHeapMetric is the runtime/metrics name of the live heap: the bytes
// of the objects the previous GC cycle marked reachable. Unlike
// /memory/classes/heap/objects:bytes it holds no garbage awaiting
// collection, so it does not rise and fall with every GC cycle and does
// not make the guard refuse work for memory the GC is about to free.
const liveHeapMetric = "/gc/heap/live:bytes"

// readLiveHeap reads the live heap from runtime/metrics.
func readLiveHeap() int64 { return readRuntimeMetric(liveHeapMetric) }

// heapSampler reads a heap source at most once per interval, without a
// lock: the reader that wins a compare-and-swap on the sample time takes
// the new sample, everyone else returns the last one.
type heapSampler struct {
	read     func() int64
	interval int64     // nanoseconds
	epoch    time.Time // monotonic base of at
	at       atomic.Int64
	val      atomic.Int64
}

func newHeapSampler(read func() int64, interval time.Duration) *heapSampler {
	s := &heapSampler{read: read, interval: int64(interval), epoch: time.Now()}
	s.val.Store(clampNonNeg(read()))
	return s
}

// bytes returns the last sample, taking a new one when the interval has
// passed.
func (s *heapSampler) bytes() int64 {
	now := int64(time.Since(s.epoch))
	last := s.at.Load()
	if now-last >= s.interval && s.at.CompareAndSwap(last, now) {
		s.val.Store(clampNonNeg(s.read()))
	}
	return s.val.Load()
}

func clampNonNeg(v int64) int64 { return max(v, 0) }
