package background

import "time"

// WithTestHooks returns p with a fixed random source for the jitter and a
// timer the test controls.
func WithTestHooks(p Periodic, rnd func() float64, after func(d time.Duration) (<-chan time.Time, func() bool)) Periodic {
	p.rnd = rnd
	p.after = after
	return p
}
