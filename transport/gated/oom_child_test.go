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
	oomBudgetMax  = 1 << 20  // the on leg's budget ceiling: 1 MiB blocks, 11 MiB with the expansion
	// oomOnTimeout and oomOffTimeout bound the legs (on an idle machine the
	// on leg takes about 1 s, 4 s under -race, and the off leg is killed
	// within 2 s): together they stay under a minute even on a busy one.
	oomOnTimeout  = 38 * time.Second
	oomOffTimeout = 15 * time.Second
)

// oomLimits returns the memory limit of each leg's cgroup and the
// engine's batch_processing.max_chunk_size in both legs: the size of the
// control leg's blocks, 16 MiB of payload that expand to 176 MiB, 1.4
// times the 128 MiB limit. The self-regulated leg peaks at 40 to 65 MiB.
// A -race binary also charges the race detector's shadow memory, which
// the Go runtime does not count and which made that leg peak anywhere
// from 45 to 120 MiB: it gets twice the limit, and twice the chunk so
// that the control leg still exceeds the limit on its Go memory alone
// (352 MiB of expansion).
func oomLimits() (limit int64, maxChunk int) {
	if raceBuild {
		return 256 << 20, 1024
	}
	return 128 << 20, 512
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
// and holds the memory until the block is sunk. The only difference
// between the legs is self_regulation.enabled.
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
	guard, err := memory.New(memory.Config{}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	gl := guard.ApplyGoMemoryLimit()
	gov, err := governor.New(governor.Config{
		Enabled:  ptr(leg == "on"),
		Profile:  governor.ProfileLowLatency,
		Interval: 10 * time.Millisecond,
		Budget:   governor.BudgetConfig{MaxBytes: oomBudgetMax},
	}, governor.WithMemory(guard), governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
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
	bs := gov.Stats().Budget
	fmt.Printf("%s leg=%s delivered=%d committed=%d max_block_records=%d guard_limit=%d go_limit=%d budget=%d\n",
		oomResultTag, leg, delivered, src.committed, maxBlock, guard.Limit(), gl.Bytes, bs.Bytes)
}
