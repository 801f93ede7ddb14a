package tiered

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
)

// Environment of the sender subprocess of TestKillSenderAfterSpooling.
const (
	crashHelperEnv = "KEEL_TIERED_CRASH_HELPER"
	crashDirEnv    = "KEEL_TIERED_CRASH_DIR"
)

// crashConfig is the sink of the crash test: the default sync policy
// (interval, which buffers appends), with a sync interval long enough that
// no fsync tick runs before the kill.
func crashConfig(dir string) Config {
	return Config{
		SendTimeout: time.Second,
		Breaker:     breaker.Config{FailureThreshold: 1, OpenTimeout: time.Hour},
		Spool:       spool.Config{Dir: dir, Name: "crash", MinFreeBytes: -1, SegmentBytes: 1 << 20, SyncInterval: time.Hour},
	}
}

// TestHelperTieredSender is the sender process of
// TestKillSenderAfterSpooling. It does nothing unless started by that
// test. With the downstream down, it sends batches of 10 records until it
// is killed, printing the index of the last record of each batch once
// SendBatch returned nil: the point at which the engine commits the input.
func TestHelperTieredSender(t *testing.T) {
	if os.Getenv(crashHelperEnv) != "1" {
		return
	}
	down := newFakeDown(10)
	down.setDown(true)
	s, err := New(context.Background(), down, crashConfig(os.Getenv(crashDirEnv)), Options{
		Metrics: metrics.New(metrics.Config{Namespace: "crash", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "new:", err)
		os.Exit(2)
	}
	const batch = 10
	for i := 0; ; i += batch {
		ps := make([]string, batch)
		for k := range ps {
			ps[k] = fmt.Sprintf("rec-%07d", i+k)
		}
		if err := s.SendBatch(context.Background(), records(ps)); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(2)
		}
		fmt.Printf("%d\n", i+batch-1)
	}
}

// TestKillSenderAfterSpooling: under the default sync policy the spool
// buffers appends, yet a record whose SendBatch returned nil survives a
// kill -9 of the process that follows at once: the sink writes the spool's
// buffer out before it reports success, so the input the engine then
// commits is never lost.
func TestKillSenderAfterSpooling(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTieredSender$")
		cmd.Env = append(os.Environ(), crashHelperEnv+"=1", crashDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		last := -1
		target := 300 * (round + 1)
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue // test framework output
			}
			last = n
			if n >= target {
				break
			}
		}
		// Kill right after a SendBatch returned: what it reported is the
		// last record the engine could have committed.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if last < target {
			t.Fatalf("round %d: the sender stopped after record %d\n%s", round, last, stderr.String())
		}
		checkSpooledThrough(t, dir, last)
	}
}

// checkSpooledThrough opens the spool the killed sender left and checks
// that it holds every record from rec-0000000 through rec-<last>, in order.
func checkSpooledThrough(t *testing.T, dir string, last int) {
	t.Helper()
	cfg := crashConfig(dir).Spool
	cfg.Metrics = metrics.New(metrics.Config{Namespace: "check", NoRuntimeCollectors: true})
	cfg.Logger = slog.New(slog.DiscardHandler)
	sp, err := spool.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.Close() }()
	next := 0
	for next <= last {
		es, err := sp.TryPeek(1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			t.Fatalf("the spool ends before rec-%07d; the sender reported rec-%07d as sent", next, last)
		}
		for _, e := range es {
			rec, err := DecodeRecord(e.Payload)
			if err != nil {
				t.Fatalf("spooled record %d: %v", e.Seq, err)
			}
			if want := fmt.Sprintf("rec-%07d", next); string(rec.Payload) != want {
				t.Fatalf("spooled record %d is %s, want %s", e.Seq, rec.Payload, want)
			}
			next++
		}
	}
}
