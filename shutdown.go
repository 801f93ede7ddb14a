package keel

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
)

// Names of the shutdown phases: the lifecycle hooks the runtime registers,
// in the order they run. Each appears in the error Run returns when it
// failed or was still running at the deadline.
const (
	PhaseApp        = "app"            // wait for App.Run to return
	PhaseBackground = "background"     // stop Runtime.Go tasks, the scalers, the config watch
	PhaseHooks      = "shutdown_hooks" // Runtime.OnShutdown hooks (DLQ, spool flush)
	PhaseSenders    = "senders"        // flush and close the senders
	PhaseReceivers  = "receivers"      // close the receivers
	PhasePool       = "worker_pool"    // close the worker pool
	PhaseFinalHooks = "final_hooks"    // Runtime.OnShutdownLast hooks, then the secrets close and the telemetry flush
	PhaseAdmin      = "admin"          // stop the admin server, last
)

// tracker records what is running, for the log and the error of an
// incomplete or forced shutdown.
type tracker struct {
	mu      sync.Mutex
	seq     uint64
	running map[uint64]string
}

// start records name as running and returns the function that records
// its end.
func (t *tracker) start(name string) func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running == nil {
		t.running = make(map[uint64]string)
	}
	t.seq++
	id := t.seq
	t.running[id] = name
	return func() {
		t.mu.Lock()
		delete(t.running, id)
		t.mu.Unlock()
	}
}

// names returns what is running, sorted.
func (t *tracker) names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.running))
	for _, n := range t.running {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// run starts the runtime built by build, runs the app and shuts down.
func (rt *Runtime) run(ctx context.Context) (err error) {
	defer rt.restoreDefaults()
	rt.adminStopped = make(chan struct{})
	if err := rt.admin.Start(ctx); err != nil {
		rt.release()
		return &SectionError{Key: SectionAdmin, Err: fmt.Errorf("start the admin server: %w", err)}
	}
	if err := rt.registerPhases(); err != nil {
		rt.stopAdminNow()
		rt.release()
		return err
	}
	rt.Go("worker_pool_scaler", rt.scaler.Run)
	rt.Go("scaling", rt.scaling.Run)
	if rt.gov != nil {
		rt.Go(TaskSelfRegulation, rt.gov.Run)
	}
	rt.Go(TaskSecretsRefresh, rt.secrets.Run)
	watch := config.WatchOptions{}
	if rt.opts.watch != nil {
		watch = *rt.opts.watch
	}
	rt.Go("config_watch", func(ctx context.Context) error { return rt.cfg.Watch(ctx, watch) })

	// The app's context keeps ctx's values and is cancelled by the
	// shutdown (after readiness failed and the pre-stop delay), not by ctx
	// itself: ctx ending starts the shutdown.
	appCtx, cancelApp := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelApp(nil)
	stopWatching := context.AfterFunc(rt.life.Context(), func() { cancelApp(context.Cause(rt.life.Context())) })
	defer stopWatching()

	// appDone exists before the lifecycle starts: its app phase waits on it.
	rt.appDone = make(chan struct{})
	rt.life.Start(ctx)
	doneApp := rt.running.start("app " + rt.app.Name)
	go func() {
		defer close(rt.appDone)
		defer doneApp()
		rt.appErr = rt.callApp(appCtx)
		reason := "the service returned"
		if rt.appErr != nil {
			reason = "the service failed: " + logging.MaskString(rt.appErr.Error())
		}
		rt.life.Shutdown(reason)
	}()
	if d, st := rt.drainTimeout(), rt.shutdownTimeout(); d >= st {
		rt.log.Warn("batch_processing.drain_timeout is not below lifecycle.shutdown_timeout: a slow drain is cut by the shutdown deadline "+
			"and reported as still running; lower drain_timeout or raise shutdown_timeout",
			"drain_timeout", d, "shutdown_timeout", st)
	}
	rt.log.Info("service running", "admin_addr", rt.admin.Addr(), "config_files", rt.cfg.Files(),
		"sections_found", rt.sectionsFound(true), "sections_defaulted", rt.sectionsFound(false),
		"transport_types", rt.TransportTypes(), "prestop_delay", rt.life.PreStopDelay(),
		"self_regulation", rt.gov.Enabled(), "telemetry_traces", rt.tel.TracesEnabled())

	werr := rt.life.Wait()
	still := rt.stillRunning()
	// Whatever the shutdown left undone: stop the admin server (it is the
	// last hook, skipped after a deadline or a forced exit) and the
	// background context.
	rt.stopAdminNow()
	rt.bgCancel()
	rt.closeDLQNow()
	rt.stopPillarsNow()
	for _, stop := range rt.unsub {
		stop()
	}
	rt.unsub = nil

	var appErr error
	select {
	case <-rt.appDone:
		appErr = rt.appErr
	default:
	}
	var errs []error
	if appErr != nil {
		errs = append(errs, fmt.Errorf("keel: service %q failed: %w", rt.app.Name, appErr))
	}
	incomplete := len(still) > 0 || errors.Is(werr, lifecycle.ErrHookTimeout) || errors.Is(werr, lifecycle.ErrHookSkipped)
	switch {
	case errors.Is(werr, lifecycle.ErrForced):
		rt.log.Error("forced exit: a second signal arrived during shutdown", "still_running", still)
		errs = append(errs, fmt.Errorf("keel: service %q: %w; still running: %s", rt.app.Name, werr, list(still)))
	case werr != nil && incomplete:
		rt.log.Error("shutdown did not complete within lifecycle.shutdown_timeout", "still_running", still, "error", werr)
		errs = append(errs, fmt.Errorf("keel: service %q: %w within lifecycle.shutdown_timeout; still running: %s: %w",
			rt.app.Name, ErrShutdownIncomplete, list(still), werr))
	case werr != nil:
		errs = append(errs, fmt.Errorf("keel: service %q: shutdown finished with errors: %w", rt.app.Name, werr))
	}
	err = errors.Join(errs...)
	if err == nil {
		rt.log.Info("service stopped cleanly")
	}
	return err
}

// stillRunning lists what was asked to stop and has not: the app, the
// shutdown step in progress, and the background tasks once the
// background phase asked them to stop.
func (rt *Runtime) stillRunning() []string {
	rt.mu.Lock()
	bgAsked := rt.bgStopped
	rt.mu.Unlock()
	var out []string
	for _, n := range rt.running.names() {
		if strings.HasPrefix(n, "task ") && !bgAsked {
			continue
		}
		out = append(out, n)
	}
	return out
}

// drainTimeout is batch_processing.drain_timeout with its default.
func (rt *Runtime) drainTimeout() time.Duration {
	if d := rt.sections.engine.DrainTimeout; d != 0 {
		return d
	}
	return engine.DefaultDrainTimeout
}

// shutdownTimeout is lifecycle.shutdown_timeout with its default.
func (rt *Runtime) shutdownTimeout() time.Duration {
	if d := rt.sections.lifecycle.ShutdownTimeout; d != 0 {
		return d
	}
	return lifecycle.DefaultShutdownTimeout
}

func list(names []string) string {
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// callApp runs App.Run, turning a panic into an error and a return of the
// shutdown's own cancellation into a clean stop.
func (rt *Runtime) callApp(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			rt.log.Error("service panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	err = rt.app.Run(ctx, rt)
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, lifecycle.ErrShutdown)) {
		return nil
	}
	return err
}

// sectionsFound lists the runtime sections the configuration sets (found)
// or leaves to their defaults.
func (rt *Runtime) sectionsFound(found bool) []string {
	var out []string
	for _, s := range RuntimeSections() {
		if rt.cfg.Contains(s) == found {
			out = append(out, s)
		}
	}
	return out
}

func (rt *Runtime) restoreDefaults() {
	rt.restore()
	rt.restore = func() {}
}

// stopPillarsNow closes the secrets manager and stops the telemetry
// exporters at once when the final hooks phase, which does it in order,
// never began (a deadline or a second signal cut the shutdown short), so
// that nothing they started outlives Run. When that phase began, its
// hooks finish on their own.
func (rt *Runtime) stopPillarsNow() {
	rt.mu.Lock()
	began := rt.lastRan
	rt.mu.Unlock()
	if began {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = rt.secrets.Close(ctx)
	_ = rt.tel.Shutdown(ctx)
}

// stopAdminNow stops the admin server at once, if the admin phase did not.
func (rt *Runtime) stopAdminNow() {
	select {
	case <-rt.adminStopped:
		return
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = rt.admin.Shutdown(ctx)
}

// registerPhases registers the shutdown phases with the lifecycle
// manager. Hooks run in reverse order of registration, so the admin
// server, registered first, stops last.
func (rt *Runtime) registerPhases() error {
	phases := []struct {
		name string
		fn   lifecycle.Hook
	}{
		{PhaseAdmin, func(ctx context.Context) error {
			defer close(rt.adminStopped)
			return rt.admin.Shutdown(ctx)
		}},
		{PhaseFinalHooks, func(ctx context.Context) error {
			rt.mu.Lock()
			rt.lastRan = true
			hooks := slices.Clone(rt.lastHooks)
			rt.mu.Unlock()
			return rt.runHooks(ctx, "final shutdown hook", hooks)
		}},
		{PhasePool, func(ctx context.Context) error {
			return rt.runSteps(ctx, []step{{"worker pool " + rt.pool.Name(), rt.pool.Shutdown}})
		}},
		{PhaseReceivers, func(ctx context.Context) error { return rt.closeAll(ctx, false) }},
		{PhaseSenders, func(ctx context.Context) error { return rt.closeAll(ctx, true) }},
		{PhaseHooks, func(ctx context.Context) error {
			rt.mu.Lock()
			rt.hooksRan = true
			hooks := slices.Clone(rt.hooks)
			rt.mu.Unlock()
			return rt.runHooks(ctx, "shutdown hook", hooks)
		}},
		{PhaseBackground, rt.stopBackground},
		{PhaseApp, func(ctx context.Context) error {
			select {
			case <-rt.appDone:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("the service's Run (app %q) is still running; it must return once its context is cancelled: %w",
					rt.app.Name, ctx.Err())
			}
		}},
	}
	for _, p := range phases {
		if err := rt.life.OnShutdown(p.name, p.fn); err != nil {
			return fmt.Errorf("keel: register the %s shutdown phase: %w", p.name, err)
		}
	}
	return nil
}

// stopBackground cancels the background context and waits for the
// Runtime.Go tasks.
func (rt *Runtime) stopBackground(ctx context.Context) error {
	rt.mu.Lock()
	rt.bgStopped = true
	rt.mu.Unlock()
	rt.bgCancel()
	done := make(chan struct{})
	go func() {
		rt.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background tasks still running (%s): %w", list(rt.running.names()), ctx.Err())
	}
}

// closeAll closes the senders or the receivers, newest first, each once.
func (rt *Runtime) closeAll(ctx context.Context, senders bool) error {
	rt.mu.Lock()
	rt.closing = true
	items := rt.receivers
	if senders {
		items = rt.senders
	}
	items = slices.Clone(items)
	rt.mu.Unlock()
	slices.Reverse(items)
	var steps []step
	for _, c := range items {
		if c.id != nil && rt.closedAlready(c.id) {
			if c.forget != nil {
				c.forget()
			}
			continue
		}
		closeFn := c.close
		if c.forget != nil {
			closeFn = func(ctx context.Context) error {
				c.forget()
				return c.close(ctx)
			}
		}
		steps = append(steps, step{c.name, closeFn})
	}
	return rt.runSteps(ctx, steps)
}

// closedAlready reports whether the transport id was closed as a sender
// (a queue that is both ends) and records it otherwise.
func (rt *Runtime) closedAlready(id any) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed == nil {
		rt.closed = make(map[any]bool)
	}
	if rt.closed[id] {
		return true
	}
	rt.closed[id] = true
	return false
}

// runHooks runs hooks newest first.
func (rt *Runtime) runHooks(ctx context.Context, kind string, hooks []namedHook) error {
	steps := make([]step, 0, len(hooks))
	for i := len(hooks) - 1; i >= 0; i-- {
		steps = append(steps, step{fmt.Sprintf("%s %q", kind, hooks[i].name), hooks[i].fn})
	}
	return rt.runSteps(ctx, steps)
}

// step is one named action of a shutdown phase.
type step struct {
	name string
	fn   func(context.Context) error
}

// runSteps runs steps one after another under ctx. A step still running
// when ctx ends is left running (and named in the error and in the
// tracker); the steps after it are reported as not started.
func (rt *Runtime) runSteps(ctx context.Context, steps []step) error {
	var errs []error
	for i, s := range steps {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s not started: the shutdown deadline passed", names(steps[i:])))
			break
		}
		done := rt.running.start(s.name)
		result := make(chan error, 1)
		start := time.Now()
		go func() {
			defer func() {
				if p := recover(); p != nil {
					result <- fmt.Errorf("panic: %v", p)
				}
			}()
			result <- s.fn(ctx)
		}()
		select {
		case err := <-result:
			done()
			if err != nil {
				rt.log.Error("shutdown step failed", "step", s.name, "error", err)
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			} else {
				rt.log.Debug("shutdown step done", "step", s.name, "duration", time.Since(start))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s still running at the shutdown deadline: %w", s.name, ctx.Err()))
			if rest := steps[i+1:]; len(rest) > 0 {
				errs = append(errs, fmt.Errorf("%s not started: the shutdown deadline passed", names(rest)))
			}
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

func names(steps []step) string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.name
	}
	return strings.Join(out, ", ")
}
