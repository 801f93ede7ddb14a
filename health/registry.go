package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout is the time a check may take before it counts as
// unhealthy, unless Config.Timeout or WithTimeout says otherwise.
const DefaultTimeout = time.Second

// ErrInvalidCheck is returned by Register for an empty name or a nil
// function.
var ErrInvalidCheck = errors.New("health: invalid check")

// CheckFunc reports the state of one component and an optional message
// (shown in the detail report and logged on a change). It must be cheap
// and must honour ctx, which carries the check's timeout.
type CheckFunc func(ctx context.Context) (Status, string)

// Config configures a Registry. The zero value is valid.
type Config struct {
	// Timeout is the default time a check may take; a check still running
	// then counts as unhealthy. Zero or negative means DefaultTimeout.
	Timeout time.Duration
	// Logger receives a line each time a check changes status. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// CheckOption changes how one check runs.
type CheckOption func(*check)

// WithTimeout sets the timeout of one check; zero or negative keeps the
// registry's.
func WithTimeout(d time.Duration) CheckOption {
	return func(c *check) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// Registry holds named checks and the service's started and draining
// flags. It is safe for concurrent use.
type Registry struct {
	timeout time.Duration
	logger  *slog.Logger

	mu     sync.RWMutex
	checks []*check

	started  atomic.Bool
	draining atomic.Bool
}

// New returns an empty registry: not started, not draining, no checks.
func New(cfg Config) *Registry {
	r := &Registry{timeout: cfg.Timeout, logger: cfg.Logger}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	return r
}

func (r *Registry) log() *slog.Logger {
	if r.logger != nil {
		return r.logger
	}
	return slog.Default()
}

var defaultRegistry atomic.Pointer[Registry]

// Default returns the process-wide registry, created on first use with the
// zero Config.
func Default() *Registry {
	if r := defaultRegistry.Load(); r != nil {
		return r
	}
	defaultRegistry.CompareAndSwap(nil, New(Config{}))
	return defaultRegistry.Load()
}

// SetDefault makes r the process-wide registry. A nil r is ignored.
// Replace the default at start-up, before components register checks.
func SetDefault(r *Registry) {
	if r != nil {
		defaultRegistry.Store(r)
	}
}

// OrDefault returns r, or Default when r is nil. Components call it on
// their optional registry field.
func OrDefault(r *Registry) *Registry {
	if r != nil {
		return r
	}
	return Default()
}

// Register adds a check under name. A check already registered under the
// same name is replaced, keeping its place in the report order. It returns
// ErrInvalidCheck (wrapped) for an empty name or a nil fn.
func (r *Registry) Register(name string, fn CheckFunc, opts ...CheckOption) error {
	if name == "" {
		return fmt.Errorf("%w: empty name; give the check the name of the component it watches", ErrInvalidCheck)
	}
	if fn == nil {
		return fmt.Errorf("%w: check %q has a nil function", ErrInvalidCheck, name)
	}
	c := &check{name: name, fn: fn, timeout: r.timeout}
	c.last.Store(-1)
	for _, o := range opts {
		o(c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.IndexFunc(r.checks, func(x *check) bool { return x.name == name }); i >= 0 {
		r.checks[i] = c
		return nil
	}
	r.checks = append(r.checks, c)
	return nil
}

// Unregister removes the check called name and reports whether there was
// one. A run of it in progress finishes unobserved.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.checks)
	r.checks = slices.DeleteFunc(r.checks, func(x *check) bool { return x.name == name })
	return len(r.checks) != n
}

// Names returns the names of the registered checks in report order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, len(r.checks))
	for i, c := range r.checks {
		names[i] = c.name
	}
	return names
}

// MarkStarted records that start-up finished: the startup probe passes
// from now on, and readiness may.
func (r *Registry) MarkStarted() { r.started.Store(true) }

// Started reports whether MarkStarted was called.
func (r *Registry) Started() bool { return r.started.Load() }

// SetDraining records that the service is shutting down: readiness fails
// from now on, so the load balancer stops sending traffic. It cannot be
// undone.
func (r *Registry) SetDraining() { r.draining.Store(true) }

// Draining reports whether SetDraining was called.
func (r *Registry) Draining() bool { return r.draining.Load() }

// Live reports liveness. It is always true: liveness never depends on
// checks, so a failing dependency makes the service unready, never
// restarted.
func (r *Registry) Live() bool { return true }

// Ready reports readiness: started, not draining, and no check unhealthy.
// It runs the checks only when the first two hold.
func (r *Registry) Ready(ctx context.Context) bool {
	if !r.Started() || r.Draining() {
		return false
	}
	return r.run(ctx).status != Unhealthy
}

// snapshot copies the check list, so that checks run without the lock and
// may themselves register or unregister checks.
func (r *Registry) snapshot() []*check {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.checks)
}

type outcome struct {
	status  Status
	results []Result
}

// run starts (or joins) a run of every check, all at once, then collects
// the results in registration order.
func (r *Registry) run(ctx context.Context) outcome {
	checks := r.snapshot()
	runs := make([]*run, len(checks))
	for i, c := range checks {
		runs[i] = c.begin(ctx, r.log())
	}
	out := outcome{status: Healthy, results: make([]Result, len(checks))}
	for i, c := range checks {
		res := c.await(ctx, runs[i])
		c.observe(res, r.log())
		out.results[i] = res
		out.status = worse(out.status, res.Status)
	}
	return out
}
