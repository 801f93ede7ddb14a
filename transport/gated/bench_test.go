package gated_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bytedance/sonic"

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

// legWork is the process step and the records of one variant of
// BenchmarkEngineThroughput.
type legWork struct {
	records int
	payload func(i int) []byte
	process engine.ProcessFunc
}

// identityWork passes 1 KiB records through untouched: the receive and
// the engine's own work dominate.
func identityWork(records int) legWork {
	p := make([]byte, 1024)
	return legWork{
		records: records,
		payload: func(int) []byte { return p },
		process: func(_ context.Context, bt transport.Batch) (transport.Batch, error) { return bt, nil },
	}
}

// jsonWork is a CPU-bound step on 1 KiB JSON records: each is parsed
// into a map, given a field and re-encoded (sonic), a few microseconds of
// CPU per record, as in a service that enriches its events.
func jsonWork(records int) legWork {
	msg := strings.Repeat("x", 930)
	return legWork{
		records: records,
		payload: func(i int) []byte {
			return fmt.Appendf(nil, `{"id":%d,"level":"info","service":"api","status":200,"msg":%q}`, i, msg)
		},
		process: func(_ context.Context, bt transport.Batch) (transport.Batch, error) {
			for i := range bt.Records {
				var m map[string]any
				if err := sonic.Unmarshal(bt.Records[i].Payload, &m); err != nil {
					return bt, err
				}
				m["enriched"] = true
				out, err := sonic.Marshal(m)
				if err != nil {
					return bt, err
				}
				bt.Records[i].Payload = out
			}
			return bt, nil
		},
	}
}

// engineLeg is one run of BenchmarkEngineThroughput: the records of w,
// queued in inmem before the clock starts, through RunGoverned with w's
// process step and a counting sink. governed false is the plain engine
// (self_regulation.enabled false: RunGoverned is Run). Both legs have the
// same memory guard (1 GiB, low pressure) and the same receive limits:
// max_chunk_size at the budget's record cap and max_bytes at its start,
// which the governed leg's budget then moves. The governed leg adds the
// budget, the gate loop and the gated receiver. It returns the wall and
// process CPU time of RunGoverned alone, the blocks it received and, for
// the governed leg, the budget's state at the end.
func engineLeg(b *testing.B, governed bool, cfg governor.Config, w legWork) (wall, cpu time.Duration, blocks uint64, bs governor.BudgetStats) {
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
	tr := inmem.New(inmem.Config{Capacity: w.records})
	for i := range w.records {
		if err := tr.Inject(ctx, transport.Record{Payload: w.payload(i), Timestamp: time.Unix(1, 0)}); err != nil {
			b.Fatal(err)
		}
	}
	tr.CloseInput()
	rx := gated.Governed(gov, tr)
	sunk := 0
	sink := func(_ context.Context, bt transport.Batch) error { sunk += len(bt.Records); return nil }
	runtime.GC() // the previous leg's garbage is not this leg's cost
	cpu0 := processCPU(b)
	b.StartTimer()
	start := time.Now()
	err = eng.RunGoverned(ctx, rx, w.process, sink)
	wall = time.Since(start)
	b.StopTimer()
	cpu = processCPU(b) - cpu0
	if err != nil {
		b.Fatal(err)
	}
	if sunk != w.records || tr.Committed() != uint64(w.records) {
		b.Fatalf("sunk %d committed %d of %d", sunk, tr.Committed(), w.records)
	}
	if bud, ok := gov.Budget().(*governor.Budget); ok {
		bs = bud.Stats()
	}
	return wall, cpu, eng.Stats().Blocks, bs
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
// pressure, for each profile, in three variants:
//
//   - default_budget: the profile as configured by default, with the
//     identity process step. Both engines start with blocks of the record
//     cap (2000, 1000 or 500 records, under the byte start); the process
//     step costs next to nothing, so the receive dominates.
//   - same_blocks: the identity step with the budget pinned at the record
//     cap (start, floor and ceiling at record_cap × 1 KiB), so that both
//     engines receive blocks of the same size whatever the machine does,
//     and the ratio is the cost of self-regulation alone: the gate
//     evaluated before each receive, the budget read and told each block,
//     the block streamed as one sub-block.
//   - cpu_bound: the default budget with a CPU-bound process step (parse
//     1 KiB of JSON, add a field, re-encode: jsonWork) over a backlog of
//     20 000 records. Every receive returns at once and processing takes
//     nearly all the wall time, so the utilisation is about 1 and every
//     block counts as behind; the memory guard's level stays near 0, so
//     the budget must not shrink (see governor.Budget), and the governed
//     engine must keep the plain engine's blocks.
//
// One op runs 20 000 records through each engine, in alternating order
// (plain first on even ops), so that the two runs of an op, close in
// time, see the same machine; ns/op is the wall time of both.
// governed/plain is the median over the ops of the op's throughput
// ratio, in wall time, so that a run stalled by another process (which
// only ever slows one run down) does not decide it; cpu_governed/plain is
// the same median in process CPU time (records per CPU second), which the
// machine's load moves less. plain_rec/s and governed_rec/s are the median
// wall-time throughputs of each engine; plain_rec/block and
// governed_rec/block the mean block sizes; behind_decreases the mean
// number of behind decreases of the governed budget per run.
func BenchmarkEngineThroughput(b *testing.B) {
	for _, p := range governor.Profiles() {
		env := p.Budget()
		pinned := int64(env.RecordCap) * 1024
		for _, v := range []struct {
			name string
			cfg  governor.Config
			work legWork
		}{
			{"default_budget", governor.Config{Profile: p}, identityWork(20_000)},
			{"same_blocks", governor.Config{Profile: p, Budget: governor.BudgetConfig{StartBytes: pinned, MinBytes: pinned, MaxBytes: pinned}},
				identityWork(20_000)},
			{"cpu_bound", governor.Config{Profile: p}, jsonWork(20_000)},
		} {
			b.Run(p.String()+"/"+v.name, func(b *testing.B) {
				records := v.work.records
				var wall [2][]float64 // seconds per op, plain and governed
				var ratio, cpuRatio []float64
				var blocks [2]uint64
				var behind uint64
				i := 0
				for b.Loop() {
					var w, c [2]time.Duration
					for k := range 2 {
						leg := (i + k) % 2 // 0 plain, 1 governed
						var n uint64
						var bs governor.BudgetStats
						w[leg], c[leg], n, bs = engineLeg(b, leg == 1, v.cfg, v.work)
						blocks[leg] += n
						behind += bs.DecreasesBehind
					}
					wall[0], wall[1] = append(wall[0], w[0].Seconds()), append(wall[1], w[1].Seconds())
					ratio = append(ratio, w[0].Seconds()/w[1].Seconds())
					if c[0] > 0 && c[1] > 0 {
						cpuRatio = append(cpuRatio, c[0].Seconds()/c[1].Seconds())
					}
					i++
				}
				b.ReportMetric(float64(records)/median(wall[0]), "plain_rec/s")
				b.ReportMetric(float64(records)/median(wall[1]), "governed_rec/s")
				b.ReportMetric(median(ratio), "governed/plain")
				if len(cpuRatio) > 0 {
					b.ReportMetric(median(cpuRatio), "cpu_governed/plain")
				}
				total := float64(i * records)
				b.ReportMetric(total/float64(blocks[0]), "plain_rec/block")
				b.ReportMetric(total/float64(blocks[1]), "governed_rec/block")
				b.ReportMetric(float64(behind)/float64(i), "behind_decreases")
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
