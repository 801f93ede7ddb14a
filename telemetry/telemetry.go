package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	promBridge "go.opentelemetry.io/contrib/bridges/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

// shutdownGrace is how long Shutdown waits, after cancelling the exports
// still running at its deadline, for the exporters to stop.
const shutdownGrace = 2 * time.Second

// ScopeName is the instrumentation scope of the spans keel itself starts
// (Tracer, StartBlock).
const ScopeName = "github.com/keel-go/keel"

// Options are the code-level inputs of Setup; the zero value is valid.
type Options struct {
	// ServiceName and ServiceVersion are used when neither the config nor
	// the OTEL_* variables name the service: the runtime passes the app
	// name and build version here.
	ServiceName, ServiceVersion string
	// Metrics is the Prometheus registry bridged into OTLP metrics and
	// receiving keel_telemetry_*; nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives the start-up line and rate-limited export failures;
	// nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// Platform detects the Kubernetes and container attributes of the
	// resource. Its zero value reads the real machine; a nil
	// Platform.Getenv is replaced by Getenv.
	Platform platform.Detector
	// NoGlobal leaves the OpenTelemetry globals (tracer and meter
	// providers, propagator, error handler) alone. Use it for a second,
	// private pipeline and in tests; code that calls otel.Tracer or
	// Inject then sees the globals, not this Telemetry.
	NoGlobal bool
}

// Telemetry is the running tracing and metrics pipeline that Setup built.
// Its methods are safe for concurrent use.
type Telemetry struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	sdkTP      *sdktrace.TracerProvider // nil when traces are off
	sdkMP      *sdkmetric.MeterProvider // nil when metrics are off
	prop       propagation.TextMapPropagator
	res        *resource.Resource
	s          settings
	global     bool
	log        *slog.Logger
	in         *instruments
	cleanups   []func() // close the HTTP exporters' idle connections
	abort      context.CancelFunc
	abortCtx   context.Context
	stopped    []<-chan struct{} // closed when each exporter has shut down
	spanExp    *spanExporter
	shutdownMu sync.Mutex
	shutdown   bool
	shutErr    error
}

// Setup builds the tracing and metrics pipeline that cfg and the OTEL_*
// variables describe, installs it as the OpenTelemetry global (unless
// opts.NoGlobal) and returns it. The caller must call Shutdown on exit to
// flush what is buffered; register it as a lifecycle hook:
//
//	tel, err := telemetry.Setup(ctx, cfg, telemetry.Options{ServiceName: "orders"})
//	if err != nil { return err }
//	_ = lifecycle.OnShutdown("telemetry", tel.Shutdown)
//
// With no endpoint configured nothing is exported: the tracer and meter
// providers are no-ops that start no goroutine, and the W3C TraceContext and
// Baggage propagators are still installed, so a trace that arrives in a
// record's headers passes through to the records sent on (and into the log
// lines). A bad key or variable is an error (matching ErrInvalidConfig) that
// names it; Setup then installs nothing.
func Setup(ctx context.Context, cfg Config, opts Options) (*Telemetry, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s, err := resolve(cfg, getenv, opts)
	if err != nil {
		return nil, err
	}
	reg := metrics.OrDefault(opts.Metrics)
	t := &Telemetry{
		tp:     tracenoop.NewTracerProvider(),
		mp:     metricnoop.NewMeterProvider(),
		prop:   newPropagator(s.propagators),
		res:    resource.Empty(),
		s:      s,
		global: !opts.NoGlobal,
		log:    log,
		in:     newInstruments(reg),
	}
	t.abortCtx, t.abort = context.WithCancel(context.Background())
	if s.traces != nil || s.metrics != nil {
		det := opts.Platform
		if det.Getenv == nil {
			det.Getenv = getenv
		}
		res, warn := buildResource(ctx, s, det)
		if res == nil {
			t.abort()
			return nil, warn
		}
		if warn != nil {
			log.WarnContext(ctx, "telemetry: some resource attributes could not be detected", "error", warn.Error())
		}
		t.res = res
	}
	if s.traces != nil {
		if err := t.startTraces(ctx); err != nil {
			t.abort()
			return nil, err
		}
	}
	if s.metrics != nil {
		if err := t.startMetrics(ctx, reg); err != nil {
			if t.sdkTP != nil {
				_ = t.sdkTP.Shutdown(ctx)
			}
			for _, c := range t.cleanups {
				c()
			}
			t.abort()
			return nil, err
		}
	}
	t.in.enabled.With(signalTraces).Set(boolGauge(s.traces != nil))
	t.in.enabled.With(signalMetrics).Set(boolGauge(s.metrics != nil))
	if t.global {
		otel.SetTextMapPropagator(t.prop)
		otel.SetTracerProvider(t.tp)
		otel.SetMeterProvider(t.mp)
		if t.sdkTP != nil || t.sdkMP != nil {
			otel.SetErrorHandler(&errorHandler{in: t.in, log: log})
		}
	}
	t.logStart(ctx)
	return t, nil
}

func (t *Telemetry) startTraces(ctx context.Context) error {
	exp, cleanup, err := newSpanExporter(ctx, t.s.traces)
	if err != nil {
		return err
	}
	t.cleanups = append(t.cleanups, cleanup)
	b := t.s.batch
	wrapped := &spanExporter{SpanExporter: exp, stopper: newStopper(t.abortCtx), in: t.in, log: t.log, t: t.s.traces}
	t.stopped = append(t.stopped, wrapped.done)
	t.spanExp = wrapped
	bsp := sdktrace.NewBatchSpanProcessor(wrapped,
		sdktrace.WithBatchTimeout(b.ScheduleDelay),
		sdktrace.WithMaxQueueSize(b.MaxQueueSize),
		sdktrace.WithMaxExportBatchSize(b.MaxExportBatchSize),
		sdktrace.WithExportTimeout(b.ExportTimeout),
	)
	t.sdkTP = sdktrace.NewTracerProvider(
		sdktrace.WithResource(t.res),
		sdktrace.WithSampler(newSampler(t.s.sampler, t.s.samplerArg)),
		sdktrace.WithSpanProcessor(bsp),
	)
	t.tp = t.sdkTP
	return nil
}

func (t *Telemetry) startMetrics(ctx context.Context, reg *metrics.Registry) error {
	exp, cleanup, err := newMetricExporter(ctx, t.s.metrics)
	if err != nil {
		return err
	}
	t.cleanups = append(t.cleanups, cleanup)
	readerOpts := []sdkmetric.PeriodicReaderOption{
		sdkmetric.WithInterval(t.s.metricInterval),
		sdkmetric.WithTimeout(t.s.metricTimeout),
	}
	if t.s.bridge {
		readerOpts = append(readerOpts, sdkmetric.WithProducer(promBridge.NewMetricProducer(promBridge.WithGatherer(reg.Gatherer()))))
	}
	wrapped := &metricExporter{Exporter: exp, stopper: newStopper(t.abortCtx), in: t.in, log: t.log, t: t.s.metrics}
	t.stopped = append(t.stopped, wrapped.done)
	reader := sdkmetric.NewPeriodicReader(wrapped, readerOpts...)
	t.sdkMP = sdkmetric.NewMeterProvider(sdkmetric.WithResource(t.res), sdkmetric.WithReader(reader))
	t.mp = t.sdkMP
	return nil
}

func (t *Telemetry) logStart(ctx context.Context) {
	if t.s.traces == nil && t.s.metrics == nil {
		t.log.InfoContext(ctx, "telemetry export off", "reason", t.s.reason, "propagators", t.s.propagators)
		return
	}
	attrs := []any{"service_name", t.s.serviceName, "propagators", t.s.propagators}
	if tr := t.s.traces; tr != nil {
		attrs = append(attrs, "traces_endpoint", tr.url, "traces_protocol", tr.protocol,
			"sampler", t.s.sampler, "sampler_arg", t.s.samplerArg)
	}
	if m := t.s.metrics; m != nil {
		attrs = append(attrs, "metrics_endpoint", m.url, "metrics_protocol", m.protocol,
			"metrics_interval", t.s.metricInterval.String(), "prometheus_bridge", t.s.bridge)
	}
	t.log.InfoContext(ctx, "telemetry export on", attrs...)
}

// TracerProvider returns the tracer provider: the SDK's when traces are
// exported, else a no-op one.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider returns the meter provider: the SDK's when OTLP metrics are
// exported, else a no-op one. Instruments made from it are exported over
// OTLP only; they do not appear on the Prometheus endpoint.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// Tracer returns the tracer of keel's own instrumentation scope.
func (t *Telemetry) Tracer() trace.Tracer { return t.tp.Tracer(ScopeName) }

// Propagator returns the text-map propagator that Setup built from the
// propagators setting.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.prop }

// Resource returns the resource attached to every span and metric; empty
// when nothing is exported.
func (t *Telemetry) Resource() *resource.Resource { return t.res }

// TracesEnabled reports whether spans are exported.
func (t *Telemetry) TracesEnabled() bool { return t.sdkTP != nil }

// MetricsEnabled reports whether metrics are exported over OTLP.
func (t *Telemetry) MetricsEnabled() bool { return t.sdkMP != nil }

// ForceFlush exports every finished span and a fresh collection of metrics
// now, waiting at most until ctx ends.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	var errs []error
	if t.sdkTP != nil {
		if err := t.sdkTP.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush spans: %w", err))
		}
	}
	if t.sdkMP != nil {
		if err := t.sdkMP.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown flushes what is buffered (finished spans, a last collection of
// metrics) and stops the exporters, within the shutdown timeout or ctx's
// deadline, whichever comes first. Data not sent by then is dropped and
// the error says so. Later calls return the first call's result. When the
// providers are still the OpenTelemetry globals they are replaced by no-op
// ones; the propagator stays, so traces still pass through. Its signature
// fits lifecycle.Hook.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownMu.Lock()
	defer t.shutdownMu.Unlock()
	if t.shutdown {
		return t.shutErr
	}
	t.shutdown = true
	if t.sdkTP == nil && t.sdkMP == nil {
		t.abort()
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.s.shutdownTimeout)
	defer cancel()
	// At the deadline, exports still running are cancelled, so the batch
	// processor's last export ends and no goroutine outlives Shutdown by
	// more than the exporters take to notice.
	stopAbort := context.AfterFunc(ctx, t.abort)
	defer stopAbort()
	start := time.Now()
	var errs []error
	var failedBefore int64
	if t.spanExp != nil {
		failedBefore = t.spanExp.failed.Load()
	}
	if t.sdkTP != nil {
		if err := t.sdkTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush and stop the trace exporter (%s): %w", t.s.traces, err))
		}
	}
	if t.sdkMP != nil {
		if err := t.sdkMP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("telemetry: flush and stop the metric exporter (%s): %w", t.s.metrics, err))
		}
	}
	t.abort()
	grace := time.NewTimer(shutdownGrace)
wait:
	for _, done := range t.stopped {
		select {
		case <-done:
		case <-grace.C:
			errs = append(errs, errors.New("telemetry: an exporter did not stop after its export was cancelled"))
			break wait
		}
	}
	grace.Stop()
	if t.spanExp != nil {
		// The batch processor reports its last export's failure to the
		// error handler only: say here that spans were lost.
		if n := t.spanExp.failed.Load() - failedBefore; n > 0 {
			var last error
			if h := t.spanExp.lastErr.Load(); h != nil {
				last = h.err
			}
			errs = append(errs, fmt.Errorf("telemetry: %d spans could not be sent to the trace exporter (%s) during shutdown: %w", n, t.s.traces, last))
		}
	}
	for _, c := range t.cleanups {
		c()
	}
	if t.global {
		if t.sdkTP != nil && otel.GetTracerProvider() == trace.TracerProvider(t.sdkTP) {
			otel.SetTracerProvider(tracenoop.NewTracerProvider())
		}
		if t.sdkMP != nil && otel.GetMeterProvider() == metric.MeterProvider(t.sdkMP) {
			otel.SetMeterProvider(metricnoop.NewMeterProvider())
		}
	}
	t.in.enabled.With(signalTraces).Set(0)
	t.in.enabled.With(signalMetrics).Set(0)
	t.shutErr = errors.Join(errs...)
	if t.shutErr != nil {
		t.log.WarnContext(ctx, "telemetry shutdown did not flush everything", "error", t.shutErr.Error(),
			"elapsed", time.Since(start).String())
	}
	return t.shutErr
}

// newSampler builds the sampler of a checked name and ratio.
func newSampler(name string, ratio float64) sdktrace.Sampler {
	switch name {
	case SamplerAlwaysOn:
		return sdktrace.AlwaysSample()
	case SamplerAlwaysOff:
		return sdktrace.NeverSample()
	case SamplerTraceIDRatio:
		return sdktrace.TraceIDRatioBased(ratio)
	case SamplerParentBasedAlwaysOff:
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case SamplerParentBasedTraceIDRatio:
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	default:
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
