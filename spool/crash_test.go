package spool

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// Environment of the writer subprocess.
const (
	crashHelperEnv = "KEEL_SPOOL_CRASH_HELPER"
	crashDirEnv    = "KEEL_SPOOL_CRASH_DIR"
	crashRoundEnv  = "KEEL_SPOOL_CRASH_ROUND"
	crashSyncEnv   = "KEEL_SPOOL_CRASH_SYNC"
	crashWriters   = 3
	// crashSyncEvery: under a buffered policy each writer calls Sync after
	// this many of its appends and prints "sync <seq>".
	crashSyncEvery = 40
)

// crashConfig is the spool of the crash test: fsync always, small
// segments so that the writer rolls segments while it is killed.
func crashConfig(dir string) Config {
	return Config{
		Dir: dir, Name: "crash", SegmentBytes: 32 << 10, MinFreeBytes: -1,
		Sync: SyncAlways, Metrics: testRegistry(), Logger: quietLogger(),
	}
}

// crashPayload is record i of writer w in round r: its size varies so that
// the kill can land in frames of every size.
func crashPayload(r, w, i int) []byte {
	head := fmt.Sprintf("r%d-w%d-i%d|", r, w, i)
	return append([]byte(head), bytes.Repeat([]byte{byte('a' + (i % 26))}, (i*97)%3000)...)
}

// TestHelperSpoolWriter is the writer process of TestKillWriterMidStream.
// It does nothing unless started by that test. Its writers append until
// the process is killed, printing "seq round writer index" after each
// Append returned.
func TestHelperSpoolWriter(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		return
	}
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	cfg := crashConfig(os.Getenv(crashDirEnv))
	if p := os.Getenv(crashSyncEnv); p != "" {
		cfg.Sync = SyncPolicy(p)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200000 {
				seq, err := s.Append(context.Background(), crashPayload(round, w, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "%d %d %d %d\n", seq, round, w, i)
				out.Unlock()
				if cfg.Sync != SyncAlways && i%crashSyncEvery == crashSyncEvery-1 {
					if err := s.Sync(); err != nil {
						fmt.Fprintln(os.Stderr, "sync:", err)
						os.Exit(2)
					}
					out.Lock()
					fmt.Fprintf(os.Stdout, "sync %d\n", seq)
					out.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	_ = s.Close()
	os.Exit(0)
}

type printed struct{ round, w, i int }

// TestKillWriterMidStream kills a writer process with SIGKILL while it
// appends under sync "always", reopens the spool and checks that every
// record whose Append had returned (and was printed) is there, intact.
// Between rounds it acknowledges part of what it read; acknowledged
// records must never come back.
// runWriterUntilKilled runs TestHelperSpoolWriter on dir for round under
// the sync policy, kills it with SIGKILL once it printed after lines (or
// when it dies before), and returns every line it printed and its stderr.
func runWriterUntilKilled(t *testing.T, dir string, round int, sync SyncPolicy, after int) ([]string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSpoolWriter$", "-test.timeout=120s")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1", crashDirEnv+"="+dir,
		crashRoundEnv+"="+strconv.Itoa(round), crashSyncEnv+"="+string(sync))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	lines := make(chan []string, 1)
	go func() {
		var got []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			got = append(got, sc.Text())
			if len(got) == after {
				close(reached)
			}
		}
		if len(got) < after {
			close(reached)
		}
		lines <- got
	}()
	<-reached
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	got := <-lines
	_ = cmd.Wait()
	return got, &stderr
}

func TestKillWriterMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	acked := uint64(0)
	all := map[uint64]printed{}
	for round, after := range []int{30, 150, 400} {
		got, stderr := runWriterUntilKilled(t, dir, round, SyncAlways, after) // every line printed before the kill
		if len(got) < after {
			t.Fatalf("round %d: writer printed %d lines before dying: %s", round, len(got), stderr.String())
		}
		for _, l := range got {
			var seq uint64
			var p printed
			if _, err := fmt.Sscanf(l, "%d %d %d %d", &seq, &p.round, &p.w, &p.i); err != nil {
				t.Fatalf("bad line %q", l)
			}
			if prev, dup := all[seq]; dup {
				t.Fatalf("seq %d printed twice: %+v and %+v", seq, prev, p)
			}
			all[seq] = p
		}

		s, err := Open(context.Background(), crashConfig(dir))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		entries := drain(t, s)
		bySeq := make(map[uint64][]byte, len(entries))
		for _, e := range entries {
			if e.Seq <= acked {
				t.Fatalf("round %d: acknowledged record %d delivered again", round, e.Seq)
			}
			bySeq[e.Seq] = e.Payload
		}
		for seq, p := range all {
			if seq <= acked {
				continue
			}
			payload, ok := bySeq[seq]
			if !ok {
				t.Fatalf("round %d: record %d (%+v) was acknowledged-durable but is missing after the kill", round, seq, p)
			}
			if want := crashPayload(p.round, p.w, p.i); !bytes.Equal(payload, want) {
				t.Fatalf("round %d: record %d holds %.40q, want %.40q", round, seq, payload, want)
			}
		}
		st := s.Stats()
		t.Logf("round %d: killed after %d lines (%d printed), %d records on disk, %d corruptions, %d truncated bytes",
			round, after, len(got), len(entries), st.Corruptions, st.TruncatedBytes)
		if st.LostRecords != 0 {
			t.Fatalf("round %d: %d records lost under sync always: %+v", round, st.LostRecords, st)
		}
		// Acknowledge the first half of what is there.
		if len(entries) > 1 {
			acked = entries[len(entries)/2].Seq
			if err := s.Ack(acked); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, s)
	}
	if len(all) < 580 {
		t.Fatalf("only %d records printed", len(all))
	}
}

// TestKillBufferedWriterMidStream kills a writer process with SIGKILL
// while it appends under sync "interval", where appends wait in the write
// buffer. After reopening: every record appended before a Sync that
// returned is there, what is there is intact, records are missing only at
// the tail of what the killed writer appended, and those whose Append
// returned (they were in the write buffer) hold less than the buffer's 64
// KiB of frames, plus the one frame a page-aligned write may have cut.
func TestKillBufferedWriterMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	acked := uint64(0)
	onDisk := map[uint64]bool{} // unacknowledged records found at the last reopen
	for round, after := range []int{100, 400, 900} {
		got, stderr := runWriterUntilKilled(t, dir, round, SyncInterval, after)
		if len(got) < after {
			t.Fatalf("round %d: writer printed %d lines before dying: %s", round, len(got), stderr.String())
		}
		printedRec := map[uint64]printed{}
		synced := uint64(0)
		for _, l := range got {
			var seq uint64
			if _, err := fmt.Sscanf(l, "sync %d", &seq); err == nil {
				synced = max(synced, seq)
				continue
			}
			var p printed
			if _, err := fmt.Sscanf(l, "%d %d %d %d", &seq, &p.round, &p.w, &p.i); err != nil {
				t.Fatalf("bad line %q", l)
			}
			printedRec[seq] = p
		}

		s, err := Open(context.Background(), crashConfig(dir))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		entries := drain(t, s)
		bySeq := make(map[uint64][]byte, len(entries))
		maxPresent := uint64(0) // highest seq of this round's records on disk
		for _, e := range entries {
			if e.Seq <= acked {
				t.Fatalf("round %d: acknowledged record %d delivered again", round, e.Seq)
			}
			if p, ok := printedRec[e.Seq]; ok && !bytes.Equal(e.Payload, crashPayload(p.round, p.w, p.i)) {
				t.Fatalf("round %d: record %d holds %.40q, want %.40q", round, e.Seq, e.Payload, crashPayload(p.round, p.w, p.i))
			}
			if !bytes.HasPrefix(e.Payload, []byte(fmt.Sprintf("r%d-", round))) && !onDisk[e.Seq] {
				t.Fatalf("round %d: record %d (%.20q) appeared from an earlier round", round, e.Seq, e.Payload)
			}
			if bytes.HasPrefix(e.Payload, []byte(fmt.Sprintf("r%d-", round))) {
				maxPresent = max(maxPresent, e.Seq)
			}
			bySeq[e.Seq] = e.Payload
		}
		// What was on disk after the last reopen and not acknowledged is
		// still there.
		for seq := range onDisk {
			if _, ok := bySeq[seq]; !ok && seq > acked {
				t.Fatalf("round %d: record %d, on disk after the previous round, is gone", round, seq)
			}
		}
		lostBytes, largest := 0, 0
		lost := 0
		for seq, p := range printedRec {
			if seq <= acked {
				continue
			}
			if _, ok := bySeq[seq]; ok {
				continue
			}
			if seq <= synced {
				t.Fatalf("round %d: record %d (%+v) was appended before a Sync that returned (up to %d) but is missing", round, seq, p, synced)
			}
			if seq < maxPresent {
				t.Fatalf("round %d: record %d (%+v) is missing but the later record %d is there: loss not at the tail", round, seq, p, maxPresent)
			}
			lost++
			size := frameHeaderSize + len(crashPayload(p.round, p.w, p.i))
			lostBytes += size
			largest = max(largest, size)
		}
		// The buffer holds less than bufferFlushBytes; one more frame may
		// have been cut by a page-aligned write.
		if lostBytes-largest >= bufferFlushBytes {
			t.Fatalf("round %d: %d records (%d bytes of frames) whose Append returned are missing: more than the write buffer holds", round, lost, lostBytes)
		}
		st := s.Stats()
		t.Logf("round %d: killed after %d lines, synced up to %d, %d records on disk, %d lost (%d bytes), %d corruptions, %d truncated bytes",
			round, len(got), synced, len(entries), lost, lostBytes, st.Corruptions, st.TruncatedBytes)
		if len(entries) > 1 {
			acked = entries[len(entries)/2].Seq
			if err := s.Ack(acked); err != nil {
				t.Fatal(err)
			}
		}
		onDisk = map[uint64]bool{}
		for seq := range bySeq {
			if seq > acked {
				onDisk[seq] = true
			}
		}
		mustClose(t, s)
	}
}
