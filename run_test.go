package keel_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// pipeline is an App that consumes from the inmem section "input" through
// the engine to the inmem section "output", and hands the test what it
// needs to drive and observe it.
type pipeline struct {
	handles     chan *keel.Runtime
	input       chan *inmem.Transport
	appCtx      chan context.Context
	markStarted chan struct{}
	started     chan struct{}
	inSink      chan struct{}
	sinkCtxErr  atomic.Value
	delivered   atomic.Int64
}

func newPipeline() *pipeline {
	return &pipeline{
		handles: make(chan *keel.Runtime, 1), input: make(chan *inmem.Transport, 1),
		appCtx: make(chan context.Context, 1), markStarted: make(chan struct{}),
		started: make(chan struct{}), inSink: make(chan struct{}, 1),
	}
}

func (p *pipeline) app() keel.App {
	return keel.App{
		Name:       "keeltest",
		Version:    "1.0.0-test",
		Transports: []string{"input", "output"},
		Defaults:   map[string]any{"input.type": "inmem", "output.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "input")
			if err != nil {
				return err
			}
			out, err := rt.Sender(ctx, "output")
			if err != nil {
				return err
			}
			p.handles <- rt
			p.input <- queue(in)
			p.appCtx <- ctx
			<-p.markStarted
			rt.MarkStarted()
			close(p.started)
			send := rt.Engine().SinkTo(out)
			sink := func(sctx context.Context, b transport.Batch) error {
				p.inSink <- struct{}{}
				// Hold the block until the app's context is cancelled: the
				// shutdown must then let it finish and commit.
				<-ctx.Done()
				if sctx.Err() != nil {
					p.sinkCtxErr.Store(sctx.Err().Error())
				}
				if err := send(sctx, b); err != nil {
					return err
				}
				p.delivered.Add(int64(len(b.Records)))
				return nil
			}
			return rt.Engine().Run(ctx, in, passThrough, sink)
		},
	}
}

// TestRunEndToEnd runs a whole service in-process: probes through the
// real admin listener, /metrics, and a shutdown by an injected signal in
// which readiness fails first, the app's context is cancelled after the
// pre-stop delay, and the block in flight is committed before Run
// returns nil.
func TestRunEndToEnd(t *testing.T) {
	ctx := testCtx(t)
	p := newPipeline()
	logs := &syncBuffer{}
	signals := make(chan os.Signal, 2)
	preStop := make(chan time.Time, 1)
	opts := append(isolated(t, logs, map[string]any{"lifecycle.prestop_delay": "1h"}),
		keel.WithSignals(signals),
		keel.WithPreStopTimer(func(time.Duration) <-chan time.Time { return preStop }))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, p.app(), opts...) }()

	rt := wait(t, ctx, p.handles, "the app to start")
	in := wait(t, ctx, p.input, "the input transport")
	appCtx := wait(t, ctx, p.appCtx, "the app context")
	addr := rt.Admin().Addr()

	// Before MarkStarted: the startup probe and readiness fail, liveness
	// holds.
	if code, body := get(t, addr, "/startupz"); code != 503 {
		t.Fatalf("startup before MarkStarted: %d %s", code, body)
	}
	if code, _ := get(t, addr, "/readyz"); code != 503 {
		t.Fatalf("readiness before MarkStarted: %d", code)
	}
	if code, _ := get(t, addr, "/healthz"); code != 200 {
		t.Fatalf("liveness: %d", code)
	}
	close(p.markStarted)
	wait(t, ctx, p.started, "MarkStarted")
	if code, body := get(t, addr, "/startupz"); code != 200 {
		t.Fatalf("startup after MarkStarted: %d %s", code, body)
	}
	code, body := get(t, addr, "/readyz")
	if code != 200 {
		t.Fatalf("readiness after MarkStarted: %d %s", code, body)
	}
	// The transports are health checks behind readiness.
	for _, name := range []string{"receiver:input", "sender:output"} {
		found := false
		for _, n := range rt.Health().Names() {
			found = found || n == name
		}
		if !found {
			t.Fatalf("health check %q not registered (%v)", name, rt.Health().Names())
		}
	}

	// One block in flight, held by the sink. (One record: a receive takes
	// what is queued when it wakes, so two injected records could make
	// two blocks.)
	if err := in.InjectPayloads(ctx, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, p.inSink, "the block to reach the sink")
	code, metricsBody := get(t, addr, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	contains(t, metricsBody, "keel_engine_records_received_total 1", "/metrics")
	contains(t, metricsBody, "keel_memory_limit_bytes", "/metrics")
	if code, _ := get(t, addr, "/memory/pressure"); code != 200 {
		t.Fatalf("/memory/pressure: %d", code)
	}
	if code, _ := get(t, addr, "/scaling/pressure"); code != 200 {
		t.Fatalf("/scaling/pressure: %d", code)
	}
	if code, _ := get(t, addr, "/config"); code != 404 {
		t.Fatalf("/config served without admin.enable_config: %d", code)
	}

	// SIGTERM: readiness fails first, while the app's context is live.
	signals <- syscall.SIGTERM
	wait(t, ctx, rt.Lifecycle().Stopping(), "the shutdown to start")
	if code, _ := get(t, addr, "/readyz"); code != 503 {
		t.Fatalf("readiness during the pre-stop delay: %d, want 503", code)
	}
	if appCtx.Err() != nil {
		t.Fatal("the app's context was cancelled before the pre-stop delay passed")
	}
	if in.Committed() != 0 {
		t.Fatal("the block was committed before the shutdown released it")
	}
	// The pre-stop delay passes: the app's context is cancelled, the sink
	// finishes under the drain context, the block is committed.
	preStop <- time.Now()
	if err := wait(t, ctx, done, "Run to return"); err != nil {
		t.Fatalf("Run: %v\nlogs:\n%s", err, logs.String())
	}
	if appCtx.Err() == nil {
		t.Fatal("the app's context was never cancelled")
	}
	if v := p.sinkCtxErr.Load(); v != nil {
		t.Fatalf("the sink's context was cancelled during the drain: %v", v)
	}
	if in.Committed() != 1 || p.delivered.Load() != 1 {
		t.Fatalf("committed %d, delivered %d: the block in flight must be delivered and committed", in.Committed(), p.delivered.Load())
	}
	l := logs.String()
	iReady := strings.Index(l, "shutdown started: readiness now fails")
	iDrain := strings.Index(l, "drained the block in flight")
	iStopped := strings.Index(l, "service stopped cleanly")
	if iReady < 0 || iDrain < 0 || iStopped < 0 || iReady > iDrain || iDrain > iStopped {
		t.Fatalf("shutdown log out of order (ready %d, drain %d, stopped %d):\n%s", iReady, iDrain, iStopped, l)
	}
	contains(t, l, `"service":"keeltest"`, "logs")
	// The admin server stopped last: nothing listens any more.
	if _, err := client.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("the admin server still answers after Run returned")
	}
}

// TestRunSlowSinkAtShutdown: a sink slower than the drain timeout leaves
// the block in flight uncommitted, never half-committed, and Run still
// returns nil within the shutdown deadline.
func TestRunSlowSinkAtShutdown(t *testing.T) {
	ctx := testCtx(t)
	logs := &syncBuffer{}
	signals := make(chan os.Signal, 2)
	handles := make(chan *inmem.Transport, 1)
	inSink := make(chan struct{}, 8)
	injected := make(chan struct{})
	var sunk atomic.Int32
	app := keel.App{
		Name:     "keeltest",
		Defaults: map[string]any{"transport.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			handles <- queue(in)
			<-injected // the whole block is queued before the first receive
			rt.MarkStarted()
			// Streaming, one record per sub-block: the first sub-block is
			// delivered, the second outlasts the drain deadline.
			return rt.Engine().RunStreaming(ctx, in, passThrough, func(sctx context.Context, b transport.Batch) error {
				inSink <- struct{}{}
				if sunk.Add(1) == 1 {
					<-ctx.Done()
					return nil
				}
				<-sctx.Done()
				return sctx.Err()
			})
		},
	}
	opts := append(isolated(t, logs, map[string]any{
		"batch_processing.drain_timeout": "50ms", "batch_processing.max_chunk_size": 4,
		"lifecycle.prestop_delay": "-1s",
	}), keel.WithSignals(signals))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, app, opts...) }()
	in := wait(t, ctx, handles, "the app")
	if err := in.InjectPayloads(ctx, []byte(`{"a":1}`), []byte(`{"a":2}`), []byte(`{"a":3}`)); err != nil {
		t.Fatal(err)
	}
	close(injected)
	wait(t, ctx, inSink, "the first sub-block")
	signals <- syscall.SIGTERM
	if err := wait(t, ctx, done, "Run"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if sunk.Load() != 2 {
		t.Fatalf("%d sub-blocks reached the sink, want 2 (the second cut short)", sunk.Load())
	}
	if in.Committed() != 0 || in.Commits() != 0 {
		t.Fatalf("committed %d: a block cut short by the drain deadline must not be committed, not even in part", in.Committed())
	}
	contains(t, logs.String(), "not committed; it will be delivered again", "logs")
}

// TestRunHungAppHitsDeadline: an app that ignores its context is still
// running at the shutdown deadline; Run returns an error naming it.
func TestRunHungAppHitsDeadline(t *testing.T) {
	ctx := testCtx(t)
	logs := &syncBuffer{}
	signals := make(chan os.Signal, 2)
	running := make(chan struct{})
	release := make(chan struct{})
	var hookRan atomic.Bool
	app := keel.App{
		Name: "keeltest",
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			if err := rt.OnShutdown("flush", func(context.Context) error { hookRan.Store(true); return nil }); err != nil {
				return err
			}
			close(running)
			<-release // ignores ctx
			return nil
		},
	}
	opts := append(isolated(t, logs, map[string]any{"lifecycle.shutdown_timeout": "50ms", "lifecycle.prestop_delay": "-1s"}),
		keel.WithSignals(signals))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, app, opts...) }()
	wait(t, ctx, running, "the app")
	signals <- syscall.SIGTERM
	err := wait(t, ctx, done, "Run")
	close(release)
	if !errors.Is(err, keel.ErrShutdownIncomplete) {
		t.Fatalf("Run: %v, want ErrShutdownIncomplete", err)
	}
	contains(t, err.Error(), `app keeltest`, "the error")
	contains(t, err.Error(), `"app"`, "the error")
	if keel.ExitCode(err) != keel.ExitError {
		t.Fatalf("exit code %d", keel.ExitCode(err))
	}
	if hookRan.Load() {
		t.Fatal("a hook after the hung app ran past the deadline")
	}
	contains(t, logs.String(), "still_running", "logs")
}

// TestRunForcedBySecondSignal: a second signal during the shutdown
// returns at once with lifecycle.ErrForced, naming what still runs.
func TestRunForcedBySecondSignal(t *testing.T) {
	ctx := testCtx(t)
	logs := &syncBuffer{}
	signals := make(chan os.Signal, 2)
	running := make(chan struct{})
	stopping := make(chan struct{})
	release := make(chan struct{})
	app := keel.App{
		Name: "keeltest",
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			close(running)
			<-ctx.Done()
			close(stopping)
			<-release // slow to stop
			return nil
		},
	}
	opts := append(isolated(t, logs, map[string]any{"lifecycle.prestop_delay": "-1s"}), keel.WithSignals(signals))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, app, opts...) }()
	wait(t, ctx, running, "the app")
	signals <- syscall.SIGTERM
	wait(t, ctx, stopping, "the app's context to be cancelled")
	signals <- syscall.SIGINT
	err := wait(t, ctx, done, "Run")
	close(release)
	if !errors.Is(err, lifecycle.ErrForced) || keel.ExitCode(err) != keel.ExitForced {
		t.Fatalf("Run: %v, want ErrForced (exit 2)", err)
	}
	contains(t, err.Error(), "app keeltest", "the error")
}

// TestRunAppOutcome: the app's return ends the service; its error is
// Run's, and a nil (or the shutdown's cancellation) is a clean stop. The
// shutdown phases run in order either way.
func TestRunAppOutcome(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		ret  func(ctx context.Context) error
		want error
	}{
		{"nil", func(context.Context) error { return nil }, nil},
		{"error", func(context.Context) error { return boom }, boom},
		{"panic", func(context.Context) error { panic("kaput") }, errors.New("panic: kaput")},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			logs := &syncBuffer{}
			var order []string
			app := keel.App{
				Name:     "keeltest",
				Defaults: map[string]any{"transport.type": "inmem", "other.type": "inmem"},
				Run: func(ctx context.Context, rt *keel.Runtime) error {
					s, err := rt.Sender(ctx, "other")
					if err != nil {
						return err
					}
					r, err := rt.Receiver(ctx, "")
					if err != nil {
						return err
					}
					_ = s
					_ = r
					for _, n := range []string{"first", "second"} {
						if err := rt.OnShutdown(n, func(context.Context) error { order = append(order, "hook "+n); return nil }); err != nil {
							return err
						}
					}
					if err := rt.OnShutdownLast("telemetry", func(context.Context) error {
						order = append(order, "last")
						if s.Health(ctx) == nil || r.Health(ctx) == nil {
							order = append(order, "transports still open")
						}
						return nil
					}); err != nil {
						return err
					}
					rt.Go("ticker", func(ctx context.Context) error {
						<-ctx.Done()
						order = append(order, "background")
						return ctx.Err()
					})
					return c.ret(ctx)
				},
			}
			err := keel.Run(ctx, app, isolated(t, logs, nil)...)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("Run: %v", err)
			case c.want != nil && (err == nil || !strings.Contains(err.Error(), c.want.Error())):
				t.Fatalf("Run: %v, want %v", err, c.want)
			}
			if c.want == boom && !errors.Is(err, boom) {
				t.Fatalf("Run: %v does not wrap the app's error", err)
			}
			want := "background,hook second,hook first,last"
			if got := strings.Join(order, ","); got != want {
				t.Fatalf("shutdown order %s, want %s", got, want)
			}
		})
	}
}

// TestRunBadConfigFailsBeforeApp: a bad section stops the start-up with
// an error naming the key, and the app never runs.
func TestRunBadConfigFailsBeforeApp(t *testing.T) {
	cases := map[string]map[string]any{
		"memory.headroom_fraction":                  {"memory.headroom_fraction": 1.5},
		"worker_pool.max_workers":                   {"worker_pool.max_workers": "many"},
		"admin.addr":                                {"admin.addr": "no-port"},
		"logging.level":                             {"logging.level": "loud"},
		"lifecycle.shutdown_timeout":                {"lifecycle.shutdown_timeout": "-1s"},
		"batch_processing.dead_letter_policy":       {"batch_processing.dead_letter_policy": "route"},
		"scaling.expression":                        {"scaling.expression": "cpu +"},
		"transport.type":                            {"transport.type": "carrier_pigeon"},
		"work.workers":                              {"work.workers": -3},
		"transport.file.path (the file type's key)": {"transport.type": "file"},
	}
	for key, overrides := range cases {
		t.Run(key, func(t *testing.T) {
			var ran atomic.Bool
			logs := &syncBuffer{}
			app := keel.App{
				Name:       "keeltest",
				Sections:   map[string]any{"work": &workConfig{Workers: 2}},
				Transports: []string{"transport"},
				Defaults:   map[string]any{"transport.type": "inmem"},
				Run:        func(context.Context, *keel.Runtime) error { ran.Store(true); return nil },
			}
			err := keel.Run(testCtx(t), app, isolated(t, logs, overrides)...)
			if err == nil {
				t.Fatal("Run accepted a bad configuration")
			}
			want := strings.Fields(key)[0]
			contains(t, err.Error(), want, "the start-up error")
			var se *keel.SectionError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SectionError", err)
			}
			if ran.Load() {
				t.Fatal("the app ran with a bad configuration")
			}
		})
	}
}

// TestRunRejectsBadApp: an App without a name or body, or with a section
// that is not a pointer, is refused.
func TestRunRejectsBadApp(t *testing.T) {
	run := func(context.Context, *keel.Runtime) error { return nil }
	for name, app := range map[string]keel.App{
		"no name":     {Run: run},
		"bad name":    {Name: "1 bad", Run: run},
		"no run":      {Name: "x"},
		"not pointer": {Name: "x", Run: run, Sections: map[string]any{"work": workConfig{}}},
		"nil pointer": {Name: "x", Run: run, Sections: map[string]any{"work": (*workConfig)(nil)}},
	} {
		if err := keel.Run(context.Background(), app); !errors.Is(err, keel.ErrInvalidApp) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := keel.Run(context.Background(), keel.App{Name: "x", Run: run}, keel.WithTransport("Bad Type", keel.TransportBuilder{})); !errors.Is(err, keel.ErrInvalidOption) {
		t.Fatalf("bad option: %v", err)
	}
}

// TestRunContextEndStartsShutdown: cancelling the ctx given to Run shuts
// the service down cleanly.
func TestRunContextEndStartsShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(testCtx(t))
	running := make(chan struct{})
	app := keel.App{Name: "keeltest", Run: func(ctx context.Context, rt *keel.Runtime) error {
		close(running)
		<-ctx.Done()
		return ctx.Err()
	}}
	done := make(chan error, 1)
	go func() {
		done <- keel.Run(ctx, app, isolated(t, &syncBuffer{}, map[string]any{"lifecycle.prestop_delay": "-1s"})...)
	}()
	<-running
	cancel()
	if err := wait(t, testCtx(t), done, "Run"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// workConfig is an app section.
type workConfig struct {
	Workers int `koanf:"workers"`
}

func (w *workConfig) Validate() error {
	if w.Workers < 1 {
		return errors.New("work.workers must be >= 1")
	}
	return nil
}

// TestRunAdminAddressInUse: an admin address that cannot be bound is a
// start-up error naming the section, and the app never runs.
func TestRunAdminAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var ran atomic.Bool
	app := keel.App{Name: "keeltest", Run: func(context.Context, *keel.Runtime) error { ran.Store(true); return nil }}
	err = keel.Run(testCtx(t), app, isolated(t, &syncBuffer{}, map[string]any{"admin.addr": l.Addr().String()})...)
	var se *keel.SectionError
	if !errors.As(err, &se) || se.Key != "admin" || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("Run: %v, want a start-up error naming admin and the address", err)
	}
	if ran.Load() {
		t.Fatal("the app ran without its admin server")
	}
}

// TestRunLogLevelFollowsReload: a reload that changes logging.level takes
// effect on the running logger.
func TestRunLogLevelFollowsReload(t *testing.T) {
	path := writeFile(t, "settings.yaml", "logging:\n  level: info\n  format: json\n")
	logs := &syncBuffer{}
	app := keel.App{Name: "keeltest", Run: func(ctx context.Context, rt *keel.Runtime) error {
		rt.Logger().Debug("hidden-before-reload")
		if err := os.WriteFile(path, []byte("logging:\n  level: debug\n  format: json\n"), 0o600); err != nil {
			return err
		}
		if err := rt.Config().Reload(ctx); err != nil {
			return err
		}
		rt.Logger().Debug("shown-after-reload")
		return nil
	}}
	if err := keel.Run(testCtx(t), app, append(isolated(t, logs, nil), keel.WithConfigFile(path))...); err != nil {
		t.Fatal(err)
	}
	l := logs.String()
	if strings.Contains(l, "hidden-before-reload") || !strings.Contains(l, "shown-after-reload") {
		t.Fatalf("the level did not follow the reload:\n%s", l)
	}
}

// TestRunBadLogLevelReloadIsRejected: a reload that sets an unknown
// logging.level is refused like a bad start-up config: the error names
// the key and the running level is kept.
func TestRunBadLogLevelReloadIsRejected(t *testing.T) {
	path := writeFile(t, "settings.yaml", "logging:\n  level: debug\n  format: json\n")
	logs := &syncBuffer{}
	var reloadErr error
	app := keel.App{Name: "keeltest", Run: func(ctx context.Context, rt *keel.Runtime) error {
		if err := os.WriteFile(path, []byte("logging:\n  level: loud\n  format: json\n"), 0o600); err != nil {
			return err
		}
		reloadErr = rt.Config().Reload(ctx)
		rt.Logger().Debug("still-debug-after-rejected-reload")
		return nil
	}}
	if err := keel.Run(testCtx(t), app, append(isolated(t, logs, nil), keel.WithConfigFile(path))...); err != nil {
		t.Fatal(err)
	}
	if reloadErr == nil || !strings.Contains(reloadErr.Error(), "logging.level") {
		t.Fatalf("Reload: %v, want an error naming logging.level", reloadErr)
	}
	if !strings.Contains(logs.String(), "still-debug-after-rejected-reload") {
		t.Fatalf("the rejected reload changed the level:\n%s", logs.String())
	}
}

// TestRunConfigEndpointRedacted: with admin.enable_config, /config serves
// the effective configuration with every secret redacted.
func TestRunConfigEndpointRedacted(t *testing.T) {
	path := writeFile(t, "settings.yaml", "work:\n  workers: 3\n  api_token: "+plantedToken+"\ndatabase:\n  password: "+plantedPassword+"\n")
	var body string
	var code int
	app := keel.App{
		Name:     "keeltest",
		Sections: map[string]any{"work": &appSection{Workers: 1}},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			var err error
			code, body, err = fetch(rt.Admin().Addr(), "/config")
			return err
		},
	}
	logs := &syncBuffer{}
	opts := append(isolated(t, logs, map[string]any{"admin.enable_config": true}), keel.WithConfigFile(path))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	if code != 200 {
		t.Fatalf("/config: %d %s", code, body)
	}
	contains(t, body, `"work"`, "/config")
	contains(t, body, `"batch_processing"`, "/config")
	noSecrets(t, body, logs.String())
}

// TestRunConfigEndpointShowsTheValuesInEffect: /config shows what the
// service uses, as config-check does: the Kafka brokers of
// KAFKA_BOOTSTRAP_SERVERS and the runtime defaults.
func TestRunConfigEndpointShowsTheValuesInEffect(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-9:9092")
	t.Setenv("KAFKA_SASL_PASSWORD", plantedPassword)
	var body string
	var code int
	app := kafkaEnvApp()
	app.Run = func(ctx context.Context, rt *keel.Runtime) error {
		var err error
		code, body, err = fetch(rt.Admin().Addr(), "/config")
		return err
	}
	logs := &syncBuffer{}
	if err := keel.Run(testCtx(t), app, isolated(t, logs, map[string]any{"admin.enable_config": true})...); err != nil {
		t.Fatal(err)
	}
	if code != 200 {
		t.Fatalf("/config: %d %s", code, body)
	}
	checkEffective(t, body, "127.0.0.1:0")
	noSecrets(t, body, logs.String())
}

// TestRunDLQInReadiness: the DLQ is the health check "dlq": while its
// only backend refuses entries readiness fails, and it passes again once
// the backend takes them.
func TestRunDLQInReadiness(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer backend.Close()
	poll := func(ctx context.Context, rt *keel.Runtime, want bool) error {
		for !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			if rt.Health().Ready(ctx) == want {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return errors.New("readiness did not turn " + map[bool]string{true: "true", false: "false"}[want])
	}
	app := keel.App{
		Name: "dlqready",
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			rt.MarkStarted()
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if !slices.Contains(rt.Health().Names(), dlq.HealthCheckName) {
				return errors.New("no dlq health check registered")
			}
			if err := poll(wctx, rt, true); err != nil {
				return err
			}
			if err := rt.DLQ().Push(wctx, dlq.Entry{Reason: "r", Payload: []byte("x")}); err != nil {
				return err
			}
			if err := poll(wctx, rt, false); err != nil {
				return err
			}
			down.Store(false)
			return poll(wctx, rt, true)
		},
	}
	opts := isolated(t, &syncBuffer{}, map[string]any{
		"dlq.enabled": true, "dlq.mode": "single", "dlq.http.enabled": true, "dlq.http.endpoint": backend.URL,
		"dlq.max_attempts": -1, "dlq.retry_backoff": "5ms", "dlq.flush_interval": "1ms",
	})
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
}
