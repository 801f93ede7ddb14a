package memory_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

func ExampleNew() {
	// An explicit limit keeps the example independent of the machine; a
	// service leaves limit_bytes at 0 and gets 80% of its cgroup limit.
	g, err := memory.New(memory.Config{LimitBytes: 1000},
		memory.WithMetrics(metrics.New(metrics.Config{NoRuntimeCollectors: true})))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.TryReserve(700), g.Current(), g.Level(), g.UnderPressure())
	fmt.Println(g.TryReserve(400), g.Current()) // would exceed the limit: refused, nothing added
	fmt.Println(g.TryReserve(150), g.Current(), g.Level(), g.UnderPressure())
	g.Release(850)
	fmt.Println(g.Current(), g.UnderPressure())
	// Output:
	// true 700 elevated false
	// false 700
	// true 850 high true
	// 0 false
}

func ExampleGuard_TryLease() {
	g, err := memory.New(memory.Config{LimitBytes: 1 << 20},
		memory.WithMetrics(metrics.New(metrics.Config{NoRuntimeCollectors: true})))
	if err != nil {
		fmt.Println(err)
		return
	}
	payload := make([]byte, 64<<10)
	release, ok := g.TryLease(int64(len(payload)))
	defer release() // safe whether or not the lease was granted
	if !ok {
		fmt.Println("backpressure: try again later")
		return
	}
	fmt.Println("in flight:", g.Current())
	release() // early release; the deferred call does nothing
	fmt.Println("in flight:", g.Current())
	// Output:
	// in flight: 65536
	// in flight: 0
}

func ExampleGuard_ApplyGoMemoryLimit() {
	// At start-up, once: read the "memory" section, build the guard, then
	// give the Go runtime its memory limit (90% of the cgroup limit unless
	// GOMEMLIMIT is set).
	g, err := memory.New(memory.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := g.ApplyGoMemoryLimit()
	fmt.Println(r.Action, r.Bytes, g.Limit())
}

func ExampleGuard_Handler() {
	g, err := memory.New(memory.Config{LimitBytes: 1000},
		memory.WithMetrics(metrics.New(metrics.Config{NoRuntimeCollectors: true})))
	if err != nil {
		fmt.Println(err)
		return
	}
	g.Add(420)
	// On the admin server: g.Mount(adminServer) serves it at /memory/pressure.
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, memory.PressurePath, nil))
	var s memory.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rec.Code, s.Ratio, s.CurrentBytes, s.LimitBytes, s.UnderPressure, s.Level, s.Source)
	// Output:
	// 200 0.42 420 1000 false normal accounted
}
