package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendPeekAckFIFO(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	seqs := appendN(t, s, 0, 200)
	for i, q := range seqs {
		if q != uint64(i+1) {
			t.Fatalf("seq %d = %d, want %d", i, q, i+1)
		}
	}
	if s.Len() != 200 {
		t.Fatalf("Len = %d", s.Len())
	}
	got := drain(t, s)
	checkEntries(t, got, seqRange(0, 200))
	// Peeked but not acknowledged: still counted, nothing more to read.
	if s.Len() != 200 || s.Stats().InFlight != 200 {
		t.Fatalf("after peek: Len %d, in flight %d", s.Len(), s.Stats().InFlight)
	}
	if err := s.Ack(100); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 100 {
		t.Fatalf("Len after Ack(100) = %d", s.Len())
	}
	if err := s.Ack(50); err != nil { // below: no-op
		t.Fatal(err)
	}
	if err := s.Ack(200); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("after acking all: Len %d Bytes %d", s.Len(), s.Bytes())
	}
	if err := s.Ack(201); !errors.Is(err, ErrAckAhead) {
		t.Fatalf("Ack(201) = %v, want ErrAckAhead", err)
	}
	st := s.Stats()
	if st.Writes != 200 || st.Reads != 200 || st.Acks != 200 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPeekLimits(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	appendN(t, s, 0, 10)
	es, err := s.TryPeek(3, 0)
	if err != nil || len(es) != 3 {
		t.Fatalf("TryPeek(3) = %d, %v", len(es), err)
	}
	// A byte cap smaller than one record still returns one record.
	es, err = s.TryPeek(10, 1)
	if err != nil || len(es) != 1 || es[0].Seq != 4 {
		t.Fatalf("TryPeek(10, 1) = %v, %v", es, err)
	}
	two := int64(len(payloadOf(4)) + len(payloadOf(5)))
	es, err = s.TryPeek(10, two)
	if err != nil || len(es) != 2 {
		t.Fatalf("TryPeek(10, %d) = %d entries, %v", two, len(es), err)
	}
}

func TestAckAheadOfReads(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	appendN(t, s, 0, 300) // several segments
	if err := s.Ack(250); err != nil {
		t.Fatal(err)
	}
	got := drain(t, s)
	checkEntries(t, got, seqRange(250, 50))
	if s.Len() != 50 {
		t.Fatalf("Len = %d", s.Len())
	}
}

func TestRewindHandsOutAgain(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	appendN(t, s, 0, 120)
	first := drain(t, s)
	if err := s.Ack(first[9].Seq); err != nil {
		t.Fatal(err)
	}
	s.Rewind()
	again := drain(t, s)
	checkEntries(t, again, seqRange(10, 110))
	// Rewind with nothing in flight after acking all is a no-op.
	if err := s.Ack(again[len(again)-1].Seq); err != nil {
		t.Fatal(err)
	}
	s.Rewind()
	if es := drain(t, s); len(es) != 0 {
		t.Fatalf("after ack all and rewind: %d entries", len(es))
	}
}

func TestPeekBlocksUntilAppend(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	got := make(chan []Entry, 1)
	errc := make(chan error, 1)
	go func() {
		es, err := s.Peek(context.Background(), 10, 0)
		got <- es
		errc <- err
	}()
	appendN(t, s, 7, 1)
	es := <-got
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkEntries(t, es, []int{7})
}

func TestPeekHonoursContextAndClose(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Peek(ctx, 10, 0)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Peek after cancel = %v", err)
	}
	go func() {
		_, err := s.Peek(context.Background(), 10, 0)
		done <- err
	}()
	mustClose(t, s)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek after Close = %v", err)
	}
	if _, err := s.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := s.Ack(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close = %v", err)
	}
	if err := s.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestReopenRedeliversUnacknowledged(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	appendN(t, s, 0, 150)
	es := drain(t, s)
	if err := s.Ack(es[59].Seq); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	s = mustOpen(t, cfg)
	if s.Len() != 90 {
		t.Fatalf("Len after reopen = %d, want 90", s.Len())
	}
	checkEntries(t, drain(t, s), seqRange(60, 90))
	// Sequence numbers continue after a restart.
	seq, err := s.Append(context.Background(), payloadOf(150))
	if err != nil || seq != 151 {
		t.Fatalf("Append after reopen = %d, %v; want 151", seq, err)
	}
	if err := s.Ack(seq); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)

	// Everything acknowledged: seqs still continue, nothing is redelivered.
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
	seq, err = s.Append(context.Background(), payloadOf(151))
	if err != nil || seq != 152 {
		t.Fatalf("Append = %d, %v; want 152", seq, err)
	}
}

func TestBytesAccounting(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	appendN(t, s, 0, 100)
	want := int64(0)
	for i := range 100 {
		want += int64(frameHeaderSize + len(payloadOf(i)))
	}
	if s.Bytes() != want {
		t.Fatalf("Bytes = %d, want %d", s.Bytes(), want)
	}
	mustClose(t, s)
	s = mustOpen(t, cfg)
	if s.Bytes() != want {
		t.Fatalf("Bytes after reopen = %d, want %d", s.Bytes(), want)
	}
	es := drain(t, s)
	if err := s.Ack(es[49].Seq); err != nil {
		t.Fatal(err)
	}
	mustClose(t, s)
	// A partly acknowledged first segment: only the rest counts.
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	want = 0
	for i := 50; i < 100; i++ {
		want += int64(frameHeaderSize + len(payloadOf(i)))
	}
	if s.Bytes() != want || s.Len() != 50 {
		t.Fatalf("Bytes = %d (want %d), Len = %d", s.Bytes(), want, s.Len())
	}
	es = drain(t, s)
	if err := s.Ack(es[len(es)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() != 0 || s.Len() != 0 {
		t.Fatalf("after acking all: Bytes %d Len %d", s.Bytes(), s.Len())
	}
}

func TestSegmentDeletedOnlyAfterAck(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 300)
	files := segFiles(t, cfg.Dir)
	if len(files) < 3 {
		t.Fatalf("want several segments, got %d", len(files))
	}
	firstSegHeader, _, err := readSegHeader(files[1])
	if err != nil {
		t.Fatal(err)
	}
	lastOfFirst := firstSegHeader.first - 1

	es := drain(t, s) // everything read, nothing acknowledged
	if got := segFiles(t, cfg.Dir); len(got) != len(files) {
		t.Fatalf("reading deleted segments: %d -> %d", len(files), len(got))
	}
	if err := s.Ack(lastOfFirst - 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatalf("first segment gone with one record unacknowledged: %v", err)
	}
	if err := s.Ack(lastOfFirst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(files[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("first segment still there after every record acknowledged: %v", err)
	}
	if _, err := os.Stat(files[1]); err != nil {
		t.Fatalf("second segment deleted early: %v", err)
	}
	if err := s.Ack(es[len(es)-1].Seq); err != nil {
		t.Fatal(err)
	}
	// Only the segment being written remains.
	if got := segFiles(t, cfg.Dir); len(got) != 1 || got[0] != files[len(files)-1] {
		t.Fatalf("after acking all: %v", got)
	}
	if st := s.Stats(); st.Segments != 1 || st.DiskBytes != fileSize(t, files[len(files)-1]) {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentAppendersKeepOrderPerSeq(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sync = SyncAlways
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	const writers, per = 4, 50
	var wg sync.WaitGroup
	seqOf := make([][]uint64, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				q, err := s.Append(context.Background(), payloadOf(w*1000+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqOf[w] = append(seqOf[w], q)
			}
		}()
	}
	wg.Wait()
	got := drain(t, s)
	if len(got) != writers*per {
		t.Fatalf("got %d records", len(got))
	}
	bySeq := map[uint64]string{}
	for _, e := range got {
		bySeq[e.Seq] = string(e.Payload)
	}
	for w := range writers {
		for i, q := range seqOf[w] {
			if bySeq[q] != string(payloadOf(w*1000+i)) {
				t.Fatalf("seq %d holds %q, want writer %d record %d", q, bySeq[q], w, i)
			}
		}
	}
}

func TestAppendBatch(t *testing.T) {
	s := mustOpen(t, testConfig(t))
	defer mustClose(t, s)
	var batch [][]byte
	for i := range 500 {
		batch = append(batch, payloadOf(i))
	}
	first, n, err := s.AppendBatch(context.Background(), batch)
	if err != nil || n != 500 || first != 1 {
		t.Fatalf("AppendBatch = %d, %d, %v", first, n, err)
	}
	checkEntries(t, drain(t, s), seqRange(0, 500))
	if _, n, err := s.AppendBatch(context.Background(), nil); n != 0 || err != nil {
		t.Fatalf("empty batch = %d, %v", n, err)
	}
}

func TestEmptyAndLargeRecords(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecordBytes = 64 << 10
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	big := make([]byte, 20<<10) // larger than a segment: gets its own
	for i := range big {
		big[i] = byte(i)
	}
	for _, p := range [][]byte{{}, big, []byte("after")} {
		if _, err := s.Append(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	es := drain(t, s)
	if len(es) != 3 || len(es[0].Payload) != 0 || string(es[1].Payload) != string(big) || string(es[2].Payload) != "after" {
		t.Fatalf("got %d entries", len(es))
	}
	if _, err := s.Append(context.Background(), make([]byte, 64<<10+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Append = %v, want ErrTooLarge", err)
	}
}

func TestOldestAge(t *testing.T) {
	cfg := testConfig(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.OldestAge() != 0 {
		t.Fatal("empty spool has an age")
	}
	appendN(t, s, 0, 1)
	advance(10 * time.Second)
	appendN(t, s, 1, 1)
	advance(5 * time.Second)
	if got := s.OldestAge(); got != 15*time.Second {
		t.Fatalf("OldestAge = %s, want 15s", got)
	}
	es := drain(t, s) // in flight: still the oldest
	if got := s.OldestAge(); got != 15*time.Second {
		t.Fatalf("OldestAge in flight = %s", got)
	}
	if !es[0].AppendedAt.Equal(now.Add(-15 * time.Second)) {
		t.Fatalf("AppendedAt = %s", es[0].AppendedAt)
	}
	if err := s.Ack(es[0].Seq); err != nil {
		t.Fatal(err)
	}
	if got := s.OldestAge(); got != 5*time.Second {
		t.Fatalf("OldestAge after ack = %s, want 5s", got)
	}
}

func TestLockedDirectory(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	cfg2 := cfg
	cfg2.Metrics = testRegistry()
	if _, err := Open(context.Background(), cfg2); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	mustClose(t, s)
	s = mustOpen(t, cfg2)
	mustClose(t, s)
}

func TestOpenBadDirectory(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(cfg.Dir, "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Dir = filepath.Join(file, "sub")
	if _, err := Open(context.Background(), cfg); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func TestSyncPolicies(t *testing.T) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(string(p), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Sync = p
			s := mustOpen(t, cfg)
			appendN(t, s, 0, 50)
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			mustClose(t, s)
			s = mustOpen(t, cfg)
			defer mustClose(t, s)
			checkEntries(t, drain(t, s), seqRange(0, 50))
		})
	}
}

func TestFsyncFailureBreaksTheSpoolUntilReopened(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sync = SyncAlways
	var fail atomic.Bool
	cfg.fsync = func(f *os.File) error {
		if fail.Load() && strings.HasSuffix(f.Name(), segSuffix) {
			return errors.New("injected EIO")
		}
		return nil
	}
	s := mustOpen(t, cfg)
	appendN(t, s, 0, 3)
	fail.Store(true)
	seq, err := s.Append(context.Background(), payloadOf(3))
	if !errors.Is(err, ErrBroken) || seq != 4 {
		t.Fatalf("Append with failing fsync = %d, %v; want seq 4 and ErrBroken", seq, err)
	}
	fail.Store(false)
	if _, err := s.Append(context.Background(), payloadOf(4)); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after the failure = %v, want ErrBroken", err)
	}
	// Reading and acknowledging still work.
	checkEntries(t, drain(t, s), seqRange(0, 4))
	if err := s.Close(); !errors.Is(err, ErrBroken) {
		t.Fatalf("Close = %v, want the fsync failure reported", err)
	}
	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	checkEntries(t, drain(t, s), seqRange(0, 4))
	if _, err := s.Append(context.Background(), payloadOf(4)); err != nil {
		t.Fatalf("Append after reopen = %v", err)
	}
}

func TestSyncCoversSealedSegments(t *testing.T) {
	cfg := testConfig(t) // sync never
	var mu sync.Mutex
	synced := map[string]int{}
	cfg.fsync = func(f *os.File) error {
		mu.Lock()
		synced[filepath.Base(f.Name())]++
		mu.Unlock()
		return nil
	}
	count := func(name string) int { mu.Lock(); defer mu.Unlock(); return synced[name] }
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 300) // several segments
	files := segFiles(t, cfg.Dir)
	for _, f := range files {
		if n := count(filepath.Base(f)); n != 0 {
			t.Fatalf("%s fsynced %d times under sync never before Sync", f, n)
		}
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if count(filepath.Base(f)) != 1 {
			t.Fatalf("%s not fsynced by Sync: %v", f, synced)
		}
	}
	// More than maxPendingSeals sealed segments: a roll fsyncs them.
	appendN(t, s, 0, 100*(maxPendingSeals+2))
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, c := range synced {
		n += c
	}
	if n <= len(files) {
		t.Fatalf("no fsync with %d segments awaiting one", len(segFiles(t, cfg.Dir))-len(files))
	}
	s.smu.Lock()
	pending := len(s.pending)
	s.smu.Unlock()
	if pending > maxPendingSeals {
		t.Fatalf("%d sealed segments await an fsync", pending)
	}
}

// Beyond syncPendingSeals sealed segments awaiting an fsync, a roll asks
// the background loop to fsync them (sync never has no tick that would),
// without making the append wait.
func TestPendingSealsAreFsyncedInTheBackground(t *testing.T) {
	cfg := testConfig(t) // sync never
	fsynced := make(chan string, 1024)
	cfg.fsync = func(f *os.File) error {
		select {
		case fsynced <- filepath.Base(f.Name()):
		default:
		}
		return nil
	}
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	for len(segFiles(t, cfg.Dir)) <= syncPendingSeals+1 {
		appendN(t, s, 0, 10)
	}
	// Blocks until the loop fsyncs a segment; the test deadline guards.
	for name := range fsynced {
		if strings.HasSuffix(name, segSuffix) {
			break
		}
	}
}

// Appenders, a consumer that reads and acknowledges as they write, Sync
// calls and a sync tick every millisecond all race on the write buffer
// (small segments roll all the time): every record is handed out once, in
// sequence order, intact, and nothing is counted as damaged.
func TestBufferedAppendsRaceWithReaderAndTicks(t *testing.T) {
	for _, p := range []SyncPolicy{SyncInterval, SyncNever} {
		t.Run(string(p), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Sync = p
			cfg.SyncInterval = time.Millisecond
			s := mustOpen(t, cfg)
			defer mustClose(t, s)
			const writers, per = 4, 300
			var wg sync.WaitGroup
			seqOf := make([][]uint64, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						var q uint64
						var err error
						if i%7 == 0 {
							var n int
							q, n, err = s.AppendBatch(context.Background(), [][]byte{payloadOf(w*1000 + i)})
							if n != 1 && err == nil {
								err = fmt.Errorf("AppendBatch appended %d", n)
							}
						} else {
							q, err = s.Append(context.Background(), payloadOf(w*1000+i))
						}
						if err != nil {
							t.Error(err)
							return
						}
						seqOf[w] = append(seqOf[w], q)
						if i%50 == 0 {
							if err := s.Sync(); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
			bySeq := map[uint64]string{}
			var last uint64
			for len(bySeq) < writers*per {
				es, err := s.Peek(context.Background(), 17, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if e.Seq <= last {
						t.Fatalf("seq %d handed out after %d", e.Seq, last)
					}
					last = e.Seq
					bySeq[e.Seq] = string(e.Payload)
				}
				if err := s.Ack(last); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			for w := range writers {
				for i, q := range seqOf[w] {
					if bySeq[q] != string(payloadOf(w*1000+i)) {
						t.Fatalf("seq %d holds %q, want writer %d record %d", q, bySeq[q], w, i)
					}
				}
			}
			if st := s.Stats(); st.Corruptions != 0 || st.LostRecords != 0 || st.Records != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Under sync: interval the background loop writes out and fsyncs the
// active segment after an append, without Sync being called: the fsync
// covers the appended record. The deadline (40 intervals) only keeps a
// broken loop from hanging the test.
func TestIntervalSyncFsyncsActiveSegment(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sync = SyncInterval
	cfg.SyncInterval = 50 * time.Millisecond
	type fsync struct {
		name string
		size int64
	}
	synced := make(chan fsync, 4096)
	cfg.fsync = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		select {
		case synced <- fsync{filepath.Base(f.Name()), st.Size()}:
		default:
		}
		return nil
	}
	s := mustOpen(t, cfg)
	t.Cleanup(func() { _ = s.Close() })
	appendN(t, s, 0, 3)
	segs := segFiles(t, cfg.Dir)
	if len(segs) == 0 {
		t.Fatal("no segment after three appends")
	}
	active := filepath.Base(segs[len(segs)-1])
	deadline := time.After(40 * cfg.SyncInterval)
	var covered int64
	for covered == 0 {
		select {
		case f := <-synced:
			if f.name == active && f.size > segHeaderSize {
				covered = f.size
			}
		case <-deadline:
			t.Fatalf("the active segment %s was not fsynced with its records within 40 intervals of %s", active, cfg.SyncInterval)
		}
	}
	mustClose(t, s)
	if size := fileSize(t, segs[len(segs)-1]); covered != size {
		t.Fatalf("the interval fsync covered %d bytes of the segment, which holds %d after Close", covered, size)
	}
}

// A reader that finds its records in the write buffer while a writer
// writes that buffer out (the tiered sink flushes after each spooled
// batch) still gets them: Peek must not wait for another append.
func TestPeekSeesRecordsFlushedByAWriterMeanwhile(t *testing.T) {
	cfg := testConfig(t) // sync never: appends are buffered
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	var flushed atomic.Bool
	s.hookReadFlush = func() {
		if flushed.CompareAndSwap(false, true) {
			if err := s.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		}
	}
	appendN(t, s, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := s.Peek(ctx, 10, 0)
	if err != nil {
		t.Fatalf("Peek with the buffer written out by a writer meanwhile: %v", err)
	}
	if !flushed.Load() {
		t.Fatal("the reader did not meet the buffered records")
	}
	checkEntries(t, es, seqRange(0, 3))
}

// An acknowledgement whose ledger write fails changes nothing: the records
// stay in flight, counted and on disk, and a later Ack takes them.
func TestAckLedgerFailureChangesNothing(t *testing.T) {
	cfg := testConfig(t)
	s := mustOpen(t, cfg)
	appendN(t, s, 0, 300) // several segments
	es, err := s.TryPeek(100, 0)
	if err != nil || len(es) != 100 {
		t.Fatalf("TryPeek: %d entries, %v", len(es), err)
	}
	files := segFiles(t, cfg.Dir)
	before := s.Stats()

	s.lmu.Lock()
	if err := s.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	s.lmu.Unlock()
	for _, upTo := range []uint64{es[49].Seq, es[99].Seq + 150} {
		if err := s.Ack(upTo); err == nil {
			t.Fatalf("Ack(%d) with an unwritable ledger returned nil", upTo)
		}
		after := s.Stats()
		if s.Len() != 300 || after.InFlight != before.InFlight || after.AckedSeq != before.AckedSeq {
			t.Fatalf("after a failed Ack(%d): Len %d, in flight %d, acked %d; want 300, %d, %d",
				upTo, s.Len(), after.InFlight, after.AckedSeq, before.InFlight, before.AckedSeq)
		}
		if got := segFiles(t, cfg.Dir); len(got) != len(files) {
			t.Fatalf("a failed Ack deleted segments: %d left of %d", len(got), len(files))
		}
	}

	f, err := os.OpenFile(filepath.Join(cfg.Dir, ledgerName), os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.lmu.Lock()
	s.ledger = f
	s.lmu.Unlock()
	if err := s.Ack(es[49].Seq); err != nil {
		t.Fatalf("Ack once the ledger is writable: %v", err)
	}
	if s.Len() != 250 || s.Stats().InFlight != 50 {
		t.Fatalf("after Ack: Len %d, in flight %d; want 250, 50", s.Len(), s.Stats().InFlight)
	}
	s.Rewind()
	checkEntries(t, drain(t, s), seqRange(50, 250))
	mustClose(t, s)

	s = mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.Len() != 250 {
		t.Fatalf("reopened spool holds %d records, want 250", s.Len())
	}
}
