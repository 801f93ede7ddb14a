package scaling_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/scaling"
)

// The weighted formula over the signals the application reports, and the
// gates.
func Example() {
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	p, err := scaling.New(scaling.Config{LagFull: 10_000}, scaling.WithMetrics(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Set(scaling.CPU, 0.5)   // fraction of the CPU limit
	_ = p.Set(scaling.Queue, 0.8) // inbound queue fill
	_ = p.Set(scaling.Lag, 5_000) // messages behind; 10 000 means full
	_ = p.Source(scaling.Pool, func() float64 { return 1 })
	fmt.Printf("weighted: %.2f\n", p.Evaluate().Value)

	_ = p.Set(scaling.Memory, 0.95)
	r := p.Evaluate()
	fmt.Printf("memory gate: %.0f (%s)\n", r.Value, r.Gate)

	p.SetCircuitOpen(true)
	r = p.Evaluate()
	fmt.Printf("circuit open: %.0f (%s, held %v)\n", r.Value, r.Gate, r.GatesHeld)

	fmt.Println(p.Set("made_up", 1))
	// Output:
	// weighted: 63.89
	// memory gate: 100 (memory)
	// circuit open: 0 (circuit_open, held [circuit_open memory])
	// scaling: unknown signal "made_up" (known: cpu, memory, queue, lag, pool); register it with scaling.WithCustom when building the Pressure
}

// A CEL expression computes the pressure instead; a bad one is refused at
// start-up with its position.
func Example_expression() {
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	p, err := scaling.New(scaling.Config{Expression: "lag > 0.5 ? 100 : max(cpu, errors) * 100"},
		scaling.WithMetrics(reg), scaling.WithCustom("errors", 0.5))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Set(scaling.CPU, 0.3)
	_ = p.Set("errors", 0.6)
	r := p.Evaluate()
	fmt.Printf("%.0f by %s\n", r.Value, r.Method)

	_, err = scaling.New(scaling.Config{Expression: "cpu * 100 +\n  memroy * 100"}, scaling.WithMetrics(reg))
	fmt.Println(err)
	// Output:
	// 60 by expression
	// scaling.expression: 2:3: undeclared reference to 'memroy' (in container '') in "cpu * 100 +\n  memroy * 100": only the component signals (cpu, memory, queue, lag, pool, and custom components) and the functions max, min, abs and clamp exist; fix the expression or remove scaling.expression to use the weighted formula
}

// Serve /scaling/pressure and evaluate every interval until shutdown.
func ExamplePressure_Handler() {
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	p, err := scaling.New(scaling.Config{Interval: time.Second, Weights: map[string]float64{scaling.Queue: 1}},
		scaling.WithMetrics(reg))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = p.Set(scaling.Queue, 0.42)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, httptest.NewRequest("GET", scaling.HandlerPath, nil))
	var body struct {
		Value  float64 `json:"value"`
		Method string  `json:"method"`
		Gate   string  `json:"gate"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	fmt.Printf("%d value=%.0f method=%s gate=%s\n", rec.Code, body.Value, body.Method, body.Gate)

	cancel()
	fmt.Println("run:", <-done)
	// Output:
	// 200 value=42 method=weighted gate=none
	// run: <nil>
}

// A per-second rate over a sliding window, here with a fake clock.
func ExampleNewRateWindow() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := scaling.NewRateWindow(10*time.Second, 10, scaling.WithRateClock(func() time.Time { return now }))
	for range 20 {
		w.Add(50) // 50 records every half second
		now = now.Add(500 * time.Millisecond)
	}
	fmt.Printf("%.0f/s over %v\n", w.Rate(), w.Window())
	// Output:
	// 100/s over 10s
}
