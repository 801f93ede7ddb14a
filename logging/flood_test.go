package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func record(at time.Time, msg string) slog.Record {
	return slog.NewRecord(at, slog.LevelInfo, msg, 0)
}

func TestFloodControlTokenBucket(t *testing.T) {
	cleanEnv(t)
	var out syncBuffer
	reg := testRegistry()
	h := NewHandler(Options{Format: FormatJSON, Output: &out, Metrics: reg, Flood: FloodControl{Rate: 1, Burst: 2}})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	for range 5 {
		_ = h.Handle(ctx, record(t0, "queue full"))
	}
	_ = h.Handle(ctx, record(t0, "other message")) // its own bucket
	// half a second: half a token, still nothing
	_ = h.Handle(ctx, record(t0.Add(500*time.Millisecond), "queue full"))
	// one second: one token; the line reports the 4 dropped so far
	_ = h.Handle(ctx, record(t0.Add(time.Second), "queue full"))
	// a long pause refills to the burst only
	for range 3 {
		_ = h.Handle(ctx, record(t0.Add(time.Hour), "queue full"))
	}
	_ = h.Handle(ctx, record(t0.Add(time.Hour+time.Second), "queue full"))

	lines := jsonLines(t, out.String())
	var got []string
	for _, m := range lines {
		s := m["msg"].(string)
		if n, ok := m["suppressed"].(float64); ok {
			s += fmt.Sprintf("+%d", int(n))
		}
		got = append(got, s)
	}
	want := "queue full,queue full,other message,queue full+4,queue full,queue full,queue full+1"
	if strings.Join(got, ",") != want {
		t.Fatalf("lines:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
	if h.Suppressed() != 5 {
		t.Fatalf("Suppressed() = %d, want 5", h.Suppressed())
	}
	if v := testutil.ToFloat64(reg.Counter(suppressedMetric)); v != 5 {
		t.Fatalf("keel_logging_suppressed_total = %v, want 5", v)
	}
}

func TestFloodControlTextShowsSuppressed(t *testing.T) {
	cleanEnv(t)
	var out syncBuffer
	h := NewHandler(Options{Format: FormatText, Output: &out, Metrics: testRegistry(), Flood: FloodControl{Rate: 1, Burst: 1}})
	t0 := time.Now()
	for range 3 {
		_ = h.Handle(context.Background(), record(t0, "busy"))
	}
	_ = h.Handle(context.Background(), record(t0.Add(2*time.Second), "busy"))
	lines := out.Lines()
	if len(lines) != 2 || !strings.Contains(lines[1], " suppressed=2") || strings.Contains(lines[0], "suppressed") {
		t.Fatalf("lines: %q", lines)
	}
}

func TestFloodControlBoundedMessages(t *testing.T) {
	f := newFlood(FloodControl{Rate: 1, Burst: 1, MaxMessages: 2}.withDefaults())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	allow := func(msg string, at int64) bool { ok, _ := f.allow(msg, at); return ok }

	if !allow("a", t0) || !allow("b", t0) {
		t.Fatal("first lines of a and b must pass")
	}
	if allow("a", t0) {
		t.Fatal("second a within the second must be dropped (a owes a report now)")
	}
	// the table is full: c and d share the overflow bucket (burst 1)
	if !allow("c", t0) || allow("d", t0) {
		t.Fatal("overflow bucket: c passes, d is dropped")
	}
	if len(f.buckets) != 2 {
		t.Fatalf("table grew past MaxMessages: %d", len(f.buckets))
	}
	// two seconds later b is idle and full again and owes nothing: it is
	// forgotten to make room; a still owes its dropped line and stays
	at := t0 + int64(2*time.Second)
	ok, n := f.allow("e", at)
	if !ok || n != 0 {
		t.Fatalf("e after the sweep: ok=%v n=%d", ok, n)
	}
	if _, kept := f.buckets["a"]; !kept {
		t.Fatal("a was forgotten although it owes a suppressed count")
	}
	if _, kept := f.buckets["b"]; kept {
		t.Fatal("idle b was not forgotten")
	}
	if ok, n := f.allow("a", at); !ok || n != 1 {
		t.Fatalf("a reports its dropped line: ok=%v n=%d, want true 1", ok, n)
	}
	if f.total.Load() != 2 {
		t.Fatalf("total dropped = %d, want 2", f.total.Load())
	}
}

// TestFloodControlConcurrentCounts: under contention every line is either
// written or counted, never both, never neither.
func TestFloodControlConcurrentCounts(t *testing.T) {
	cleanEnv(t)
	var out syncBuffer
	reg := testRegistry()
	l := New(Options{Format: FormatJSON, Output: &out, Metrics: reg, Flood: FloodControl{Rate: 1e-9, Burst: 10}})
	const workers, per = 8, 250
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				l.Warn("hot path")
			}
		})
	}
	wg.Wait()
	lines := len(out.Lines())
	h := l.Handler().(*Handler)
	if lines != 10 {
		t.Fatalf("written = %d, want the burst of 10", lines)
	}
	if got := h.Suppressed(); got != workers*per-10 {
		t.Fatalf("suppressed = %d, want %d", got, workers*per-10)
	}
	if v := testutil.ToFloat64(reg.CounterVec(linesMetric, "level").With("warn")); v != 10 {
		t.Fatalf("lines_total{warn} = %v, want 10", v)
	}
}
