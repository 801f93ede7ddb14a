package httptransport_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/httptransport"
)

// A trace started before an HTTP send continues in the receiving engine's
// block span: the sender writes the span's traceparent into the request,
// the receiver copies it to every record, and the engine's block span is a
// child of the sending span, in its trace, with the sink running under it.
func TestTraceContinuesFromHTTPSendToEngineBlockSpan(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(telemetry.Propagator())
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx, cancelTest := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelTest()
	logger := slog.New(slog.DiscardHandler)
	newRegistry := func() *metrics.Registry {
		return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	}

	in, err := httptransport.NewReceiver(httptransport.Config{Listen: "127.0.0.1:0", Metrics: newRegistry(), Logger: logger})
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	defer in.Close(context.Background())
	out, err := httptransport.NewSender(httptransport.Config{URL: "http://" + in.Addr() + httptransport.DefaultPath, Metrics: newRegistry(), Logger: logger})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	defer out.Close(context.Background())

	eng, err := engine.New(engine.Config{
		Tracer:       tp.Tracer("consumer"),
		DrainTimeout: -1,
		Metrics:      newRegistry(),
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu      sync.Mutex
		sinkSCs []trace.SpanContext
		got     int
	)
	sink := func(ctx context.Context, b transport.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		sinkSCs = append(sinkSCs, trace.SpanContextFromContext(ctx))
		got += len(b.Records)
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- eng.Run(runCtx, in, func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }, sink)
	}()

	// Commit mode: SendBatch returns once the engine committed the records.
	sendCtx, sendSpan := tp.Tracer("producer").Start(ctx, "orders.send", trace.WithSpanKind(trace.SpanKindProducer))
	err = out.SendBatch(sendCtx, []transport.Record{
		{Payload: []byte(`{"id":1}`), Format: codec.JSON},
		{Payload: []byte(`{"id":2}`), Format: codec.JSON},
	})
	sendSpan.End()
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	want := sendSpan.SpanContext()
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	var blocks []sdktrace.ReadOnlySpan
	for _, s := range recorder.Ended() {
		if s.Name() == engine.BlockSpanName {
			blocks = append(blocks, s)
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("no %s span among %d ended spans", engine.BlockSpanName, len(recorder.Ended()))
	}
	mu.Lock()
	defer mu.Unlock()
	if got != 2 {
		t.Fatalf("the sink got %d records, want 2", got)
	}
	if len(sinkSCs) != len(blocks) {
		t.Fatalf("%d sink calls for %d block spans", len(sinkSCs), len(blocks))
	}
	blockIDs := make(map[trace.SpanID]bool, len(blocks))
	for i, block := range blocks {
		blockIDs[block.SpanContext().SpanID()] = true
		if got := block.SpanContext().TraceID(); got != want.TraceID() {
			t.Errorf("block span %d trace = %s, want the sender's %s", i, got, want.TraceID())
		}
		if got := block.Parent(); got.SpanID() != want.SpanID() || !got.IsRemote() {
			t.Errorf("block span %d parent = %s (remote %v), want the sending span %s", i, got.SpanID(), got.IsRemote(), want.SpanID())
		}
		if links := block.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != want.SpanID() {
			t.Errorf("block span %d links = %+v, want the sending span", i, links)
		}
		if block.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("block span %d kind = %v, want consumer", i, block.SpanKind())
		}
	}
	for i, sc := range sinkSCs {
		if !blockIDs[sc.SpanID()] {
			t.Errorf("sink call %d ran under span %s, not a block span", i, sc.SpanID())
		}
	}
}
