package spool

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/internal/keeltest"
)

func TestMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.Name = "m"
	cfg.FullPolicy = DropNewest
	cfg.MaxRecords = 3
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	appendN(t, s, 0, 3)
	if _, err := s.Append(context.Background(), payloadOf(3)); !errors.Is(err, ErrDropped) {
		t.Fatalf("4th Append = %v", err)
	}
	es := drain(t, s)
	if err := s.Ack(es[1].Seq); err != nil {
		t.Fatal(err)
	}
	g := cfg.Metrics.Gatherer()
	want := `
# HELP keel_spool_records Unacknowledged records in the spool.
# TYPE keel_spool_records gauge
keel_spool_records{spool="m"} 1
# HELP keel_spool_writes_total Records appended to the spool.
# TYPE keel_spool_writes_total counter
keel_spool_writes_total{spool="m"} 3
# HELP keel_spool_reads_total Records handed to a reader (redeliveries after Rewind or a restart included).
# TYPE keel_spool_reads_total counter
keel_spool_reads_total{spool="m"} 3
# HELP keel_spool_acks_total Records acknowledged and so removed from the spool.
# TYPE keel_spool_acks_total counter
keel_spool_acks_total{spool="m"} 2
`
	if err := testutil.GatherAndCompare(g, strings.NewReader(want),
		"keel_spool_records", "keel_spool_writes_total", "keel_spool_reads_total", "keel_spool_acks_total"); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(s.ins.drops[DropNewest]); v != 1 {
		t.Fatalf("drops = %v", v)
	}
	if v := testutil.ToFloat64(s.ins.full[ReasonMaxRecords]); v != 1 {
		t.Fatalf("full = %v", v)
	}
	if v := testutil.ToFloat64(s.ins.bytes); v != float64(s.Bytes()) || v == 0 {
		t.Fatalf("bytes gauge %v, Bytes %d", v, s.Bytes())
	}
	// Every series is in the manifest.
	names := map[string]bool{}
	for _, d := range cfg.Metrics.Manifest().Metrics {
		names[d.Name] = true
	}
	for _, n := range []string{"keel_spool_bytes", "keel_spool_records", "keel_spool_oldest_record_age_seconds", "keel_spool_writes_total",
		"keel_spool_reads_total", "keel_spool_acks_total", "keel_spool_corruptions_total", "keel_spool_drops_total",
		"keel_spool_lost_records_total", "keel_spool_full_total", "keel_spool_fsync_duration_seconds", "keel_spool_disk_bytes",
		"keel_spool_segments", "keel_spool_free_disk_bytes", "keel_spool_truncated_bytes_total", "keel_spool_write_bytes_total"} {
		if !names[n] {
			t.Errorf("manifest lacks %s", n)
		}
	}
}

func TestPressureRatio(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxRecords = 4
	cfg.FullPolicy = Error
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	if s.PressureRatio() != 0 || s.Name() != "t" {
		t.Fatalf("empty: %v %q", s.PressureRatio(), s.Name())
	}
	appendN(t, s, 0, 2)
	if r := s.PressureRatio(); r != 0.5 {
		t.Fatalf("half full: %v", r)
	}
	appendN(t, s, 2, 2)
	if r := s.PressureRatio(); r != 1 {
		t.Fatalf("full: %v", r)
	}
}

// keel_spool_oldest_record_age_seconds follows the age of the oldest
// unacknowledged record and drops to 0 once everything is acknowledged.
func TestOldestAgeGauge(t *testing.T) {
	cfg := testConfig(t)
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	cfg.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := mustOpen(t, cfg)
	defer mustClose(t, s)
	gauge := func() float64 {
		return keeltest.MetricValue(t, cfg.Metrics.Gatherer(), "keel_spool_oldest_record_age_seconds", map[string]string{"spool": "t"})
	}
	// The loop refreshes the gauge about once a second.
	waitGauge := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for gauge() != want {
			if time.Now().After(deadline) {
				t.Fatalf("keel_spool_oldest_record_age_seconds = %v, want %v", gauge(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	appendN(t, s, 0, 2)
	mu.Lock()
	now = now.Add(42 * time.Second)
	mu.Unlock()
	waitGauge(42)
	es := drain(t, s)
	if err := s.Ack(es[len(es)-1].Seq); err != nil {
		t.Fatal(err)
	}
	waitGauge(0)
}
