package dlq

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// File name layouts of the two rotations (UTC).
const (
	hourlyLayout = "20060102T15"
	dailyLayout  = "20060102"
	fileExt      = ".ndjson"
	gzExt        = ".gz"
	tmpExt       = ".tmp"
)

// FileOptions wires a FileBackend.
type FileOptions struct {
	// Service names the subdirectory (<path>/<service>/); characters other
	// than [A-Za-z0-9._-] become '_'. Empty means none.
	Service string
	// Clock drives rotation and retention. Nil means the wall clock.
	Clock Clock
	// Metrics receives keel_dlq_file_*. Nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives maintenance warnings. Nil means slog.Default().
	Logger *slog.Logger
}

// FileBackend writes entries as NDJSON to <dir>/<prefix>-<period>.ndjson,
// one file per UTC hour (20260302T14) or day (20260302). A write goes to
// the file of the current period, opened in append mode, so a restart
// continues the file of its period; a line torn by a crash is fenced off
// with a newline before the next write (the Reader reports it as
// malformed and goes on).
//
// Writes reach the page cache; Sync fsyncs. Once a period is over the
// file is fsynced and closed, and, with Compress, gzipped to
// .ndjson.gz (through a temporary file that is fsynced and renamed, so a
// crash leaves either the plain or the whole compressed file). Files whose
// period ended more than MaxAge ago are removed. Maintain does the
// compression and removal; the DLQ runs it every minute and at start.
// Periods never go backwards: if the clock does, writes stay in the newest
// period's file.
type FileBackend struct {
	dir      string
	prefix   string
	rotation Rotation
	maxAge   time.Duration
	compress bool
	clock    Clock
	logger   *slog.Logger
	m        *fileMetrics

	mu       sync.Mutex
	f        *os.File
	path     string
	period   time.Time
	latest   time.Time
	dirty    bool
	tornTail bool
	syncErr  error
	buf      []byte
	closed   bool
}

type fileMetrics struct {
	bytes       prometheus.Counter
	rotations   prometheus.Counter
	removed     prometheus.Counter
	compressed  *metrics.CounterVec
	syncs       *metrics.CounterVec
	syncSeconds prometheus.Observer
}

func newFileMetrics(reg *metrics.Registry) *fileMetrics {
	r := metrics.OrDefault(reg)
	o := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "dlq", Name: name, Help: help, Unit: unit, Group: "dlq"}
	}
	return &fileMetrics{
		bytes:       r.Counter(o("file_bytes_total", "Bytes appended to dead-letter files.", "bytes")),
		rotations:   r.Counter(o("file_rotations_total", "Dead-letter files closed because their period ended.", "")),
		removed:     r.Counter(o("file_removed_total", "Dead-letter files removed by retention (max_age).", "")),
		compressed:  r.CounterVec(o("file_compressions_total", "Gzip compressions of finished dead-letter files by result (ok, error).", ""), "result"),
		syncs:       r.CounterVec(o("file_syncs_total", "fsyncs of dead-letter files by result (ok, error).", ""), "result"),
		syncSeconds: r.Histogram(o("file_sync_seconds", "Duration of one fsync of a dead-letter file.", "seconds"), metrics.LatencyBuckets),
	}
}

// NewFileBackend prepares the directory <cfg.Path>/<service> and runs one
// maintenance pass (compressing and removing old files, clearing
// temporary files of an interrupted compression). The file itself is
// opened by the first write.
func NewFileBackend(ctx context.Context, cfg FileConfig, opts FileOptions) (*FileBackend, error) {
	if err := (Config{File: cfg}).Validate(); err != nil {
		return nil, err
	}
	dir := cfg.Path
	if dir == "" {
		dir = DefaultFilePath
	}
	if svc := sanitizeName(opts.Service); svc != "" {
		dir = filepath.Join(dir, svc)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultFilePrefix
	}
	maxAge := cfg.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	b := &FileBackend{
		dir: dir, prefix: prefix, rotation: cfg.Rotation, maxAge: maxAge, compress: cfg.Compress,
		clock: opts.Clock, logger: opts.Logger, m: newFileMetrics(opts.Metrics),
	}
	if b.clock == nil {
		b.clock = wallClock{}
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &BackendError{Backend: BackendFile, Op: "open",
			Err: fmt.Errorf("create directory %s (dlq.file.path): %w; point dlq.file.path at a writable directory", dir, err)}
	}
	if err := b.Maintain(ctx); err != nil {
		b.logger.Warn("dlq file maintenance at start failed", "dir", dir, "error", err)
	}
	return b, nil
}

// Name returns "file".
func (b *FileBackend) Name() string { return BackendFile }

// Dir returns the directory the files are written to.
func (b *FileBackend) Dir() string { return b.dir }

// Write appends one line per entry to the current period's file. When the
// file takes only part of the buffer, the entries whose lines were
// written whole count as written and the rest are reported in a
// *PartialError.
func (b *FileBackend) Write(ctx context.Context, entries []Encoded) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return &BackendError{Backend: BackendFile, Op: "write", Err: os.ErrClosed}
	}
	if err := b.ensureFile(b.clock.Now()); err != nil {
		return err
	}
	buf := b.buf[:0]
	if b.tornTail {
		buf = append(buf, '\n')
	}
	ends := make([]int, len(entries))
	for i := range entries {
		buf = append(buf, entries[i].JSON...)
		buf = append(buf, '\n')
		ends[i] = len(buf)
	}
	n, err := b.f.Write(buf)
	b.buf = buf[:0]
	if n > 0 {
		b.dirty = true
		b.m.bytes.Add(float64(n))
	}
	if err == nil {
		b.tornTail = false
		return nil
	}
	werr := &BackendError{Backend: BackendFile, Op: "write", Err: fmt.Errorf("%s: %w", b.path, err)}
	if n > 0 && (len(ends) == 0 || n != ends[len(ends)-1]) {
		b.tornTail = true
	}
	var failed []int
	for i, end := range ends {
		if end > n {
			failed = append(failed, i)
		}
	}
	if len(failed) == len(entries) {
		return werr
	}
	return &PartialError{Failed: failed, Err: werr}
}

// ensureFile opens the file of now's period, closing the previous one.
func (b *FileBackend) ensureFile(now time.Time) error {
	p := b.periodStart(now)
	if p.Before(b.latest) {
		p = b.latest
	}
	if b.f != nil && p.Equal(b.period) {
		return nil
	}
	if b.f != nil {
		b.closeCurrent()
		b.m.rotations.Inc()
	}
	path := filepath.Join(b.dir, b.fileName(p))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return &BackendError{Backend: BackendFile, Op: "open", Err: fmt.Errorf("%w; check dlq.file.path and free space", err)}
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return &BackendError{Backend: BackendFile, Op: "open", Err: err}
	}
	b.tornTail = false
	if st.Size() == 0 {
		// A new file: make its directory entry durable.
		if err := syncDir(b.dir); err != nil {
			_ = f.Close()
			return &BackendError{Backend: BackendFile, Op: "open", Err: err}
		}
	} else {
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err == nil && last[0] != '\n' {
			b.tornTail = true
		}
	}
	b.f, b.path, b.period, b.latest = f, path, p, p
	return nil
}

// closeCurrent fsyncs and closes the open file. A failed fsync is kept
// for the next Sync, which must report that earlier writes may be lost.
func (b *FileBackend) closeCurrent() {
	if b.dirty {
		if err := b.syncFile(); err != nil {
			b.syncErr = errors.Join(b.syncErr, err)
		}
	}
	if err := b.f.Close(); err != nil {
		b.syncErr = errors.Join(b.syncErr, &BackendError{Backend: BackendFile, Op: "close", Err: err})
	}
	b.f, b.path, b.dirty, b.tornTail = nil, "", false, false
}

func (b *FileBackend) syncFile() error {
	start := time.Now()
	err := b.f.Sync()
	b.m.syncSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		b.m.syncs.With("error").Inc()
		return &BackendError{Backend: BackendFile, Op: "sync", Err: fmt.Errorf("%s: %w", b.path, err)}
	}
	b.m.syncs.With("ok").Inc()
	b.dirty = false
	return nil
}

// Sync fsyncs the open file. It also reports a failed fsync of a file
// closed at rotation since the last Sync.
func (b *FileBackend) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.syncErr
	b.syncErr = nil
	if b.f != nil && b.dirty {
		err = errors.Join(err, b.syncFile())
	}
	return err
}

// Maintain closes the file of a period that is over, compresses finished
// files (with Compress), removes files older than MaxAge and clears
// temporary files of an interrupted compression. It never touches the
// file of the current period.
func (b *FileBackend) Maintain(ctx context.Context) error {
	now := b.clock.Now()
	current := b.periodStart(now)
	b.mu.Lock()
	if b.f != nil && current.After(b.period) {
		b.closeCurrent()
		b.m.rotations.Inc()
	}
	if b.latest.After(current) {
		current = b.latest
	}
	b.mu.Unlock()

	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return &BackendError{Backend: BackendFile, Op: "maintain", Err: err}
	}
	var errs []error
	cutoff := now.Add(-b.maxAge)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n] = true
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		path := filepath.Join(b.dir, name)
		if strings.HasSuffix(name, gzExt+tmpExt) && strings.HasPrefix(name, b.prefix+"-") {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		start, dur, gz, ok := b.parseName(name)
		if !ok || !start.Before(current) {
			continue
		}
		if !start.Add(dur).After(cutoff) {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			} else {
				b.m.removed.Inc()
			}
			continue
		}
		if b.compress && !gz {
			if have[name+gzExt] {
				// Compressed before a crash that kept the original.
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			if err := compressFile(path); err != nil {
				b.m.compressed.With("error").Inc()
				errs = append(errs, &BackendError{Backend: BackendFile, Op: "compress", Err: err})
				continue
			}
			b.m.compressed.With("ok").Inc()
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// Close fsyncs and closes the open file. Later writes fail.
func (b *FileBackend) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.f != nil {
		b.closeCurrent()
	}
	err := b.syncErr
	b.syncErr = nil
	return err
}

// Files returns the names of the backend's files in its directory, oldest
// period first.
func (b *FileBackend) Files() ([]string, error) {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, _, _, ok := b.parseName(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (b *FileBackend) periodStart(t time.Time) time.Time {
	t = t.UTC()
	if b.rotation == RotationDaily {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

func (b *FileBackend) fileName(period time.Time) string {
	layout := hourlyLayout
	if b.rotation == RotationDaily {
		layout = dailyLayout
	}
	return b.prefix + "-" + period.Format(layout) + fileExt
}

// parseName reads <prefix>-<period>.ndjson[.gz], with either layout (the
// rotation may have changed between runs).
func (b *FileBackend) parseName(name string) (start time.Time, dur time.Duration, gz, ok bool) {
	rest, ok := strings.CutPrefix(name, b.prefix+"-")
	if !ok {
		return time.Time{}, 0, false, false
	}
	if r, isGz := strings.CutSuffix(rest, fileExt+gzExt); isGz {
		rest, gz = r, true
	} else if r, plain := strings.CutSuffix(rest, fileExt); plain {
		rest = r
	} else {
		return time.Time{}, 0, false, false
	}
	switch len(rest) {
	case len(hourlyLayout):
		t, err := time.ParseInLocation(hourlyLayout, rest, time.UTC)
		if err != nil {
			return time.Time{}, 0, false, false
		}
		return t, time.Hour, gz, true
	case len(dailyLayout):
		t, err := time.ParseInLocation(dailyLayout, rest, time.UTC)
		if err != nil {
			return time.Time{}, 0, false, false
		}
		return t, 24 * time.Hour, gz, true
	}
	return time.Time{}, 0, false, false
}

// compressFile gzips path to path.gz through a temporary file that is
// fsynced and renamed, then removes path.
func compressFile(path string) (err error) {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + gzExt + tmpExt
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = dst.Close()
			_ = os.Remove(tmp)
		}
	}()
	zw, err := gzip.NewWriterLevel(dst, 6)
	if err != nil {
		return err
	}
	zw.Name = filepath.Base(path)
	if _, err = io.Copy(zw, src); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = dst.Sync(); err != nil {
		return err
	}
	if err = dst.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path+gzExt); err != nil {
		return err
	}
	if err = syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return os.Remove(path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// sanitizeName keeps [A-Za-z0-9._-] and turns anything else into '_'.
func sanitizeName(s string) string {
	if s == "" {
		return ""
	}
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			out[i] = '_'
		}
	}
	r := string(out)
	if r == "." || r == ".." {
		return "_"
	}
	return r
}
