package logging

import (
	"sync/atomic"
	"time"
)

// Counter is what the flood helpers need from a metric: a
// prometheus.Counter satisfies it.
type Counter interface{ Inc() }

// StateChange logs on change: Changed reports true only when the value
// differs from the previous one, so a condition that holds for an hour
// logs twice (when it starts and when it ends), not once per check.
// Every call is counted, logged or not. The zero value is ready; it is
// lock-free and safe for concurrent use.
//
//	var kafkaUp logging.StateChange[bool]
//	if kafkaUp.Changed(err == nil) {
//		logger.Warn("kafka connectivity changed", "up", err == nil, "checks", kafkaUp.Events())
//	}
type StateChange[T comparable] struct {
	// Counter, if set, is incremented on every call.
	Counter Counter

	cur     atomic.Pointer[T]
	events  atomic.Uint64
	changes atomic.Uint64
}

// Changed records v and reports whether it differs from the value seen
// before; the first call reports true.
func (s *StateChange[T]) Changed(v T) bool {
	s.events.Add(1)
	if s.Counter != nil {
		s.Counter.Inc()
	}
	for {
		p := s.cur.Load()
		if p != nil && *p == v {
			return false
		}
		nv := new(T)
		*nv = v
		if s.cur.CompareAndSwap(p, nv) {
			s.changes.Add(1)
			return true
		}
	}
}

// Value returns the current value and whether one was recorded.
func (s *StateChange[T]) Value() (T, bool) {
	if p := s.cur.Load(); p != nil {
		return *p, true
	}
	var zero T
	return zero, false
}

// Events returns the number of calls to Changed.
func (s *StateChange[T]) Events() uint64 { return s.events.Load() }

// Changes returns the number of calls that reported a change.
func (s *StateChange[T]) Changes() uint64 { return s.changes.Load() }

// Suppressed returns the number of calls that reported no change.
func (s *StateChange[T]) Suppressed() uint64 {
	ch := s.changes.Load()
	ev := s.events.Load()
	return ev - min(ch, ev)
}

// EveryN lets one event in N through: the first, the (N+1)th, and so on.
// N of 0 or 1 lets every event through. Every call is counted. The zero
// value lets everything through; it is lock-free and safe for concurrent
// use.
//
//	var dropped = logging.EveryN{N: 1000}
//	if ok, skipped := dropped.Allow(); ok {
//		logger.Warn("record dropped", "reason", reason, "suppressed", skipped)
//	}
type EveryN struct {
	// N is the sampling period.
	N uint64
	// Counter, if set, is incremented on every call.
	Counter Counter

	events     atomic.Uint64
	skipped    atomic.Uint64 // since the last event let through
	suppressed atomic.Uint64 // ever
}

// Allow reports whether this event should be logged and, if so, how many
// events were held back since the last one that was.
func (e *EveryN) Allow() (ok bool, suppressed uint64) {
	if e.Counter != nil {
		e.Counter.Inc()
	}
	c := e.events.Add(1)
	if e.N <= 1 || (c-1)%e.N == 0 {
		return true, e.skipped.Swap(0)
	}
	e.skipped.Add(1)
	e.suppressed.Add(1)
	return false, 0
}

// Events returns the number of calls to Allow.
func (e *EveryN) Events() uint64 { return e.events.Load() }

// Suppressed returns the number of calls that returned false.
func (e *EveryN) Suppressed() uint64 { return e.suppressed.Load() }

// Sampler lets at most one event per Interval through (log at most every
// D). It uses the monotonic clock, so a wall-clock jump neither floods
// nor silences it. Every call is counted. A zero Interval lets every
// event through; the helper is lock-free and safe for concurrent use, and
// exact under contention (one winner per interval).
//
//	var slow = logging.Every(10 * time.Second)
//	if ok, skipped := slow.Allow(); ok {
//		logger.Warn("sink is slow", "latency", d, "suppressed", skipped)
//	}
type Sampler struct {
	// Interval is the minimum time between two events let through.
	Interval time.Duration
	// Counter, if set, is incremented on every call.
	Counter Counter

	last       atomic.Int64 // monotonic nanoseconds since clockBase, +1; 0 = never
	events     atomic.Uint64
	skipped    atomic.Uint64
	suppressed atomic.Uint64
}

// Every returns a Sampler that lets one event per d through.
func Every(d time.Duration) *Sampler { return &Sampler{Interval: d} }

// clockBase anchors the monotonic readings of Sampler.
var clockBase = time.Now()

// Allow reports whether this event should be logged now and, if so, how
// many events were held back since the last one that was.
func (s *Sampler) Allow() (ok bool, suppressed uint64) { return s.AllowAt(time.Now()) }

// AllowAt is Allow at a given time (which should carry a monotonic
// reading, as time.Now's does); for callers that already hold the time,
// and for tests.
func (s *Sampler) AllowAt(now time.Time) (ok bool, suppressed uint64) {
	s.events.Add(1)
	if s.Counter != nil {
		s.Counter.Inc()
	}
	t := int64(now.Sub(clockBase)) + 1
	if t <= 0 {
		t = 1
	}
	for {
		last := s.last.Load()
		// t < last only when another caller read the clock later but won
		// the race: it is inside the same interval
		if last != 0 && t-last < int64(s.Interval) {
			s.skipped.Add(1)
			s.suppressed.Add(1)
			return false, 0
		}
		if s.last.CompareAndSwap(last, t) {
			return true, s.skipped.Swap(0)
		}
	}
}

// Events returns the number of calls to Allow and AllowAt.
func (s *Sampler) Events() uint64 { return s.events.Load() }

// Suppressed returns the number of calls that returned false.
func (s *Sampler) Suppressed() uint64 { return s.suppressed.Load() }
