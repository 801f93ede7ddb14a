//go:build linux

package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keel-go/keel/internal/keeltest"
)

// writeFiller writes a file of n bytes.
func writeFiller(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'f'}, n), 0o644); err != nil {
		t.Fatalf("write filler %s: %v", path, err)
	}
}

// freeBytes is the free space of the volume holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	free, _, err := freeDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	return int64(free)
}

// fullPayload is record i of the disk-full tests: 200 to 3000 bytes, so
// that the out-of-space write lands anywhere in a frame.
func fullPayload(i int) []byte {
	head := fmt.Sprintf("rec-%05d|", i)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + i%26)}, 200+(i*397)%2800)...)
}

// checkFull checks the spool holds exactly fullPayload(0..n-1), in order.
func checkFull(t *testing.T, s *Spool, n int) {
	t.Helper()
	es := drain(t, s)
	if len(es) != n {
		t.Fatalf("spool hands out %d records, want %d", len(es), n)
	}
	for i, e := range es {
		if !bytes.Equal(e.Payload, fullPayload(i)) {
			t.Fatalf("record %d (seq %d) holds %.20q, want %.20q", i, e.Seq, e.Payload, fullPayload(i))
		}
		if i > 0 && e.Seq != es[i-1].Seq+1 {
			t.Fatalf("seq %d after %d", e.Seq, es[i-1].Seq)
		}
	}
}

// checkSegmentsIntact fails when a segment file holds anything but whole,
// intact frames.
func checkSegmentsIntact(t *testing.T, dir string) {
	t.Helper()
	for _, f := range segFiles(t, dir) {
		frameSpans(t, f) // fails on damage or a partial frame
	}
}

// An append that runs out of disk fails at once with a disk-full error
// naming the directory, leaves no partial frame, loses nothing appended
// before, and appends work again once space is freed; every record is
// then on disk in order.
func TestDiskFullAppendFailsCleanly(t *testing.T) {
	noReserve := func(*os.File, int64) error { return errors.New("injected: cannot allocate") }
	for _, tc := range []struct {
		name     string
		sync     SyncPolicy
		segment  int64
		prealloc func(*os.File, int64) error
		// rescue: the disk fills while the buffer is written out, which
		// spends the space reserve.
		rescue bool
	}{
		{name: "always", sync: SyncAlways, segment: 32 << 10},
		{name: "interval", sync: SyncInterval, segment: 32 << 10},
		{name: "never", sync: SyncNever, segment: 32 << 10},
		// Segments larger than the buffer: the 64 KiB write-out of the
		// buffer is what meets the full disk.
		{name: "interval, large segments", sync: SyncInterval, segment: 1 << 20, rescue: true},
		// Without the space reserve appends are written through.
		{name: "interval without a space reserve", sync: SyncInterval, segment: 32 << 10, prealloc: noReserve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := keeltest.MountTmpfs(t, 512<<10)
			filler := filepath.Join(mnt, "filler")
			writeFiller(t, filler, 256<<10)
			cfg := testConfig(t)
			cfg.Dir = filepath.Join(mnt, "spool")
			cfg.SegmentBytes = tc.segment
			cfg.Sync = tc.sync
			cfg.FullPolicy = Block // a full disk fails at once even so
			cfg.prealloc = tc.prealloc
			s := mustOpen(t, cfg)
			s.bmu.Lock()
			buffered := s.bufferOn
			s.bmu.Unlock()
			if want := tc.sync != SyncAlways && tc.prealloc == nil; buffered != want {
				t.Fatalf("buffering %v, want %v", buffered, want)
			}

			n := 0
			var err error
			for ; n < 1000; n++ {
				if _, err = s.Append(context.Background(), fullPayload(n)); err != nil {
					break
				}
			}
			if n == 0 || n == 1000 {
				t.Fatalf("appended %d records before the disk filled (err %v)", n, err)
			}
			var fe *FullError
			if !errors.As(err, &fe) || fe.Reason != ReasonDiskFull || !errors.Is(err, ErrDiskFull) ||
				!errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrBroken) {
				t.Fatalf("Append on a full disk = %v (%T), want a *FullError of reason disk_full matching ErrDiskFull and ENOSPC", err, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "disk full") || !strings.Contains(msg, cfg.Dir) {
				t.Fatalf("error %q does not say the disk is full in %s", msg, cfg.Dir)
			}
			if tc.rescue {
				s.bmu.Lock()
				spent, buffering := s.resv == nil, s.bufferOn
				s.bmu.Unlock()
				if !spent || buffering || fileSize(t, filepath.Join(cfg.Dir, reserveName)) != 0 {
					t.Fatalf("space reserve spent %v, still buffering %v: the buffered write-out did not meet the full disk", spent, buffering)
				}
			}
			// The spool is not broken: appends go on once there is room
			// (here, the space the spent reserve freed, written through)
			// and are refused again while there is none.
			for more := 0; ; more++ {
				_, err := s.Append(context.Background(), fullPayload(n))
				if err != nil {
					if !errors.Is(err, ErrDiskFull) {
						t.Fatalf("Append %d on a full disk = %v", n, err)
					}
					break
				}
				if more == 200 {
					t.Fatal("appends go on on a full disk")
				}
				n++
			}
			if st := s.Stats(); st.FullEvents < 2 || st.NextSeq != uint64(n)+1 {
				t.Fatalf("stats after the failures: %+v (appended %d)", st, n)
			}

			// Everything appended is readable now, while full; closing
			// writes out whatever is buffered.
			checkFull(t, s, n)
			mustClose(t, s)
			checkSegmentsIntact(t, cfg.Dir)
			s = mustOpen(t, cfg)
			if st := s.Stats(); st.Corruptions != 0 || st.TruncatedBytes != 0 || st.LostRecords != 0 {
				t.Fatalf("reopened after a full disk with damage: %+v", st)
			}
			checkFull(t, s, n)
			s.Rewind()
			if _, err := s.Append(context.Background(), fullPayload(n)); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("Append on a full disk after reopen = %v", err)
			}

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			for i := n; i < n+10; i++ {
				if _, err := s.Append(context.Background(), fullPayload(i)); err != nil {
					t.Fatalf("Append %d after space was freed: %v", i, err)
				}
			}
			n += 10
			mustClose(t, s)
			checkSegmentsIntact(t, cfg.Dir)
			s = mustOpen(t, cfg)
			defer mustClose(t, s)
			if st := s.Stats(); st.Corruptions != 0 || st.TruncatedBytes != 0 || st.LostRecords != 0 {
				t.Fatalf("reopened with damage: %+v", st)
			}
			checkFull(t, s, n)
		})
	}
}

// Without the space reservation a write-through append that meets ENOSPC
// after part of its frame reached the file cuts that part again: the file
// ends on a whole frame, so recovery finds nothing to truncate.
func TestDiskFullPartialWriteIsCut(t *testing.T) {
	mnt := keeltest.MountTmpfs(t, 64<<10)
	cfg := testConfig(t)
	cfg.Dir = filepath.Join(mnt, "spool")
	cfg.SegmentBytes = 1 << 20
	cfg.MaxBytes = 4 << 20
	cfg.Sync = SyncAlways
	s := mustOpen(t, cfg)
	// One small record, then one larger than what is left: its write
	// is partial.
	if _, err := s.Append(context.Background(), fullPayload(0)); err != nil {
		t.Fatal(err)
	}
	free := freeBytes(t, mnt)
	big := bytes.Repeat([]byte{'x'}, int(free)+8<<10)
	if _, err := s.Append(context.Background(), big); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Append of %d bytes with %d free = %v", len(big), free, err)
	}
	segs := segFiles(t, cfg.Dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	_, sizes, _ := frameSpans(t, segs[0])
	if len(sizes) != 1 || fileSize(t, segs[0]) != segHeaderSize+sizes[0] {
		t.Fatalf("segment holds %d frames in %d bytes after the failed append", len(sizes), fileSize(t, segs[0]))
	}
	mustClose(t, s)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	if st := s.Stats(); st.Corruptions != 0 || st.TruncatedBytes != 0 {
		t.Fatalf("reopened with damage: %+v", st)
	}
	checkFull(t, s, 1)
}

// The free-disk watermark refuses appends before the volume is full, on a
// real file system: the error is min_free_bytes, not disk_full, and space
// is left. Under the block policy the append waits and goes through once
// space is freed (the background statfs notices it).
func TestMinFreeBytesOnTmpfs(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncInterval} {
		t.Run(string(sync), func(t *testing.T) {
			mnt := keeltest.MountTmpfs(t, 512<<10)
			cfg := testConfig(t)
			cfg.Dir = filepath.Join(mnt, "spool")
			cfg.SegmentBytes = 32 << 10
			cfg.Sync = sync
			cfg.MinFreeBytes = 96 << 10
			cfg.FullPolicy = Error
			s := mustOpen(t, cfg)
			n := 0
			var err error
			for ; n < 1000; n++ {
				if _, err = s.Append(context.Background(), fullPayload(n)); err != nil {
					break
				}
			}
			var fe *FullError
			if !errors.As(err, &fe) || fe.Reason != ReasonMinFreeBytes || errors.Is(err, ErrDiskFull) {
				t.Fatalf("Append near the watermark = %v, want a *FullError of reason min_free_bytes", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "spool.min_free_bytes") || !strings.Contains(msg, cfg.Dir) {
				t.Fatalf("error %q does not name spool.min_free_bytes and %s", msg, cfg.Dir)
			}
			// Refused before the disk was full: about the watermark is
			// still free (less the space reserved in the segment being
			// written).
			if free := freeBytes(t, mnt); free < cfg.MinFreeBytes-cfg.SegmentBytes {
				t.Fatalf("refused with %d bytes free, watermark %d", free, cfg.MinFreeBytes)
			}
			checkFull(t, s, n)
			mustClose(t, s)
			if err := os.RemoveAll(cfg.Dir); err != nil {
				t.Fatal(err)
			}

			// Block: wait for space, then go through. (Free space is
			// polled at most once a second: fill the disk before Open.)
			filler := filepath.Join(mnt, "filler")
			writeFiller(t, filler, int(freeBytes(t, mnt)-cfg.MinFreeBytes+16<<10))
			cfg.FullPolicy = Block
			s = mustOpen(t, cfg)
			defer mustClose(t, s)
			waiting := make(chan string, 1)
			s.hookFull = func(r string) {
				select {
				case waiting <- r:
				default:
				}
			}
			done := make(chan error, 1)
			go func() {
				_, err := s.Append(context.Background(), fullPayload(0))
				done <- err
			}()
			select {
			case r := <-waiting:
				if r != ReasonMinFreeBytes {
					t.Fatalf("waiting for %q", r)
				}
			case err := <-done:
				t.Fatalf("Append with %d bytes free, watermark %d, did not wait: %v", freeBytes(t, mnt), cfg.MinFreeBytes, err)
			}
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			// The background loop polls statfs every second.
			if err := <-done; err != nil {
				t.Fatalf("blocked Append after space was freed = %v", err)
			}
			checkFull(t, s, 1)
		})
	}
}
