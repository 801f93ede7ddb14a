package codec

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
)

var (
	jsonRec = []byte(`{"level":"info"}`)
	mpRec   = []byte{0x81, 0xa5, 'l', 'e', 'v', 'e', 'l', 0xa4, 'i', 'n', 'f', 'o'}
	undet   = []byte(`"just a string"`)
)

func newTestDetector(t *testing.T, cfg DetectorConfig) (*Detector, *metrics.Registry, *bytes.Buffer) {
	t.Helper()
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	var logs bytes.Buffer
	cfg.Metrics = reg
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	d, err := NewDetector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, reg, &logs
}

// counter reads one series of a counter labelled by format.
func counter(t *testing.T, reg *metrics.Registry, name, format string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, map[string]string{"format": format})
}

func check(t *testing.T, d *Detector, data []byte, want Format, wantMismatch bool) *MismatchError {
	t.Helper()
	got, err := d.Check(data)
	if got != want {
		t.Fatalf("Check = %v, want %v (err %v)", got, want, err)
	}
	if !wantMismatch {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return nil
	}
	var me *MismatchError
	if !errors.As(err, &me) || !errors.Is(err, ErrFormatMismatch) {
		t.Fatalf("got %v, want a *MismatchError matching ErrFormatMismatch", err)
	}
	return me
}

func TestDetectorLocksToFirstFormat(t *testing.T) {
	d, _, _ := newTestDetector(t, DetectorConfig{})
	if d.Locked() != Auto {
		t.Fatalf("new detector locked to %v", d.Locked())
	}
	// Undetermined payloads do not lock.
	check(t, d, undet, Auto, false)
	check(t, d, nil, Auto, false)
	check(t, d, mpRec, MsgPack, false)
	if d.Locked() != MsgPack {
		t.Fatalf("locked to %v, want msgpack", d.Locked())
	}
	check(t, d, mpRec, MsgPack, false)
	me := check(t, d, jsonRec, MsgPack, true)
	if me.Locked != MsgPack || me.Detected != JSON || me.Run != 1 || me.Relocked {
		t.Fatalf("mismatch = %+v", me)
	}
	// Undetermined payloads get the locked format.
	check(t, d, undet, MsgPack, false)
}

func TestDetectorRelocksAfterRun(t *testing.T) {
	d, reg, logs := newTestDetector(t, DetectorConfig{RelockAfter: 3})
	check(t, d, jsonRec, JSON, false)

	// Two mismatches, then a match ends the run.
	if me := check(t, d, mpRec, JSON, true); me.Run != 1 {
		t.Fatalf("run %d", me.Run)
	}
	if me := check(t, d, mpRec, JSON, true); me.Run != 2 {
		t.Fatalf("run %d", me.Run)
	}
	check(t, d, jsonRec, JSON, false)

	// An undetermined payload neither ends nor extends a run.
	check(t, d, mpRec, JSON, true)
	check(t, d, undet, JSON, false)
	if me := check(t, d, mpRec, JSON, true); me.Run != 2 || me.Relocked {
		t.Fatalf("mismatch = %+v", me)
	}
	if d.Locked() != JSON {
		t.Fatal("relocked too early")
	}
	// The third in a row is still reported, and relocks.
	me := check(t, d, mpRec, JSON, true)
	if me.Run != 3 || !me.Relocked || me.Detected != MsgPack {
		t.Fatalf("mismatch = %+v", me)
	}
	if !strings.Contains(me.Error(), "now locked to msgpack") {
		t.Errorf("error %q does not say it relocked", me.Error())
	}
	if d.Locked() != MsgPack {
		t.Fatalf("locked to %v after the run, want msgpack", d.Locked())
	}
	check(t, d, mpRec, MsgPack, false)
	if me := check(t, d, jsonRec, MsgPack, true); me.Run != 1 {
		t.Fatalf("run after relock = %d", me.Run)
	}

	if got := counter(t, reg, "keel_codec_format_mismatches_total", "msgpack"); got != 5 {
		t.Errorf("msgpack mismatches = %v, want 5", got)
	}
	if got := counter(t, reg, "keel_codec_format_mismatches_total", "json"); got != 1 {
		t.Errorf("json mismatches = %v, want 1", got)
	}
	if got := counter(t, reg, "keel_codec_format_relocks_total", "msgpack"); got != 1 {
		t.Errorf("relocks = %v, want 1", got)
	}
	out := logs.String()
	if !strings.Contains(out, "relocked") || !strings.Contains(out, "from_format=json") ||
		!strings.Contains(out, "to_format=msgpack") || !strings.Contains(out, "mismatches=3") {
		t.Errorf("relock log = %q", out)
	}
}

func TestDetectorDefaultRelockAfter(t *testing.T) {
	d, _, _ := newTestDetector(t, DetectorConfig{})
	check(t, d, jsonRec, JSON, false)
	for i := 1; i < DefaultRelockAfter; i++ {
		if me := check(t, d, mpRec, JSON, true); me.Relocked {
			t.Fatalf("relocked after %d mismatches", i)
		}
	}
	if me := check(t, d, mpRec, JSON, true); !me.Relocked || me.Run != DefaultRelockAfter {
		t.Fatalf("mismatch %d = %+v, want relock", DefaultRelockAfter, me)
	}
	check(t, d, mpRec, MsgPack, false)
}

func TestDetectorResetAndForced(t *testing.T) {
	d, _, _ := newTestDetector(t, DetectorConfig{})
	check(t, d, jsonRec, JSON, false)
	d.Reset()
	if d.Locked() != Auto {
		t.Fatal("Reset did not unlock")
	}
	check(t, d, mpRec, MsgPack, false)

	f, reg, _ := newTestDetector(t, DetectorConfig{Format: JSON, RelockAfter: 1})
	for range 5 {
		check(t, f, mpRec, JSON, false)
		check(t, f, undet, JSON, false)
	}
	f.Reset()
	if f.Locked() != JSON {
		t.Fatal("Reset unlocked a forced detector")
	}
	if got := counter(t, reg, "keel_codec_format_mismatches_total", "msgpack"); got != 0 {
		t.Errorf("forced detector counted %v mismatches", got)
	}
}

func TestDetectorConfigErrors(t *testing.T) {
	for _, cfg := range []DetectorConfig{{Format: Format(5)}, {RelockAfter: -1}} {
		_, err := NewDetector(cfg)
		if !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("NewDetector(%+v) = %v, want ErrInvalidOptions", cfg, err)
		}
	}
	if _, err := NewDetector(DetectorConfig{Format: Format(5)}); !strings.Contains(err.Error(), "DetectorConfig.Format") {
		t.Errorf("error %q does not name the field", err)
	}
}

// TestDetectorConcurrentRelock proves the state moves atomically: with
// many goroutines sending the other format at once, exactly RelockAfter
// payloads are flagged and exactly one of them reports the relock.
func TestDetectorConcurrentRelock(t *testing.T) {
	const relockAfter, workers, perWorker = 40, 8, 200
	d, reg, _ := newTestDetector(t, DetectorConfig{RelockAfter: relockAfter})
	check(t, d, jsonRec, JSON, false)

	var mu sync.Mutex
	flagged, relocks := 0, 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f, r := 0, 0
			for range perWorker {
				_, err := d.Check(mpRec)
				var me *MismatchError
				if errors.As(err, &me) {
					f++
					if me.Relocked {
						r++
					}
				}
			}
			mu.Lock()
			flagged += f
			relocks += r
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if flagged != relockAfter || relocks != 1 {
		t.Fatalf("flagged %d, relocks %d; want %d and 1", flagged, relocks, relockAfter)
	}
	if d.Locked() != MsgPack {
		t.Fatalf("locked to %v", d.Locked())
	}
	if got := counter(t, reg, "keel_codec_format_mismatches_total", "msgpack"); got != relockAfter {
		t.Errorf("mismatch counter %v", got)
	}
}

// TestDetectorsShareRegistry proves several detectors can register on one
// registry (registration is idempotent) and add to the same series.
func TestDetectorsShareRegistry(t *testing.T) {
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	a, err := NewDetector(DetectorConfig{Metrics: reg, RelockAfter: 100})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDetector(DetectorConfig{Metrics: reg, RelockAfter: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Detector{a, b} {
		check(t, d, jsonRec, JSON, false)
		check(t, d, mpRec, JSON, true)
	}
	if got := counter(t, reg, "keel_codec_format_mismatches_total", "msgpack"); got != 2 {
		t.Errorf("shared counter = %v, want 2", got)
	}
}
