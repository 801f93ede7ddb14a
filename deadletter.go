package keel

import (
	"context"
	"fmt"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

// SectionDLQ is the dead-letter queue's section (package dlq), disabled
// by default.
const SectionDLQ = dlq.Section

// HookDLQ is the shutdown hook that flushes the dead-letter queue (every
// entry written and durable). It runs after every other Runtime.OnShutdown
// hook, so that what they flush into the queue is written too, and before
// the transports close; HookDLQClose closes the queue after them.
const HookDLQ = "dlq"

// HookDLQClose is the final shutdown hook that flushes and closes the
// dead-letter queue after every transport closed.
const HookDLQClose = "dlq_close"

// DLQ returns the dead-letter queue the runtime built from the dlq
// section: the engine's dead letters are routed into it, and the app may
// Push its own entries. Nil when dlq.enabled is false (the default), when
// the app set its own route with WithDeadLetterRouter, and in
// config-check and metrics-manifest, which start nothing.
func (rt *Runtime) DLQ() *dlq.DLQ { return rt.dlq }

// buildDLQ builds the dead-letter queue when dlq.enabled is true and the
// app brings no route of its own, registers its health check ("dlq") and
// its flush as the first shutdown hook (hooks run newest first, so it
// runs last of them). In
// modeCheck nothing is built: the section was validated when decoded, and
// the engine is validated with a route that refuses (see buildEngine).
func (rt *Runtime) buildDLQ(ctx context.Context) error {
	dc := rt.sections.dlq
	if !dc.Enabled || rt.opts.router != nil || rt.mode != modeRun {
		return nil
	}
	d, err := dlq.New(ctx, dc, dlq.Options{Service: rt.app.Name, Metrics: rt.reg, Logger: rt.log})
	if err != nil {
		return &SectionError{Key: SectionDLQ, Err: err}
	}
	rt.dlq = d
	// Readiness reflects the queue: unhealthy while no backend takes its
	// entries, after a drop and while it is full (see dlq.DLQ.Health).
	if err := rt.health.Register(dlq.HealthCheckName, d.Health); err != nil {
		return fmt.Errorf("keel: register the %s health check: %w", dlq.HealthCheckName, err)
	}
	rt.mu.Lock()
	// Flush after the app's hooks (what they route is written) and close
	// only after the transports closed: a tiered sink that drains at close
	// may still dead-letter a record.
	rt.hooks = append([]namedHook{{HookDLQ, rt.flushOnlyDLQ}}, rt.hooks...)
	rt.lastHooks = append([]namedHook{{HookDLQClose, rt.flushDLQ}}, rt.lastHooks...)
	rt.mu.Unlock()
	return nil
}

// flushOnlyDLQ writes out and syncs what the dead-letter queue holds,
// leaving it open for the senders that close after it.
func (rt *Runtime) flushOnlyDLQ(ctx context.Context) error {
	if err := rt.dlq.Flush(ctx); err != nil {
		rt.log.Error("dead-letter queue not fully written at shutdown", "pending", rt.dlq.Pending(),
			"dropped", rt.dlq.Dropped(), "flush_error", err)
		return fmt.Errorf("flush the dead-letter queue: %w", err)
	}
	return nil
}

// flushDLQ writes out the dead-letter queue and closes it. Close writes
// and syncs what is still queued; the Flush before it reports a lost or
// unsynced entry of an earlier write as well.
func (rt *Runtime) flushDLQ(ctx context.Context) error {
	ferr := rt.dlq.Flush(ctx)
	cerr := rt.dlq.Close(ctx)
	if ferr != nil || cerr != nil {
		rt.log.Error("dead-letter queue not fully written at shutdown", "pending", rt.dlq.Pending(),
			"dropped", rt.dlq.Dropped(), "flush_error", ferr, "close_error", cerr)
	}
	switch {
	case ferr != nil && cerr != nil:
		return fmt.Errorf("flush the dead-letter queue: %w; close it: %w", ferr, cerr)
	case ferr != nil:
		return fmt.Errorf("flush the dead-letter queue: %w", ferr)
	case cerr != nil:
		return fmt.Errorf("close the dead-letter queue: %w", cerr)
	}
	return nil
}

// wireDLQRoute sets the engine's dead-letter route into the DLQ when the
// DLQ is enabled: the built queue's Router when running, a route that
// refuses in modeCheck (the engine never runs there). Under an explicit
// reject or discard policy the engine keeps that policy and the DLQ only
// takes what the app pushes itself.
func (rt *Runtime) wireDLQRoute(ec *engine.Config) {
	if !rt.sections.dlq.Enabled || rt.opts.router != nil {
		return
	}
	switch ec.DeadLetterPolicy {
	case engine.DeadLetterDefault:
		ec.DeadLetterPolicy = engine.DeadLetterRoute
	case engine.DeadLetterRoute:
	default:
		rt.log.Info("dlq is enabled but batch_processing.dead_letter_policy is not route: the engine does not route its dead letters into it",
			"dead_letter_policy", ec.DeadLetterPolicy.String())
		return
	}
	if rt.dlq != nil {
		ec.RouteDeadLetters = rt.dlq.Router()
		return
	}
	ec.RouteDeadLetters = func(context.Context, []transport.DeadLetter) error { return errRouteNotBuilt }
}

// closeDLQNow closes the dead-letter queue at once (what is still queued
// is counted as dropped and logged by the queue) when the shutdown hook
// did not close it: a failed start-up, or a shutdown cut short by its
// deadline or a second signal. Close is idempotent.
func (rt *Runtime) closeDLQNow() {
	if rt.dlq == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = rt.dlq.Close(ctx)
}
