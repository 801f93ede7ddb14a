package kafka_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka"
)

// Produce three records, then receive and commit them; the token of each
// record is its topic, partition and offset.
func Example() {
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	t, err := kafka.New(ctx, kafka.Config{
		Brokers:     cluster.ListenAddrs(),
		Group:       "billing",
		Topics:      []string{"orders"},
		Producer:    kafka.ProducerConfig{Topic: "orders"},
		Sizing:      kafka.SizingLowLatency,
		Environment: "development",
	})
	if err != nil {
		panic(err)
	}
	defer t.Close(ctx)

	err = t.SendBatch(ctx, []transport.Record{
		{Key: []byte("c1"), Payload: []byte(`{"id":1}`)},
		{Key: []byte("c2"), Payload: []byte(`{"id":2}`)},
		{Key: []byte("c1"), Payload: []byte(`{"id":3}`)},
	})
	if err != nil {
		panic(err)
	}
	got := 0
	for got < 3 {
		b, err := t.Recv(ctx, transport.Limits{MaxRecords: 100})
		if err != nil {
			panic(err)
		}
		for i, rec := range b.Records {
			fmt.Println(string(rec.Key), string(rec.Payload), b.Tokens[i])
		}
		if err := t.Commit(ctx, b.Tokens); err != nil {
			panic(err)
		}
		got += len(b.Records)
	}
	// Output:
	// c1 {"id":1} kafka:orders:0:0
	// c2 {"id":2} kafka:orders:0:1
	// c1 {"id":3} kafka:orders:0:2
}

// Wire the transport into the batch engine: consume "in", transform, and
// produce to "out", committing each block after the producer acknowledged
// it.
func Example_engine() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	cfg := kafka.Config{
		Brokers:     cluster.ListenAddrs(),
		Group:       "enricher",
		Topics:      []string{"in"},
		Producer:    kafka.ProducerConfig{Topic: "out"},
		Environment: "development",
	}
	t, err := kafka.New(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer t.Close(context.Background())

	eng, err := engine.New(engine.Config{MaxRecords: 500})
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- eng.Run(ctx, t, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			return b.MapRecords(func(r transport.Record) []transport.Record {
				r.Payload = append([]byte("enriched:"), r.Payload...)
				return []transport.Record{r}
			}), nil
		}, engine.SinkTo(t))
	}()
	cancel()
	if err := <-done; err != nil {
		fmt.Println("engine:", err)
	}
	fmt.Println("stopped")
	// Output: stopped
}

// Read the standard Kafka environment variables, with a service prefix
// that wins over them.
func ExampleConfig_ApplyEnvFunc() {
	env := map[string]string{
		"KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
		"KAFKA_BROKERS":           "ignored:9092",
		"ORDERS_GROUP_ID":         "orders",
		"KAFKA_GROUP_ID":          "generic",
	}
	var cfg kafka.Config
	err := cfg.ApplyEnvFunc("ORDERS", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Brokers, cfg.Group)
	// cfg.ApplyEnv("ORDERS") reads the process environment the same way.
	// Output: [kafka-0:9092 kafka-1:9092] orders
}

// Continue a producer's trace from the traceparent header of a record.
// The headers are read through the global propagator, which
// telemetry.Setup installs from OTEL_PROPAGATORS.
func ExampleTraceContext() {
	otel.SetTextMapPropagator(telemetry.Propagator())
	rec := transport.Record{Headers: []transport.Header{
		{Key: kafka.TraceparentHeader, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
	}}
	sc, ok := kafka.TraceContext(rec)
	fmt.Println(ok, sc.TraceID(), sc.SpanID(), sc.IsSampled())
	// Output: true 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 true
}
