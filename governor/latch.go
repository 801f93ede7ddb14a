package governor

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Latch is the hysteresis between pressure and the gate: it engages when
// the level reaches PauseAt and releases only when the level falls to
// ResumeAt, so a level wandering between the two keeps the state it had.
// Both boundaries are inclusive: with 0.80 and 0.65, a level of exactly
// 0.80 engages, exactly 0.65 releases, and 0.70 changes nothing.
//
// A Latch starts released. It is safe for concurrent use.
type Latch struct {
	pauseAt, resumeAt float64
	held              atomic.Bool
}

// NewLatch returns a released latch. Both thresholds must be finite and in
// (0, 1], and resumeAt below pauseAt; otherwise the error (a join of
// *ConfigError matching ErrInvalidConfig) names self_regulation.pause_at
// or self_regulation.resume_at.
func NewLatch(pauseAt, resumeAt float64) (*Latch, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	ok := true
	for _, f := range []struct {
		key string
		v   float64
	}{{"pause_at", pauseAt}, {"resume_at", resumeAt}} {
		if math.IsNaN(f.v) || f.v <= 0 || f.v > 1 {
			ok = false
			bad(f.key, "must be in (0, 1], got %s", fmtFloat(f.v))
		}
	}
	if ok && resumeAt >= pauseAt {
		bad("resume_at", "(%s) must be below %s.pause_at (%s)", fmtFloat(resumeAt), Section, fmtFloat(pauseAt))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Latch{pauseAt: pauseAt, resumeAt: resumeAt}, nil
}

// Update feeds the latch a level (clamped into [0, 1]; NaN counts as 0)
// and returns whether it is engaged afterwards: a released latch engages
// at level >= PauseAt, an engaged one releases at level <= ResumeAt, and
// in between nothing changes.
func (l *Latch) Update(level float64) bool {
	level = ClampRatio(level)
	for {
		held := l.held.Load()
		next := held
		switch {
		case held && level <= l.resumeAt:
			next = false
		case !held && level >= l.pauseAt:
			next = true
		}
		if next == held || l.held.CompareAndSwap(held, next) {
			return next
		}
	}
}

// Held reports whether the latch is engaged, without feeding it.
func (l *Latch) Held() bool { return l.held.Load() }

// PauseAt returns the engage threshold.
func (l *Latch) PauseAt() float64 { return l.pauseAt }

// ResumeAt returns the release threshold.
func (l *Latch) ResumeAt() float64 { return l.resumeAt }
