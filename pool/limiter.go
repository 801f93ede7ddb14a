package pool

import (
	"context"
	"sync"
	"sync/atomic"
)

// limiter is a counting semaphore whose size (the target) can move while
// leases are held. Lowering the target never revokes a lease: holders give
// theirs back at their next checkpoint (releaseIfOver), so the number of
// leases converges on the new target as running work reaches a boundary.
//
// target and leased change only under mu; they are atomics so that the hot
// checks (overTarget, canGrow) read them without locking.
type limiter struct {
	mu      sync.Mutex
	target  atomic.Int64
	leased  atomic.Int64
	waiters []*waiter // FIFO; guarded by mu
	nwait   atomic.Int64

	onLeased func(n int64) // called under mu after every change of leased
}

type waiter struct {
	ch      chan struct{}
	granted bool // guarded by limiter.mu
}

func newLimiter(target int, onLeased func(int64)) *limiter {
	l := &limiter{onLeased: onLeased}
	l.target.Store(int64(target))
	return l
}

// setLeased must be called with mu held.
func (l *limiter) setLeased(n int64) {
	l.leased.Store(n)
	if l.onLeased != nil {
		l.onLeased(n)
	}
}

// tryAcquire takes a lease if one is free and nobody is queued for one.
func (l *limiter) tryAcquire() bool {
	if !l.canGrow() {
		return false
	}
	l.mu.Lock()
	ok := len(l.waiters) == 0 && l.leased.Load() < l.target.Load()
	if ok {
		l.setLeased(l.leased.Load() + 1)
	}
	l.mu.Unlock()
	return ok
}

// canGrow is a lock-free hint that tryAcquire may succeed.
func (l *limiter) canGrow() bool {
	return l.nwait.Load() == 0 && l.leased.Load() < l.target.Load()
}

// overTarget is a lock-free hint that releaseIfOver may release.
func (l *limiter) overTarget() bool {
	return l.leased.Load() > l.target.Load()
}

// acquire takes a lease, waiting in FIFO order until one is free or ctx is
// done. It returns ctx.Err() without a lease when ctx is done, even when a
// lease is free or was granted at the same moment.
func (l *limiter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // a cancelled caller never starts work, even with a slot free
	}
	l.mu.Lock()
	if len(l.waiters) == 0 && l.leased.Load() < l.target.Load() {
		l.setLeased(l.leased.Load() + 1)
		l.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		l.mu.Unlock()
		return err
	}
	w := &waiter{ch: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.nwait.Store(int64(len(l.waiters)))
	l.mu.Unlock()

	select {
	case <-w.ch:
		if ctx.Err() == nil {
			return nil
		}
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.granted {
		// The grant raced the cancellation: hand the lease on.
		l.setLeased(l.leased.Load() - 1)
		l.grantLocked()
		l.mu.Unlock()
		return ctx.Err()
	}
	for i, x := range l.waiters {
		if x == w {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			break
		}
	}
	l.nwait.Store(int64(len(l.waiters)))
	// Removing the head may let the next waiter in.
	l.grantLocked()
	l.mu.Unlock()
	return ctx.Err()
}

// release gives a lease back and wakes the next waiter if the target allows.
func (l *limiter) release() {
	l.mu.Lock()
	l.setLeased(l.leased.Load() - 1)
	l.grantLocked()
	l.mu.Unlock()
}

// releaseIfOver gives the caller's lease back only if more leases are held
// than the target allows. Exactly leased-target callers succeed.
func (l *limiter) releaseIfOver() bool {
	if !l.overTarget() {
		return false
	}
	l.mu.Lock()
	over := l.leased.Load() > l.target.Load()
	if over {
		l.setLeased(l.leased.Load() - 1)
	}
	l.mu.Unlock()
	return over
}

// setTarget moves the target and wakes as many waiters as it now allows.
func (l *limiter) setTarget(n int) {
	l.mu.Lock()
	l.target.Store(int64(n))
	l.grantLocked()
	l.mu.Unlock()
}

// grantLocked hands free leases to waiters in FIFO order. mu must be held.
func (l *limiter) grantLocked() {
	n := 0
	for n < len(l.waiters) && l.leased.Load() < l.target.Load() {
		w := l.waiters[n]
		w.granted = true
		l.setLeased(l.leased.Load() + 1)
		close(w.ch)
		n++
	}
	if n > 0 {
		clear(l.waiters[:n])
		l.waiters = l.waiters[n:]
		l.nwait.Store(int64(len(l.waiters)))
	}
}

func (l *limiter) waiting() int { return int(l.nwait.Load()) }
