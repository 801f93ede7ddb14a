package gated_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/pool"
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

// engineLeg is one run of BenchmarkEngineThroughput: records 1 KiB
// records, queued in inmem before the clock starts, through RunGoverned
// with an identity process step and a counting sink. governed false is
// the plain engine (self_regulation.enabled false: RunGoverned is Run).
// Both legs have the same memory guard (1 GiB, low pressure) and the same
// receive limits: max_chunk_size at the budget's record cap and max_bytes
// at its start, which the governed leg's budget then moves. The governed
// leg adds the budget, the gate loop and the gated receiver. It returns
// the wall and process CPU time of RunGoverned alone and the blocks it
// received.
func engineLeg(b *testing.B, governed bool, cfg governor.Config, records int) (wall, cpu time.Duration, blocks uint64) {
	b.StopTimer()
	defer b.StartTimer()
	ctx := context.Background()
	reg := testRegistry()
	guard, err := memory.New(memory.Config{LimitBytes: 1 << 30}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	cfg.Enabled = ptr(governed)
	gov, err := governor.New(cfg, governor.WithMemory(guard), governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = gov.Run(runCtx) }()
	defer func() { stop(); <-done }()
	env := governor.NewBudget(cfg.Profile, cfg.Budget, governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger())).Config()
	eng, err := engine.New(engine.Config{MaxRecords: env.RecordCap, MaxBytes: env.StartBytes, Memory: guard, Budget: gov.Budget(),
		Metrics: reg, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	tr := inmem.New(inmem.Config{Capacity: records})
	rec := transport.Record{Payload: make([]byte, 1024), Timestamp: time.Unix(1, 0)}
	for range records {
		if err := tr.Inject(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	tr.CloseInput()
	rx := gated.Governed(gov, tr)
	sunk := 0
	process := func(_ context.Context, bt transport.Batch) (transport.Batch, error) { return bt, nil }
	sink := func(_ context.Context, bt transport.Batch) error { sunk += len(bt.Records); return nil }
	cpu0 := processCPU(b)
	b.StartTimer()
	start := time.Now()
	err = eng.RunGoverned(ctx, rx, process, sink)
	wall = time.Since(start)
	b.StopTimer()
	cpu = processCPU(b) - cpu0
	if err != nil {
		b.Fatal(err)
	}
	if sunk != records || tr.Committed() != uint64(records) {
		b.Fatalf("sunk %d committed %d of %d", sunk, tr.Committed(), records)
	}
	return wall, cpu, eng.Stats().Blocks
}

// processCPU reads the CPU time of the whole process (all goroutines, the
// garbage collector included), which other processes on a shared machine
// do not move the way they move wall time.
func processCPU(b *testing.B) time.Duration {
	d, err := pool.ProcessCPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// The governed engine against the plain engine over inmem at low memory
// pressure, for each profile, in two variants:
//
//   - default_budget: the profile as configured by default. Both engines
//     start with blocks of the record cap (2000, 1000 or 500 records,
//     under the byte start); the governed budget then moves with the
//     utilisation. The process step costs next to nothing, so the receive
//     dominates, the utilisation stays under target_rho and the blocks
//     stay at the record cap, unless the machine stalls a block.
//   - same_blocks: the budget pinned at the record cap (start, floor and
//     ceiling at record_cap × 1 KiB), so that both engines receive blocks
//     of the same size whatever the machine does, and the ratio is the
//     cost of self-regulation alone: the gate evaluated before each
//     receive, the budget read and told each block, the block streamed as
//     one sub-block.
//
// One op runs 20 000 records through each engine, in alternating order
// (plain first on even ops), so that the two runs of an op, a few
// milliseconds apart, see the same machine; ns/op is the wall time of
// both. governed/plain is the median over the ops of the op's throughput
// ratio, in wall time, so that a run stalled by another process (which
// only ever slows one run down) does not decide it; cpu_governed/plain is
// the same median in process CPU time (records per CPU second), which the
// machine's load moves less. plain_rec/s and governed_rec/s are the median
// wall-time throughputs of each engine; plain_rec/block and
// governed_rec/block the mean block sizes.
func BenchmarkEngineThroughput(b *testing.B) {
	const records = 20_000
	for _, p := range governor.Profiles() {
		env := p.Budget()
		pinned := int64(env.RecordCap) * 1024
		for _, v := range []struct {
			name string
			cfg  governor.Config
		}{
			{"default_budget", governor.Config{Profile: p}},
			{"same_blocks", governor.Config{Profile: p, Budget: governor.BudgetConfig{StartBytes: pinned, MinBytes: pinned, MaxBytes: pinned}}},
		} {
			b.Run(p.String()+"/"+v.name, func(b *testing.B) {
				var wall [2][]float64 // seconds per op, plain and governed
				var ratio, cpuRatio []float64
				var blocks [2]uint64
				i := 0
				for b.Loop() {
					var w, c [2]time.Duration
					for k := range 2 {
						leg := (i + k) % 2 // 0 plain, 1 governed
						var n uint64
						w[leg], c[leg], n = engineLeg(b, leg == 1, v.cfg, records)
						blocks[leg] += n
					}
					wall[0], wall[1] = append(wall[0], w[0].Seconds()), append(wall[1], w[1].Seconds())
					ratio = append(ratio, w[0].Seconds()/w[1].Seconds())
					if c[0] > 0 && c[1] > 0 {
						cpuRatio = append(cpuRatio, c[0].Seconds()/c[1].Seconds())
					}
					i++
				}
				b.ReportMetric(records/median(wall[0]), "plain_rec/s")
				b.ReportMetric(records/median(wall[1]), "governed_rec/s")
				b.ReportMetric(median(ratio), "governed/plain")
				if len(cpuRatio) > 0 {
					b.ReportMetric(median(cpuRatio), "cpu_governed/plain")
				}
				total := float64(i * records)
				b.ReportMetric(total/float64(blocks[0]), "plain_rec/block")
				b.ReportMetric(total/float64(blocks[1]), "governed_rec/block")
			})
		}
	}
}

// median returns the median of v (which it sorts).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
