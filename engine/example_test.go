package engine_test

import (
	"context"
	"fmt"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// Run moves blocks from a receiver to a sender and commits the input
// tokens once the sender accepted them.
func ExampleEngine_Run() {
	ctx := context.Background()
	src := inmem.New(inmem.Config{})
	dst := inmem.New(inmem.Config{})
	_ = src.InjectPayloads(ctx, []byte(`{"level":"info"}`), []byte(`{"level":"warn"}`))
	src.CloseInput() // a finite source: Run returns nil at its end

	eng, err := engine.New(engine.Config{Metrics: metrics.New(metrics.Config{})})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Fan each record out to two; the engine still commits the two input
	// tokens, not four.
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		return b.MapRecords(func(r transport.Record) []transport.Record { return []transport.Record{r, r} }), nil
	}
	if err := eng.Run(ctx, src, process, eng.SinkTo(dst)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("delivered:", dst.Len(), "committed up to:", src.Committed())
	// Output: delivered: 4 committed up to: 2
}

// RunParsed hands process a parsed block; records that do not parse are
// dead-lettered by the configured route before the commit.
func ExampleEngine_RunParsed() {
	ctx := context.Background()
	src := inmem.New(inmem.Config{})
	_ = src.InjectPayloads(ctx, []byte(`{"level":"info"}`), []byte(`{broken`), []byte(`{"level":"error"}`))
	src.CloseInput()

	eng, _ := engine.New(engine.Config{
		Metrics: metrics.New(metrics.Config{}),
		RouteDeadLetters: func(_ context.Context, dls []transport.DeadLetter) error {
			for _, d := range dls {
				fmt.Println("dead letter:", d.Reason[:12])
			}
			return nil
		},
	})
	process := func(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
		for _, v := range b.Values {
			level, _ := v.Field("level").Str()
			_ = v.Set("severity", len(level))
		}
		return b.Output(), nil
	}
	sink := func(_ context.Context, b transport.Batch) error {
		for _, r := range b.Records {
			fmt.Println(string(r.Payload))
		}
		return nil
	}
	if err := eng.RunParsed(ctx, src, process, sink); err != nil {
		fmt.Println(err)
	}
	fmt.Println("committed up to:", src.Committed())
	// Output:
	// dead letter: parse error:
	// {"level":"info","severity":4}
	// {"level":"error","severity":5}
	// committed up to: 3
}

// ProcessRecords parses and transforms records on the pool without a
// transport; pre-route filters drop or dead-letter by a routing field.
func ExampleProcessRecords() {
	eng, _ := engine.New(engine.Config{
		Metrics:      metrics.New(metrics.Config{}),
		RoutingField: "_table",
		PreRouteFilters: []engine.PreRouteFilter{
			{Type: engine.DropFieldMissing},
			{Type: engine.DeadLetterFieldValue, Value: "quarantine"},
		},
	})
	records := []transport.Record{
		{Payload: []byte(`{"_table":"events","n":1}`)},
		{Payload: []byte(`{"n":2}`)},
		{Payload: []byte(`{"_table":"quarantine","n":3}`)},
	}
	results := engine.ProcessRecords(context.Background(), eng, records,
		func(_ context.Context, m *engine.Message) (string, error) {
			table, _ := m.Field("_table").Str()
			return table, nil
		})
	for _, r := range results {
		fmt.Println(r.Index, r.Value, r.Err)
	}
	fmt.Println("filtered:", eng.Stats().Filtered)
	// Output:
	// 0 events <nil>
	// 2  field value 'quarantine' matches dead-letter rule
	// filtered: 1
}
