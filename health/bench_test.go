package health

import (
	"context"
	"strconv"
	"testing"
)

const benchChecks = 10

// BenchmarkReady runs ten cheap checks through the registry: one goroutine
// per check, each under its timeout.
func BenchmarkReady(b *testing.B) {
	r := newReg()
	r.MarkStarted()
	for i := range benchChecks {
		_ = r.Register("c"+strconv.Itoa(i), fixed(Healthy, ""))
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !r.Ready(ctx) {
			b.Fatal("not ready")
		}
	}
}

// BenchmarkBaselineDirectCalls calls the same ten functions inline, with no
// timeout, isolation or concurrency: the floor.
func BenchmarkBaselineDirectCalls(b *testing.B) {
	fns := make([]CheckFunc, benchChecks)
	for i := range fns {
		fns[i] = fixed(Healthy, "")
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ok := true
		for _, f := range fns {
			if s, _ := f(ctx); s == Unhealthy {
				ok = false
			}
		}
		if !ok {
			b.Fatal("not ready")
		}
	}
}
