package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/keel-go/keel/pool"
)

func ExampleDecide() {
	// Default thresholds: grow below 0.60, hold up to 0.85, shrink by one
	// up to 0.95, by two above; memory above 0.80 drops to the minimum.
	for _, in := range []pool.ScaleInput{
		{CPU: 0.30, Current: 4, Min: 1, Max: 8},
		{CPU: 0.85, Current: 4, Min: 1, Max: 8},
		{CPU: 0.95, Current: 4, Min: 1, Max: 8},
		{CPU: 0.99, Current: 4, Min: 1, Max: 8},
		{CPU: 0.30, Memory: 0.81, Current: 4, Min: 1, Max: 8},
		{CPU: 0.30, Current: 8, Min: 1, Max: 8},
	} {
		d := pool.Decide(in)
		fmt.Printf("cpu %.2f mem %.2f: %s %d -> %d\n", in.CPU, in.Memory, d.Direction, d.From, d.Target)
	}
	// Output:
	// cpu 0.30 mem 0.00: up 4 -> 6
	// cpu 0.85 mem 0.00: steady 4 -> 4
	// cpu 0.95 mem 0.00: down 4 -> 3
	// cpu 0.99 mem 0.00: emergency_down 4 -> 2
	// cpu 0.30 mem 0.81: memory_cap 4 -> 1
	// cpu 0.30 mem 0.00: up 8 -> 8
}

// busyCPU stands in for the process's CPU meter in this example.
type busyCPU float64

func (b busyCPU) Sample() (float64, error) { return float64(b), nil }

func ExampleNewScaler() {
	p, err := pool.New(pool.Config{MinWorkers: 2, MaxWorkers: 8, InitialWorkers: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// In a service: pool.NewScaler(p, pool.WithMemoryPressure(guard)) with
	// the *memory.Guard, then go s.Run(ctx). The CPU signal defaults to the
	// process's own CPU time over its cgroup quota.
	s, err := pool.NewScaler(p, pool.WithCPUSampler(busyCPU(0.2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 4 {
		d := s.Tick() // what Run does every worker_pool.scale_interval
		fmt.Println(d.Direction, d.From, "->", d.Target)
	}
	fmt.Println("target", p.Target(), "saturation", p.Stats().Saturation())
	// Output:
	// up 2 -> 4
	// up 4 -> 6
	// up 6 -> 8
	// up 8 -> 8
	// target 8 saturation 1
}

func ExampleScaler_Run() {
	p, _ := pool.New(pool.Config{})
	defer p.Close()
	s, _ := pool.NewScaler(p)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }() // a step every 5s until ctx ends
	cancel()
	fmt.Println(<-done)
	// Output: <nil>
}

func ExampleCPUMeter() {
	// A fake process: 1.5 CPU-seconds used in 1 s of wall time, under a
	// 2-CPU quota.
	var used time.Duration
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := pool.NewCPUMeter(pool.CPUMeterConfig{
		CPUTime: func() (time.Duration, error) { return used, nil },
		Now:     func() time.Time { return now },
		CPUs:    func() float64 { return 2 },
	})
	used += 1500 * time.Millisecond
	now = now.Add(time.Second)
	u, err := m.Sample()
	fmt.Println(u, err)
	// Output: 0.75 <nil>
}
