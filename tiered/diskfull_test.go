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

// With the downstream down and the spool's disk full, the sink reports
// the failure to the engine, which therefore commits nothing it could not
// spool: every committed record is in the spool and reaches the downstream
// once it recovers. Once disk space is back, the sink spools again.
func TestDiskFullIsNotReportedAsSuccess(t *testing.T) {
	mnt := keeltest.MountTmpfs(t, 256<<10)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{'f'}, 96<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(mnt, "spool"))
	cfg.Spool.Sync = spool.SyncInterval // the default policy: appends are buffered
	cfg.Spool.SegmentBytes = 32 << 10
	cfg.Breaker = breaker.Config{FailureThreshold: 1, OpenTimeout: time.Minute}
	d := newFakeDown(100_000)
	d.setDown(true)
	e := newEnv(t, cfg, d, &memDLQ{})

	// More records than the disk holds, in blocks of 10.
	const total = 300
	src := inmem.New(inmem.Config{Capacity: total})
	in := make([][]byte, total)
	for i := range in {
		in[i] = []byte(diskFullPayload(i))
	}
	if err := src.InjectPayloads(context.Background(), in...); err != nil {
		t.Fatal(err)
	}
	src.CloseInput()
	eng, err := engine.New(engine.Config{MaxRecords: 10, Metrics: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	identity := func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }
	runErr := eng.Run(context.Background(), src, identity, eng.SinkTo(e.sink))
	if runErr == nil || !errors.Is(runErr, spool.ErrDiskFull) {
		t.Fatalf("engine run with the downstream down and the spool's disk full = %v, want an error matching spool.ErrDiskFull", runErr)
	}
	committed := int(src.Committed())
	spooled := int(e.sink.Spool().Len())
	t.Logf("committed %d of %d records, %d spooled, run error: %v", committed, total, spooled, runErr)
	if committed == 0 || committed >= total {
		t.Fatalf("committed %d of %d records: the disk should have filled part-way", committed, total)
	}
	if spooled < committed {
		t.Fatalf("the engine committed %d records but only %d are in the spool", committed, spooled)
	}
	if err := e.sink.Health(context.Background()); !errors.Is(err, spool.ErrDiskFull) {
		t.Fatalf("Health with the spool's disk full = %v, want the disk-full error", err)
	}

	// Still full: a direct send fails too. (What is left of the space
	// reserved in the segment may take the first of these records: they
	// are then spooled, and delivered later.)
	whileFull := make([]string, 20)
	for i := range whileFull {
		whileFull[i] = "while-full-" + diskFullPayload(i)
	}
	if err := e.sink.SendBatch(directCtx(), records(whileFull)); !errors.Is(err, spool.ErrDiskFull) {
		t.Fatalf("SendBatch of 20 KiB on a full disk = %v", err)
	}
	took := int(e.sink.Spool().Len()) - spooled

	// Space is back: records are spooled again, the downstream still down.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := payloads("after", 0, 20)
	sendAll(t, e.sink, after, 5)
	if got := int(e.sink.Spool().Len()); got != spooled+took+len(after) {
		t.Fatalf("spool holds %d records after space was freed, want %d", got, spooled+took+len(after))
	}
	if err := e.sink.Health(context.Background()); errors.Is(err, spool.ErrDiskFull) {
		t.Fatalf("Health still reports the full disk: %v", err)
	}

	// The downstream recovers: it receives every committed record, in
	// order, then the rest of what was spooled.
	d.setDown(false)
	e.clock.Advance(time.Minute)
	want := make([]string, 0, spooled+took+len(after))
	for i := range spooled {
		want = append(want, string(in[i]))
	}
	want = append(want, whileFull[:took]...)
	want = append(want, after...)
	got := d.waitFor(t, len(want))
	if !slices.Equal(got, want) {
		t.Fatalf("downstream received %d records, not the %d spooled ones in order", len(got), len(want))
	}
	assertExactlyOnce(t, d, want)
}
