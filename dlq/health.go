package dlq

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keel-go/keel/health"
)

// HealthCheckName is the name the runtime registers Health under.
const HealthCheckName = "dlq"

// HealthDropWindow is how long Health reports unhealthy after the queue
// dropped entries (no backend took them within max_attempts, or a failed
// sync left none to take them).
const HealthDropWindow = time.Minute

// healthFullRatio is the queue fill from which Health reports degraded.
const healthFullRatio = 0.8

// backendState is what the dispatcher last saw of each backend and of
// the last batch, read by Health from the probes' goroutines.
type backendState struct {
	mu sync.Mutex
	// last holds, per backend, the error of its last write or sync (nil
	// once one succeeds again).
	last []error
	// undelivered is the error of the last batch when some of its entries
	// were taken by no backend; nil once a batch is taken whole.
	undelivered error
	// droppedAt is when entries were last dropped.
	droppedAt time.Time
}

func (s *backendState) setBackend(i int, err error) {
	s.mu.Lock()
	s.last[i] = err
	s.mu.Unlock()
}

func (s *backendState) setBatch(err error) {
	s.mu.Lock()
	s.undelivered = err
	s.mu.Unlock()
}

// dropped records a drop at at; the batch it ends is no longer retried.
func (s *backendState) dropped(at time.Time) {
	s.mu.Lock()
	s.droppedAt, s.undelivered = at, nil
	s.mu.Unlock()
}

// Health reports the state of the queue for a health check (it is a
// health.CheckFunc; the runtime registers it as "dlq"):
//
//   - unhealthy while the last batch is taken by no backend (the queue
//     retries it up to max_attempts), for HealthDropWindow after entries
//     were dropped, while the queue is full (the engine's dead letters
//     wait or are refused), and once the DLQ is closed;
//   - degraded when a backend failed its last write or sync while another
//     took the entries, or when the queue is at least 80% full;
//   - healthy otherwise, and when the DLQ is disabled.
//
// A backend that takes entries again turns it back to healthy.
func (d *DLQ) Health(context.Context) (health.Status, string) {
	if !d.enabled {
		return health.Healthy, "disabled"
	}
	d.closeMu.Lock()
	closed := d.closed
	d.closeMu.Unlock()
	if closed {
		return health.Unhealthy, "closed: it takes no more entries"
	}
	st := &d.disp.state
	st.mu.Lock()
	undelivered, droppedAt := st.undelivered, st.droppedAt
	var failing []string
	for i, err := range st.last {
		if err != nil {
			failing = append(failing, fmt.Sprintf("%s: %v", d.names[i], err))
		}
	}
	st.mu.Unlock()
	pending, capacity := d.sink.Pending(), d.sink.Capacity()
	switch {
	case undelivered != nil:
		return health.Unhealthy, fmt.Sprintf("no backend took the last entries (%d pending; retried up to max_attempts, then dropped): %v",
			pending, undelivered)
	case !droppedAt.IsZero() && d.clock.Now().Sub(droppedAt) < HealthDropWindow:
		return health.Unhealthy, fmt.Sprintf("entries dropped at %s: no backend took them (%d dropped since the start)",
			droppedAt.Format(time.RFC3339), d.sink.Dropped())
	case capacity > 0 && pending >= capacity:
		return health.Unhealthy, fmt.Sprintf("queue full (%d/%d): the backends do not keep up", pending, capacity)
	}
	var notes []string
	if len(failing) > 0 {
		notes = append(notes, "backend failing, another took its entries: "+strings.Join(failing, "; "))
	}
	if capacity > 0 && float64(pending) >= healthFullRatio*float64(capacity) {
		notes = append(notes, fmt.Sprintf("queue %d/%d full", pending, capacity))
	}
	if len(notes) > 0 {
		return health.Degraded, strings.Join(notes, "; ")
	}
	return health.Healthy, ""
}

// errAny reports whether err is a failure the health state keeps
// (context cancellation at shutdown is not).
func errAny(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}
