package governor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

// New builds the governor from the self_regulation section with the
// memory guard as its hard source; its gate brakes a receiver and its
// budget sizes the engine's blocks (engine.Config{Budget: gov.Budget()}).
func ExampleNew() {
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	guard, err := memory.New(memory.Config{LimitBytes: 1000}, memory.WithMetrics(reg), memory.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	gov, err := governor.New(governor.Config{Profile: governor.ProfileBalanced},
		governor.WithMemory(guard), governor.WithMetrics(reg), governor.WithLogger(log))
	if err != nil {
		fmt.Println(err)
		return
	}
	// go gov.Run(ctx) evaluates the gates every self_regulation.interval;
	// here one evaluation at a time shows the edges.
	ctx := context.Background()
	guard.Add(850) // 85% of the guard's limit
	held, _ := gov.Gate().Evaluate(ctx)
	fmt.Println("held at 0.85:", held)
	guard.Release(150) // 70%: inside the hysteresis band
	held, _ = gov.Gate().Evaluate(ctx)
	fmt.Println("held at 0.70:", held)
	guard.Release(100) // 60%: at or below resume_at
	held, _ = gov.Gate().Evaluate(ctx)
	fmt.Println("held at 0.60:", held)
	// A block may take 1/16 of the guard's limit (max_block_fraction): the
	// balanced profile's 8 MiB start is capped at 62 of the 1000 bytes.
	b := gov.Budget().(*governor.Budget)
	fmt.Println("budget:", b.Bytes(), "ceiling:", b.Ceiling(), "record cap:", b.RecordCap())
	// Output:
	// held at 0.85: true
	// held at 0.70: true
	// held at 0.60: false
	// budget: 62 ceiling: 62 record cap: 1000
}

// With self_regulation.enabled false New builds nothing; the same wiring
// then runs the data path exactly as without self-regulation: no budget
// (the engine's RunGoverned runs as Run) and a gate that never holds (a
// receiver wrapped by package transport/gated passes through).
func ExampleNew_disabled() {
	off := false
	gov, err := governor.New(governor.Config{Enabled: &off}, governor.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	held, _ := gov.Gate().Evaluate(context.Background())
	fmt.Println(gov == nil, err, gov.Budget() == nil, held, gov.Gate().Admit())
	// Output: true <nil> true false true
}

// The budget halves when the pipeline is behind and grows by a step when
// it is slack.
func ExampleBudget() {
	b := governor.NewBudget(governor.ProfileLowLatency, governor.BudgetConfig{StartBytes: 64 << 10},
		governor.WithMetrics(metrics.New(metrics.Config{NoRuntimeCollectors: true})))
	b.Observe(64<<10, 90e6, 100e6) // 90ms of processing every 100ms: behind
	fmt.Println(b.Bytes())
	b.Observe(32<<10, 1e6, 100e6) // slack
	b.Observe(32<<10, 1e6, 100e6)
	fmt.Println(b.Bytes())
	// Output:
	// 32768
	// 163840
}

// Watch lets a receiver wait for the gate's next edge together with its
// own events (a timer, its shutdown) in one select, without polling.
func ExampleGate_Watch() {
	level := 0.9
	p := governor.NewPressure(governor.FuncSource("queue_depth", func() float64 { return level }))
	gate := governor.NewGate("queue", p, nil, nil)
	ctx := context.Background()
	held, _ := gate.Evaluate(ctx)
	fmt.Println("held:", held)

	_, changed := gate.Watch()
	level = 0.5               // at or below resume_at (0.65)
	_, _ = gate.Evaluate(ctx) // another evaluator (Governor.Run) sees it
	select {
	case <-changed:
		fmt.Println("edge; held:", gate.Held())
	case <-ctx.Done():
	}
	// Output:
	// held: true
	// edge; held: false
}
