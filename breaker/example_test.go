package breaker_test

import (
	"errors"
	"fmt"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/metrics"
)

func Example() {
	reg := metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true})
	b, err := breaker.New(breaker.Config{FailureThreshold: 2}, breaker.Options{Target: "orders-api", Metrics: reg})
	if err != nil {
		fmt.Println(err)
		return
	}
	call := func() error { return errors.New("connection refused") }
	for range 3 {
		t, err := b.Allow()
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		t.Done(call())
	}
	fmt.Println(b.State())
	// Output:
	// refused: breaker: circuit open (target orders-api)
	// open
}
