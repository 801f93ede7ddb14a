package health_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/keel-go/keel/health"
)

func ExampleRegistry() {
	reg := health.New(health.Config{})

	// The component keeps its state current; the check only reads it.
	var brokersUp atomic.Int64
	brokersUp.Store(2)
	_ = reg.Register("kafka", func(ctx context.Context) (health.Status, string) {
		switch n := brokersUp.Load(); {
		case n == 0:
			return health.Unhealthy, "no broker reachable"
		case n < 3:
			return health.Degraded, fmt.Sprintf("%d of 3 brokers reachable", n)
		}
		return health.Healthy, ""
	})

	ctx := context.Background()
	fmt.Println("ready before start:", reg.Ready(ctx))
	reg.MarkStarted()
	fmt.Println("ready when degraded:", reg.Ready(ctx))
	rep := reg.Report(ctx)
	fmt.Println(rep.Status, rep.Checks[0].Message)

	reg.SetDraining() // shutdown began: stop taking traffic
	fmt.Println("ready while draining:", reg.Ready(ctx), "live:", reg.Live())
	// Output:
	// ready before start: false
	// ready when degraded: true
	// degraded 2 of 3 brokers reachable
	// ready while draining: false live: true
}
