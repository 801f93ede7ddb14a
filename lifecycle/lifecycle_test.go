package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

func TestHooksRunInReverseOrder(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1}, nil)
	var mu sync.Mutex
	var order []string
	for _, name := range []string{"admin", "store", "consumer"} {
		if err := r.m.OnShutdown(name, func(ctx context.Context) error {
			if r.m.Context().Err() == nil {
				t.Errorf("hook %s ran before the root context was cancelled", name)
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	r.m.Start(context.Background())
	r.m.Shutdown("test over")
	if err := r.m.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, ","); got != "consumer,store,admin" {
		t.Fatalf("hook order = %s, want consumer,store,admin", got)
	}
	cause := context.Cause(r.m.Context())
	if !errors.Is(cause, ErrShutdown) || !strings.Contains(cause.Error(), "requested") || !strings.Contains(cause.Error(), "test over") {
		t.Fatalf("root context cause = %v", cause)
	}
	if !r.health.Draining() {
		t.Fatal("health not draining after shutdown")
	}
	if v := value(t, r.metrics, "keel_lifecycle_shutdowns_total", "reason", "requested"); v != 1 {
		t.Fatalf("shutdowns_total{requested} = %v", v)
	}
	if v := value(t, r.metrics, "keel_lifecycle_draining"); v != 1 {
		t.Fatalf("draining gauge = %v", v)
	}
}

func TestHookGetsRemainingDeadline(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1, ShutdownTimeout: time.Hour}, nil)
	var left time.Duration
	_ = r.m.OnShutdown("h", func(ctx context.Context) error {
		dl, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		left = time.Until(dl)
		return nil
	})
	r.m.Start(context.Background())
	r.m.Shutdown("x")
	if err := r.m.Wait(); err != nil {
		t.Fatal(err)
	}
	if left <= 0 || left > time.Hour {
		t.Fatalf("hook deadline %v from now, want within the 1h timeout", left)
	}
}

func TestHookExceedingDeadlineIsReported(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1, ShutdownTimeout: 30 * time.Millisecond}, nil)
	release := make(chan struct{})
	stuckDone := make(chan struct{})
	var ranNever atomic.Bool
	_ = r.m.OnShutdown("never", func(context.Context) error { ranNever.Store(true); return nil })
	_ = r.m.OnShutdown("stuck", func(context.Context) error {
		defer close(stuckDone)
		<-release // ignores its context
		return nil
	})
	_ = r.m.OnShutdown("quick", func(context.Context) error { return nil })
	r.m.Start(context.Background())
	r.m.Shutdown("x")
	err := r.m.Wait()
	close(release)
	<-stuckDone

	if err == nil {
		t.Fatal("Wait returned nil although a hook exceeded the deadline")
	}
	var he *HookError
	if !errors.As(err, &he) || he.Name != "stuck" || !errors.Is(he, ErrHookTimeout) {
		t.Fatalf("first hook error = %v", err)
	}
	if !errors.Is(err, ErrHookSkipped) || !strings.Contains(err.Error(), `"never"`) {
		t.Fatalf("skipped hook not reported: %v", err)
	}
	if strings.Contains(err.Error(), `"quick"`) {
		t.Fatalf("successful hook reported: %v", err)
	}
	if ranNever.Load() {
		t.Fatal("hook after the deadline ran")
	}
	if v := value(t, r.metrics, "keel_lifecycle_hook_failures_total"); v != 2 {
		t.Fatalf("hook_failures_total = %v, want 2", v)
	}
}

func TestHookErrorsAndPanicsAreJoined(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1}, nil)
	var ranFirst atomic.Bool
	_ = r.m.OnShutdown("first", func(context.Context) error { ranFirst.Store(true); return nil })
	_ = r.m.OnShutdown("flaky", func(context.Context) error { return errors.New("flush failed: disk full") })
	_ = r.m.OnShutdown("buggy", func(context.Context) error { panic("nil pointer") })
	r.m.Start(context.Background())
	r.m.Shutdown("x")
	err := r.m.Wait()
	if err == nil || !ranFirst.Load() {
		t.Fatalf("err = %v, first ran = %v", err, ranFirst.Load())
	}
	msg := err.Error()
	if !strings.Contains(msg, `hook "flaky": flush failed: disk full`) || !strings.Contains(msg, `hook "buggy": panic: nil pointer`) {
		t.Fatalf("error = %v", err)
	}
	if errors.Is(err, ErrHookTimeout) {
		t.Fatal("plain failures reported as timeouts")
	}
}

func TestHookFailingOnExpiredContextIsATimeout(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1, ShutdownTimeout: 10 * time.Millisecond}, nil)
	_ = r.m.OnShutdown("drain", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	r.m.Start(context.Background())
	r.m.Shutdown("x")
	if err := r.m.Wait(); !errors.Is(err, ErrHookTimeout) || !strings.Contains(err.Error(), `"drain"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSecondSignalDuringPreStopForces(t *testing.T) {
	var forced atomic.Int64
	r := newRig(t, Config{PreStopDelay: time.Hour, OnForce: func() { forced.Add(1) }}, nil)
	var hookRan atomic.Bool
	_ = r.m.OnShutdown("h", func(context.Context) error { hookRan.Store(true); return nil })
	r.m.Start(context.Background())
	r.sigs <- syscall.SIGTERM
	<-r.m.Stopping()
	if d := <-r.preStop; d != time.Hour {
		t.Fatalf("pre-stop delay %v", d)
	}
	if r.m.Context().Err() != nil {
		t.Fatal("root context cancelled during the pre-stop delay")
	}
	r.sigs <- syscall.SIGINT
	if err := r.m.Wait(); !errors.Is(err, ErrForced) {
		t.Fatalf("Wait = %v, want ErrForced", err)
	}
	if forced.Load() != 1 {
		t.Fatalf("OnForce called %d times", forced.Load())
	}
	if !errors.Is(context.Cause(r.m.Context()), ErrForced) {
		t.Fatalf("root cause = %v", context.Cause(r.m.Context()))
	}
	if hookRan.Load() {
		t.Fatal("hooks ran after a forced exit")
	}
	if v := value(t, r.metrics, "keel_lifecycle_shutdowns_total", "reason", "forced"); v != 1 {
		t.Fatalf("shutdowns_total{forced} = %v", v)
	}
	if v := value(t, r.metrics, "keel_lifecycle_shutdowns_total", "reason", "signal"); v != 1 {
		t.Fatalf("shutdowns_total{signal} = %v", v)
	}
}

func TestSecondSignalDuringHooksForces(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1, ShutdownTimeout: time.Hour}, nil)
	entered := make(chan struct{})
	hookDone := make(chan error, 1)
	_ = r.m.OnShutdown("slow", func(ctx context.Context) error {
		close(entered)
		<-ctx.Done()
		hookDone <- ctx.Err()
		return ctx.Err()
	})
	r.m.Start(context.Background())
	r.sigs <- syscall.SIGTERM
	<-entered
	r.sigs <- syscall.SIGTERM
	if err := r.m.Wait(); !errors.Is(err, ErrForced) {
		t.Fatalf("Wait = %v, want ErrForced", err)
	}
	// The forced exit cancelled the running hook's context.
	if err := <-hookDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("hook context ended with %v", err)
	}
}

func TestOneSignalAfterRequestedShutdownDoesNotForce(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1}, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	_ = r.m.OnShutdown("h", func(context.Context) error {
		close(entered)
		<-release
		return nil
	})
	r.m.Start(context.Background())
	r.m.Shutdown("deploy")
	<-entered
	r.sigs <- syscall.SIGTERM // taken by the Manager: the first signal
	close(release)
	if err := r.m.Wait(); err != nil {
		t.Fatalf("Wait = %v, want nil: one signal after a requested shutdown must not force", err)
	}
}

func TestContextEndStartsShutdown(t *testing.T) {
	r := newRig(t, Config{PreStopDelay: -1}, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	r.m.Start(ctx)
	cancel(errors.New("parent gone"))
	if err := r.m.Wait(); err != nil {
		t.Fatal(err)
	}
	if c := context.Cause(r.m.Context()); !strings.Contains(c.Error(), "context (parent gone)") {
		t.Fatalf("cause = %v", c)
	}
	if v := value(t, r.metrics, "keel_lifecycle_shutdowns_total", "reason", "context"); v != 1 {
		t.Fatalf("shutdowns_total{context} = %v", v)
	}
}

func TestEvictionsCountedOnKubernetesSIGTERM(t *testing.T) {
	k8s := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
	for _, tt := range []struct {
		name string
		env  map[string]string
		sig  syscall.Signal
		want float64
	}{
		{"sigterm on kubernetes", k8s, syscall.SIGTERM, 1},
		{"sigint on kubernetes", k8s, syscall.SIGINT, 0},
		{"sigterm on bare metal", nil, syscall.SIGTERM, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, Config{PreStopDelay: -1}, tt.env)
			r.m.Start(context.Background())
			r.sigs <- tt.sig
			if err := r.m.Wait(); err != nil {
				t.Fatal(err)
			}
			if v := value(t, r.metrics, "keel_lifecycle_evictions_total"); v != tt.want {
				t.Fatalf("evictions_total = %v, want %v", v, tt.want)
			}
		})
	}
}

// TestDrainingBeforeCancel is the ordering guarantee: readiness fails at
// once, the root context stays alive for the whole pre-stop delay, and is
// cancelled only when the delay is over.
func TestDrainingBeforeCancel(t *testing.T) {
	r := newRig(t, Config{}, map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
	r.health.MarkStarted()
	r.m.Start(context.Background())
	if !r.health.Ready(context.Background()) {
		t.Fatal("not ready before the signal")
	}
	r.sigs <- syscall.SIGTERM
	<-r.m.Stopping()
	if r.health.Ready(context.Background()) {
		t.Fatal("still ready after the signal")
	}
	if d := <-r.preStop; d != DefaultKubernetesPreStopDelay {
		t.Fatalf("pre-stop delay on Kubernetes = %v, want %v", d, DefaultKubernetesPreStopDelay)
	}
	if r.m.Context().Err() != nil {
		t.Fatal("root context cancelled before the pre-stop delay ended")
	}
	r.fire <- time.Now()
	<-r.m.Context().Done()
	if err := r.m.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPreStopDelayResolution(t *testing.T) {
	k8s := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}
	tests := []struct {
		name    string
		cfg     time.Duration
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{"bare metal default", 0, nil, 0, ""},
		{"kubernetes default", 0, k8s, 5 * time.Second, ""},
		{"env seconds", 0, map[string]string{"PRESTOP_DELAY_SECS": "7"}, 7 * time.Second, ""},
		{"env zero on kubernetes", 0, map[string]string{"PRESTOP_DELAY_SECS": "0", "KUBERNETES_SERVICE_HOST": "x"}, 0, ""},
		{"env duration", 0, map[string]string{"PRESTOP_DELAY_SECS": "2500ms"}, 2500 * time.Millisecond, ""},
		{"config beats env", 3 * time.Second, map[string]string{"PRESTOP_DELAY_SECS": "7"}, 3 * time.Second, ""},
		{"negative config disables", -1, k8s, 0, ""},
		{"env garbage", 0, map[string]string{"PRESTOP_DELAY_SECS": "soon"}, 0, "PRESTOP_DELAY_SECS"},
		{"env negative", 0, map[string]string{"PRESTOP_DELAY_SECS": "-3s"}, 0, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			m, err := New(Config{PreStopDelay: tt.cfg, Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
				Platform: platform.Detector{Root: t.TempDir(), Getenv: func(k string) string { return env[k] }}}, health.New(health.Config{}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.PreStopDelay() != tt.want {
				t.Fatalf("PreStopDelay = %v, want %v", m.PreStopDelay(), tt.want)
			}
		})
	}
}

func TestConfigAndMisuseErrors(t *testing.T) {
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	if _, err := New(Config{ShutdownTimeout: -time.Second, Metrics: reg}, nil); err == nil || !strings.Contains(err.Error(), "shutdown_timeout") {
		t.Fatalf("negative timeout: %v", err)
	}
	r := newRig(t, Config{PreStopDelay: -1}, nil)
	if err := r.m.Wait(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Wait before Start = %v", err)
	}
	if err := r.m.OnShutdown("", func(context.Context) error { return nil }); !errors.Is(err, ErrInvalidHook) {
		t.Fatalf("empty name: %v", err)
	}
	if err := r.m.OnShutdown("x", nil); !errors.Is(err, ErrInvalidHook) {
		t.Fatalf("nil hook: %v", err)
	}
	lateErr := make(chan error, 1)
	_ = r.m.OnShutdown("registers-late", func(context.Context) error {
		lateErr <- r.m.OnShutdown("late", func(context.Context) error { return nil })
		return nil
	})
	r.m.Shutdown("before start") // remembered until Start
	r.m.Start(context.Background())
	r.m.Start(context.Background()) // harmless
	r.m.Shutdown("again")           // ignored
	if err := r.m.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-lateErr; !errors.Is(err, ErrHooksRunning) {
		t.Fatalf("OnShutdown during hooks = %v", err)
	}
	if c := context.Cause(r.m.Context()); !strings.Contains(c.Error(), "before start") {
		t.Fatalf("cause = %v", c)
	}
}

// TestRealSignal sends SIGTERM to the test process itself: Start installs
// the handler before it returns, so the signal cannot kill the process.
func TestRealSignal(t *testing.T) {
	m, err := New(Config{PreStopDelay: -1, Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		Platform: platform.Detector{Root: t.TempDir(), Getenv: func(string) string { return "" }}},
		health.New(health.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(); err != nil {
		t.Fatal(err)
	}
	if c := context.Cause(m.Context()); !strings.Contains(c.Error(), "signal (terminated)") {
		t.Fatalf("cause = %v", c)
	}
}
