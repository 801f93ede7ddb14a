package httpclient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// TracerName is the instrumentation scope of the client spans.
const TracerName = "github.com/keel-go/keel/httpclient"

// Metric names and label values.
const (
	// MetricSubsystem is the subsystem of the client's metrics:
	// keel_http_client_*.
	MetricSubsystem = "http_client"
	// CodeError is the code label of an attempt that got no response.
	CodeError = "error"
	// MethodOther is the method label of a method outside the standard
	// nine, which keeps the label bounded.
	MethodOther = "_OTHER"
)

// clientMetrics are shared by every Client of one registry.
type clientMetrics struct {
	requests   *metrics.CounterVec
	duration   *metrics.HistogramVec
	retriesVec *metrics.CounterVec
}

func newClientMetrics(reg *metrics.Registry) *clientMetrics {
	opts := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: MetricSubsystem, Name: name, Help: help, Unit: unit, Group: MetricSubsystem}
	}
	return &clientMetrics{
		requests: reg.CounterVec(opts("requests_total",
			"HTTP client attempts sent, by method and status class (1xx..5xx, or error when no response arrived).", ""),
			"method", "code"),
		duration: reg.HistogramVec(opts("request_duration_seconds",
			"Time from sending an HTTP client attempt to its response headers (or its failure), by method.", "seconds"),
			nil, "method"),
		retriesVec: reg.CounterVec(opts("retries_total",
			"HTTP client retries, by the reason the previous attempt failed: connection, timeout, 408, 429 or 5xx.", ""),
			"reason"),
	}
}

// observe records one attempt.
func (m *clientMetrics) observe(method string, resp *http.Response, d time.Duration) {
	mm := methodLabel(method)
	code := CodeError
	if resp != nil {
		code = statusClass(resp.StatusCode)
	}
	m.requests.With(mm, code).Inc()
	m.duration.With(mm).Observe(d.Seconds())
}

// retries returns the retry counter of a reason.
func (m *clientMetrics) retries(reason string) interface{ Inc() } {
	return m.retriesVec.With(reason)
}

// methodLabel maps a method to one of the nine standard methods or
// MethodOther.
func methodLabel(method string) string {
	switch method {
	case "":
		return http.MethodGet // net/http sends GET for an empty method
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return MethodOther
}

// statusClass maps a status to "1xx" .. "5xx", or "other".
func statusClass(code int) string {
	switch code / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "other"
}

// startSpan starts the client span of one attempt, a child of the span in
// ctx, named after the method as the OpenTelemetry HTTP conventions ask.
func (c *Client) startSpan(ctx context.Context, req *http.Request, attempt int) (context.Context, trace.Span) {
	tp := c.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	method := methodLabel(req.Method)
	name := method
	if method == MethodOther {
		name = "HTTP"
	}
	ctx, span := tp.Tracer(TracerName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		return ctx, span
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs,
		attribute.String("http.request.method", method),
		attribute.String("url.full", RedactURL(req.URL)),
		attribute.String("server.address", req.URL.Hostname()))
	if method == MethodOther {
		attrs = append(attrs, attribute.String("http.request.method_original", req.Method))
	}
	if p := port(req); p > 0 {
		attrs = append(attrs, attribute.Int("server.port", p))
	}
	if attempt > 1 {
		attrs = append(attrs, attribute.Int("http.request.resend_count", attempt-1))
	}
	span.SetAttributes(attrs...)
	return ctx, span
}

// port returns the URL's port, or the scheme's default.
func port(req *http.Request) int {
	if p := req.URL.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err == nil {
			return n
		}
		return 0
	}
	switch req.URL.Scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// endSpan records the outcome of an attempt and ends its span. A status of
// 400 or more and a failure without response mark the span as an error.
func endSpan(span trace.Span, resp *http.Response, err error) {
	if span.IsRecording() {
		switch {
		case err != nil:
			err = unwrapURLError(err)
			span.SetAttributes(attribute.String("error.type", errorType(err)))
			span.SetStatus(codes.Error, logging.MaskString(err.Error()))
		case resp != nil:
			span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			if resp.StatusCode >= 400 {
				span.SetAttributes(attribute.String("error.type", strconv.Itoa(resp.StatusCode)))
				span.SetStatus(codes.Error, "")
			}
		}
	}
	span.End()
}

// errorType is the bounded error.type of a failure without response.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case isTimeout(err):
		return ReasonTimeout
	}
	if _, retry := errorReason(err); !retry {
		return "permanent"
	}
	return ReasonConnection
}

// inject writes the trace context of ctx into h. A propagator given with
// WithPropagator is used as it is. Otherwise the global one is, and when
// it wrote no traceparent although ctx holds a valid span (no propagator
// installed, or one of another format) the W3C TraceContext propagator
// adds it, so that the server can always continue the trace.
func (c *Client) inject(ctx context.Context, h http.Header) {
	carrier := propagation.HeaderCarrier(h)
	if c.propagator != nil {
		c.propagator.Inject(ctx, carrier)
		return
	}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if _, ok := h["Traceparent"]; !ok && trace.SpanContextFromContext(ctx).IsValid() {
		propagation.TraceContext{}.Inject(ctx, carrier)
	}
}

// RegisterMetrics registers the keel_http_client_* metrics on reg (nil
// means metrics.Default()) without building a client, so that a metrics
// manifest lists them before a client exists. New registers them too.
func RegisterMetrics(reg *metrics.Registry) { newClientMetrics(metrics.OrDefault(reg)) }
