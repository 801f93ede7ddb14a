package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults.
const (
	// DefaultShutdownTimeout bounds the hooks phase.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultKubernetesPreStopDelay is the pre-stop delay on Kubernetes
	// when neither Config nor PRESTOP_DELAY_SECS sets one.
	DefaultKubernetesPreStopDelay = 5 * time.Second
	// PreStopDelayEnv names the environment variable read for the
	// pre-stop delay.
	PreStopDelayEnv = "PRESTOP_DELAY_SECS"
)

var (
	// ErrForced is returned by Wait when a second signal forced the exit.
	// The caller should exit at once with a non-zero status.
	ErrForced = errors.New("lifecycle: forced exit: a second signal arrived during shutdown")
	// ErrShutdown is the cause (context.Cause) of the root context once
	// shutdown began; the error wrapping it names the reason.
	ErrShutdown = errors.New("lifecycle: shutting down")
	// ErrNotStarted is returned by Wait when Start was never called.
	ErrNotStarted = errors.New("lifecycle: Wait called before Start; call Start first")
	// ErrHooksRunning is returned by OnShutdown once the hooks phase began;
	// the hook would never run.
	ErrHooksRunning = errors.New("lifecycle: shutdown hooks already running")
	// ErrHookTimeout marks a hook still running (or that failed because
	// its context expired) at the shutdown deadline.
	ErrHookTimeout = errors.New("lifecycle: shutdown hook exceeded the shutdown deadline")
	// ErrHookSkipped marks a hook not started because the deadline passed.
	ErrHookSkipped = errors.New("lifecycle: shutdown hook skipped: the shutdown deadline passed before it could start")
	// ErrInvalidHook is returned by OnShutdown for an empty name or nil
	// function.
	ErrInvalidHook = errors.New("lifecycle: invalid shutdown hook")
)

// HookError is the failure of one shutdown hook.
type HookError struct {
	Name string // the name the hook was registered under
	Err  error  // what went wrong; may match ErrHookTimeout or ErrHookSkipped
}

// Error implements error.
func (e *HookError) Error() string {
	return fmt.Sprintf("lifecycle: shutdown hook %q: %v", e.Name, e.Err)
}

// Unwrap returns the cause.
func (e *HookError) Unwrap() error { return e.Err }

// Hook is a shutdown hook. ctx expires at the shutdown deadline.
type Hook func(ctx context.Context) error

// Reason says what started a shutdown. It is the reason label of
// keel_lifecycle_shutdowns_total.
type Reason string

// The reasons.
const (
	ReasonSignal    Reason = "signal"    // SIGTERM or SIGINT
	ReasonContext   Reason = "context"   // the context given to Start ended
	ReasonRequested Reason = "requested" // Shutdown was called
	ReasonForced    Reason = "forced"    // a second signal forced the exit
)

// Config configures a Manager. The zero value is valid and documented
// field by field.
type Config struct {
	// PreStopDelay is the wait between draining and cancelling the root
	// context. Positive: that delay. Negative: none. Zero: from
	// PRESTOP_DELAY_SECS, else 5 s on Kubernetes, else none.
	PreStopDelay time.Duration `koanf:"prestop_delay"`
	// ShutdownTimeout bounds the hooks phase. Zero means 30 s; negative
	// is an error.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// Signals delivers the shutdown signals. Nil means SIGTERM and SIGINT
	// from the operating system (signal.Notify from Start until the
	// shutdown ends). Tests inject a channel.
	Signals <-chan os.Signal `koanf:"-"`
	// After returns a channel that delivers once the pre-stop delay has
	// passed. Nil means time.After. Tests inject a channel they control,
	// to observe the service between draining and cancellation.
	After func(time.Duration) <-chan time.Time `koanf:"-"`
	// OnForce is called once when a second signal forces the exit, before
	// Wait returns ErrForced. Nil does nothing: the library never exits the
	// process itself.
	OnForce func() `koanf:"-"`
	// Platform is where PRESTOP_DELAY_SECS and the environment are read.
	// The zero value reads the real machine.
	Platform platform.Detector `koanf:"-"`
	// Metrics receives the lifecycle metrics. Nil means metrics.Default().
	Metrics *metrics.Registry `koanf:"-"`
	// Logger receives the shutdown log. Nil means slog.Default().
	Logger *slog.Logger `koanf:"-"`
}

type hook struct {
	name string
	fn   Hook
}

// Manager runs the shutdown sequence. Create it with New.
type Manager struct {
	health    *health.Registry
	log       *slog.Logger
	preStop   time.Duration
	timeout   time.Duration
	onForce   func()
	signals   <-chan os.Signal
	isK8s     bool
	after     func(time.Duration) <-chan time.Time
	shutdowns *metrics.CounterVec
	evictions prometheus.Counter
	hookFails prometheus.Counter
	draining  prometheus.Gauge

	ctx    context.Context
	cancel context.CancelCauseFunc

	trigger  chan string
	stopping chan struct{}
	done     chan struct{}

	mu           sync.Mutex
	hooks        []hook
	hooksRunning bool
	started      bool
	result       error
	hookCancel   context.CancelFunc
}

// New returns a Manager that has not started listening for signals. h is
// the registry marked draining on shutdown; nil means health.Default(). It
// fails when PRESTOP_DELAY_SECS is malformed or ShutdownTimeout negative.
func New(cfg Config, h *health.Registry) (*Manager, error) {
	preStop, err := resolvePreStop(cfg)
	if err != nil {
		return nil, err
	}
	timeout := cfg.ShutdownTimeout
	switch {
	case timeout < 0:
		return nil, fmt.Errorf("lifecycle: shutdown_timeout is %s; it must be positive (or 0 for the %s default)", timeout, DefaultShutdownTimeout)
	case timeout == 0:
		timeout = DefaultShutdownTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := metrics.OrDefault(cfg.Metrics)
	m := &Manager{
		health:   health.OrDefault(h),
		log:      log,
		preStop:  preStop,
		timeout:  timeout,
		onForce:  cfg.OnForce,
		signals:  cfg.Signals,
		isK8s:    cfg.Platform.Environment().IsKubernetes(),
		after:    cfg.After,
		trigger:  make(chan string, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		shutdowns: reg.CounterVec(metrics.Opts{Namespace: "keel", Subsystem: "lifecycle", Name: "shutdowns_total", Group: "lifecycle",
			Help: "Shutdowns by what started them (signal, context, requested), and exits forced by a second signal (forced)."}, "reason"),
		evictions: reg.Counter(metrics.Opts{Namespace: "keel", Subsystem: "lifecycle", Name: "evictions_total", Group: "lifecycle",
			Help: "SIGTERM signals received on Kubernetes: pod evictions, rollouts and scale-downs."}),
		hookFails: reg.Counter(metrics.Opts{Namespace: "keel", Subsystem: "lifecycle", Name: "hook_failures_total", Group: "lifecycle",
			Help: "Shutdown hooks that returned an error, panicked, exceeded the shutdown deadline or were skipped."}),
		draining: reg.Gauge(metrics.Opts{Namespace: "keel", Subsystem: "lifecycle", Name: "draining", Group: "lifecycle",
			Help: "1 once the service is shutting down and reports itself not ready."}),
	}
	if m.after == nil {
		m.after = time.After
	}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())
	return m, nil
}

func resolvePreStop(cfg Config) (time.Duration, error) {
	switch {
	case cfg.PreStopDelay > 0:
		return cfg.PreStopDelay, nil
	case cfg.PreStopDelay < 0:
		return 0, nil
	}
	getenv := cfg.Platform.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := strings.TrimSpace(getenv(PreStopDelayEnv)); v != "" {
		d, err := parseDelay(v)
		if err != nil {
			return 0, fmt.Errorf("lifecycle: %s=%q: %w; set whole seconds (\"5\") or a duration (\"2500ms\")", PreStopDelayEnv, v, err)
		}
		return d, nil
	}
	if cfg.Platform.Environment().IsKubernetes() {
		return DefaultKubernetesPreStopDelay, nil
	}
	return 0, nil
}

func parseDelay(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a number of seconds or a duration")
	}
	if d < 0 {
		return 0, errors.New("negative delay")
	}
	return d, nil
}

// Context returns the root context. It is cancelled after the pre-stop
// delay, or at once on a forced exit; context.Cause then wraps ErrShutdown
// (or is ErrForced).
func (m *Manager) Context() context.Context { return m.ctx }

// PreStopDelay returns the pre-stop delay in effect.
func (m *Manager) PreStopDelay() time.Duration { return m.preStop }

// Stopping returns a channel closed when the shutdown begins, right after
// the health registry was marked draining.
func (m *Manager) Stopping() <-chan struct{} { return m.stopping }

// Done returns a channel closed when Wait would return.
func (m *Manager) Done() <-chan struct{} { return m.done }

// OnShutdown registers a hook. Hooks run in reverse order of registration:
// register the admin server (which must answer probes until the end)
// first. It fails with ErrInvalidHook for an empty name or a nil fn, and
// with ErrHooksRunning once the hooks phase began.
func (m *Manager) OnShutdown(name string, fn Hook) error {
	if name == "" || fn == nil {
		return fmt.Errorf("%w: a hook needs a name and a function (name %q)", ErrInvalidHook, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hooksRunning {
		return fmt.Errorf("%w: hook %q registered too late", ErrHooksRunning, name)
	}
	m.hooks = append(m.hooks, hook{name, fn})
	return nil
}

// Start begins watching for signals, for the end of ctx and for Shutdown.
// Calling it again does nothing.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return
	}
	m.started = true
	sigs, stop := m.signals, func() {}
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		sigs, stop = ch, func() { signal.Stop(ch) }
	}
	go m.loop(ctx, sigs, stop)
}

// Shutdown starts the shutdown as if a signal had arrived; reason is
// logged and named in the root context's cause. Later calls do nothing.
// Before Start, the shutdown begins as soon as Start is called.
func (m *Manager) Shutdown(reason string) {
	select {
	case m.trigger <- reason:
	default:
	}
}

// Wait blocks until the shutdown finished and returns nil, the hook
// failures joined (each a *HookError), or ErrForced. It returns
// ErrNotStarted at once if Start was never called.
func (m *Manager) Wait() error {
	m.mu.Lock()
	started := m.started
	m.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.result
}

// errForcedExit tells loop that a forced exit already finished the run.
var errForcedExit = errors.New("forced")

func (m *Manager) loop(parent context.Context, sigs <-chan os.Signal, stop func()) {
	defer stop()
	var (
		reason   Reason
		detail   string
		signaled bool
	)
	select {
	case sig := <-sigs:
		reason, detail, signaled = ReasonSignal, sig.String(), true
		m.countEviction(sig)
	case <-parent.Done():
		reason, detail = ReasonContext, context.Cause(parent).Error()
	case detail = <-m.trigger:
		reason = ReasonRequested
	}
	start := time.Now()
	m.health.SetDraining()
	m.draining.Set(1)
	m.shutdowns.With(string(reason)).Inc()
	close(m.stopping)
	m.log.Info("shutdown started: readiness now fails",
		"reason", string(reason), "detail", detail, "prestop_delay", m.preStop, "shutdown_timeout", m.timeout)

	// watch reports whether a signal arrived that forces the exit: any
	// signal after a first one.
	watch := func(sig os.Signal) bool {
		m.countEviction(sig)
		if signaled {
			return true
		}
		signaled = true
		m.log.Warn("signal received during shutdown; a second one forces the exit", "signal", sig.String())
		return false
	}

	if m.preStop > 0 {
		timer := m.after(m.preStop)
	wait:
		for {
			select {
			case <-timer:
				break wait
			case sig := <-sigs:
				if watch(sig) {
					m.force(sig)
					return
				}
			}
		}
	}
	m.cancel(fmt.Errorf("%w: %s (%s)", ErrShutdown, reason, detail))

	err := m.runHooks(sigs, watch)
	if errors.Is(err, errForcedExit) {
		return
	}
	m.log.Info("shutdown complete", "duration", time.Since(start), "failed_hooks", hookErrorCount(err))
	m.finish(err)
}

func hookErrorCount(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	if err != nil {
		return 1
	}
	return 0
}

func (m *Manager) countEviction(sig os.Signal) {
	if m.isK8s && sig == syscall.SIGTERM {
		m.evictions.Inc()
	}
}

func (m *Manager) finish(err error) {
	m.mu.Lock()
	m.result = err
	m.mu.Unlock()
	close(m.done)
}

func (m *Manager) force(sig os.Signal) {
	m.log.Error("second signal: forcing exit without finishing shutdown", "signal", sig.String())
	m.shutdowns.With(string(ReasonForced)).Inc()
	m.cancel(ErrForced)
	m.mu.Lock()
	if m.hookCancel != nil {
		m.hookCancel()
	}
	m.mu.Unlock()
	if m.onForce != nil {
		m.onForce()
	}
	m.finish(ErrForced)
}

// runHooks runs the hooks in reverse order under the deadline. It returns
// errForcedExit when a second signal forced the exit (already finished).
func (m *Manager) runHooks(sigs <-chan os.Signal, watch func(os.Signal) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	m.mu.Lock()
	m.hooksRunning = true
	m.hookCancel = cancel
	hooks := slices.Clone(m.hooks)
	m.mu.Unlock()
	slices.Reverse(hooks)

	var errs []error
	fail := func(name string, err error) {
		m.hookFails.Inc()
		he := &HookError{Name: name, Err: err}
		errs = append(errs, he)
		m.log.Error("shutdown hook failed", "hook", name, "error", err)
	}
	for i, h := range hooks {
		if ctx.Err() != nil {
			for _, rest := range hooks[i:] {
				fail(rest.name, ErrHookSkipped)
			}
			break
		}
		result := make(chan error, 1)
		start := time.Now()
		go func() {
			defer func() {
				if p := recover(); p != nil {
					result <- fmt.Errorf("panic: %v", p)
				}
			}()
			result <- h.fn(ctx)
		}()
	wait:
		for {
			select {
			case err := <-result:
				if err != nil {
					if ctx.Err() != nil {
						err = fmt.Errorf("%w: %w", ErrHookTimeout, err)
					}
					fail(h.name, err)
				} else {
					m.log.Debug("shutdown hook done", "hook", h.name, "duration", time.Since(start))
				}
				break wait
			case <-ctx.Done():
				fail(h.name, fmt.Errorf("%w: still running after %s", ErrHookTimeout, m.timeout))
				break wait
			case sig := <-sigs:
				if watch(sig) {
					m.force(sig)
					return errForcedExit
				}
			}
		}
	}
	return errors.Join(errs...)
}
