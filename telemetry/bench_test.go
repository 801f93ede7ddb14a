package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/transport"
)

// discardExporter drops spans: the benchmark measures the SDK, not a
// network.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkSpan is the cost of starting and ending one child span: the
// no-op tracer (the baseline: telemetry off), the SDK with a batch
// processor (telemetry on, sampled), and the SDK with the root sampled out.
func BenchmarkSpan(b *testing.B) {
	run := func(b *testing.B, tp trace.TracerProvider) {
		tr := tp.Tracer("bench")
		ctx, parent := tr.Start(context.Background(), "parent")
		defer parent.End()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			_, s := tr.Start(ctx, "child")
			s.End()
		}
	}
	b.Run("noop", func(b *testing.B) { run(b, tracenoop.NewTracerProvider()) })
	b.Run("sdk-batch", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}, sdktrace.WithMaxQueueSize(DefaultMaxQueueSize)))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, tp)
	})
	b.Run("sdk-sampled-out", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())),
			sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(tracetest.NewNoopExporter())))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, tp)
	})
}

// BenchmarkInjectExtract is the per-record cost of carrying the context
// through a record's headers.
func BenchmarkInjectExtract(b *testing.B) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(Propagator())
	defer otel.SetTextMapPropagator(prev)
	ctx, _ := remoteContext(1, 2)
	b.Run("inject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := transport.Record{Headers: []transport.Header{{Key: "k", Value: []byte("v")}}}
			Inject(ctx, &rec)
		}
	})
	rec := transport.Record{Headers: []transport.Header{{Key: "k", Value: []byte("v")}}}
	Inject(ctx, &rec)
	b.Run("extract", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Extract(context.Background(), rec)
		}
	})
	b.Run("extract-no-headers", func(b *testing.B) {
		plain := transport.Record{}
		b.ReportAllocs()
		for b.Loop() {
			_ = Extract(context.Background(), plain)
		}
	})
}

// BenchmarkStartBlock is the cost of a block span over 1000 records, each
// with its own context (the worst case: 128 links) or none.
func BenchmarkStartBlock(b *testing.B) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(Propagator())
	defer otel.SetTextMapPropagator(prev)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("bench")
	traced := make([]transport.Record, 1000)
	plain := make([]transport.Record, 1000)
	for i := range traced {
		_, sc := remoteContext(byte(i), byte(i>>8))
		traced[i] = withContext(sc)
		plain[i] = transport.Record{Headers: []transport.Header{{Key: "k", Value: []byte("v")}}}
	}
	for _, bc := range []struct {
		name string
		recs []transport.Record
	}{{"1000-traced", traced}, {"1000-plain", plain}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, s := StartBlock(context.Background(), tr, "block", bc.recs)
				s.End()
			}
			b.ReportMetric(float64(b.N*len(bc.recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
