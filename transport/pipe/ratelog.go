package pipe

import "time"

// oversizeLogEvery is the least time between two oversize-line warnings;
// the ones in between are counted and reported with the next.
const oversizeLogEvery = 10 * time.Second

// logLimiter rate-limits a hot-path log line. It is not safe for
// concurrent use; the receiver calls it under its receive lock.
type logLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many calls were suppressed
// since the last logged one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
