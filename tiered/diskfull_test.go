//go:build linux

package tiered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// diskFullPayload is source record i: about 1 KiB.
func diskFullPayload(i int) string {
	return fmt.Sprintf("rec-%05d|%s", i, bytes.Repeat([]byte{byte('a' + i%26)}, 1000))
}

// With the downstream down and the spool's disk full, the sink reports the
// records it could not spool as backpressure, by index: the engine commits
// nothing it could not spool, waits, and sends again only what the spool
// did not take. Once disk space is back the pipeline goes on by itself, and
// when the downstream recovers it receives every record exactly once, in
// order.
func TestDiskFullPausesThePipelineUntilSpaceIsBack(t *testing.T) {
	mnt := keeltest.MountTmpfs(t, 512<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 440<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(mnt, "spool"))
	cfg.Spool.Sync = spool.SyncInterval // the default policy: appends are buffered
	cfg.Spool.SegmentBytes = 32 << 10
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	d.setDown(true)
	e := newEnv(t, cfg, d, &memDLQ{})

	// More records than the disk holds (about 150 KiB, with some 70 KiB
	// free), in blocks of 10.
	const total = 150
	src := inmem.New(inmem.Config{Capacity: total})
	in := make([]string, total)
	for i := range in {
		in[i] = diskFullPayload(i)
		if err := src.InjectPayloads(context.Background(), []byte(in[i])); err != nil {
			t.Fatal(err)
		}
	}
	src.CloseInput()
	eng, err := engine.New(engine.Config{MaxRecords: 10, Metrics: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	identity := func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }
	runDone := make(chan error, 1)
	go func() {
		runDone <- eng.Run(context.Background(), src, identity, eng.SinkTo(e.sink, engine.WithBackoff(time.Millisecond, 20*time.Millisecond)))
	}()

	// The disk fills: the sink reports it, the engine waits in its sink.
	deadline := time.Now().Add(15 * time.Second)
	for !errors.Is(e.sink.Health(context.Background()), spool.ErrDiskFull) {
		select {
		case err := <-runDone:
			t.Fatalf("the engine stopped before the disk filled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the spool's disk never filled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	committed, spooled := int(src.Committed()), int(e.sink.Spool().Len())
	t.Logf("disk full: committed %d of %d records, %d spooled", committed, total, spooled)
	if committed >= total || committed > spooled {
		t.Fatalf("disk full: committed %d of %d records with %d in the spool", committed, total, spooled)
	}
	time.Sleep(50 * time.Millisecond) // several sink retries, all refused
	select {
	case err := <-runDone:
		t.Fatalf("the engine stopped on a full disk instead of waiting: %v", err)
	default:
	}
	if c := int(src.Committed()); c > int(e.sink.Spool().Len()) {
		t.Fatalf("committed %d records with %d in the spool", c, e.sink.Spool().Len())
	}

	// Space is back: the engine goes on and commits everything.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("engine run after space came back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the engine did not finish after space came back")
	}
	if c := int(src.Committed()); c != total {
		t.Fatalf("committed %d of %d records", c, total)
	}
	if err := e.sink.Health(context.Background()); errors.Is(err, spool.ErrDiskFull) {
		t.Fatalf("Health still reports the full disk: %v", err)
	}

	// The downstream recovers: every record once, in order (a wrong index
	// in the sink's partial failures would show as a duplicate or a gap).
	d.setDown(false)
	e.clock.Advance(time.Minute)
	if got := d.waitFor(t, total); !slices.Equal(got, in) {
		t.Fatalf("downstream received %d records, not the %d sent in order", len(got), total)
	}
	assertExactlyOnce(t, d, in)
}

// A batch that the spool takes only in part fails with a
// *transport.BatchError naming, by their index in the batch, only the
// records it did not take, as backpressure.
func TestDiskFullPartialBatchNamesTheRest(t *testing.T) {
	mnt := keeltest.MountTmpfs(t, 512<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 440<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(mnt, "spool"))
	cfg.Spool.Sync = spool.SyncInterval
	cfg.Spool.SegmentBytes = 32 << 10
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100)
	d.setDown(true)
	e := newEnv(t, cfg, d, &memDLQ{})
	ps := make([]string, 150)
	for i := range ps {
		ps[i] = diskFullPayload(i)
	}
	err := e.sink.SendBatch(directCtx(), records(ps))
	var be *transport.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("SendBatch of 150 KiB with some 70 KiB free = %v, want a *transport.BatchError", err)
	}
	took := int(e.sink.Spool().Len())
	if took == 0 || took == len(ps) || len(be.Failed) != len(ps)-took {
		t.Fatalf("spool took %d of %d, the error names %d", took, len(ps), len(be.Failed))
	}
	for k, f := range be.Failed {
		if f.Index != took+k || !errors.Is(f.Err, spool.ErrDiskFull) || transport.Classify(f.Err) != transport.Backpressure {
			t.Fatalf("failed[%d] = index %d, %v (class %v); want index %d, disk full, backpressure", k, f.Index, f.Err, transport.Classify(f.Err), took+k)
		}
	}
}
