package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
)

// Setup with nothing configured exports nothing and starts nothing, but
// installs the W3C propagators; with telemetry.endpoint (or
// OTEL_EXPORTER_OTLP_ENDPOINT) set, spans go to the collector.
func ExampleSetup() {
	ctx := context.Background()
	var cfg telemetry.Config // as decoded by config.Section(telemetry.Section, &cfg)
	tel, err := telemetry.Setup(ctx, cfg, telemetry.Options{
		ServiceName: "orders",
		Logger:      slog.New(slog.DiscardHandler),
		Getenv:      func(string) string { return "" }, // this example ignores the process environment
	})
	if err != nil {
		fmt.Println(err) // names the bad key or OTEL_* variable
		return
	}
	defer func() { _ = tel.Shutdown(ctx) }() // or lifecycle: OnShutdown("telemetry", tel.Shutdown)

	ctx, span := tel.Tracer().Start(ctx, "handle order")
	defer span.End()
	fmt.Println("traces exported:", tel.TracesEnabled(), "metrics exported:", tel.MetricsEnabled())
	// Output: traces exported: false metrics exported: false
}

// A bad value is a start-up error that names the key.
func ExampleConfig_Validate() {
	ratio := 2.0
	cfg := telemetry.Config{Protocol: "grpc", Traces: telemetry.TracesConfig{Sampler: "traceidratio", SamplerArg: &ratio}}
	fmt.Println(cfg.Validate())
	// Output: telemetry.traces.sampler_arg is 2: a sampling ratio must be between 0 and 1, e.g. 0.25 for one trace in four
}

// A sender injects the current trace into each record; the consumer
// extracts it.
func ExampleInject() {
	ctx := context.Background()
	tel, _ := telemetry.Setup(ctx, telemetry.Config{}, telemetry.Options{
		Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" },
	})
	defer func() { _ = tel.Shutdown(ctx) }()

	upstream := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	rec := transport.Record{Payload: []byte(`{"id":1}`)}
	telemetry.Inject(trace.ContextWithSpanContext(ctx, upstream), &rec)
	tp, _ := rec.Header("traceparent")
	fmt.Println(string(tp))

	got := trace.SpanContextFromContext(telemetry.Extract(ctx, rec))
	fmt.Println(got.TraceID(), got.IsRemote())
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// 4bf92f3577b34da6a3ce929d0e0e4736 true
}

// The consumer starts one span per block, continuing the producer's trace
// when the block's records share it.
func ExampleStartBlock() {
	ctx := context.Background()
	tel, _ := telemetry.Setup(ctx, telemetry.Config{}, telemetry.Options{
		Logger: slog.New(slog.DiscardHandler), Getenv: func(string) string { return "" },
	})
	defer func() { _ = tel.Shutdown(ctx) }()

	recs := []transport.Record{
		{Payload: []byte(`{"id":1}`), Headers: []transport.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}},
		{Payload: []byte(`{"id":2}`), Headers: []transport.Header{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}},
	}
	bctx, span := telemetry.StartBlock(ctx, tel.Tracer(), "process block", recs)
	defer span.End()
	// Log lines written with bctx carry this trace id.
	fmt.Println(trace.SpanContextFromContext(bctx).TraceID())
	// Output: 4bf92f3577b34da6a3ce929d0e0e4736
}
