package spool

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFullPolicyError(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = Error
	cfg.MaxRecords = 3
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 3)
	_, err := s.Append(context.Background(), payloadOf(3))
	var fe *FullError
	if !errors.Is(err, ErrFull) || !errors.As(err, &fe) || fe.Reason != ReasonMaxRecords || fe.Limit != 3 {
		t.Fatalf("Append when full = %v", err)
	}
	es := drain(t, s)
	if err := s.Ack(es[0].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), payloadOf(3)); err != nil {
		t.Fatalf("Append after ack = %v", err)
	}
	if st := s.Stats(); st.FullEvents != 1 || st.Records != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFullPolicyErrorOnBytes(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = Error
	cfg.MaxBytes = 16 << 10
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	rec := make([]byte, 1000)
	n := 0
	for {
		_, err := s.Append(context.Background(), rec)
		if err != nil {
			var fe *FullError
			if !errors.As(err, &fe) || fe.Reason != ReasonMaxBytes {
				t.Fatalf("Append = %v", err)
			}
			break
		}
		n++
	}
	if want := int(cfg.MaxBytes / (1000 + frameHeaderSize)); n != want {
		t.Fatalf("accepted %d records, want %d", n, want)
	}
	if s.Bytes() > cfg.MaxBytes {
		t.Fatalf("Bytes %d over max %d", s.Bytes(), cfg.MaxBytes)
	}
}

func TestFullPolicyDropNewest(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = DropNewest
	cfg.MaxRecords = 5
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 5)
	if _, err := s.Append(context.Background(), payloadOf(5)); !errors.Is(err, ErrDropped) {
		t.Fatalf("Append when full = %v, want ErrDropped", err)
	}
	// A batch is cut where it stops fitting.
	es := drain(t, s)
	if err := s.Ack(es[1].Seq); err != nil { // room for 2
		t.Fatal(err)
	}
	first, n, err := s.AppendBatch(context.Background(), [][]byte{payloadOf(6), payloadOf(7), payloadOf(8), payloadOf(9)})
	if !errors.Is(err, ErrDropped) || n != 2 || first != 6 {
		t.Fatalf("AppendBatch = %d, %d, %v", first, n, err)
	}
	checkEntries(t, drain(t, s), []int{6, 7})
	st := s.Stats()
	if st.DroppedNewest != 3 || testutil.ToFloat64(s.ins.drops[DropNewest]) != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFullPolicyDropOldest(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = DropOldest
	cfg.MaxRecords = 10
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 10)
	held := drain(t, s)[:3] // three in flight, then dropped under the reader
	appendN(t, s, 10, 15)
	if s.Len() != 10 {
		t.Fatalf("Len = %d", s.Len())
	}
	st := s.Stats()
	if st.DroppedOldest != 15 {
		t.Fatalf("dropped %d, want 15", st.DroppedOldest)
	}
	// The reader's late Ack of a dropped record is a no-op.
	if err := s.Ack(held[2].Seq); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, drain(t, s), seqRange(15, 10))
}

func TestFullPolicyDropOldestBytesAcrossSegments(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = DropOldest
	cfg.MaxBytes = 32 << 10
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	rec := make([]byte, 500)
	for i := range 400 {
		rec[0] = byte(i)
		if _, err := s.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if s.Bytes() > cfg.MaxBytes {
			t.Fatalf("Bytes %d over max %d", s.Bytes(), cfg.MaxBytes)
		}
	}
	st := s.Stats()
	// Disk holds the bound plus at most about one segment.
	if st.DiskBytes > cfg.MaxBytes+2*MinSegmentBytes {
		t.Fatalf("disk %d bytes for max_bytes %d", st.DiskBytes, cfg.MaxBytes)
	}
	kept := drain(t, s)
	if uint64(len(kept))+st.DroppedOldest != 400 || kept[len(kept)-1].Seq != 400 {
		t.Fatalf("kept %d + dropped %d != 400", len(kept), st.DroppedOldest)
	}
	for i, e := range kept {
		if e.Seq != kept[0].Seq+uint64(i) {
			t.Fatalf("kept records not contiguous at %d", i)
		}
	}
}

func TestFullPolicyBlockWaitsForAck(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecords = 2
	waiting := make(chan string, 4)
	cfg2 := cfg
	s := mustOpen(t, cfg2)
	s.hookFull = func(reason string) { waiting <- reason }
	defer mustClose(t, s)
	appendN(t, s, 0, 2)
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), payloadOf(2))
		done <- err
	}()
	if r := <-waiting; r != ReasonMaxRecords {
		t.Fatalf("waiting for %q", r)
	}
	select {
	case err := <-done:
		t.Fatalf("Append returned while full: %v", err)
	default:
	}
	es := drain(t, s)
	if err := s.Ack(es[0].Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked Append = %v", err)
	}
	checkEntries(t, drain(t, s), []int{2})
}

func TestFullPolicyBlockHonoursContextAndClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecords = 1
	s := mustOpen(t, cfg)
	waiting := make(chan string, 4)
	s.hookFull = func(reason string) { waiting <- reason }
	appendN(t, s, 0, 1)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, payloadOf(1))
		done <- err
	}()
	<-waiting
	cancel()
	err := <-done
	if !errors.Is(err, ErrFull) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled blocked Append = %v", err)
	}

	// A second appender queued behind a blocked one honours its ctx too.
	go func() {
		_, err := s.Append(context.Background(), payloadOf(2))
		done <- err
	}()
	<-waiting
	ctx2, cancel2 := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx2, payloadOf(3))
		queued <- err
	}()
	cancel2()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Append = %v", err)
	}
	mustClose(t, s)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Append at Close = %v", err)
	}
}

func TestMinFreeBytesWatermark(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	statfs := func(string) (uint64, bool, error) { return uint64(free.Load()), true, nil }

	t.Run("error", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.FullPolicy = Error
		cfg.MinFreeBytes = 1 << 20
		cfg.statfs = statfs
		free.Store(1<<20 + 5000)
		s := mustOpen(t, cfg)
		defer mustClose(t, s)
		var err error
		n := 0
		for ; n < 100; n++ {
			if _, err = s.Append(context.Background(), make([]byte, 1000)); err != nil {
				break
			}
		}
		var fe *FullError
		if !errors.As(err, &fe) || fe.Reason != ReasonMinFreeBytes {
			t.Fatalf("Append near the watermark = %v", err)
		}
		// The written bytes count against the estimate even before the
		// next statfs.
		if n < 3 || n > 5 {
			t.Fatalf("accepted %d records of 1000 bytes with 5000 bytes above the watermark", n)
		}
		free.Store(1 << 30)
		s.pollFree()
		if _, err := s.Append(context.Background(), make([]byte, 1000)); err != nil {
			t.Fatalf("Append after space freed = %v", err)
		}
		if st := s.Stats(); st.FreeDiskBytes <= 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("block", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.MinFreeBytes = 1 << 20
		cfg.statfs = statfs
		free.Store(1<<20 - 1)
		s := mustOpen(t, cfg)
		defer mustClose(t, s)
		waiting := make(chan string, 1)
		s.hookFull = func(r string) { waiting <- r }
		done := make(chan error, 1)
		go func() {
			_, err := s.Append(context.Background(), []byte("x"))
			done <- err
		}()
		if r := <-waiting; r != ReasonMinFreeBytes {
			t.Fatalf("waiting for %q", r)
		}
		free.Store(1 << 30)
		s.pollFree() // what the background poll does every second
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("drop_oldest frees whole segments", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.FullPolicy = DropOldest
		cfg.MinFreeBytes = 1 << 20
		cfg.statfs = statfs
		free.Store(1 << 30)
		s := mustOpen(t, cfg)
		defer mustClose(t, s)
		appendN(t, s, 0, 300) // several segments
		segs := s.Stats().Segments
		free.Store(1<<20 + 100) // almost out of disk
		s.pollFree()
		if _, err := s.Append(context.Background(), make([]byte, 1000)); err != nil {
			t.Fatalf("Append = %v", err)
		}
		st := s.Stats()
		if st.DroppedOldest == 0 || st.Segments >= segs {
			t.Fatalf("no segment freed: %+v (had %d segments)", st, segs)
		}
		// Only the segment being written is left to drop from: that
		// frees nothing, so the append fails instead of emptying it.
		free.Store(100)
		s.pollFree()
		for range 200 {
			if _, err := s.Append(context.Background(), make([]byte, 1000)); err != nil {
				var fe *FullError
				if !errors.As(err, &fe) || fe.Reason != ReasonMinFreeBytes {
					t.Fatalf("Append = %v", err)
				}
				return
			}
		}
		t.Fatal("appends never refused with no disk left")
	})
	t.Run("statfs failure is fail-open", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.FullPolicy = Error
		cfg.MinFreeBytes = 1 << 20
		cfg.statfs = func(string) (uint64, bool, error) { return 0, false, errors.New("boom") }
		s := mustOpen(t, cfg)
		defer mustClose(t, s)
		if _, err := s.Append(context.Background(), []byte("x")); err != nil {
			t.Fatalf("Append = %v", err)
		}
		if st := s.Stats(); st.FreeDiskBytes != -1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestTooLargeForMaxBytes(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBytes = 8 << 10
	cfg.MaxRecordBytes = 8<<10 - frameHeaderSize
	cfg.Compression = CompressionZstd
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	// Random bytes do not compress: the frame grows over max_bytes.
	rnd := make([]byte, cfg.MaxRecordBytes)
	x := uint32(1)
	for i := range rnd {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		rnd[i] = byte(x)
	}
	if _, err := s.Append(context.Background(), rnd); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append = %v, want ErrTooLarge", err)
	}
}

func TestConcurrentBlockedAppendersAllComplete(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecords = 4
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	const writers, per = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := s.Append(context.Background(), payloadOf(w*100+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := 0
	for seen < writers*per {
		es, err := s.Peek(context.Background(), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(es[len(es)-1].Seq); err != nil {
			t.Fatal(err)
		}
		seen += len(es)
		if s.Len() > cfg.MaxRecords {
			t.Fatalf("Len %d over max_records", s.Len())
		}
	}
	wg.Wait()
}

// dirBytes is the size of the files in dir.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range es {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// With the free-disk watermark reached and every record acknowledged but
// still in the segment being written, the blocked append must get through:
// sealing that segment returns its space.
func TestMinFreeBytesBlockRecoversAfterAckingTheActiveSegment(t *testing.T) {
	cfg := testConfig(t)
	cfg.SegmentBytes = 64 << 10
	cfg.MinFreeBytes = 1 << 20
	budget := int64(1<<20 + 20<<10 + reserveBytes) // 20 KiB above the watermark, and the space reserve
	cfg.statfs = func(dir string) (uint64, bool, error) {
		return uint64(budget - dirBytes(t, dir)), true, nil
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	waiting := make(chan string, 1)
	s.hookFull = func(r string) {
		select {
		case waiting <- r:
		default:
		}
	}
	rec := make([]byte, 1000)
	done := make(chan error, 1)
	// A guard against a hang, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		// Append until one append found the spool full (and, once
		// unblocked, returned).
		for s.Stats().FullEvents == 0 {
			if _, err := s.Append(ctx, rec); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if r := <-waiting; r != ReasonMinFreeBytes {
		t.Fatalf("waiting for %q", r)
	}
	if st := s.Stats(); st.Segments != 1 {
		t.Fatalf("want one (active) segment, got %+v", st)
	}
	es := drain(t, s)
	if err := s.Ack(es[len(es)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("blocked append never got through: %v", err)
	}
}
