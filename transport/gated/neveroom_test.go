package gated_test

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// peakAccountant sits between the engine and the memory guard and records
// every lease, the number of budget observations made when it was taken,
// and the high-water mark of the bytes in flight.
type peakAccountant struct {
	inner    engine.MemoryAccountant
	observed func() int // observations so far

	inflight atomic.Int64
	peak     atomic.Int64

	mu     sync.Mutex
	leases []lease
}

type lease struct {
	bytes    int64
	observed int
}

func (a *peakAccountant) Add(n int64) {
	a.inner.Add(n)
	cur := a.inflight.Add(n)
	for {
		p := a.peak.Load()
		if cur <= p || a.peak.CompareAndSwap(p, cur) {
			break
		}
	}
	a.mu.Lock()
	a.leases = append(a.leases, lease{bytes: n, observed: a.observed()})
	a.mu.Unlock()
}

func (a *peakAccountant) Release(n int64) {
	a.inflight.Add(-n)
	a.inner.Release(n)
}

// budgetRecorder wraps the governor's budget and records every value the
// engine reads and the budget after each observation.
type budgetRecorder struct {
	inner governor.ByteBudget

	minRead atomic.Int64
	mu      sync.Mutex
	after   []int64 // budget after observation i
}

func (b *budgetRecorder) Bytes() int64 {
	v := b.inner.Bytes()
	for {
		m := b.minRead.Load()
		if v >= m || b.minRead.CompareAndSwap(m, v) {
			return v
		}
	}
}

func (b *budgetRecorder) RecordCap() int { return b.inner.RecordCap() }

func (b *budgetRecorder) Observe(bytes int64, p, i time.Duration) {
	b.inner.Observe(bytes, p, i)
	b.mu.Lock()
	b.after = append(b.after, b.inner.Bytes())
	b.mu.Unlock()
}

func (b *budgetRecorder) observations() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.after)
}

// Never OOM, in process: a sustained stream eight times the memory guard's
// limit flows through the governed engine with a slow sink. The first
// block, sized at the start budget (the whole limit), drives the pressure
// to 1: the gate engages, the budget halves, and from then on every
// sub-block is at most the shrunk budget. Every record is sunk in order
// and committed, and at most one sub-block is in flight at any time.
func TestNeverOOMInProcess(t *testing.T) {
	const (
		limit   = 256 * kib
		recSize = 4 * kib
		records = 512 // 2 MiB, 8× the limit
		queue   = 64  // 256 KiB queued at most
		step    = 64
	)
	ctx := testCtx(t)
	reg := testRegistry()
	guard, err := memory.New(memory.Config{LimitBytes: limit}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	paused := make(chan struct{})
	var pauseOnce sync.Once
	act := governor.ActuatorFuncs{OnPause: func(context.Context) error {
		pauseOnce.Do(func() { close(paused) })
		return nil
	}}
	// max_block_fraction 1 lifts the block ceiling (1/16 of the limit by
	// default) so that the first block can be the whole limit and show
	// the gate at work; the process step does not expand its input.
	gov, err := governor.New(governor.Config{
		Profile:          governor.ProfileLowLatency,
		Interval:         time.Millisecond,
		MaxBlockFraction: 1,
		Budget:           governor.BudgetConfig{StartBytes: limit, MaxBytes: limit, MinBytes: kib, StepBytes: step},
	}, governor.WithMemory(guard), governor.WithActuator("inmem", act), governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	budget := &budgetRecorder{inner: gov.Budget()}
	budget.minRead.Store(1 << 62)
	acct := &peakAccountant{inner: guard, observed: budget.observations}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = gov.Run(runCtx) }()
	defer func() { stop(); wg.Wait() }()

	tr := inmem.New(inmem.Config{Capacity: queue})
	payload := func(i int) []byte {
		p := make([]byte, recSize)
		binary.BigEndian.PutUint32(p, uint32(i))
		return p
	}
	// Fill the queue, then keep it under sustained load.
	for i := 0; i < queue; i++ {
		if err := tr.InjectPayloads(ctx, payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	prodErr := make(chan error, 1)
	go func() {
		defer tr.CloseInput()
		for i := queue; i < records; i++ {
			if err := tr.InjectPayloads(ctx, payload(i)); err != nil {
				prodErr <- err
				return
			}
		}
		prodErr <- nil
	}()

	eng, err := engine.New(engine.Config{Memory: acct, Budget: budget, Metrics: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var sunk []uint32
	first := true
	sink := func(ctx context.Context, b transport.Batch) error {
		if first {
			// The sink of the first, oversized sub-block is slow enough
			// for the governor to see it: it returns once the gate holds.
			first = false
			select {
			case <-paused:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		time.Sleep(100 * time.Microsecond) // a slow downstream
		for _, r := range b.Records {
			sunk = append(sunk, binary.BigEndian.Uint32(r.Payload))
		}
		return nil
	}
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }
	if err := eng.RunGoverned(ctx, gated.Governed(gov, tr), process, sink); err != nil {
		t.Fatal(err)
	}
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}

	// Everything delivered, in order, and committed.
	if len(sunk) != records || tr.Committed() != records {
		t.Fatalf("sunk %d, committed %d, want %d", len(sunk), tr.Committed(), records)
	}
	for i, v := range sunk {
		if v != uint32(i) {
			t.Fatalf("record %d is %d: order lost", i, v)
		}
	}
	// The gate engaged and let intake go again.
	st := gov.Gate().Stats()
	if st.Pauses < 1 || st.Resumes < 1 {
		t.Fatalf("gate %+v: want at least one pause and one resume", st)
	}
	// The budget never reached zero: never below its floor.
	if m := budget.minRead.Load(); m < kib {
		t.Fatalf("budget read %d, below the floor %d", m, kib)
	}
	bs := gov.Stats().Budget
	if bs.DecreasesPressure < 1 {
		t.Fatalf("budget %+v: the pressure never forced a decrease", bs)
	}

	// Memory: one sub-block in flight at a time, and after the first block
	// every sub-block is at most the budget the previous observation left
	// (or one record, the floor of a sub-block).
	acct.mu.Lock()
	leases := append([]lease(nil), acct.leases...)
	acct.mu.Unlock()
	budget.mu.Lock()
	after := append([]int64(nil), budget.after...)
	budget.mu.Unlock()
	var maxLease, maxLater int64
	for _, l := range leases {
		maxLease = max(maxLease, l.bytes)
		if l.observed == 0 {
			if l.bytes > limit {
				t.Fatalf("first block leased %d, above the start budget %d", l.bytes, limit)
			}
			continue
		}
		maxLater = max(maxLater, l.bytes)
		if bound := max(after[l.observed-1], recSize); l.bytes > bound {
			t.Fatalf("lease %d after %d observations exceeds the budget then, %d", l.bytes, l.observed, bound)
		}
	}
	if p := acct.peak.Load(); p != maxLease {
		t.Fatalf("peak in flight %d > largest single lease %d: two sub-blocks overlapped", p, maxLease)
	}
	// The justified bound: pressure halves the start budget at the first
	// observation, and each later block adds at most one step, so no later
	// sub-block exceeds limit/2 + records×step = 160 KiB, under the 205 KiB
	// pressure threshold of the guard.
	if bound := int64(limit/2 + records*step); maxLater > bound {
		t.Fatalf("largest sub-block after the first block %d, want <= %d", maxLater, bound)
	}
	if after[0] != limit/2 {
		t.Fatalf("budget after the first block %d, want %d (halved by pressure)", after[0], limit/2)
	}
	if guard.Accounted() != 0 || acct.inflight.Load() != 0 {
		t.Fatalf("bytes still accounted: guard %d, in flight %d", guard.Accounted(), acct.inflight.Load())
	}
	t.Logf("leases %d, first %d B, largest later %d B, final budget %d B, gate %+v, budget %+v",
		len(leases), leases[0].bytes, maxLater, gov.Budget().Bytes(), st, bs)
}

// The default block ceiling, in process: with the self_regulation
// section at its defaults, a process step that holds ten times each
// sub-block until it is sunk (accounted on the guard, so the peak is
// measurable) never takes the guard past 11/16 of its limit, under the
// pressure threshold, so every record flows without the gate engaging.
// The control lifts the ceiling to the whole limit (max_block_fraction
// 1): the first block is then the limit itself and its expansion takes
// the guard to 11 times the limit.
func TestDefaultBlockCeilingBoundsTheExpansion(t *testing.T) {
	const (
		limit     = 1 << 20
		recSize   = 4 * kib
		records   = 512 // 2 MiB
		expansion = 10
	)
	run := func(t *testing.T, cfg governor.Config) (ceiling, peak int64, pauses uint64) {
		ctx := testCtx(t)
		reg := testRegistry()
		guard, err := memory.New(memory.Config{LimitBytes: limit}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		gov := newGovernor(t, cfg, governor.WithMemory(guard))
		tr := inmem.New(inmem.Config{Capacity: records})
		for i := 0; i < records; i++ {
			if err := tr.InjectPayloads(ctx, make([]byte, recSize)); err != nil {
				t.Fatal(err)
			}
		}
		tr.CloseInput()
		eng, err := engine.New(engine.Config{Memory: guard, Budget: gov.Budget(), Metrics: reg, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		var held func()
		process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
			held = guard.Lease(expansion * b.PayloadBytes())
			peak = max(peak, guard.Accounted())
			if _, err := gov.Gate().Evaluate(ctx); err != nil {
				t.Error(err)
			}
			return b, nil
		}
		sunk := 0
		sink := func(_ context.Context, b transport.Batch) error {
			sunk += len(b.Records)
			held()
			return nil
		}
		if err := eng.RunGoverned(ctx, gated.Governed(gov, tr), process, sink); err != nil {
			t.Fatal(err)
		}
		if sunk != records || tr.Committed() != records || guard.Accounted() != 0 {
			t.Fatalf("sunk %d, committed %d, want %d; %d bytes still accounted", sunk, tr.Committed(), records, guard.Accounted())
		}
		return gov.Budget().(*governor.Budget).Ceiling(), peak, gov.Gate().Stats().Pauses
	}
	t.Run("defaults", func(t *testing.T) {
		ceiling, peak, pauses := run(t, governor.Config{})
		if ceiling != limit/16 {
			t.Fatalf("block ceiling %d, want %d", ceiling, limit/16)
		}
		if bound := (1 + expansion) * ceiling; peak > bound || float64(peak) >= memory.DefaultPressureThreshold*limit {
			t.Fatalf("peak accounted %d bytes, want <= %d and under the pressure threshold (%v of %d)", peak, bound, memory.DefaultPressureThreshold, limit)
		}
		if pauses != 0 {
			t.Fatalf("the gate engaged %d times", pauses)
		}
		t.Logf("ceiling %d B, peak accounted %d B (%.4f of the limit)", ceiling, peak, float64(peak)/limit)
	})
	t.Run("control without the ceiling", func(t *testing.T) {
		ceiling, peak, pauses := run(t, governor.Config{MaxBlockFraction: 1})
		if ceiling != limit || peak != (1+expansion)*limit || pauses < 1 {
			t.Fatalf("ceiling %d, peak %d, %d pauses: want the whole limit, 11 times it, and the gate engaged", ceiling, peak, pauses)
		}
	})
}
