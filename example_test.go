package keel_test

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// Run builds every component from the config, runs the service body and
// shuts down in order. Here the body moves a finite inmem source through
// the engine to an inmem sink; when it returns, the service stops.
func ExampleRun() {
	app := keel.App{
		Name: "example",
		Defaults: map[string]any{
			"input.type":              "inmem",
			"output.type":             "inmem",
			"admin.addr":              "127.0.0.1:0", // a free port for the example
			"lifecycle.prestop_delay": "-1s",
		},
		Transports: []string{"input", "output"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "input")
			if err != nil {
				return err
			}
			out, err := rt.Sender(ctx, "output")
			if err != nil {
				return err
			}
			src, _ := keel.As[*inmem.Transport](in) // under the governor's brake
			_ = src.InjectPayloads(ctx, []byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`))
			src.CloseInput() // a finite source: the engine returns at its end
			rt.MarkStarted()
			upper := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
				return b.MapRecords(func(r transport.Record) []transport.Record {
					r.Payload = bytes.ToUpper(r.Payload)
					return []transport.Record{r}
				}), nil
			}
			if err := rt.Engine().Run(ctx, in, upper, rt.Engine().SinkTo(out)); err != nil {
				return err
			}
			fmt.Println("delivered:", out.(*inmem.Transport).Len(), "committed up to:", src.Committed())
			return nil
		},
	}
	if err := keel.Run(context.Background(), app, keel.WithLogOutput(io.Discard)); err != nil {
		fmt.Println(err)
	}
	// Output: delivered: 3 committed up to: 3
}

// WithTransport adds a transport type that config sections can name in
// their type key; its settings are the sub-section of the type's name.
func ExampleWithTransport() {
	type loopSettings struct {
		Capacity int `koanf:"capacity"`
	}
	loop := keel.TransportBuilder{
		Receiver: func(_ context.Context, tc keel.TransportContext) (transport.Receiver, error) {
			s := loopSettings{Capacity: 10}
			if err := tc.Decode(&s); err != nil {
				return nil, err
			}
			fmt.Println("building", tc.Type, "for section", tc.Section, "with capacity", s.Capacity)
			return inmem.New(inmem.Config{Capacity: s.Capacity}), nil
		},
	}
	app := keel.App{
		Name: "example",
		Defaults: map[string]any{
			"events.type": "loop", "events.loop.capacity": 64,
			"admin.addr": "127.0.0.1:0", "lifecycle.prestop_delay": "-1s",
		},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			_, err := rt.Receiver(ctx, "events")
			return err
		},
	}
	if err := keel.Run(context.Background(), app, keel.WithTransport("loop", loop), keel.WithLogOutput(io.Discard)); err != nil {
		fmt.Println(err)
	}
	// Output: building loop for section events with capacity 64
}

// Main is a service's whole main function: the standard command line,
// the runtime, and the exit status.
func ExampleMain() {
	keel.Main(keel.App{
		Name: "orders",
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			rt.MarkStarted()
			<-ctx.Done() // serve until the shutdown cancels intake
			return nil
		},
	})
}

// As reaches the transport under the governor's brake: with
// self-regulation on (the default), a receiver without a native pause is
// returned wrapped, and a Kafka consumer is returned as it is, braked
// through a gate that pauses its partitions.
func ExampleAs() {
	app := keel.App{
		Name: "example",
		Defaults: map[string]any{
			"input.type": "inmem", "admin.addr": "127.0.0.1:0", "lifecycle.prestop_delay": "-1s",
		},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "input")
			if err != nil {
				return err
			}
			_, direct := in.(*inmem.Transport)
			q, found := keel.As[*inmem.Transport](in)
			fmt.Println("governor on:", rt.Governor().Enabled(), "direct:", direct, "found:", found, "queue:", q.Name())
			return nil
		},
	}
	if err := keel.Run(context.Background(), app, keel.WithLogOutput(io.Discard)); err != nil {
		fmt.Println(err)
	}
	// Output: governor on: true direct: false found: true queue: inmem
}
