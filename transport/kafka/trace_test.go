package kafka

import (
	"errors"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
)

func TestParseTraceparent(t *testing.T) {
	valid := []string{
		testTraceparent,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future-fields",
	}
	for _, v := range valid {
		sc, err := ParseTraceparent(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if !sc.IsValid() || !sc.IsRemote() {
			t.Fatalf("%q: span context %v", v, sc)
		}
	}
	invalid := []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
	}
	for _, v := range invalid {
		if _, err := ParseTraceparent(v); !errors.Is(err, ErrTraceparent) {
			t.Errorf("%q: %v, want ErrTraceparent", v, err)
		}
	}
	sc, _ := ParseTraceparent(testTraceparent)
	if got := FormatTraceparent(sc); got != testTraceparent {
		t.Fatalf("round trip %q", got)
	}
	if FormatTraceparent(trace.SpanContext{}) != "" {
		t.Fatal("invalid span context formatted")
	}
}

// TraceContext reads a record's trace headers through the global
// propagator, names matched ignoring case; nothing without a propagator.
func TestTraceContextFromRecord(t *testing.T) {
	usePropagator(t, telemetry.Propagator())
	rec := transport.Record{Headers: []transport.Header{
		{Key: "TraceParent", Value: []byte(testTraceparent)},
		{Key: TracestateHeader, Value: []byte("a=1,b=2")},
	}}
	sc, ok := TraceContext(rec)
	if !ok || sc.TraceState().Get("b") != "2" || !sc.IsSampled() {
		t.Fatalf("TraceContext: %v %v", sc, ok)
	}
	rec.Headers[1].Value = []byte("not a trace state")
	if sc, ok = TraceContext(rec); !ok || sc.TraceState().Len() != 0 {
		t.Fatalf("bad tracestate must be dropped, not the trace: %v %v", sc, ok)
	}
	if _, ok := TraceContext(transport.Record{}); ok {
		t.Fatal("record without headers has a trace context")
	}
	if _, ok := TraceContext(transport.Record{Headers: []transport.Header{{Key: TraceparentHeader, Value: []byte("junk")}}}); ok {
		t.Fatal("junk traceparent accepted")
	}
	usePropagator(t, propagation.NewCompositeTextMapPropagator())
	if _, ok := TraceContext(rec); ok {
		t.Fatal("trace context extracted with no propagator installed")
	}
}
