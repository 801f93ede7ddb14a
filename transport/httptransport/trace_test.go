package httptransport

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
)

// withPropagator installs p as the global propagator for the test.
func withPropagator(t *testing.T, p propagation.TextMapPropagator) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// w3c is keel's default propagator: W3C trace context and baggage.
func w3c() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// spanContext returns a sampled remote span context with fixed ids and the
// tracestate "k=v".
func spanContext(t *testing.T, spanByte byte) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState("k=v")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, spanByte},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
		Remote:     true,
	})
}

// traceparent is the W3C traceparent of sc.
func traceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
}

// traced returns records whose headers carry traceparent tp.
func traced(tp string, payloads ...string) []transport.Record {
	rs := recs(payloads...)
	for i := range rs {
		rs[i].Headers = []transport.Header{{Key: "traceparent", Value: []byte(tp)}, {Key: "X-Other", Value: []byte("no")}}
	}
	return rs
}

func TestSenderInjectsTheSpanOfItsContext(t *testing.T) {
	withPropagator(t, w3c())
	sc := spanContext(t, 1)
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)
	other := traceparent(spanContext(t, 9))

	for _, f := range []Framing{NDJSON, JSONArray, Single} {
		t.Run(string(f), func(t *testing.T) {
			k := newSink(t, http.StatusOK, "")
			s := newSender(t, Config{URL: k.srv.URL, Framing: f, Headers: map[string]string{"Traceparent": "00-static"}})
			// The span of ctx wins over the records' own trace headers and
			// a static header of the same name.
			if err := s.SendBatch(ctx, traced(other, `{"a":1}`, `{"b":2}`)); err != nil {
				t.Fatalf("SendBatch: %v", err)
			}
			reqs := k.requests()
			if f == Single && len(reqs) != 2 || f != Single && len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			for i, r := range reqs {
				if got := r.header.Values("Traceparent"); len(got) != 1 || got[0] != traceparent(sc) {
					t.Errorf("request %d traceparent %q, want %q", i, got, traceparent(sc))
				}
				if got := r.header.Get("Tracestate"); got != "k=v" {
					t.Errorf("request %d tracestate %q, want k=v", i, got)
				}
				if got := r.header.Get("Baggage"); got != "tenant=acme" {
					t.Errorf("request %d baggage %q, want tenant=acme", i, got)
				}
				if got := r.header.Get("X-Other"); got != "" {
					t.Errorf("request %d carries the record header X-Other=%q", i, got)
				}
			}
		})
	}

	// A static tracestate belongs to another trace: the span's (here
	// none) replaces it.
	bare := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: sc.SpanID(), TraceFlags: trace.FlagsSampled})
	k := newSink(t, http.StatusOK, "")
	s := newSender(t, Config{URL: k.srv.URL, Headers: map[string]string{"Tracestate": "stale=1"}})
	if err := s.SendBatch(trace.ContextWithSpanContext(context.Background(), bare), recs(`{}`)); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	if r := k.requests()[0]; r.header.Get("Traceparent") != traceparent(bare) || len(r.header.Values("Tracestate")) != 0 {
		t.Fatalf("traceparent %q tracestate %q, want %q and none", r.header.Get("Traceparent"), r.header.Values("Tracestate"), traceparent(bare))
	}
}

func TestSenderWithoutSpanSendsNoTraceparent(t *testing.T) {
	withPropagator(t, w3c())
	k := newSink(t, http.StatusOK, "")
	s := newSender(t, Config{URL: k.srv.URL})
	if err := s.SendBatch(context.Background(), recs(`{"a":1}`, `{"b":2}`)); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	for _, name := range []string{"Traceparent", "Tracestate", "Baggage"} {
		if got := k.requests()[0].header.Values(name); len(got) != 0 {
			t.Errorf("%s %q sent without a span in ctx", name, got)
		}
	}
}

// Without a span in ctx a request passes on the trace headers its records
// share: always with "single" framing, for a batch only when they agree.
func TestSenderPassesOnTheRecordsTraceWithoutSpan(t *testing.T) {
	withPropagator(t, w3c())
	a, b := traceparent(spanContext(t, 1)), traceparent(spanContext(t, 2))

	k := newSink(t, http.StatusOK, "")
	single := newSender(t, Config{URL: k.srv.URL, Framing: Single, Headers: map[string]string{"Traceparent": "00-static"}})
	rs := append(traced(a, `{"a":1}`), traced(b, `{"b":2}`)...)
	rs[0].Headers = append(rs[0].Headers, transport.Header{Key: "Tracestate", Value: []byte("k=v")})
	if err := single.SendBatch(context.Background(), rs); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	reqs := k.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if got := reqs[0].header.Values("Traceparent"); len(got) != 1 || got[0] != a {
		t.Errorf("first request traceparent %q, want %q", got, a)
	}
	if got := reqs[0].header.Get("Tracestate"); got != "k=v" {
		t.Errorf("first request tracestate %q, want k=v", got)
	}
	if got := reqs[1].header.Get("Traceparent"); got != b {
		t.Errorf("second request traceparent %q, want %q", got, b)
	}
	if got := reqs[1].header.Values("Tracestate"); len(got) != 0 {
		t.Errorf("second request tracestate %q, want none", got)
	}

	cases := []struct {
		name    string
		records []transport.Record
		want    string
	}{
		{"shared", traced(a, `{"a":1}`, `{"b":2}`), a},
		{"different", append(traced(a, `{"a":1}`), traced(b, `{"b":2}`)...), ""},
		{"one without", append(traced(a, `{"a":1}`), recs(`{"b":2}`)...), ""},
		// The unframable record is not in the request, so the others agree.
		{"unframable left out", append(traced(a, `{"a":1}`), traced(b, "x\ny")...), a},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := newSink(t, http.StatusOK, "")
			s := newSender(t, Config{URL: k.srv.URL})
			_ = s.SendBatch(context.Background(), c.records)
			reqs := k.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if got := reqs[0].header.Get("Traceparent"); got != c.want {
				t.Fatalf("traceparent %q, want %q", got, c.want)
			}
		})
	}
}

func TestReceiverCopiesTraceHeadersToEveryRecord(t *testing.T) {
	withPropagator(t, w3c())
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	cfg.CopyHeaders = []string{"X-Tenant", "TraceParent"}
	r := newReceiver(t, cfg)
	tp := traceparent(spanContext(t, 1))
	h := http.Header{
		"Traceparent": {tp},
		"Tracestate":  {"a=1", "b=2"},
		"Baggage":     {"tenant=acme"},
		"X-Tenant":    {"acme"},
		"X-Other":     {"no"},
	}
	mustStatus(t, post(testClient(t), r.url(), "", "a\nb\nc\n", h), http.StatusOK)
	b := recv(t, r, transport.Limits{})
	if len(b.Records) != 3 {
		t.Fatalf("%d records, want 3", len(b.Records))
	}
	want := []transport.Header{
		{Key: "X-Tenant", Value: []byte("acme")},
		{Key: "TraceParent", Value: []byte(tp)}, // as listed in copy_headers, once
		{Key: "tracestate", Value: []byte("a=1,b=2")},
		{Key: "baggage", Value: []byte("tenant=acme")},
	}
	for i, rec := range b.Records {
		if len(rec.Headers) != len(want) {
			t.Fatalf("record %d headers %q, want %q", i, rec.Headers, want)
		}
		for j := range want {
			if rec.Headers[j].Key != want[j].Key || string(rec.Headers[j].Value) != string(want[j].Value) {
				t.Fatalf("record %d header %d = %s: %q, want %s: %q", i, j, rec.Headers[j].Key, rec.Headers[j].Value, want[j].Key, want[j].Value)
			}
		}
		got := trace.SpanContextFromContext(otel.GetTextMapPropagator().Extract(context.Background(), recordCarrier(rec.Headers)))
		if traceparent(got) != tp || got.TraceState().String() != "a=1,b=2" {
			t.Fatalf("record %d extracts %s %q, want %s", i, traceparent(got), got.TraceState(), tp)
		}
	}
}

// The receiver carries the headers of whatever propagator is installed,
// and the W3C ones even when none is.
func TestReceiverCopiesThePropagatorsHeaders(t *testing.T) {
	withPropagator(t, fieldsOnly{"X-B3-TraceId"})
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	r := newReceiver(t, cfg)
	h := http.Header{"X-B3-Traceid": {"463ac35c9f6413ad"}, "Traceparent": {"00-x"}}
	mustStatus(t, post(testClient(t), r.url(), "", "a\n", h), http.StatusOK)
	rec := recv(t, r, transport.Limits{}).Records[0]
	if v, ok := headerValue(rec.Headers, "x-b3-traceid"); !ok || string(v) != "463ac35c9f6413ad" {
		t.Fatalf("headers %q lack the propagator's X-B3-TraceId", rec.Headers)
	}
	if v, ok := headerValue(rec.Headers, "traceparent"); !ok || string(v) != "00-x" {
		t.Fatalf("headers %q lack traceparent", rec.Headers)
	}
}

// fieldsOnly is a propagator that only names its fields.
type fieldsOnly []string

func (fieldsOnly) Inject(context.Context, propagation.TextMapCarrier) {}
func (fieldsOnly) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (f fieldsOnly) Fields() []string { return f }

// recordCarrier reads record headers for a propagator.
type recordCarrier []transport.Header

func (c recordCarrier) Get(key string) string {
	v, _ := headerValue(c, key)
	return string(v)
}
func (recordCarrier) Set(string, string) {}
func (c recordCarrier) Keys() []string {
	keys := make([]string, len(c))
	for i := range c {
		keys[i] = c[i].Key
	}
	return keys
}

func TestQueueFill(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	cfg.QueueRecords = 4
	r := newReceiver(t, cfg)
	c := testClient(t)
	fill := func(want float64) {
		t.Helper()
		if got := r.QueueFill(); got != want {
			t.Fatalf("QueueFill() = %v, want %v", got, want)
		}
	}
	fill(0)
	mustStatus(t, post(c, r.url(), "", "a\nb\n", nil), http.StatusOK)
	fill(0.5)
	mustStatus(t, post(c, r.url(), "", "c\nd\ne\n", nil), http.StatusServiceUnavailable) // does not fit
	fill(0.5)
	recv(t, r, transport.Limits{MaxRecords: 1})
	fill(0.25)
	recv(t, r, transport.Limits{})
	fill(0)
	// An empty queue takes a request over the bound: the fill stays at 1.
	mustStatus(t, post(c, r.url(), "", "1\n2\n3\n4\n5\n6\n", nil), http.StatusOK)
	fill(1)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fill(0)
}
