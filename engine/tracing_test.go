package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// countingPropagator is the W3C trace-context propagator counting the
// header lookups made through it, so a test can tell whether the engine
// read the records' headers.
type countingPropagator struct {
	propagation.TraceContext
	fields, extracts atomic.Int64
}

func (c *countingPropagator) Fields() []string {
	c.fields.Add(1)
	return c.TraceContext.Fields()
}

func (c *countingPropagator) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	c.extracts.Add(1)
	return c.TraceContext.Extract(ctx, carrier)
}

// useGlobalPropagator installs p as the global propagator for the test.
func useGlobalPropagator(t *testing.T, p propagation.TextMapPropagator) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// sdkTracer returns an always-sampling SDK tracer and the recorder of its
// spans.
func sdkTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// tracedFeed returns an inmem transport holding one record per context,
// each carrying its context's trace headers, input closed.
func tracedFeed(t *testing.T, ctxs ...context.Context) *inmem.Transport {
	t.Helper()
	tr := inmem.New(inmem.Config{Capacity: max(len(ctxs), 1)})
	for i, ctx := range ctxs {
		rec := transport.Record{Payload: jsonLine(i)}
		telemetry.Inject(ctx, &rec)
		if _, ok := rec.Header("traceparent"); !ok {
			t.Fatalf("record %d: no traceparent injected", i)
		}
		if err := tr.Inject(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	tr.CloseInput()
	return tr
}

// ctxSink is a sink that keeps the span context of each call's ctx.
type ctxSink struct {
	mu   sync.Mutex
	seen []trace.SpanContext
	fail error
}

func (s *ctxSink) sink(ctx context.Context, _ transport.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, trace.SpanContextFromContext(ctx))
	return s.fail
}

func (s *ctxSink) contexts() []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]trace.SpanContext(nil), s.seen...)
}

// blockSpans returns the ended block spans.
func blockSpans(rec *tracetest.SpanRecorder) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == engine.BlockSpanName {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestBlockSpanPerBlockLinksRecordContexts(t *testing.T) {
	useGlobalPropagator(t, propagation.TraceContext{})
	tp, rec := sdkTracer(t)
	producer := tp.Tracer("producer")
	// Two producer traces interleaved: no block shares one trace, so each
	// block span is a new root linked to its records' contexts.
	ctxA, spanA := producer.Start(context.Background(), "send-a")
	ctxB, spanB := producer.Start(context.Background(), "send-b")
	spanA.End()
	spanB.End()
	tr := tracedFeed(t, ctxA, ctxB, ctxA, ctxB, ctxA)

	e, _, _ := newEngine(t, engine.Config{MaxRecords: 2, Tracer: tp.Tracer("engine")})
	s := &ctxSink{}
	if err := e.Run(runCtx(t), tr, passThrough, s.sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	spans := blockSpans(rec)
	if len(spans) != 3 {
		t.Fatalf("block spans = %d, want 3 (blocks of 2, 2, 1)", len(spans))
	}
	seen := s.contexts()
	if len(seen) != 3 {
		t.Fatalf("sink calls = %d, want 3", len(seen))
	}
	wantRecords := []int64{2, 2, 1}
	for i, sp := range spans {
		a := attrs(sp)
		if got := a[engine.AttrRecords].AsInt64(); got != wantRecords[i] {
			t.Errorf("span %d records = %d, want %d", i, got, wantRecords[i])
		}
		if got := a[engine.AttrTokens].AsInt64(); got != wantRecords[i] {
			t.Errorf("span %d tokens = %d, want %d", i, got, wantRecords[i])
		}
		wantBytes := int64(len(jsonLine(2 * i)))
		if wantRecords[i] == 2 {
			wantBytes += int64(len(jsonLine(2*i + 1)))
		}
		if got := a[engine.AttrBytes].AsInt64(); got != wantBytes {
			t.Errorf("span %d bytes = %d, want %d", i, got, wantBytes)
		}
		if got := a[engine.AttrMode].AsString(); got != "on_demand" {
			t.Errorf("span %d mode = %q, want on_demand", i, got)
		}
		if got := a[engine.AttrReceiver].AsString(); got != tr.Name() {
			t.Errorf("span %d receiver = %q, want %q", i, got, tr.Name())
		}
		if sp.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("span %d kind = %v, want consumer", i, sp.SpanKind())
		}
		if sp.Status().Code == codes.Error {
			t.Errorf("span %d status = %v, want unset", i, sp.Status())
		}
		// The sink ran under the block span.
		if seen[i].SpanID() != sp.SpanContext().SpanID() {
			t.Errorf("sink %d ran under span %s, want the block span %s", i, seen[i].SpanID(), sp.SpanContext().SpanID())
		}
	}
	// Blocks 1 and 2 mix both traces: linked to both producer spans, roots.
	for i := range 2 {
		sp := spans[i]
		if sp.Parent().IsValid() {
			t.Errorf("span %d has parent %s; records of two traces make a root", i, sp.Parent().SpanID())
		}
		links := sp.Links()
		if len(links) != 2 || links[0].SpanContext.SpanID() != spanA.SpanContext().SpanID() ||
			links[1].SpanContext.SpanID() != spanB.SpanContext().SpanID() {
			t.Errorf("span %d links = %+v, want the two producer spans in record order", i, links)
		}
		if got := attrs(sp)[telemetry.AttrBlockLinkedContexts].AsInt64(); got != 2 {
			t.Errorf("span %d linked contexts = %d, want 2", i, got)
		}
	}
	// Block 3 holds one record of trace A: it continues that trace.
	if got := spans[2].Parent(); got.SpanID() != spanA.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("last block parent = %v, want the remote producer span %s", got.SpanID(), spanA.SpanContext().SpanID())
	}
}

func TestBlockSpanContinuesProducerTrace(t *testing.T) {
	useGlobalPropagator(t, propagation.TraceContext{})
	tp, rec := sdkTracer(t)
	ctx, producer := tp.Tracer("producer").Start(context.Background(), "send")
	producer.End()
	tr := tracedFeed(t, ctx, ctx, ctx)

	e, _, _ := newEngine(t, engine.Config{Tracer: tp.Tracer("engine")})
	if err := e.RunParsed(runCtx(t), tr, func(_ context.Context, pb *engine.ParsedBatch) (transport.Batch, error) {
		return pb.Output(), nil
	}, (&ctxSink{}).sink); err != nil {
		t.Fatalf("RunParsed: %v", err)
	}
	spans := blockSpans(rec)
	if len(spans) != 1 {
		t.Fatalf("block spans = %d, want 1", len(spans))
	}
	sp := spans[0]
	if sp.SpanContext().TraceID() != producer.SpanContext().TraceID() {
		t.Errorf("block trace = %s, want the producer's %s", sp.SpanContext().TraceID(), producer.SpanContext().TraceID())
	}
	if sp.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("block parent = %s, want the producer span %s", sp.Parent().SpanID(), producer.SpanContext().SpanID())
	}
	if n := len(sp.Links()); n != 1 {
		t.Errorf("links = %d, want 1 (three records of one span)", n)
	}
	if got := attrs(sp)[engine.AttrMode].AsString(); got != "parsed" {
		t.Errorf("mode = %q, want parsed", got)
	}
}

func TestBlockSpanErrorOnSinkFailure(t *testing.T) {
	useGlobalPropagator(t, propagation.TraceContext{})
	tp, rec := sdkTracer(t)
	e, _, _ := newEngine(t, engine.Config{Tracer: tp.Tracer("engine")})
	s := &ctxSink{fail: errBoom}
	err := e.Run(runCtx(t), feed(t, 3), passThrough, s.sink)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Run = %v, want the sink error", err)
	}
	spans := blockSpans(rec)
	if len(spans) != 1 {
		t.Fatalf("block spans = %d, want 1", len(spans))
	}
	sp := spans[0]
	if sp.Status().Code != codes.Error || sp.Status().Description == "" {
		t.Errorf("status = %+v, want an error with a description", sp.Status())
	}
	if got := attrs(sp)[engine.AttrStage].AsString(); got != string(engine.StageSink) {
		t.Errorf("stage = %q, want sink", got)
	}
	var exception bool
	for _, ev := range sp.Events() {
		if ev.Name == "exception" {
			exception = true
		}
	}
	if !exception {
		t.Errorf("events = %+v, want the error recorded", sp.Events())
	}
	// Records without trace headers: a root span with no link.
	if sp.Parent().IsValid() || len(sp.Links()) != 0 {
		t.Errorf("parent %v, links %d: want a root without links", sp.Parent(), len(sp.Links()))
	}
}

func TestBlockSpanStreamingSubBlockEvents(t *testing.T) {
	useGlobalPropagator(t, propagation.TraceContext{})
	tp, rec := sdkTracer(t)
	e, _, _ := newEngine(t, engine.Config{Tracer: tp.Tracer("engine"), SubBlockBytes: 0})
	c := &collector{}
	if err := e.RunStreaming(runCtx(t), feed(t, 3), passThrough, c.sink); err != nil {
		t.Fatalf("RunStreaming: %v", err)
	}
	spans := blockSpans(rec)
	if len(spans) != 1 {
		t.Fatalf("block spans = %d, want 1 for one block of three sub-blocks", len(spans))
	}
	var subs []int64
	for _, ev := range spans[0].Events() {
		if ev.Name != engine.SubBlockEventName {
			continue
		}
		for _, kv := range ev.Attributes {
			if kv.Key == engine.AttrSubBlock {
				subs = append(subs, kv.Value.AsInt64())
			}
		}
	}
	if len(subs) != 3 || subs[0] != 0 || subs[2] != 2 {
		t.Errorf("sub-block events = %v, want [0 1 2]", subs)
	}
	if got := attrs(spans[0])[engine.AttrMode].AsString(); got != "streaming" {
		t.Errorf("mode = %q, want streaming", got)
	}
}

func TestTracingOffStartsNoSpanAndReadsNoHeader(t *testing.T) {
	prop := &countingPropagator{}
	useGlobalPropagator(t, prop)
	tp, rec := sdkTracer(t)
	ctx, producer := tp.Tracer("producer").Start(context.Background(), "send")
	producer.End()
	rec.Reset()
	// Injecting uses the propagator; count from here on.
	newFeed := func() *inmem.Transport {
		tr := tracedFeed(t, ctx, ctx)
		prop.fields.Store(0)
		prop.extracts.Store(0)
		return tr
	}

	cases := []struct {
		name   string
		tracer trace.Tracer
	}{
		{"default global provider", nil},
		{"noop tracer", noop.NewTracerProvider().Tracer("x")},
		{"deprecated noop tracer", trace.NewNoopTracerProvider().Tracer("x")}, //nolint:staticcheck // still a no-op users may pass
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := newFeed()
			e, _, _ := newEngine(t, engine.Config{Tracer: tc.tracer})
			s := &ctxSink{}
			if err := e.Run(runCtx(t), tr, passThrough, s.sink); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n, m := prop.fields.Load(), prop.extracts.Load(); n != 0 || m != 0 {
				t.Errorf("propagator used %d+%d times; tracing off must not read headers", n, m)
			}
			for _, sc := range s.contexts() {
				if sc.IsValid() {
					t.Errorf("sink ran under span %s; tracing off starts none", sc.SpanID())
				}
			}
		})
	}
	if n := len(rec.Started()); n != 0 {
		t.Errorf("%d spans started with tracing off", n)
	}

	// The same records with an SDK tracer are read: the counters can fail.
	tr := newFeed()
	e, _, _ := newEngine(t, engine.Config{Tracer: tp.Tracer("engine")})
	if err := e.Run(runCtx(t), tr, passThrough, (&ctxSink{}).sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if prop.extracts.Load() == 0 || len(blockSpans(rec)) != 1 {
		t.Errorf("tracing on: %d extracts, %d block spans; want headers read and one span",
			prop.extracts.Load(), len(blockSpans(rec)))
	}
}

func TestTracerFromGlobalProviderInstalledAfterNew(t *testing.T) {
	useGlobalPropagator(t, propagation.TraceContext{})
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	e, _, _ := newEngine(t, engine.Config{})
	tp, rec := sdkTracer(t)
	otel.SetTracerProvider(tp)

	if err := e.Run(runCtx(t), feed(t, 2), passThrough, (&ctxSink{}).sink); err != nil {
		t.Fatalf("Run: %v", err)
	}
	spans := blockSpans(rec)
	if len(spans) != 1 {
		t.Fatalf("block spans = %d, want 1 from the provider installed after New", len(spans))
	}
	if got := spans[0].InstrumentationScope().Name; got != engine.TracerName {
		t.Errorf("scope = %q, want %q", got, engine.TracerName)
	}
}
