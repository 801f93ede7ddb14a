package httpclient_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/httpclient"
)

// useGlobalTracing installs a recording tracer provider and p as the
// global ones for the test, and restores the previous ones after it.
func useGlobalTracing(t *testing.T, p propagation.TextMapPropagator) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevP := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevP)
		_ = tp.Shutdown(context.Background())
	})
	return rec
}

// parseTraceparent splits "00-<trace id>-<span id>-<flags>".
func parseTraceparent(t *testing.T, v string) (traceID, spanID string) {
	t.Helper()
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("traceparent %q is not W3C", v)
	}
	return parts[1], parts[2]
}

func attrOf(span sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range span.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestClientSpanPerAttemptAndTraceparent(t *testing.T) {
	rec := useGlobalTracing(t, propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	srv := newServer(t, reply{Status: 503}, reply{Status: 200, Body: `{}`})
	c, _, _ := newClient(t, httpclient.Config{})

	ctx, parent := otel.Tracer("test").Start(context.Background(), "parent")
	if err := c.DoJSON(ctx, http.MethodGet, srv.URL+"/items?token=tok-s3cr3t&page=2", nil, nil); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var clientSpans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			clientSpans = append(clientSpans, s)
		}
	}
	reqs := srv.requests()
	if len(clientSpans) != 2 || len(reqs) != 2 {
		t.Fatalf("%d client spans, %d requests; want 2 and 2", len(clientSpans), len(reqs))
	}
	psc := parent.SpanContext()
	for i, r := range reqs {
		tid, sid := parseTraceparent(t, r.Header.Get("Traceparent"))
		s := clientSpans[i]
		if tid != psc.TraceID().String() || sid != s.SpanContext().SpanID().String() {
			t.Fatalf("attempt %d traceparent %s/%s, want trace %s and the attempt's span %s", i+1, tid, sid, psc.TraceID(), s.SpanContext().SpanID())
		}
		if s.Parent().SpanID() != psc.SpanID() || s.Name() != "GET" {
			t.Fatalf("span %d: name %q, parent %s; want GET under %s", i+1, s.Name(), s.Parent().SpanID(), psc.SpanID())
		}
		if u, _ := attrOf(s, "url.full"); strings.Contains(u.AsString(), "tok-s3cr3t") || !strings.Contains(u.AsString(), "page=2") {
			t.Fatalf("url.full %q", u.AsString())
		}
	}
	if v, _ := attrOf(clientSpans[0], "http.response.status_code"); v.AsInt64() != 503 || clientSpans[0].Status().Code != codes.Error {
		t.Fatalf("first span: status %v, span status %v", v.AsInt64(), clientSpans[0].Status())
	}
	if _, ok := attrOf(clientSpans[0], "http.request.resend_count"); ok {
		t.Fatal("first attempt carries a resend count")
	}
	if v, _ := attrOf(clientSpans[1], "http.request.resend_count"); v.AsInt64() != 1 {
		t.Fatalf("second attempt resend count %v, want 1", v.AsInt64())
	}
	if clientSpans[1].Status().Code == codes.Error {
		t.Fatal("successful attempt marked as error")
	}
}

func TestTraceparentWithoutInstalledPropagator(t *testing.T) {
	// An empty global propagator stands for "nothing installed yet".
	rec := useGlobalTracing(t, propagation.NewCompositeTextMapPropagator())
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{})
	ctx, parent := otel.Tracer("test").Start(context.Background(), "parent")
	defer parent.End()
	if err := c.DoJSON(ctx, http.MethodGet, srv.URL, nil, nil); err != nil {
		t.Fatal(err)
	}
	tid, _ := parseTraceparent(t, srv.requests()[0].Header.Get("Traceparent"))
	if tid != parent.SpanContext().TraceID().String() {
		t.Fatalf("trace id %s, want %s", tid, parent.SpanContext().TraceID())
	}
	if len(rec.Ended()) != 1 {
		t.Fatalf("%d spans ended, want the client span", len(rec.Ended()))
	}
}

func TestNoTraceparentWithoutSpan(t *testing.T) {
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{}, httpclient.WithTracerProvider(noop.NewTracerProvider()))
	if err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v := srv.requests()[0].Header.Get("Traceparent"); v != "" {
		t.Fatalf("traceparent %q sent without a span", v)
	}
}

func TestExplicitPropagatorUsedAsIs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{},
		httpclient.WithTracerProvider(tp), httpclient.WithPropagator(propagation.Baggage{}))
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	defer parent.End()
	if err := c.DoJSON(ctx, http.MethodGet, srv.URL, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v := srv.requests()[0].Header.Get("Traceparent"); v != "" {
		t.Fatalf("traceparent %q added to an explicit propagator", v)
	}
	if len(rec.Ended()) != 1 || rec.Ended()[0].SpanKind() != trace.SpanKindClient {
		t.Fatal("no client span from the explicit tracer provider")
	}
}

func TestSpanOnConnectionFailure(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c, _, _ := newClient(t, httpclient.Config{MaxAttempts: 2}, httpclient.WithTracerProvider(tp))
	_, _ = get(t, c, "http://"+refusedAddr(t)+"/")
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for _, s := range spans {
		if v, _ := attrOf(s, "error.type"); v.AsString() != "connection" || s.Status().Code != codes.Error {
			t.Fatalf("span error.type %q, status %v", v.AsString(), s.Status())
		}
	}
}
