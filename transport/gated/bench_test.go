package gated_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// The cost of the gate on the receive path: one Recv of one record from
// inmem through an open gated receiver (one gate evaluation, sampling a
// soft source), against the same Recv on the bare receiver as the
// baseline, each followed by its Commit.
func BenchmarkRecv(b *testing.B) {
	ctx := context.Background()
	rec := transport.Record{Payload: make([]byte, 64)}
	gate := governor.NewGate("inmem", governor.NewPressure(governor.FuncSource("queue", func() float64 { return 0.1 })), nil, nil)
	run := func(b *testing.B, wrap func(transport.Receiver) transport.Receiver) {
		tr := inmem.New(inmem.Config{Capacity: 1})
		rx := wrap(tr)
		for b.Loop() {
			if err := tr.Inject(ctx, rec); err != nil {
				b.Fatal(err)
			}
			bt, err := rx.Recv(ctx, transport.Limits{MaxRecords: 1})
			if err != nil || len(bt.Records) != 1 {
				b.Fatalf("recv: %v, %d records", err, len(bt.Records))
			}
			if err := rx.Commit(ctx, bt.Tokens); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline_inner", func(b *testing.B) {
		run(b, func(r transport.Receiver) transport.Receiver { return r })
	})
	b.Run("gated_open", func(b *testing.B) {
		run(b, func(r transport.Receiver) transport.Receiver { return gated.New(r, gate) })
	})
}

// The governed engine (RunGoverned with the budget, the gated receiver and
// the gate loop running) against the plain engine (RunGoverned without a
// governor, which is Run) over inmem at low memory pressure: 1 KiB records
// queued before the clock starts, an identity process step and a counting
// sink, both loops taking at most the profile's record cap per receive.
//
// The two run in alternating rounds within one benchmark, and each keeps
// its fastest round, so that load from other processes on the machine
// (which only ever slows a round down) does not decide the comparison.
// ns/op and MB/s are the governed loop's; plain_records/s and
// governed_records/s are both loops' best; governed/plain is their ratio.
func BenchmarkEngineThroughput(b *testing.B) {
	const recSize, rounds = 1024, 6
	payload := make([]byte, recSize)
	once := func(b *testing.B, governed bool, profile governor.Profile, n int) (time.Duration, int64) {
		ctx := context.Background()
		reg := testRegistry()
		guard, err := memory.New(memory.Config{LimitBytes: 1 << 30}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
		if err != nil {
			b.Fatal(err)
		}
		gov, err := governor.New(governor.Config{Enabled: ptr(governed), Profile: profile},
			governor.WithMemory(guard), governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
		if err != nil {
			b.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = gov.Run(runCtx) }()
		defer func() { stop(); <-done }()
		eng, err := engine.New(engine.Config{MaxRecords: profile.Budget().RecordCap, Memory: guard, Budget: gov.Budget(),
			Metrics: reg, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		tr := inmem.New(inmem.Config{Capacity: n})
		rec := transport.Record{Payload: payload, Timestamp: time.Unix(1, 0)}
		for i := 0; i < n; i++ {
			if err := tr.Inject(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		tr.CloseInput()
		sunk := 0
		start := time.Now()
		err = eng.RunGoverned(ctx, gated.Governed(gov, tr),
			func(_ context.Context, bt transport.Batch) (transport.Batch, error) { return bt, nil },
			func(_ context.Context, bt transport.Batch) error { sunk += len(bt.Records); return nil })
		el := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if sunk != n || tr.Committed() != uint64(n) {
			b.Fatalf("sunk %d committed %d of %d", sunk, tr.Committed(), n)
		}
		var budget int64
		if bud := gov.Budget(); bud != nil {
			budget = bud.Bytes()
		}
		return el, budget
	}
	for _, p := range governor.Profiles() {
		b.Run(p.String(), func(b *testing.B) {
			n := b.N
			best := [2]time.Duration{time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)}
			var budget int64
			b.StopTimer()
			for r := 0; r < rounds; r++ {
				for k := 0; k < 2; k++ {
					v := (k + r) % 2 // alternate which loop goes first
					governed := v == 1
					el, bud := once(b, governed, p, n)
					best[v] = min(best[v], el)
					if governed {
						budget = bud
					}
				}
			}
			plain, gov := float64(n)/best[0].Seconds(), float64(n)/best[1].Seconds()
			b.ReportMetric(float64(best[1].Nanoseconds())/float64(n), "ns/op")
			b.ReportMetric(gov*recSize/1e6, "MB/s")
			b.ReportMetric(plain, "plain_records/s")
			b.ReportMetric(gov, "governed_records/s")
			b.ReportMetric(gov/plain, "governed/plain")
			b.ReportMetric(float64(budget), "budget_bytes")
		})
	}
}
