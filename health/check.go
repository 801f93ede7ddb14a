package health

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// check is one registered check. At most one run of it is in flight:
// callers that arrive while it runs share its result.
type check struct {
	name    string
	fn      CheckFunc
	timeout time.Duration

	mu       sync.Mutex
	inflight *run

	last      atomic.Int64 // last observed Status, -1 before the first
	panicking atomic.Bool  // the last run panicked: log the next panic only after a clean run
}

// run is one execution of a check.
type run struct {
	done     chan struct{}
	deadline time.Time
	joined   atomic.Int32 // callers that joined the run after its start

	// Written before done is closed.
	status   Status
	message  string
	duration time.Duration
	timedOut bool
}

// begin returns the run in flight, or starts one. The run's context is
// detached from the caller's cancellation (other callers may share it) and
// bounded by the check's timeout.
func (c *check) begin(ctx context.Context, log *slog.Logger) *run {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		c.inflight.joined.Add(1)
		return c.inflight
	}
	rn := &run{done: make(chan struct{}), deadline: time.Now().Add(c.timeout)}
	c.inflight = rn
	go c.exec(context.WithoutCancel(ctx), rn, log)
	return rn
}

func (c *check) exec(parent context.Context, rn *run, log *slog.Logger) {
	ctx, cancel := context.WithDeadline(parent, rn.deadline)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			rn.status, rn.message = Unhealthy, fmt.Sprintf("panic: %v", p)
			if !c.panicking.Swap(true) {
				log.Error("health check panicked", "check", c.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			}
		} else {
			c.panicking.Store(false)
		}
		cancel()
		rn.duration = time.Since(start)
		c.mu.Lock()
		if c.inflight == rn {
			c.inflight = nil
		}
		c.mu.Unlock()
		close(rn.done)
	}()
	st, msg := c.fn(ctx)
	switch {
	case ctx.Err() != nil:
		// Finished, but only after its deadline: a late answer is a
		// timeout, whatever it says.
		st, msg, rn.timedOut = Unhealthy, c.timeoutMessage(), true
	case !st.Valid():
		msg = fmt.Sprintf("check returned invalid status %d: %s", int(st), msg)
		st = Unhealthy
	}
	rn.status, rn.message = st, msg
}

func (c *check) timeoutMessage() string {
	return fmt.Sprintf("check did not finish within its %s timeout", c.timeout)
}

func (rn *run) result(name string) Result {
	return Result{Name: name, Status: rn.status, Message: rn.message, Duration: rn.duration, TimedOut: rn.timedOut}
}

// await waits for rn until it finishes, its deadline passes, or ctx ends.
func (c *check) await(ctx context.Context, rn *run) Result {
	select {
	case <-rn.done:
		return rn.result(c.name)
	default:
	}
	timer := time.NewTimer(time.Until(rn.deadline))
	defer timer.Stop()
	select {
	case <-rn.done:
		return rn.result(c.name)
	case <-timer.C:
		return Result{Name: c.name, Status: Unhealthy, TimedOut: true, Message: c.timeoutMessage(), Duration: c.timeout}
	case <-ctx.Done():
		return Result{Name: c.name, Status: Unhealthy,
			Message: fmt.Sprintf("probe ended before the check finished: %v", context.Cause(ctx))}
	}
}

// observe logs a change of status, once per transition.
func (c *check) observe(res Result, log *slog.Logger) {
	prev := c.last.Swap(int64(res.Status))
	if prev == int64(res.Status) || (prev == -1 && res.Status == Healthy) {
		return
	}
	from := "none"
	if prev >= 0 {
		from = Status(prev).String()
	}
	level := slog.LevelWarn
	if res.Status == Healthy {
		level = slog.LevelInfo
	}
	log.Log(context.Background(), level, "health check changed status",
		"check", c.name, "from", from, "to", res.Status.String(), "message", res.Message)
}
