package spool

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// frameSpans returns the offset and size of every frame in a segment file.
func frameSpans(t *testing.T, path string) (offs, sizes []int64, seqs []uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sc scanner
	sc.reset(bytesReaderAt(b), int64(len(b)))
	off := int64(segHeaderSize)
	for {
		it, err := sc.next(off, 0, anySeq)
		if err != nil {
			t.Fatal(err)
		}
		if it.kind == itemEnd {
			return
		}
		if it.kind != itemFrame {
			t.Fatalf("unexpected damage in %s at %d", path, off)
		}
		offs, sizes, seqs = append(offs, it.off), append(sizes, it.size), append(seqs, it.seq)
		off += it.size
	}
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5A
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// fill writes n records to a fresh spool and closes it; it returns the
// config and the segment files.
func fill(t *testing.T, n int) (Config, []string) {
	t.Helper()
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	appendN(t, s, 0, n)
	mustClose(t, s)
	files := segFiles(t, cfg.Dir)
	if len(files) < 3 {
		t.Fatalf("want at least 3 segments, got %d", len(files))
	}
	return cfg, files
}

// without returns 0..n-1 minus the given ids.
func without(n int, skip ...int) []int {
	drop := map[int]bool{}
	for _, s := range skip {
		drop[s] = true
	}
	var out []int
	for i := range n {
		if !drop[i] {
			out = append(out, i)
		}
	}
	return out
}

func corruptionsOf(s *Spool, kind string) float64 {
	return testutil.ToFloat64(s.ins.corruptions[kind])
}

func TestFlippedPayloadByteSkipsOneRecord(t *testing.T) {
	const n = 300
	cfg, files := fill(t, n)
	offs, _, seqs := frameSpans(t, files[0])
	victim := 5 // a record in the middle of the first (sealed) segment
	flipByte(t, files[0], offs[victim]+frameHeaderSize+3)

	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.Len() != n { // not known yet: counted when the reader gets there
		t.Fatalf("Len before reading = %d", s.Len())
	}
	got := drain(t, s)
	checkEntries(t, got, without(n, int(seqs[victim]-1)))
	st := s.Stats()
	if st.Corruptions != 1 || st.LostRecords != 1 || corruptionsOf(s, KindChecksum) != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s.Len() != n-1 {
		t.Fatalf("Len after reading = %d, want %d", s.Len(), n-1)
	}
	// Acknowledging everything empties the spool exactly.
	if err := s.Ack(got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after ack: Len %d Bytes %d", s.Len(), s.Bytes())
	}
}

func TestDamagedFrameHeaderResynchronises(t *testing.T) {
	const n = 300
	cfg, files := fill(t, n)
	offs, _, seqs := frameSpans(t, files[1])
	// Break the length field of one frame and the magic of the next:
	// the reader must scan forward to the frame after.
	flipByte(t, files[1], offs[3]+24)
	flipByte(t, files[1], offs[4])
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	got := drain(t, s)
	checkEntries(t, got, without(n, int(seqs[3]-1), int(seqs[4]-1)))
	if st := s.Stats(); st.Corruptions != 1 || st.LostRecords != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTruncatedSealedSegmentLosesOnlyItsTail(t *testing.T) {
	const n = 300
	cfg, files := fill(t, n)
	offs, _, seqs := frameSpans(t, files[1])
	cut := offs[4] + 10 // in the middle of the 5th frame
	if err := os.Truncate(files[1], cut); err != nil {
		t.Fatal(err)
	}
	var lostIDs []int
	for _, q := range seqs[4:] {
		lostIDs = append(lostIDs, int(q-1))
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	got := drain(t, s)
	checkEntries(t, got, without(n, lostIDs...))
	st := s.Stats()
	if st.LostRecords != uint64(len(lostIDs)) || corruptionsOf(s, KindTornTail) != 1 {
		t.Fatalf("stats %+v, want %d lost", st, len(lostIDs))
	}
	if err := s.Ack(got[len(got)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after ack: Len %d Bytes %d", s.Len(), s.Bytes())
	}
}

func TestTornTailOfNewestSegmentIsTruncatedAtOpen(t *testing.T) {
	const n = 300
	cfg, files := fill(t, n)
	last := files[len(files)-1]
	offs, _, seqs := frameSpans(t, last)
	k := len(offs) - 1
	cut := offs[k] + frameHeaderSize + 2 // half a frame: a torn write
	if err := os.Truncate(last, cut); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, cfg)
	if got := fileSize(t, last); got != offs[k] {
		t.Fatalf("newest segment is %d bytes after open, want truncated to %d", got, offs[k])
	}
	st := s.Stats()
	// The ledger saw record seqs[k] appended: it is counted as lost.
	if st.TruncatedBytes != cut-offs[k] || corruptionsOf(s, KindTornTail) != 1 || st.LostRecords != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s.Len() != n-1 {
		t.Fatalf("Len = %d", s.Len())
	}
	checkEntries(t, drain(t, s), seqRange(0, n-1))
	// Sequence numbers are never reused, even for a lost record.
	q, err := s.Append(context.Background(), payloadOf(n-1))
	if err != nil || q != seqs[k]+1 {
		t.Fatalf("Append after truncation = %d, %v; want seq %d", q, err, seqs[k]+1)
	}
	mustClose(t, s)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	checkEntries(t, drain(t, s), seqRange(0, n))
	if st := s.Stats(); st.Corruptions != 0 {
		t.Fatalf("second open found damage again: %+v", st)
	}
}

func TestFlipAndTruncateTogether(t *testing.T) {
	const n = 400
	cfg, files := fill(t, n)
	offs0, _, seqs0 := frameSpans(t, files[0])
	flipByte(t, files[0], offs0[2]+frameHeaderSize)
	offs1, _, seqs1 := frameSpans(t, files[1])
	if err := os.Truncate(files[1], offs1[len(offs1)-1]+1); err != nil {
		t.Fatal(err)
	}
	last := files[len(files)-1]
	offsL, _, seqsL := frameSpans(t, last)
	flipByte(t, last, offsL[1]+frameHeaderSize+1) // damage inside the newest, not at its end
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	got := drain(t, s)
	checkEntries(t, got, without(n, int(seqs0[2]-1), int(seqs1[len(seqs1)-1]-1), int(seqsL[1]-1)))
	st := s.Stats()
	if st.Corruptions != 3 || st.LostRecords != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnreadableSegmentHeaderIsSetAside(t *testing.T) {
	const n = 300
	cfg, files := fill(t, n)
	_, _, seqs := frameSpans(t, files[1])
	flipByte(t, files[1], 20) // inside the header
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if _, err := os.Stat(files[1] + corruptSuffix); err != nil {
		t.Fatalf("damaged segment not set aside: %v", err)
	}
	var lost []int
	for _, q := range seqs {
		lost = append(lost, int(q-1))
	}
	got := drain(t, s)
	checkEntries(t, got, without(n, lost...))
	if st := s.Stats(); corruptionsOf(s, KindSegment) != 1 || st.LostRecords != uint64(len(lost)) {
		t.Fatalf("stats %+v", st)
	}
	// New segments never reuse the set-aside id.
	for range 100 {
		if _, err := s.Append(context.Background(), payloadOf(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(files[1] + corruptSuffix); err != nil {
		t.Fatal(err)
	}
}

func TestLedgerMissingOrDamagedIsRebuilt(t *testing.T) {
	for _, mode := range []string{"missing", "damaged", "garbage"} {
		t.Run(mode, func(t *testing.T) {
			const n = 300
			cfg := testConfig(t)
			s := mustOpen(t, cfg)
			appendN(t, s, 0, n)
			es := drain(t, s)
			firstOfSecond := func() uint64 {
				h, _, err := readSegHeader(segFiles(t, cfg.Dir)[1])
				if err != nil {
					t.Fatal(err)
				}
				return h.first
			}()
			// Acknowledge into the second segment: the first is deleted.
			ackTo := firstOfSecond + 3
			if err := s.Ack(ackTo); err != nil {
				t.Fatal(err)
			}
			_ = es
			mustClose(t, s)
			ledger := filepath.Join(cfg.Dir, ledgerName)
			switch mode {
			case "missing":
				if err := os.Remove(ledger); err != nil {
					t.Fatal(err)
				}
			case "damaged":
				flipByte(t, ledger, 20)
				flipByte(t, ledger, ledgerSlotSize+20)
			case "garbage":
				if err := os.WriteFile(ledger, []byte("not a ledger"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s = mustOpen(t, cfg)
			defer mustClose(t, s)
			// Rebuilt from the segments: everything on disk is
			// unacknowledged again (at-least-once), nothing is lost.
			got := drain(t, s)
			checkEntries(t, got, seqRange(int(firstOfSecond-1), n-int(firstOfSecond-1)))
			q, err := s.Append(context.Background(), []byte("next"))
			if err != nil || q != n+1 {
				t.Fatalf("Append = %d, %v; want %d", q, err, n+1)
			}
		})
	}
}

func TestLedgerSurvivesOneTornSlot(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	appendN(t, s, 0, 50)
	drain(t, s)
	if err := s.Ack(10); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(20); err != nil {
		t.Fatal(err)
	}
	gen := s.ledgerLast.gen
	mustClose(t, s)
	// Damage the newest slot: the other one (an older state) wins.
	flipByte(t, filepath.Join(cfg.Dir, ledgerName), int64(gen%2)*ledgerSlotSize+30)
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.Len() < 30 || s.Len() > 40 {
		t.Fatalf("Len = %d, want between 30 and 40", s.Len())
	}
	got := drain(t, s)
	if got[len(got)-1].Seq != 50 {
		t.Fatalf("last seq %d", got[len(got)-1].Seq)
	}
}

func TestIncompleteNewestSegmentIsRemoved(t *testing.T) {
	cfg, files := fill(t, 300)
	// A segment whose creation was cut short by a crash.
	next := filepath.Join(cfg.Dir, segName(uint64(len(files)+1)))
	if err := os.WriteFile(next, segMagic[:], 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if _, err := os.Stat(next); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("incomplete segment kept: %v", err)
	}
	checkEntries(t, drain(t, s), seqRange(0, 300))
}

func TestHeaderOnlyNewestSegmentIsRemoved(t *testing.T) {
	cfg, files := fill(t, 300)
	h, _, err := readSegHeader(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	_, _, seqs := frameSpans(t, files[len(files)-1])
	id := uint64(len(files) + 1)
	hdr := segHeader{version: formatVersion, id: id, first: seqs[len(seqs)-1] + 1, created: h.created}.encode()
	path := filepath.Join(cfg.Dir, segName(id))
	if err := os.WriteFile(path, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty segment kept: %v", err)
	}
	checkEntries(t, drain(t, s), seqRange(0, 300))
	if q, err := s.Append(context.Background(), []byte("x")); err != nil || q != 301 {
		t.Fatalf("Append = %d, %v", q, err)
	}
}

func TestNewerFormatRefusesToOpen(t *testing.T) {
	cfg, files := fill(t, 300)
	h, _, err := readSegHeader(files[0])
	if err != nil {
		t.Fatal(err)
	}
	h.version = formatVersion + 1
	f, err := os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	// The failed Open released the lock and changed nothing.
	h.version = formatVersion
	f, err = os.OpenFile(files[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	checkEntries(t, drain(t, s), seqRange(0, 300))
}

func TestUnknownFilesAreIgnored(t *testing.T) {
	cfg, _ := fill(t, 300)
	for _, name := range []string{"notes.txt", "x.seg", "0001a.seg"} {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), []byte("hello"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	checkEntries(t, drain(t, s), seqRange(0, 300))
}
