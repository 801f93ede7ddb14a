package gated_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
)

// The workload of the real never-OOM test, shared by its parent (which
// checks the numbers) and its child process (which runs it).
const (
	oomChildEnv   = "KEEL_GOVERNOR_OOM_CHILD" // "on" or "off": the leg the child runs
	oomResultTag  = "KEEL_OOM_RESULT"
	oomRecordSize = 32 << 10 // 32 KiB payloads
	oomRecords    = 2048     // a 64 MiB stream: 704 MiB through the transform
	oomExpansion  = 10       // the transform holds 10× each record until the block is sunk
	// oomOnTimeout and oomOffTimeout bound the legs (on 2 CPUs at a load
	// average of 17 the on leg took 2 to 5 s, 11 to 17 s under -race, and
	// the off leg was killed within 2 to 4 s, 8 to 13 s under -race):
	// together they stay under a minute.
	oomOnTimeout  = 30 * time.Second
	oomOffTimeout = 25 * time.Second
)

// oomRaceFactor is how much larger a -race binary's cgroup is: the race
// detector's shadow memory is charged to the cgroup but not counted by the
// Go runtime, and with this workload it added 100 to 190 MiB to a Go heap
// held under 115 MiB.
const oomRaceFactor = 4

// oomLimits returns the memory limit of each leg's cgroup and the
// engine's batch_processing.max_chunk_size in both legs: the size of the
// control leg's blocks, 16 MiB of payload that expand to 176 MiB, 1.4
// times the 128 MiB limit. In the self-regulated leg the block ceiling
// (1/16 of the guard's 102.4 MiB) caps blocks at 6.4 MiB, 70.4 MiB with
// their expansion. A -race binary gets oomRaceFactor times the limit and
// the whole stream as the control leg's one block (704 MiB of expansion,
// well above the limit on its Go memory alone).
func oomLimits() (limit int64, maxChunk int) {
	if raceBuild {
		return oomRaceFactor * 128 << 20, oomRecords
	}
	return 128 << 20, 512
}

// oomMemoryConfig is the memory section of both legs: the defaults, but
// for a -race binary, whose cgroup is oomRaceFactor times larger, the
// fractions divided by that factor, so that the Go memory limit and the
// guard's limit are those of the normal build's 128 MiB cgroup and the
// rest is left to the race detector's shadow memory.
func oomMemoryConfig() memory.Config {
	if raceBuild {
		return memory.Config{
			HeadroomFraction:      memory.DefaultHeadroomFraction / oomRaceFactor,
			GoMemoryLimitFraction: memory.DefaultGoMemoryLimitFraction / oomRaceFactor,
		}
	}
	return memory.Config{}
}

// backlog is a source with a standing backlog, like a Kafka partition
// with lag: each Recv builds, on demand, as many records as the limits
// allow (nothing is buffered ahead), and commits are cumulative. It ends
// with transport.ErrClosed after the last record.
type backlog struct {
	mu        sync.Mutex
	next      int
	total     int
	size      int
	committed int
}

type backlogToken struct{ seq int }

func (t backlogToken) String() string { return fmt.Sprintf("backlog:%d", t.seq) }

func (b *backlog) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	l := limits.Normalize()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next >= b.total {
		return transport.Batch{}, transport.NewError(transport.ErrClosed, "backlog", "recv", nil)
	}
	var recs []transport.Record
	var toks []transport.Token
	var bytes int64
	for b.next < b.total && !l.Full(len(recs), bytes) {
		p := make([]byte, b.size)
		for i := 0; i < len(p); i += 4096 {
			p[i] = 1 // resident
		}
		b.next++
		recs = append(recs, transport.Record{Payload: p})
		toks = append(toks, backlogToken{seq: b.next})
		bytes += int64(len(p))
	}
	return transport.NewBatch(recs, toks), nil
}

func (b *backlog) Commit(_ context.Context, tokens []transport.Token) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range tokens {
		if bt, ok := t.(backlogToken); ok && bt.seq > b.committed {
			b.committed = bt.seq
		}
	}
	return nil
}

func (b *backlog) Close(context.Context) error  { return nil }
func (b *backlog) Health(context.Context) error { return nil }
func (b *backlog) Name() string                 { return "backlog" }

// TestHelperNeverOOMChild is the child process of TestNeverOOMUnderCgroup:
// the same test binary, re-executed inside a memory-limited cgroup. It
// waits for the parent to move it into the cgroup (one line on stdin),
// then streams oomRecords records from a backlog through the governed
// engine with a transform that allocates oomExpansion times each record
// and holds the memory until the block is sunk. Both legs run the memory
// and self_regulation sections at their defaults, as a service would;
// the only difference is self_regulation.enabled.
func TestHelperNeverOOMChild(t *testing.T) {
	leg := os.Getenv(oomChildEnv)
	if leg == "" {
		t.Skip("helper process of TestNeverOOMUnderCgroup; it runs only when that test re-executes the binary")
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	// The child gives up a little before the parent would kill it, so that
	// a slow leg reports where it was.
	ctx, cancel := context.WithTimeout(context.Background(), oomOnTimeout-3*time.Second)
	defer cancel()
	reg := testRegistry()
	// The memory guard as a service builds it: its limit detected from the
	// cgroup, and the Go runtime memory limit set below it, in both legs.
	guard, err := memory.New(oomMemoryConfig(), memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	gl := guard.ApplyGoMemoryLimit()
	gov, err := governor.New(governor.Config{Enabled: ptr(leg == "on")},
		governor.WithMemory(guard), governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = gov.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	_, maxChunk := oomLimits()
	src := &backlog{total: oomRecords, size: oomRecordSize}
	eng, err := engine.New(engine.Config{MaxRecords: maxChunk, Memory: guard, Budget: gov.Budget(), Metrics: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var held [][]byte // the transform's memory, held until the block is sunk
	var delivered, maxBlock int
	process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		for _, r := range b.Records {
			buf := make([]byte, oomExpansion*len(r.Payload))
			for i := 0; i < len(buf); i += 4096 {
				buf[i] = byte(i) // touch every page: resident, charged to the cgroup
			}
			held = append(held, buf)
		}
		return b, nil
	}
	sink := func(_ context.Context, b transport.Batch) error {
		delivered += len(b.Records)
		maxBlock = max(maxBlock, len(b.Records))
		held = nil
		return nil
	}
	if err := eng.RunGoverned(ctx, gated.Governed(gov, src), process, sink); err != nil {
		t.Fatal(err)
	}
	// The brake's evidence: the block ceiling the budget was built under,
	// its envelope, and what the gate and the budget did under pressure.
	st := gov.Stats()
	var ceiling, start, maxBytes int64
	if b, ok := gov.Budget().(*governor.Budget); ok {
		ceiling, start, maxBytes = b.Ceiling(), b.Config().StartBytes, b.Config().MaxBytes
	}
	var pauses uint64
	for _, g := range st.Gates {
		pauses += g.Pauses
	}
	fmt.Printf("%s leg=%s delivered=%d committed=%d max_block_records=%d guard_limit=%d go_limit=%d "+
		"block_ceiling=%d budget_start=%d budget_max=%d budget=%d pauses=%d pressure_decreases=%d\n",
		oomResultTag, leg, delivered, src.committed, maxBlock, guard.Limit(), gl.Bytes,
		ceiling, start, maxBytes, st.Budget.Bytes, pauses, st.Budget.DecreasesPressure)
}
