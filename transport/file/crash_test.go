package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Environment of the helper process.
const (
	helperEnv     = "KEEL_FILE_CRASH_HELPER"
	helperDataEnv = "KEEL_FILE_CRASH_DATA"
	helperOutEnv  = "KEEL_FILE_CRASH_OUT"
	// progressBytes pads each progress report so that a full pipe (64 KiB)
	// holds only a few: the child cannot run far ahead of the parent.
	progressBytes = 4096
	crashBatch    = 50
)

// TestHelperProcess is the reader process of TestKillReaderMidStream. It
// does nothing unless started by that test.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	if err := runCrashReader(os.Getenv(helperDataEnv), os.Getenv(helperOutEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "crash reader:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// runCrashReader receives every line of data, appends each line's id to
// out and fsyncs it, then commits the batch and reports progress on
// stdout: the delivery-then-commit order of a real sink.
func runCrashReader(data, out string) error {
	ctx := context.Background()
	r, err := NewReceiver(Config{
		Path:      data,
		StopAtEOF: true,
		Metrics:   metrics.New(metrics.Config{Namespace: "helper", NoRuntimeCollectors: true}),
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	o, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	progress := bytes.Repeat([]byte{'.'}, progressBytes)
	for {
		b, err := r.Recv(ctx, transport.Limits{MaxRecords: crashBatch})
		if errors.Is(err, transport.ErrClosed) {
			return o.Close()
		}
		if err != nil {
			return err
		}
		var buf []byte
		for _, rec := range b.Records {
			id, ok := crashID(rec.Payload)
			if !ok {
				return fmt.Errorf("unexpected payload %q", rec.Payload)
			}
			buf = strconv.AppendInt(buf, int64(id), 10)
			buf = append(buf, '\n')
		}
		if _, err := o.Write(buf); err != nil {
			return err
		}
		if err := o.Sync(); err != nil {
			return err
		}
		if err := r.Commit(ctx, b.Tokens); err != nil {
			return err
		}
		if _, err := os.Stdout.Write(progress); err != nil {
			return err
		}
	}
}

func crashID(p []byte) (int, bool) {
	s, ok := strings.CutPrefix(string(p), `{"id":`)
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, ",")
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(s)
	return id, err == nil
}

// TestKillReaderMidStream kills a reader process with SIGKILL at several
// points and restarts it: every line must be delivered at least once, and
// the committed position must never be past a line that was not
// delivered.
func TestKillReaderMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	const n = 20000
	dir := t.TempDir()
	data := filepath.Join(dir, "in.ndjson")
	out := filepath.Join(dir, "delivered.txt")
	pad := strings.Repeat("p", 40)
	var (
		content bytes.Buffer
		ends    = make([]int64, n) // ends[i]: offset after line i
	)
	for i := range n {
		fmt.Fprintf(&content, `{"id":%d,"pad":"%s"}`+"\n", i, pad)
		ends[i] = int64(content.Len())
	}
	if err := os.WriteFile(data, content.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	start := func() (*exec.Cmd, io.Reader) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), helperEnv+"=1", helperDataEnv+"="+data, helperOutEnv+"="+out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() && stderr.Len() > 0 {
				t.Logf("helper stderr: %s", stderr.String())
			}
		})
		return cmd, bufio.NewReaderSize(stdout, progressBytes)
	}

	kills := 0
	for _, after := range []int{1, 4, 9, 17} {
		cmd, progress := start()
		buf := make([]byte, progressBytes)
		for range after {
			if _, err := io.ReadFull(progress, buf); err != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("reader ended before %d batches: %v", after, err)
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		delivered := readDelivered(t, out)
		pos := positionOf(t, Config{Path: data})
		for i := range n {
			if ends[i] > pos {
				break
			}
			if delivered[i] == 0 {
				t.Fatalf("after kill %d: committed offset %d covers line %d, which was never delivered", kills, pos, i)
			}
		}
		t.Logf("kill %d after %d progress reports: committed offset %d of %d, %d distinct lines delivered", kills, after, pos, ends[n-1], len(delivered))
	}

	cmd, progress := start()
	if _, err := io.Copy(io.Discard, progress); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final reader run: %v", err)
	}
	delivered := readDelivered(t, out)
	dups := 0
	for i := range n {
		switch c := delivered[i]; {
		case c == 0:
			t.Fatalf("line %d was never delivered", i)
		case c > 1:
			dups += c - 1
		}
	}
	for id := range delivered {
		if id < 0 || id >= n {
			t.Fatalf("delivered an id %d that is not in the file", id)
		}
	}
	if pos := positionOf(t, Config{Path: data}); pos != ends[n-1] {
		t.Fatalf("final committed offset %d, want %d", pos, ends[n-1])
	}
	t.Logf("%d lines, %d kills, %d duplicate deliveries (at-least-once)", n, kills, dups)
}

// readDelivered counts the ids in the output. A last line cut short by the
// kill is dropped from the file, so the next run appends cleanly.
func readDelivered(t *testing.T, path string) map[int]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 < len(b) {
		b = b[:i+1]
		if err := os.Truncate(path, int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	counts := make(map[int]int)
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
		if len(l) == 0 {
			continue
		}
		id, err := strconv.Atoi(string(l))
		if err != nil {
			t.Fatalf("bad output line %q", l)
		}
		counts[id]++
	}
	return counts
}
