// Package lifecycle runs the graceful shutdown of a service.
//
// On SIGTERM or SIGINT (or when the context given to Start ends, or when
// Shutdown is called) a Manager:
//
//  1. marks the health registry draining, so /readyz answers 503 at once;
//  2. waits the pre-stop delay, so Kubernetes takes the pod out of its
//     Service endpoints before anything stops serving;
//  3. cancels the root context (Context), so loops stop taking new work;
//  4. runs the shutdown hooks in reverse order of registration, one after
//     another, under one deadline (ShutdownTimeout, 30 s by default); each
//     hook gets a context carrying the time that is left;
//  5. returns from Wait with nil or the hook failures joined.
//
// A second signal at any point forces the exit: the root context and the
// hooks' context are cancelled, Config.OnForce is called, and Wait returns
// ErrForced at once. The package never calls os.Exit; the keel runtime sets
// OnForce to exit with a non-zero status, and a program wiring the Manager
// itself should do the same when Wait returns ErrForced.
//
//	m, err := lifecycle.New(lifecycle.Config{}, health.Default())
//	if err != nil { return err }
//	_ = m.OnShutdown("admin", adminServer.Shutdown)   // registered first, runs last
//	_ = m.OnShutdown("consumer", consumer.Close)
//	m.Start(context.Background())
//	go run(m.Context())
//	return m.Wait()
//
// # Pre-stop delay
//
// Config.PreStopDelay when positive; none when negative; otherwise the
// PRESTOP_DELAY_SECS environment variable (whole seconds, or a Go duration
// such as "2500ms"); otherwise 5 s on Kubernetes and 0 elsewhere. The pod's
// terminationGracePeriodSeconds must cover the pre-stop delay plus the
// shutdown timeout (35 s with the defaults), or the kubelet kills the
// process before the hooks finish.
//
// # Hooks
//
// A hook that returns an error, panics, or is still running at the deadline
// is logged by name and reported in Wait's error as a *HookError. Hooks not
// yet started at the deadline are skipped and reported too (ErrHookSkipped).
// A hook still running at the deadline cannot be stopped: its goroutine
// ends when it returns, so hooks must honour their context.
//
// # Metrics
//
// keel_lifecycle_shutdowns_total{reason} counts shutdowns by what started
// them (signal, context, requested) and forced exits (forced);
// keel_lifecycle_evictions_total counts SIGTERMs received on Kubernetes
// (eviction, rollout, scale-down); keel_lifecycle_hook_failures_total counts
// hooks that failed, timed out or were skipped; keel_lifecycle_draining is 1
// from the start of the shutdown.
package lifecycle
