package dlq_test

import (
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/dlq"
)

var t0 = time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)

func newFile(t *testing.T, cfg dlq.FileConfig, clock dlq.Clock) *dlq.FileBackend {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = t.TempDir()
	}
	b, err := dlq.NewFileBackend(ctxT(t), cfg, dlq.FileOptions{Service: "svc", Clock: clock, Metrics: newReg(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func encode(es ...dlq.Entry) []dlq.Encoded {
	out := make([]dlq.Encoded, len(es))
	for i, e := range es {
		if e.Time.IsZero() {
			e.Time = t0
		}
		out[i] = dlq.Encode(e)
	}
	return out
}

func files(t *testing.T, b *dlq.FileBackend) []string {
	t.Helper()
	fs, err := b.Files()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestFileHourlyRotation(t *testing.T) {
	clock := newFakeClock(t0)
	b := newFile(t, dlq.FileConfig{}, clock)
	ctx := ctxT(t)
	if !strings.HasSuffix(b.Dir(), "svc") {
		t.Fatalf("dir %s is not per service", b.Dir())
	}
	must(t, b.Write(ctx, encode(entries(0, 2)...)))
	clock.Set(t0.Add(54*time.Minute + 59*time.Second)) // 14:59:59, same hour
	must(t, b.Write(ctx, encode(entry(2))))
	clock.Set(t0.Add(55 * time.Minute)) // 15:00
	must(t, b.Write(ctx, encode(entry(3))))
	must(t, b.Sync(ctx))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T14.ndjson", "dlq-20260302T15.ndjson"}) {
		t.Fatalf("files %v", got)
	}
	first, err := dlq.ReadFile(filepath.Join(b.Dir(), "dlq-20260302T14.ndjson"))
	must(t, err)
	second, err := dlq.ReadFile(filepath.Join(b.Dir(), "dlq-20260302T15.ndjson"))
	must(t, err)
	if !slices.Equal(reasons(first), wantReasons(0, 3)) || !slices.Equal(reasons(second), wantReasons(3, 1)) {
		t.Fatalf("first %v second %v", reasons(first), reasons(second))
	}
}

func TestFileDailyRotation(t *testing.T) {
	clock := newFakeClock(t0)
	b := newFile(t, dlq.FileConfig{Rotation: dlq.RotationDaily, Prefix: "dead"}, clock)
	ctx := ctxT(t)
	must(t, b.Write(ctx, encode(entry(0))))
	clock.Set(time.Date(2026, 3, 2, 23, 59, 59, 0, time.UTC))
	must(t, b.Write(ctx, encode(entry(1))))
	clock.Set(time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC))
	must(t, b.Write(ctx, encode(entry(2))))
	if got := files(t, b); !slices.Equal(got, []string{"dead-20260302.ndjson", "dead-20260303.ndjson"}) {
		t.Fatalf("files %v", got)
	}
	if got := reasons(readDir(t, b.Dir())); !slices.Equal(got, wantReasons(0, 3)) {
		t.Fatalf("entries %v", got)
	}
}

func TestFileCompressesFinishedPeriodsReadably(t *testing.T) {
	clock := newFakeClock(t0)
	b := newFile(t, dlq.FileConfig{Compress: true}, clock)
	ctx := ctxT(t)
	must(t, b.Write(ctx, encode(entries(0, 3)...)))
	// Maintenance within the period leaves the open file alone.
	must(t, b.Maintain(ctx))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T14.ndjson"}) {
		t.Fatalf("files %v", got)
	}
	// Past the hour, with no write: maintenance closes and compresses it.
	clock.Add(time.Hour)
	must(t, b.Maintain(ctx))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T14.ndjson.gz"}) {
		t.Fatalf("files %v", got)
	}
	gz := filepath.Join(b.Dir(), "dlq-20260302T14.ndjson.gz")
	es, err := dlq.ReadFile(gz)
	must(t, err)
	if !slices.Equal(reasons(es), wantReasons(0, 3)) {
		t.Fatalf("compressed entries %v", reasons(es))
	}
	// A standard gzip reader reads it too.
	f, err := os.Open(gz)
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	defer zr.Close()
	if zr.Name != "dlq-20260302T14.ndjson" {
		t.Fatalf("gzip name %q", zr.Name)
	}
	// The next write opens the new period.
	must(t, b.Write(ctx, encode(entry(3))))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T14.ndjson.gz", "dlq-20260302T15.ndjson"}) {
		t.Fatalf("files %v", got)
	}
}

func TestFileRetentionRemovesExpiredFiles(t *testing.T) {
	clock := newFakeClock(t0)
	b := newFile(t, dlq.FileConfig{MaxAge: 3 * time.Hour, Compress: true}, clock)
	ctx := ctxT(t)
	for h := range 5 { // 14:05, 15:05, ..., 18:05
		clock.Set(t0.Add(time.Duration(h) * time.Hour))
		must(t, b.Write(ctx, encode(entry(h))))
	}
	// Foreign files are never touched.
	must(t, os.WriteFile(filepath.Join(b.Dir(), "notes.txt"), []byte("x"), 0o600))
	must(t, os.WriteFile(filepath.Join(b.Dir(), "dlq-garbage.ndjson"), []byte("x"), 0o600))
	// At 18:05 with max_age 3h: a file whose hour ended at or before 15:05
	// goes (14:00-15:00); 15:00-16:00 ends after 15:05 and stays.
	must(t, b.Maintain(ctx))
	got := files(t, b)
	want := []string{"dlq-20260302T15.ndjson.gz", "dlq-20260302T16.ndjson.gz", "dlq-20260302T17.ndjson.gz", "dlq-20260302T18.ndjson"}
	if !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	clock.Set(time.Date(2026, 3, 2, 21, 0, 0, 0, time.UTC))
	must(t, b.Maintain(ctx))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T18.ndjson.gz"}) {
		t.Fatalf("files %v", got)
	}
	for _, n := range []string{"notes.txt", "dlq-garbage.ndjson"} {
		if _, err := os.Stat(filepath.Join(b.Dir(), n)); err != nil {
			t.Fatalf("foreign file %s removed: %v", n, err)
		}
	}
}

func TestFileRestartAppendsAndFencesATornLine(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0)
	ctx := ctxT(t)
	b := newFile(t, dlq.FileConfig{Path: dir}, clock)
	must(t, b.Write(ctx, encode(entry(0))))
	must(t, b.Close(ctx))
	if err := b.Write(ctx, encode(entry(9))); err == nil {
		t.Fatal("write after Close succeeded")
	}
	// A crash tore the last line.
	path := filepath.Join(b.Dir(), "dlq-20260302T14.ndjson")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString(`{"timestamp":1,"rea`)
	must(t, err)
	must(t, f.Close())

	b2 := newFile(t, dlq.FileConfig{Path: dir}, clock)
	must(t, b2.Write(ctx, encode(entry(1))))
	must(t, b2.Sync(ctx))
	es, err := dlq.ReadFile(path)
	var le *dlq.LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("want the torn line 2 reported, got %v", err)
	}
	if !slices.Equal(reasons(es), wantReasons(0, 2)) {
		t.Fatalf("entries %v", reasons(es))
	}
}

func TestFileStartupFinishesAnInterruptedCompression(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0)
	ctx := ctxT(t)
	b := newFile(t, dlq.FileConfig{Path: dir}, clock)
	must(t, b.Write(ctx, encode(entry(0))))
	clock.Add(time.Hour)
	must(t, b.Write(ctx, encode(entry(1))))
	must(t, b.Close(ctx))
	svc := b.Dir()
	// A crash left a temporary file of a compression behind.
	must(t, os.WriteFile(filepath.Join(svc, "dlq-20260302T14.ndjson.gz.tmp"), []byte("partial"), 0o600))
	b2 := newFile(t, dlq.FileConfig{Path: dir, Compress: true}, clock)
	if got := files(t, b2); !slices.Equal(got, []string{"dlq-20260302T14.ndjson.gz", "dlq-20260302T15.ndjson"}) {
		t.Fatalf("files %v", got)
	}
	if _, err := os.Stat(filepath.Join(svc, "dlq-20260302T14.ndjson.gz.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if got := reasons(readDir(t, svc)); !slices.Equal(got, wantReasons(0, 2)) {
		t.Fatalf("entries %v", got)
	}
}

func TestFileClockGoingBackStaysInTheNewestPeriod(t *testing.T) {
	clock := newFakeClock(t0.Add(time.Hour))
	b := newFile(t, dlq.FileConfig{Compress: true}, clock)
	ctx := ctxT(t)
	must(t, b.Write(ctx, encode(entry(0))))
	clock.Set(t0) // an hour back
	must(t, b.Write(ctx, encode(entry(1))))
	must(t, b.Maintain(ctx))
	if got := files(t, b); !slices.Equal(got, []string{"dlq-20260302T15.ndjson"}) {
		t.Fatalf("files %v", got)
	}
}

func TestFileUnwritableDirectoryFailsAtStart(t *testing.T) {
	base := t.TempDir()
	blocker := filepath.Join(base, "file")
	must(t, os.WriteFile(blocker, nil, 0o600))
	_, err := dlq.NewFileBackend(ctxT(t), dlq.FileConfig{Path: blocker}, dlq.FileOptions{Service: "svc", Metrics: newReg()})
	if !errors.Is(err, dlq.ErrBackend) || !strings.Contains(err.Error(), "dlq.file.path") {
		t.Fatalf("unwritable path: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
