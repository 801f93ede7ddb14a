package gated_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// A gated receiver does not call the inner Recv while the gate is held:
// the record stays in the source until the pressure falls.
func ExampleNew() {
	level := 0.9
	p := governor.NewPressure(governor.FuncSource("queue_depth", func() float64 { return level }))
	gate := governor.NewGate("inmem", p, nil, nil)
	tr := inmem.New(inmem.Config{})
	_ = tr.InjectPayloads(context.Background(), []byte("a"))
	rx := gated.New(tr, gate)

	held, _ := gate.Evaluate(context.Background())
	fmt.Println("held:", held)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a receive while held waits; a cancelled one returns at once
	_, err := rx.Recv(ctx, transport.Limits{})
	fmt.Println(err, "queued:", tr.Len())

	level = 0.5 // at or below resume_at (0.65): the receiver's evaluation opens the gate
	b, err := rx.Recv(context.Background(), transport.Limits{})
	fmt.Println(err, "received:", len(b.Records))
	// Output:
	// held: true
	// context canceled queued: 1
	// <nil> received: 1
}

// Governed wires a receiver to the governor's own gate and interval; with
// self_regulation.enabled false (a nil governor) it returns the receiver
// unchanged, so the same wiring serves both cases:
//
//	err := eng.RunGoverned(ctx, gated.Governed(gov, r), process, sink)
func ExampleGoverned() {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	tr := inmem.New(inmem.Config{})

	off := false
	none, _ := governor.New(governor.Config{Enabled: &off}, governor.WithLogger(log))
	fmt.Println(gated.Governed(none, tr) == transport.Receiver(tr))

	gov, err := governor.New(governor.Config{}, governor.WithMetrics(reg), governor.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	rx := gated.Governed(gov, tr).(*gated.Receiver)
	fmt.Println(rx.Gate() == gov.Gate(), rx.Interval(), rx.Name())
	// Output:
	// true
	// true 100ms inmem
}
