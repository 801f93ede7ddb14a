package dlq_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dlq-example")
	defer os.RemoveAll(dir)

	q, err := dlq.New(ctx, dlq.Config{Enabled: true, File: dlq.FileConfig{Enabled: true, Path: dir}},
		dlq.Options{Service: "orders", Metrics: metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true})})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = q.Push(ctx, dlq.Entry{Reason: "schema mismatch", Payload: []byte(`{"id":7}`),
		Destination: "orders", Source: dlq.KafkaSource("events", 3, 12345)})
	if err := q.Flush(ctx); err != nil { // written and fsynced, or why not
		fmt.Println(err)
	}
	_ = q.Close(ctx)

	files, _ := filepath.Glob(filepath.Join(dir, "orders", "dlq-*.ndjson"))
	entries, _ := dlq.ReadFile(files[0])
	e := entries[0]
	fmt.Println(e.Service, "|", e.Reason, "|", string(e.Payload), "|", e.Source.Topic, *e.Source.Partition, *e.Source.Offset)
	// Output: orders | schema mismatch | {"id":7} | events 3 12345
}

func ExampleDLQ_Router() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dlq-example")
	defer os.RemoveAll(dir)
	reg := metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true})

	q, err := dlq.New(ctx, dlq.Config{Enabled: true, File: dlq.FileConfig{Enabled: true, Path: dir}},
		dlq.Options{Service: "loader", Metrics: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close(ctx)

	src := inmem.New(inmem.Config{})
	_ = src.InjectPayloads(ctx, []byte(`{"ok":1}`), []byte(`not json`))
	src.CloseInput()

	eng, _ := engine.New(engine.Config{RouteDeadLetters: q.Router(), Metrics: reg})
	_ = eng.Run(ctx, src, func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		out := transport.Batch{Tokens: b.Tokens}
		for i, r := range b.Records {
			if r.Payload[0] != '{' {
				out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: r, Reason: "not JSON", Source: b.Tokens[i].String()})
				continue
			}
			out.Records = append(out.Records, r)
		}
		return out, nil
	}, func(context.Context, transport.Batch) error { return nil })
	_ = q.Flush(ctx)

	files, _ := filepath.Glob(filepath.Join(dir, "loader", "dlq-*.ndjson"))
	entries, _ := dlq.ReadFile(files[0])
	fmt.Println(len(entries), entries[0].Reason, entries[0].Source.Token, "committed:", src.Committed())
	// Output: 1 not JSON inmem:2 committed: 2
}

func ExampleDecode() {
	e, err := dlq.Decode([]byte(`{"timestamp":1711432800123,"service":"loader","reason":"schema mismatch","attempts":0,"payload":"eyJpZCI6N30="}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Reason, string(e.Payload))
	// Output: 2024-03-26T06:00:00.123Z schema mismatch {"id":7}
}
