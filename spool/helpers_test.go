package spool

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/keel-go/keel/metrics"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// testConfig is a small spool in a fresh directory: 4 KiB segments, no
// free-disk watermark, fsync never (tests that need another set it).
func testConfig(t testing.TB) Config {
	t.Helper()
	return Config{
		Dir:          t.TempDir(),
		Name:         "t",
		SegmentBytes: MinSegmentBytes,
		MinFreeBytes: -1,
		Sync:         SyncNever,
		Metrics:      testRegistry(),
		Logger:       quietLogger(),
	}
}

func mustOpen(t testing.TB, cfg Config) *Spool {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustClose(t testing.TB, s *Spool) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func payloadOf(i int) []byte {
	return []byte(fmt.Sprintf(`{"id":%d,"pad":"%s"}`, i, strings.Repeat("x", i%50)))
}

// appendN appends payloadOf(from..from+n-1) and returns their seqs.
func appendN(t testing.TB, s *Spool, from, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := from; i < from+n; i++ {
		seq, err := s.Append(context.Background(), payloadOf(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// drain hands out every available record without acknowledging.
func drain(t testing.TB, s *Spool) []Entry {
	t.Helper()
	var all []Entry
	for {
		es, err := s.TryPeek(100, 0)
		if err != nil {
			t.Fatalf("TryPeek: %v", err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
	}
}

// segFiles lists the segment files of dir, sorted.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// checkEntries verifies that entries are payloadOf(i) for i in want, with
// increasing seqs.
func checkEntries(t testing.TB, got []Entry, want []int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for k, e := range got {
		if string(e.Payload) != string(payloadOf(want[k])) {
			t.Fatalf("entry %d (seq %d) = %q, want %q", k, e.Seq, e.Payload, payloadOf(want[k]))
		}
		if k > 0 && e.Seq <= got[k-1].Seq {
			t.Fatalf("seq %d after %d: not increasing", e.Seq, got[k-1].Seq)
		}
	}
}

func seqRange(from, n int) []int {
	r := make([]int, n)
	for i := range r {
		r[i] = from + i
	}
	return r
}
