package secrets

import (
	"math/rand/v2"
	"time"
)

// clock is the time source of the manager and the Vault token renewal. The
// real one wraps package time; tests use a fake that only moves when told.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is the part of *time.Timer the package uses.
type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

// Now returns time.Now().
func (realClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

// C returns the timer's channel.
func (t realTimer) C() <-chan time.Time { return t.t.C }

// Stop stops the timer.
func (t realTimer) Stop() bool { return t.t.Stop() }

// randFloat returns a pseudo-random number in [0, 1). Jitter needs no
// cryptographic quality.
func randFloat() float64 { return rand.Float64() }

// jittered returns interval moved by a uniformly drawn offset in
// [-jitter, +jitter], never below a tenth of interval. r draws from [0, 1).
// The bound holds for any r: values outside [0, 1) are clamped.
func jittered(interval, jitter time.Duration, r float64) time.Duration {
	if jitter <= 0 {
		return interval
	}
	if !(r >= 0) { // also catches NaN
		r = 0
	}
	if r >= 1 {
		r = 1
	}
	offset := time.Duration((2*r - 1) * float64(jitter))
	d := interval + offset
	if floor := interval / 10; d < floor {
		d = floor
	}
	return d
}
