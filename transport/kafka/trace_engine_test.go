package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// A trace started before a Kafka send continues in the consumer's block
// span: the producer writes the span's traceparent into the record, the
// consumer hands it to the engine, and the engine's block span is a child
// of the producer's span, in its trace, with the sink running under it.
func TestTraceContinuesFromSendToEngineBlockSpan(t *testing.T) {
	prevProp := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prevProp) })

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx, cancelTest := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelTest()
	cluster := kafkatest.Start(t, kfake.SeedTopics(1, "traced"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := kafka.Config{
		Brokers:     cluster.Addrs(),
		Environment: "test",
		Profile:     kafka.ProfileDevTest,
		Sizing:      kafka.SizingLowLatency,
		LagInterval: -1,
		Metrics:     metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		Logger:      logger,
	}

	pcfg := base
	pcfg.Role = kafka.RoleProducer
	pcfg.Producer.Topic = "traced"
	producer, err := kafka.NewProducer(ctx, pcfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer producer.Close(context.Background())

	sendCtx, sendSpan := tp.Tracer("producer").Start(ctx, "orders.send", trace.WithSpanKind(trace.SpanKindProducer))
	if err := producer.Send(sendCtx, transport.Record{Key: []byte("k"), Payload: []byte(`{"id":1}`)}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sendSpan.End()
	want := sendSpan.SpanContext()

	ccfg := base
	ccfg.Role = kafka.RoleConsumer
	ccfg.Group = "traced-engine"
	ccfg.Topics = []string{"traced"}
	ccfg.Consumer = kafka.ConsumerConfig{
		SessionTimeout:    3 * time.Second,
		HeartbeatInterval: 100 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		RevokeWait:        2 * time.Second,
	}
	consumer, err := kafka.NewConsumer(ctx, ccfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer consumer.Close(context.Background())

	eng, err := engine.New(engine.Config{
		Tracer:       tp.Tracer("consumer"),
		DrainTimeout: -1,
		Metrics:      metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		Logger:       logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		once   sync.Once
		sinkSC trace.SpanContext
		got    = make(chan struct{})
	)
	sink := func(ctx context.Context, b transport.Batch) error {
		once.Do(func() {
			sinkSC = trace.SpanContextFromContext(ctx)
			close(got)
		})
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- eng.Run(runCtx, consumer, func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }, sink)
	}()

	select {
	case <-got:
	case err := <-done:
		t.Fatalf("engine stopped before the record arrived: %v", err)
	case <-ctx.Done():
		t.Fatal("the record never reached the sink")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	var block sdktrace.ReadOnlySpan
	for _, s := range recorder.Ended() {
		if s.Name() == engine.BlockSpanName {
			block = s
		}
	}
	if block == nil {
		t.Fatalf("no %s span among %d ended spans", engine.BlockSpanName, len(recorder.Ended()))
	}
	if got := block.SpanContext().TraceID(); got != want.TraceID() {
		t.Errorf("block span trace = %s, want the producer's %s", got, want.TraceID())
	}
	if got := block.Parent(); got.SpanID() != want.SpanID() || !got.IsRemote() {
		t.Errorf("block span parent = %s (remote %v), want the producer span %s", got.SpanID(), got.IsRemote(), want.SpanID())
	}
	if links := block.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != want.SpanID() {
		t.Errorf("block span links = %+v, want the producer span", links)
	}
	if block.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("block span kind = %v, want consumer", block.SpanKind())
	}
	if sinkSC.SpanID() != block.SpanContext().SpanID() {
		t.Errorf("sink ran under span %s, want the block span %s", sinkSC.SpanID(), block.SpanContext().SpanID())
	}
}
