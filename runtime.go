package keel

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/secrets"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// mode says how far build goes.
type mode int

const (
	// modeRun builds everything; run then starts it.
	modeRun mode = iota
	// modeCheck builds every component from the full config without
	// starting anything or touching process-wide state (config-check,
	// metrics-manifest).
	modeCheck
)

// Runtime is the handle a service gets: every component the runtime
// built, the transport factory, and the start-up and shutdown hooks. Its
// methods are safe for concurrent use.
type Runtime struct {
	app     *App
	opts    *options
	mode    mode
	version string

	cfg      *config.Config
	log      *slog.Logger
	level    *slog.LevelVar
	reg      *metrics.Registry
	health   *health.Registry
	life     *lifecycle.Manager
	admin    *admin.Server
	guard    *memory.Guard
	gov      *governor.Governor
	secrets  *secrets.Manager
	tel      *telemetry.Telemetry
	pool     *pool.Pool
	scaler   *pool.Scaler
	scaling  *scaling.Pressure
	engine   *engine.Engine
	dlq      *dlq.DLQ
	sections runtimeSections
	builders map[string]TransportBuilder

	mu        sync.Mutex
	senders   []closable
	receivers []closable
	closed    map[any]bool
	inmem     map[string]*inmem.Transport
	tiered    []*tiered.Sink
	lags      []func() (int64, bool) // LastLag of each Kafka consumer built
	fills     map[any]queueFiller    // receivers reporting their queue fill, until closed
	fillFed   bool                   // the scaling pressure's queue source is set
	checkSeq  map[string]int
	hooks     []namedHook
	lastHooks []namedHook
	closing   bool // transports are being closed
	hooksRan  bool // the shutdown hooks phase began
	lastRan   bool // the final hooks phase began
	bgStopped bool
	unsub     []func()

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	running tracker

	appDone      chan struct{}
	appErr       error
	adminStopped chan struct{}
	restore      func()
}

// Name returns the service name (App.Name).
func (rt *Runtime) Name() string { return rt.app.Name }

// Version returns the service version (App.Version or the build info's).
func (rt *Runtime) Version() string { return rt.version }

// Config returns the loaded configuration cascade. Decode the app's
// further sections with Config().Section and follow reloads with
// config.Subscribe.
func (rt *Runtime) Config() *config.Config { return rt.cfg }

// Logger returns the service logger: masked, with the service and
// version fields. It is also slog's default while Run runs.
func (rt *Runtime) Logger() *slog.Logger { return rt.log }

// Metrics returns the service's metrics registry, whose app namespace is
// the service name. It is also metrics.Default while Run runs.
func (rt *Runtime) Metrics() *metrics.Registry { return rt.reg }

// Health returns the health registry behind the probes. Register the
// app's own checks on it; readiness is started && !draining && no check
// unhealthy.
func (rt *Runtime) Health() *health.Registry { return rt.health }

// Admin returns the admin server (probes, /metrics, /config, /memory/pressure,
// /scaling/pressure). Mount the app's own endpoints with Handle.
func (rt *Runtime) Admin() *admin.Server { return rt.admin }

// Memory returns the memory guard (section memory).
func (rt *Runtime) Memory() *memory.Guard { return rt.guard }

// Pool returns the worker pool (section worker_pool), scaled by its
// Scaler from CPU and memory pressure.
func (rt *Runtime) Pool() *pool.Pool { return rt.pool }

// Scaler returns the worker pool's adaptive scaler.
func (rt *Runtime) Scaler() *pool.Scaler { return rt.scaler }

// Scaling returns the horizontal scaling pressure (section scaling), fed
// with the memory, pool and CPU signals, the lag of every Kafka consumer
// the factory builds, and the queue fill of every receiver it builds that
// reports one (QueueFill() float64: the largest, until the receiver is
// closed). Report the app's own signals on it. The runtime sets the lag
// and queue sources when it builds the first Kafka consumer, or the first
// receiver that reports a queue fill; a source the app sets after that
// replaces the runtime's.
func (rt *Runtime) Scaling() *scaling.Pressure { return rt.scaling }

// Engine returns the batch engine (section batch_processing), wired to
// the worker pool, the memory guard, the byte budget (WithByteBudget, else
// the governor's) and the dead-letter route given as an option.
func (rt *Runtime) Engine() *engine.Engine { return rt.engine }

// Lifecycle returns the shutdown manager. Stopping() is closed when the
// shutdown begins (readiness already fails), before the app's context is
// cancelled.
func (rt *Runtime) Lifecycle() *lifecycle.Manager { return rt.life }

// MarkStarted tells the runtime the service is ready: the startup probe
// passes from now on, and readiness does while the service is not
// draining and no health check is unhealthy.
func (rt *Runtime) MarkStarted() {
	if !rt.health.Started() {
		rt.health.MarkStarted()
		rt.log.Info("service marked started: the startup probe passes")
	}
}

// OnShutdown registers a hook that runs after the app returned and
// before the transports close, in reverse order of registration: flush a
// dead-letter queue or a spool writer here. Each hook gets a context that
// expires at the shutdown deadline. It fails with ErrShuttingDown once
// those hooks began to run.
func (rt *Runtime) OnShutdown(name string, hook lifecycle.Hook) error {
	if name == "" || hook == nil {
		return fmt.Errorf("%w: a hook needs a name and a function (name %q)", lifecycle.ErrInvalidHook, name)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.hooksRan {
		return fmt.Errorf("%w: shutdown hook %q registered after the hooks ran", ErrShuttingDown, name)
	}
	rt.hooks = append(rt.hooks, namedHook{name, hook})
	return nil
}

// OnShutdownLast registers a hook that runs after every transport was
// closed and just before the admin server stops, in reverse order of
// registration: flush telemetry here.
func (rt *Runtime) OnShutdownLast(name string, hook lifecycle.Hook) error {
	if name == "" || hook == nil {
		return fmt.Errorf("%w: a hook needs a name and a function (name %q)", lifecycle.ErrInvalidHook, name)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.lastRan {
		return fmt.Errorf("%w: final shutdown hook %q registered after the final hooks ran", ErrShuttingDown, name)
	}
	rt.lastHooks = append(rt.lastHooks, namedHook{name, hook})
	return nil
}

// Go runs fn in the background until the shutdown stops background
// tasks, right after the app returned; fn's ctx is cancelled then and fn
// must return. An error other than that cancellation is logged. A task
// still running at the shutdown deadline is named in the error Run
// returns. Go does nothing once background tasks were stopped, nor
// outside Run (config-check builds the runtime without starting it).
func (rt *Runtime) Go(name string, fn func(ctx context.Context) error) {
	rt.mu.Lock()
	if rt.mode != modeRun || rt.bgStopped || fn == nil {
		rt.mu.Unlock()
		rt.log.Debug("background task not started: the runtime is not running", "task", name)
		return
	}
	rt.bg.Add(1)
	rt.mu.Unlock()
	done := rt.running.start("task " + name)
	go func() {
		defer rt.bg.Done()
		defer done()
		defer func() {
			if p := recover(); p != nil {
				rt.log.Error("background task panicked", "task", name, "panic", fmt.Sprint(p))
			}
		}()
		if err := fn(rt.bgCtx); err != nil && !(rt.bgCtx.Err() != nil && errors.Is(err, context.Canceled)) {
			rt.log.Error("background task failed", "task", name, "error", err)
		}
	}()
}

func (rt *Runtime) refuseWhenClosing(what string) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closing {
		return fmt.Errorf("%w: %s called after the transports were closed", ErrShuttingDown, what)
	}
	return nil
}

// build creates every component, in the documented order. In modeRun it
// also changes process-wide state (slog, metrics and health defaults, the
// Go memory limit); nothing is started.
func build(ctx context.Context, app *App, o *options, m mode) (rt *Runtime, err error) {
	if err := app.check(m == modeRun); err != nil {
		return nil, err
	}
	rt = &Runtime{
		app: app, opts: o, mode: m, version: app.version(),
		inmem: make(map[string]*inmem.Transport), checkSeq: make(map[string]int),
		level: new(slog.LevelVar), restore: func() {},
		hooks: slices.Clone(o.hooks),
	}
	// The final hooks run newest first: the runtime's own come first in
	// the list, so that they run after every hook of the app, the secrets
	// manager closes next to last and telemetry flushes last, with the
	// spans of everything before it.
	rt.lastHooks = append([]namedHook{
		{HookTelemetry, func(ctx context.Context) error { return rt.tel.Shutdown(ctx) }},
		{HookSecrets, func(ctx context.Context) error { return rt.secrets.Close(ctx) }},
	}, o.lastHooks...)
	defer func() {
		if err != nil {
			rt.release()
			rt = nil
		}
	}()
	rt.bgCtx, rt.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	rt.builders = rt.builtinTransports()
	maps.Copy(rt.builders, o.transports)
	flags := o.flags
	if flags == nil {
		flags = &cli.Flags{}
	}

	// Metrics first, so that the config cascade counts its reloads in the
	// service's registry; it becomes the default at the metrics step.
	rt.reg = metrics.New(metrics.Config{Namespace: app.namespace()})

	// 1-2. The standard flags (parsed by the cli) and the config cascade.
	boot := logging.Options{Output: o.logOutput, Format: flags.LogFormat, Service: app.Name, Version: rt.version, Metrics: rt.reg}
	if l := flags.Level(); l != "" {
		if lvl, perr := logging.ParseLevel(l); perr == nil {
			boot.Level = lvl
		}
	}
	bootLog := logging.New(boot)
	copts := config.Options{
		AppName:    app.Name,
		ConfigFile: o.configFile,
		Defaults:   app.Defaults,
		Overrides:  flagOverrides(o.overrides, flags),
		Flags:      flags.Set,
		FlagKey:    flagKey,
		Metrics:    rt.reg,
		Logger:     bootLog,
	}
	if flags.ConfigFile != "" {
		copts.ConfigFile = flags.ConfigFile
	}
	if m == modeRun {
		// Load logs through slog's default at the time of each message:
		// the boot logger now, the service logger once it is set up.
		prev, prevOut, prevFlags := slog.Default(), log.Writer(), log.Flags()
		rt.restore = func() {
			slog.SetDefault(prev)
			log.SetOutput(prevOut)
			log.SetFlags(prevFlags)
		}
		slog.SetDefault(bootLog)
		copts.Logger = nil
	}
	for _, fn := range o.configOpts {
		fn(&copts)
	}
	if rt.cfg, err = config.Load(ctx, copts); err != nil {
		return rt, fmt.Errorf("keel: load the configuration: %w", err)
	}
	if err := errors.Join(decodeRuntimeSections(rt.cfg, &rt.sections), decodeAppSections(rt.cfg, app, m == modeRun)); err != nil {
		return rt, err
	}

	// 3. Logging, from the logging section (the flags are in the cascade).
	rt.buildLogger()

	// 4. Metrics with the app namespace.
	if m == modeRun {
		prevReg := metrics.Default()
		metrics.SetDefault(rt.reg)
		prevRestore := rt.restore
		rt.restore = func() { metrics.SetDefault(prevReg); prevRestore() }
	}
	if app.RegisterMetrics != nil {
		app.RegisterMetrics(rt.reg)
	}

	// 4a. Secrets, then every decoded section's secret references.
	if err := rt.buildSecrets(ctx); err != nil {
		return rt, err
	}
	if err := rt.resolveSecrets(ctx); err != nil {
		return rt, err
	}

	// 4b. Telemetry, with its section's header references resolved.
	if err := rt.buildTelemetry(ctx); err != nil {
		return rt, err
	}

	// 5. Health.
	rt.health = health.New(health.Config{Logger: rt.log})
	if m == modeRun {
		prevHealth := health.Default()
		health.SetDefault(rt.health)
		prevRestore := rt.restore
		rt.restore = func() { health.SetDefault(prevHealth); prevRestore() }
	}
	if err := rt.health.Register(HealthCheckSecrets, rt.secrets.HealthCheck()); err != nil {
		return rt, fmt.Errorf("keel: register the %s health check: %w", HealthCheckSecrets, err)
	}

	// 6. Lifecycle.
	lc := rt.sections.lifecycle
	lc.Signals, lc.After, lc.Metrics, lc.Logger = o.signals, o.preStop, rt.reg, rt.log
	if rt.life, err = lifecycle.New(lc, rt.health); err != nil {
		return rt, &SectionError{Key: SectionLifecycle, Err: err}
	}

	// 7. Admin server (not listening yet).
	ac := rt.sections.admin
	if rt.admin, err = admin.New(ac, admin.Deps{Health: rt.health, Metrics: rt.reg, ConfigJSON: rt.configJSON, Logger: rt.log}); err != nil {
		return rt, &SectionError{Key: SectionAdmin, Err: err}
	}

	// 8. Memory guard, the Go memory limit, /memory/pressure.
	if rt.guard, err = memory.New(rt.sections.memory, memory.WithMetrics(rt.reg), memory.WithLogger(rt.log)); err != nil {
		return rt, &SectionError{Key: SectionMemory, Err: err}
	}
	if m == modeRun {
		rt.guard.ApplyGoMemoryLimit()
	}
	if err := rt.guard.Mount(rt.admin); err != nil {
		return rt, fmt.Errorf("keel: mount %s: %w", memory.PressurePath, err)
	}

	// 8b. Self-regulation: the governor, with the memory guard as its hard
	// pressure source (nil when self_regulation.enabled is false).
	if err := rt.buildGovernor(); err != nil {
		return rt, err
	}

	// 9. Worker pool and its scaler, fed by the memory guard.
	if rt.pool, err = pool.New(rt.sections.pool, pool.WithMetrics(rt.reg), pool.WithLogger(rt.log)); err != nil {
		return rt, &SectionError{Key: SectionPool, Err: err}
	}
	if rt.scaler, err = pool.NewScaler(rt.pool, pool.WithMemoryPressure(rt.guard)); err != nil {
		return rt, &SectionError{Key: SectionPool, Err: err}
	}

	// 10. Scaling pressure with memory, pool and CPU as sources.
	cpu := pool.NewCPUMeter(pool.CPUMeterConfig{})
	if rt.scaling, err = scaling.New(rt.sections.scaling,
		scaling.WithMetrics(rt.reg), scaling.WithLogger(rt.log),
		scaling.WithSource(scaling.Memory, rt.guard.PressureRatio),
		scaling.WithSource(scaling.Pool, func() float64 { return rt.pool.Stats().Saturation() }),
		scaling.WithSource(scaling.CPU, func() float64 {
			v, serr := cpu.Sample()
			if serr != nil {
				return math.NaN()
			}
			return v
		}),
	); err != nil {
		return rt, &SectionError{Key: SectionScaling, Err: err}
	}
	if err := rt.admin.Handle(scaling.HandlerPath, rt.scaling.Handler()); err != nil {
		return rt, fmt.Errorf("keel: mount %s: %w", scaling.HandlerPath, err)
	}

	// 11. The dead-letter queue (section dlq, when enabled and the app
	// brings no route of its own), then the batch engine, with the byte
	// budget and the dead-letter route.
	if err := rt.buildDLQ(ctx); err != nil {
		return rt, err
	}
	if err := rt.buildEngine(ctx); err != nil {
		return rt, err
	}

	// 12. The app's transport sections.
	var terrs []error
	for _, s := range app.Transports {
		terrs = append(terrs, rt.checkTransport(s))
	}
	if err := errors.Join(terrs...); err != nil {
		return rt, err
	}
	return rt, nil
}

// buildLogger builds the service logger from the logging section. In
// modeRun it becomes slog's default and follows reloads of the level.
func (rt *Runtime) buildLogger() {
	lc := rt.sections.logging
	rt.level.Set(lc.level())
	opts := logging.Options{
		Level: rt.level, Format: lc.Format, Output: rt.opts.logOutput, AddSource: lc.AddSource,
		Service: rt.app.Name, Version: rt.version, ExtraSensitiveKeys: lc.SensitiveNames,
		Flood: logging.FloodControl{Rate: lc.FloodRate, Burst: lc.FloodBurst}, Metrics: rt.reg,
	}
	if rt.mode != modeRun {
		rt.log = logging.New(opts)
		return
	}
	rt.log = logging.Setup(opts)
	// A reload with a bad logging section is rejected (the old one stays
	// live and the failure is logged and counted), as it is at start-up.
	removeCheck := config.AddValidator(rt.cfg, SectionLogging, func(c LoggingConfig) error { return c.Validate() })
	rt.unsub = append(rt.unsub, removeCheck)
	stop := config.Subscribe(rt.cfg, SectionLogging, func(c LoggingConfig) {
		if c.level() != rt.level.Level() {
			rt.level.Set(c.level())
			rt.log.Info("log level changed by a config reload", "level", c.level().String())
		}
	})
	rt.unsub = append(rt.unsub, stop)
}

// buildEngine builds the byte budget, the dead-letter route and the
// engine, then validates the engine's section with its wiring.
func (rt *Runtime) buildEngine(ctx context.Context) error {
	ec := rt.sections.engine
	ec.Pool, ec.Memory, ec.Metrics, ec.Logger = rt.pool, rt.guard, rt.reg, rt.log
	if rt.mode != modeRun {
		// config-check and metrics-manifest build nothing that connects or
		// opens files: the route builder does not run, and the engine is
		// validated as it would be wired. It never runs, so the route
		// below is never called; if it were, it would refuse.
		if rt.opts.router != nil {
			ec.RouteDeadLetters = func(context.Context, []transport.DeadLetter) error { return errRouteNotBuilt }
		}
	} else if b := rt.opts.budget; b == nil {
		// The governor's AIMD budget, unless the app brings its own; nil
		// (RunGoverned runs as Run) when self-regulation is off.
		if budget := rt.gov.Budget(); budget != nil {
			ec.Budget = budget
		}
	} else {
		budget, err := b(ctx, rt)
		if err != nil {
			return fmt.Errorf("keel: build the engine's byte budget: %w", err)
		}
		// A builder for a component that is switched off may return a nil
		// pointer in the interface: that means no budget (RunGoverned is
		// then Run), not a budget whose methods would dereference nil.
		if budget != nil && !isNilPointer(budget) {
			ec.Budget = budget
		}
	}
	if b := rt.opts.router; b != nil && rt.mode == modeRun {
		route, err := b(ctx, rt)
		if err != nil {
			return fmt.Errorf("keel: build the engine's dead-letter route: %w", err)
		}
		ec.RouteDeadLetters = route
	}
	rt.wireDLQRoute(&ec)
	for _, fn := range rt.opts.engineHooks {
		fn(&ec)
	}
	ec.Pool, ec.Memory, ec.Metrics = rt.pool, rt.guard, rt.reg
	var err error
	if rt.engine, err = engine.New(ec); err != nil {
		return &SectionError{Key: SectionEngine, Err: err}
	}
	rt.sections.engine = ec
	return nil
}

// errRouteNotBuilt is what the dead-letter route of a runtime built by
// config-check or metrics-manifest answers: those commands never run the
// engine, and the real route is only built by Run.
var errRouteNotBuilt = errors.New("keel: the dead-letter route is only built when the service runs, not by config-check or metrics-manifest")

// flagOverrides merges the option overrides with the standard flags (and
// their environment fallbacks), which win.
func flagOverrides(base map[string]any, f *cli.Flags) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = make(map[string]any)
	}
	if l := f.Level(); l != "" {
		out[SectionLogging+".level"] = l
	}
	if f.LogFormat != "" {
		out[SectionLogging+".format"] = f.LogFormat
	}
	if f.MetricsAddr != "" {
		out[SectionAdmin+".addr"] = f.MetricsAddr
	}
	return out
}

// flagKey maps the service's own flags to config keys by name and leaves
// the standard ones out: the runtime passes those as overrides.
func flagKey(fl *pflag.Flag) string {
	if cli.IsStandard(fl.Name) {
		return ""
	}
	return strings.ReplaceAll(fl.Name, "-", "_")
}

// release frees what build created, for a runtime that will not run (or
// has finished): the dead-letter queue, the worker pool, the secrets
// manager, the telemetry pipeline and the config listeners. It restores
// the process-wide defaults build replaced.
func (rt *Runtime) release() {
	rt.closeDLQNow()
	if rt.pool != nil {
		rt.pool.Close()
	}
	if rt.secrets != nil {
		_ = rt.secrets.Close(context.Background())
	}
	if rt.tel != nil {
		ctx, cancel := context.WithTimeout(context.Background(), telemetry.DefaultShutdownTimeout)
		_ = rt.tel.Shutdown(ctx)
		cancel()
	}
	for _, stop := range rt.unsub {
		stop()
	}
	rt.unsub = nil
	if rt.bgCancel != nil {
		rt.bgCancel()
	}
	rt.restore()
	rt.restore = func() {}
}

// isNilPointer reports whether v holds a nil pointer.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
