package telemetry

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// remoteContext returns a context holding a sampled span context as if it
// came from upstream.
func remoteContext(tid byte, sid byte) (context.Context, trace.SpanContext) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{tid, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		SpanID:  trace.SpanID{sid, 1, 2, 3, 4, 5, 6, 7}, TraceFlags: trace.FlagsSampled,
	})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

func TestInjectExtractRoundTrip(t *testing.T) {
	installPropagator(t)
	ctx, sc := remoteContext(0xab, 0xcd)
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx = baggage.ContextWithBaggage(ctx, bag)

	rec := transport.Record{Payload: []byte("x"), Headers: []transport.Header{{Key: "content-type", Value: []byte("json")}}}
	Inject(ctx, &rec)
	tp, ok := rec.Header(HeaderTraceparent)
	if !ok || string(tp) != "00-ab0102030405060708090a0b0c0d0e0f-cd01020304050607-01" {
		t.Fatalf("traceparent %q (present %v)", tp, ok)
	}
	if b, _ := rec.Header(HeaderBaggage); string(b) != "tenant=acme" {
		t.Errorf("baggage header %q", b)
	}
	if ct, _ := rec.Header("content-type"); string(ct) != "json" {
		t.Error("Inject lost an existing header")
	}

	got := Extract(context.Background(), rec)
	gsc := trace.SpanContextFromContext(got)
	if gsc.TraceID() != sc.TraceID() || gsc.SpanID() != sc.SpanID() || !gsc.IsSampled() || !gsc.IsRemote() {
		t.Errorf("extracted %v, want %v remote", gsc, sc)
	}
	if v := baggage.FromContext(got).Member("tenant").Value(); v != "acme" {
		t.Errorf("baggage tenant %q", v)
	}
}

// The context survives a real transport: injected before Send, extracted
// after Recv.
func TestTraceparentThroughInmemTransport(t *testing.T) {
	installPropagator(t)
	q := inmem.New(inmem.Config{Capacity: 4})
	defer func() { _ = q.Close(context.Background()) }()
	ctx, sc := remoteContext(0x11, 0x22)
	rec := transport.Record{Payload: []byte(`{"a":1}`)}
	Inject(ctx, &rec)
	if err := q.Send(ctx, rec); err != nil {
		t.Fatal(err)
	}
	b, err := q.Recv(context.Background(), transport.Limits{MaxRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 1 {
		t.Fatalf("received %d records", len(b.Records))
	}
	if got := trace.SpanContextFromContext(Extract(context.Background(), b.Records[0])); got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("after the transport: %v, want %v", got, sc)
	}
}

// Inject replaces an old traceparent (any case) and never writes into an
// array a copy of the record shares.
func TestInjectReplacesWithoutAliasing(t *testing.T) {
	installPropagator(t)
	old := "00-00000000000000000000000000000001-0000000000000001-01"
	headers := make([]transport.Header, 2, 8) // spare capacity a naive append would write into
	headers[0] = transport.Header{Key: "Traceparent", Value: []byte(old)}
	headers[1] = transport.Header{Key: "k", Value: []byte("v")}
	orig := transport.Record{Headers: headers}
	cp := orig // shares the backing array
	ctx, sc := remoteContext(0x33, 0x44)
	Inject(ctx, &cp)

	n := 0
	for _, h := range cp.Headers {
		if strings.EqualFold(h.Key, HeaderTraceparent) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d traceparent headers after Inject: %v", n, cp.Headers)
	}
	if got := trace.SpanContextFromContext(Extract(context.Background(), cp)); got.TraceID() != sc.TraceID() {
		t.Errorf("extracted %v", got.TraceID())
	}
	if string(orig.Headers[0].Value) != old || orig.Headers[0].Key != "Traceparent" || len(orig.Headers) != 2 {
		t.Errorf("the original record changed: %v", orig.Headers)
	}
	if spare := headers[:3][2]; spare.Key != "" {
		t.Errorf("Inject wrote into the shared array's spare capacity: %v", spare)
	}
	// Extract finds a header whatever its case.
	upper := transport.Record{Headers: []transport.Header{{Key: "TRACEPARENT", Value: []byte(old)}}}
	if got := trace.SpanContextFromContext(Extract(context.Background(), upper)); !got.IsValid() {
		t.Error("an upper-case TRACEPARENT was not read")
	}
}

func TestInjectWithoutSpanAddsNothing(t *testing.T) {
	installPropagator(t)
	rec := transport.Record{Payload: []byte("x")}
	Inject(context.Background(), &rec)
	if len(rec.Headers) != 0 {
		t.Errorf("headers %v", rec.Headers)
	}
}

// A malformed traceparent is ignored: the context comes back unchanged.
func TestExtractIgnoresMalformed(t *testing.T) {
	installPropagator(t)
	for _, v := range []string{
		"", "garbage", "00-xyz-abc-01",
		"00-00000000000000000000000000000000-0000000000000001-01", // zero trace id
		"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // zero span id
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // forbidden version
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
	} {
		rec := transport.Record{Headers: []transport.Header{{Key: HeaderTraceparent, Value: []byte(v)}}}
		ctx := context.WithValue(context.Background(), struct{}{}, 1)
		if got := trace.SpanContextFromContext(Extract(ctx, rec)); got.IsValid() {
			t.Errorf("%q extracted to a valid context %v", v, got)
		}
	}
}

func TestHTTPRoundTrip(t *testing.T) {
	installPropagator(t)
	ctx, sc := remoteContext(0x55, 0x66)
	h := http.Header{}
	InjectHTTP(ctx, h)
	if h.Get("Traceparent") == "" {
		t.Fatal("no traceparent header")
	}
	if got := trace.SpanContextFromContext(ExtractHTTP(context.Background(), h)); got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("extracted %v", got)
	}
}

// The configured propagators are the ones used: "none" propagates nothing,
// baggage alone carries no traceparent.
func TestConfiguredPropagators(t *testing.T) {
	ctx, _ := remoteContext(1, 2)
	rec := transport.Record{}
	newPropagator(nil).Inject(ctx, RecordCarrier{Record: &rec})
	if len(rec.Headers) != 0 {
		t.Errorf("none injected %v", rec.Headers)
	}
	p := newPropagator([]string{PropagatorBaggage})
	p.Inject(ctx, RecordCarrier{Record: &rec})
	if _, ok := rec.Header(HeaderTraceparent); ok {
		t.Error("baggage-only propagator wrote a traceparent")
	}
	fields := Propagator().Fields()
	sort.Strings(fields)
	if got := strings.Join(fields, ","); got != "baggage,traceparent,tracestate" {
		t.Errorf("default fields %s", got)
	}
}
