package tiered_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tiered-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()

	downstream := inmem.New(inmem.Config{Capacity: 100})
	sink, err := tiered.New(ctx, downstream, tiered.Config{
		Spool: spool.Config{Dir: dir, MinFreeBytes: -1},
	}, tiered.Options{
		Metrics: metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The engine would use engine.SinkTo(sink).
	err = sink.SendBatch(ctx, []transport.Record{{Payload: []byte(`{"id":1}`)}, {Payload: []byte(`{"id":2}`)}})
	fmt.Println("send:", err, "delivered:", downstream.Len(), "spooled:", sink.Spool().Len())
	fmt.Println("close:", sink.Close(ctx))
	// Output:
	// send: <nil> delivered: 2 spooled: 0
	// close: <nil>
}
