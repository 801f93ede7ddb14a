package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// logEvery is the most often an export failure or an SDK error is logged;
// every one is counted.
const logEvery = 30 * time.Second

// instruments are the package's own metrics.
type instruments struct {
	enabled      *metrics.GaugeVec
	exports      *metrics.CounterVec
	spansOK      prometheus.Counter
	spansFailed  prometheus.Counter
	sdkErrors    prometheus.Counter
	exportLog    *logging.Sampler
	sdkErrorsLog *logging.Sampler
}

func newInstruments(reg *metrics.Registry) *instruments {
	o := func(name, help string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "telemetry", Name: name, Help: help, Group: "telemetry"}
	}
	return &instruments{
		enabled: reg.GaugeVec(o("enabled", "1 when the signal is exported over OTLP, 0 when it is not."), "signal"),
		exports: reg.CounterVec(o("exports_total", "OTLP export requests by signal and result (success, failure)."), "signal", "result"),
		spansOK: reg.Counter(o("spans_exported_total", "Spans the collector accepted.")),
		spansFailed: reg.Counter(o("spans_failed_total",
			"Spans lost because their export failed (collector unreachable or refusing) after the exporter's retries.")),
		sdkErrors: reg.Counter(o("sdk_errors_total",
			"Errors the OpenTelemetry SDK reported: failed exports (also counted in exports_total), bridge conversion errors.")),
		exportLog:    logging.Every(logEvery),
		sdkErrorsLog: logging.Every(logEvery),
	}
}

// exportFailed counts a failed export and logs it at most once per logEvery.
// The target's description never holds a header.
func (in *instruments) exportFailed(ctx context.Context, log *slog.Logger, t *target, items int, err error) {
	in.exports.With(t.signal, "failure").Inc()
	if ok, suppressed := in.exportLog.Allow(); ok {
		log.WarnContext(ctx, "telemetry export failed; the data is dropped",
			"signal", t.signal, "endpoint", t.url, "protocol", t.protocol, "items", items,
			"error", err.Error(), "suppressed", suppressed)
	}
}

// errAbandoned cancels the exports still running at the shutdown deadline.
var errAbandoned = errors.New("telemetry: export abandoned at the shutdown deadline")

// stopper is what both exporter wrappers share: exports are cancelled when
// abort ends (the shutdown deadline), and done closes when the exporter has
// been shut down, which for spans is after the batch processor's last
// export.
type stopper struct {
	abort    context.Context
	done     chan struct{}
	doneOnce sync.Once
}

func newStopper(abort context.Context) stopper {
	return stopper{abort: abort, done: make(chan struct{})}
}

// exportContext derives the context of one export: cancelled with ctx or
// at the shutdown deadline.
func (s *stopper) exportContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.abort, func() { cancel(errAbandoned) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

func (s *stopper) markDone() { s.doneOnce.Do(func() { close(s.done) }) }

// spanExporter counts what passes through a span exporter.
type spanExporter struct {
	sdktrace.SpanExporter
	stopper
	in      *instruments
	log     *slog.Logger
	t       *target
	failed  atomic.Int64                // spans lost, for Shutdown's report
	lastErr atomic.Pointer[errorHolder] // the last export error
}

// errorHolder boxes an error for atomic.Pointer.
type errorHolder struct{ err error }

// ExportSpans exports and counts.
func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	ctx, release := e.exportContext(ctx)
	defer release()
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.failed.Add(int64(len(spans)))
		e.lastErr.Store(&errorHolder{err})
		e.in.spansFailed.Add(float64(len(spans)))
		e.in.exportFailed(ctx, e.log, e.t, len(spans), err)
		return err
	}
	e.in.spansOK.Add(float64(len(spans)))
	e.in.exports.With(e.t.signal, "success").Inc()
	return nil
}

// Shutdown stops the exporter and marks the span pipeline stopped.
func (e *spanExporter) Shutdown(ctx context.Context) error {
	defer e.markDone()
	return e.SpanExporter.Shutdown(ctx)
}

// metricExporter counts what passes through a metric exporter.
type metricExporter struct {
	sdkmetric.Exporter
	stopper
	in  *instruments
	log *slog.Logger
	t   *target
}

// Export exports and counts.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	ctx, release := e.exportContext(ctx)
	defer release()
	err := e.Exporter.Export(ctx, rm)
	if err != nil {
		n := 0
		for _, sm := range rm.ScopeMetrics {
			n += len(sm.Metrics)
		}
		e.in.exportFailed(ctx, e.log, e.t, n, err)
		return err
	}
	e.in.exports.With(e.t.signal, "success").Inc()
	return nil
}

// Shutdown stops the exporter and marks the metric pipeline stopped.
func (e *metricExporter) Shutdown(ctx context.Context) error {
	defer e.markDone()
	return e.Exporter.Shutdown(ctx)
}

// errorHandler receives the errors the SDK reports through otel.Handle:
// counted, and logged at most once per logEvery.
type errorHandler struct {
	in  *instruments
	log *slog.Logger
}

// Handle counts and logs err.
func (h *errorHandler) Handle(err error) {
	if err == nil {
		return
	}
	h.in.sdkErrors.Inc()
	if ok, suppressed := h.in.sdkErrorsLog.Allow(); ok {
		h.log.Warn("telemetry SDK error", "error", err.Error(), "suppressed", suppressed)
	}
}
