package dlq_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/dlq"
)

// collector is an HTTP server that takes NDJSON batches, fails with a
// status while status is set, and can hold requests until released.
type collector struct {
	*httptest.Server
	mu      sync.Mutex
	got     []dlq.Entry
	posts   int
	status  atomic.Int32
	held    atomic.Bool   // when set, each request waits for release
	gate    chan struct{} // closed by release
	once    sync.Once
	entered chan struct{} // receives (without blocking) when a request arrives
	headers http.Header
	ctype   string
}

func newCollector(t *testing.T) *collector {
	c := &collector{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first, so the server notices a client that gives up.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		select {
		case c.entered <- struct{}{}:
		default:
		}
		if c.held.Load() {
			select {
			case <-c.gate:
			case <-r.Context().Done():
				return
			}
		}
		if s := c.status.Load(); s != 0 {
			http.Error(w, "collector unavailable", int(s))
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		var batch []dlq.Entry
		for sc.Scan() {
			e, err := dlq.Decode(sc.Bytes())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			batch = append(batch, e)
		}
		c.mu.Lock()
		c.got = append(c.got, batch...)
		c.posts++
		c.headers = r.Header.Clone()
		c.ctype = r.Header.Get("Content-Type")
		c.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(func() {
		c.release()
		c.Close()
	})
	return c
}

// hold makes requests wait until release.
func (c *collector) hold() { c.held.Store(true) }

// release lets held requests (and later ones) through.
func (c *collector) release() { c.once.Do(func() { close(c.gate) }) }

func (c *collector) entries() []dlq.Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]dlq.Entry(nil), c.got...)
}

func TestCascadeFallsThroughToTheNextBackend(t *testing.T) {
	col := newCollector(t)
	col.status.Store(http.StatusServiceUnavailable)
	dir := t.TempDir()
	q, reg := newDLQ(t, dlq.Config{
		HTTP:  dlq.HTTPConfig{Enabled: true, Endpoint: col.URL},
		File:  dlq.FileConfig{Enabled: true, Path: dir},
		Order: []string{"http", "file"},
	}, dlq.Options{})
	if !slices.Equal(q.Backends(), []string{"http", "file"}) || q.Mode() != dlq.ModeCascade {
		t.Fatalf("backends %v mode %v", q.Backends(), q.Mode())
	}
	ctx := ctxT(t)
	must(t, q.Push(ctx, entries(0, 5)...))
	must(t, q.Flush(ctx))
	got := readDir(t, dir+"/svc")
	if !slices.Equal(reasons(got), wantReasons(0, 5)) {
		t.Fatalf("file got %v", reasons(got))
	}
	if got[0].Service != "svc" || got[0].Time.IsZero() || got[0].Source.Token != "inmem:0" {
		t.Fatalf("entry not filled in: %+v", got[0])
	}
	if v := metricValue(t, reg, "keel_dlq_fallthrough_total", map[string]string{"backend": "http"}); v != 5 {
		t.Fatalf("fallthrough_total{http} = %v", v)
	}
	if v := metricValue(t, reg, "keel_dlq_backend_entries_total", map[string]string{"backend": "http", "result": "error"}); v != 5 {
		t.Fatalf("http errors %v", v)
	}
	// Once the first backend is back, it takes the entries again.
	col.status.Store(0)
	must(t, q.Push(ctx, entries(5, 2)...))
	must(t, q.Flush(ctx))
	if got := reasons(col.entries()); !slices.Equal(got, wantReasons(5, 2)) {
		t.Fatalf("http got %v", got)
	}
	if got := readDir(t, dir+"/svc"); len(got) != 5 {
		t.Fatalf("file got %d entries after recovery", len(got))
	}
}

func TestFanOutWritesEveryBackendAndSucceedsIfAnyDoes(t *testing.T) {
	col := newCollector(t)
	dir := t.TempDir()
	q, _ := newDLQ(t, dlq.Config{
		Mode: dlq.ModeFanOut,
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL},
		File: dlq.FileConfig{Enabled: true, Path: dir},
	}, dlq.Options{})
	ctx := ctxT(t)
	must(t, q.Write(ctx, entries(0, 3)...))
	if got := reasons(col.entries()); !slices.Equal(got, wantReasons(0, 3)) {
		t.Fatalf("http got %v", got)
	}
	if got := reasons(readDir(t, dir+"/svc")); !slices.Equal(got, wantReasons(0, 3)) {
		t.Fatalf("file got %v", got)
	}
	col.status.Store(http.StatusInternalServerError)
	if err := q.Write(ctx, entry(3)); err != nil {
		t.Fatalf("fan-out with one backend up: %v", err)
	}
	if got := reasons(readDir(t, dir+"/svc")); !slices.Equal(got, wantReasons(0, 4)) {
		t.Fatalf("file got %v", got)
	}
}

func TestFlushReportsAFailedWrite(t *testing.T) {
	col := newCollector(t)
	col.status.Store(http.StatusBadGateway)
	q, reg := newDLQ(t, dlq.Config{
		Mode: dlq.ModeSingle, MaxAttempts: 2, RetryBackoff: time.Millisecond,
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL},
	}, dlq.Options{})
	ctx := ctxT(t)
	must(t, q.Push(ctx, entries(0, 3)...))
	err := q.Flush(ctx)
	if !errors.Is(err, dlq.ErrWriteFailed) || !errors.Is(err, dlq.ErrAllBackendsFailed) || !errors.Is(err, dlq.ErrBackend) {
		t.Fatalf("Flush after a failed write: %v", err)
	}
	var be *dlq.BackendError
	if !errors.As(err, &be) || be.Backend != "http" {
		t.Fatalf("no http BackendError in %v", err)
	}
	if q.Dropped() != 3 {
		t.Fatalf("Dropped %d", q.Dropped())
	}
	if v := metricValue(t, reg, "keel_dlq_dropped_total", map[string]string{"reason": "write_failed"}); v != 3 {
		t.Fatalf("dropped_total %v", v)
	}
	// Write reports its own entries' fate.
	if err := q.Write(ctx, entry(9)); !errors.Is(err, dlq.ErrAllBackendsFailed) {
		t.Fatalf("Write: %v", err)
	}
	col.status.Store(0)
	if err := q.Write(ctx, entry(10)); err != nil {
		t.Fatalf("Write after recovery: %v", err)
	}
}

func TestRetryKeepsEntriesUntilABackendRecovers(t *testing.T) {
	fb := &failingBackend{name: "flaky", fail: true, failed: make(chan struct{}, 1)}
	q, _ := newDLQ(t, dlq.Config{MaxAttempts: -1, RetryBackoff: time.Millisecond}, dlq.Options{Backends: []dlq.Backend{fb}})
	ctx := ctxT(t)
	res := make(chan error, 1)
	go func() { res <- q.Write(ctx, entries(0, 2)...) }()
	recv(t, fb.failed)
	recv(t, fb.failed) // tried more than once: it keeps the entries
	if q.Pending() != 2 {
		t.Fatalf("pending %d during the outage", q.Pending())
	}
	fb.set(false)
	if err := recv(t, res); err != nil {
		t.Fatalf("Write across an outage: %v", err)
	}
	if !slices.Equal(fb.taken(), wantReasons(0, 2)) {
		t.Fatalf("taken %v", fb.taken())
	}
}

func TestFailedSyncHandsEntriesToTheNextBackend(t *testing.T) {
	first := &syncingBackend{failingBackend{name: "local", syncErr: errors.New("EIO")}}
	second := &failingBackend{name: "remote"}
	q, reg := newDLQ(t, dlq.Config{}, dlq.Options{Backends: []dlq.Backend{first, second}})
	ctx := ctxT(t)
	must(t, q.Push(ctx, entries(0, 3)...))
	if err := q.Flush(ctx); err != nil {
		t.Fatalf("Flush: the entries reached another backend, so nothing is lost: %v", err)
	}
	if !slices.Equal(first.taken(), wantReasons(0, 3)) || !slices.Equal(second.taken(), wantReasons(0, 3)) {
		t.Fatalf("local %v remote %v", first.taken(), second.taken())
	}
	if v := metricValue(t, reg, "keel_dlq_sync_errors_total", map[string]string{"backend": "local"}); v != 1 {
		t.Fatalf("sync_errors_total %v", v)
	}
	// With nowhere to hand them, the barrier reports the loss.
	second.set(true)
	must(t, q.Push(ctx, entry(3)))
	err := q.Flush(ctx)
	if !errors.Is(err, dlq.ErrWriteFailed) {
		t.Fatalf("Flush with a failed sync and no fallback: %v", err)
	}
	if v := metricValue(t, reg, "keel_dlq_dropped_total", map[string]string{"reason": "sync_failed"}); v != 1 {
		t.Fatalf("dropped_total{sync_failed} %v", v)
	}
}

// partialBackend takes only entries whose reason is in ok.
type partialBackend struct {
	failingBackend
	ok map[string]bool
}

func (b *partialBackend) Write(_ context.Context, es []dlq.Encoded) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var failed []int
	for i, e := range es {
		if b.ok[e.Entry.Reason] {
			b.took = append(b.took, e.Entry.Reason)
		} else {
			failed = append(failed, i)
		}
	}
	if len(failed) > 0 {
		return &dlq.PartialError{Failed: failed, Err: errors.New("some refused")}
	}
	return nil
}

func TestCascadeHandsOnOnlyWhatABackendRefused(t *testing.T) {
	first := &partialBackend{failingBackend{name: "picky"}, map[string]bool{"reason 0": true, "reason 2": true}}
	second := &failingBackend{name: "rest"}
	q, reg := newDLQ(t, dlq.Config{}, dlq.Options{Backends: []dlq.Backend{first, second}})
	ctx := ctxT(t)
	must(t, q.Write(ctx, entries(0, 4)...))
	if !slices.Equal(first.taken(), []string{"reason 0", "reason 2"}) || !slices.Equal(second.taken(), []string{"reason 1", "reason 3"}) {
		t.Fatalf("picky %v rest %v", first.taken(), second.taken())
	}
	if v := metricValue(t, reg, "keel_dlq_fallthrough_total", map[string]string{"backend": "picky"}); v != 2 {
		t.Fatalf("fallthrough %v", v)
	}
}

func TestQueueFull(t *testing.T) {
	col := newCollector(t)
	col.hold()
	q, _ := newDLQ(t, dlq.Config{
		QueueCapacity: 2, BatchSize: 1, Overflow: background.OverflowDrop, // refuse at once
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL},
	}, dlq.Options{})
	ctx := ctxT(t)
	must(t, q.TryPush(entry(0)))
	recv(t, col.entered) // entry 0 is being written and still counts
	must(t, q.Push(ctx, entry(1)))
	if err := q.TryPush(entry(2)); !errors.Is(err, dlq.ErrQueueFull) {
		t.Fatalf("TryPush on a full queue: %v", err)
	}
	if err := q.Push(ctx, entry(2)); !errors.Is(err, dlq.ErrQueueFull) {
		t.Fatalf("Push under overflow drop on a full queue: %v", err)
	}
	if q.Pending() != 2 {
		t.Fatalf("pending %d", q.Pending())
	}
	col.release()
	must(t, q.Flush(ctx))
	if got := reasons(col.entries()); !slices.Equal(got, wantReasons(0, 2)) {
		t.Fatalf("got %v", got)
	}
	if q.Dropped() != 0 {
		t.Fatal("refusals are not drops")
	}
}

func TestShutdownDrainsTheQueue(t *testing.T) {
	dir := t.TempDir()
	col := newCollector(t)
	col.hold()
	q, err := dlq.New(ctxT(t), dlq.Config{Enabled: true, Mode: dlq.ModeFanOut, BatchSize: 10, FlushInterval: time.Hour,
		HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: col.URL},
		File: dlq.FileConfig{Enabled: true, Path: dir}},
		dlq.Options{Service: "svc", Metrics: newReg(), Logger: quietLogger()})
	must(t, err)
	ctx := ctxT(t)
	must(t, q.Push(ctx, entries(0, 95)...))
	recv(t, col.entered)
	res := make(chan error, 1)
	go func() { res <- q.Close(ctx) }()
	col.release()
	if err := recv(t, res); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := reasons(readDir(t, dir+"/svc")); !slices.Equal(got, wantReasons(0, 95)) {
		t.Fatalf("file has %d entries after Close", len(got))
	}
	if got := col.entries(); len(got) != 95 {
		t.Fatalf("http has %d entries after Close", len(got))
	}
	if err := q.Push(ctx, entry(1)); !errors.Is(err, dlq.ErrClosed) {
		t.Fatalf("Push after Close: %v", err)
	}
	if err := q.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDefaultBackendIsTheFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	q, reg := newDLQ(t, dlq.Config{}, dlq.Options{Service: "orders"})
	if !slices.Equal(q.Backends(), []string{"file"}) {
		t.Fatalf("backends %v", q.Backends())
	}
	ctx := ctxT(t)
	must(t, q.Write(ctx, entry(0)))
	if got := readDir(t, dir+"/dlq/orders"); len(got) != 1 || got[0].Service != "orders" {
		t.Fatalf("entries %+v", got)
	}
	// Write returned after the file was fsynced.
	if v := metricValue(t, reg, "keel_dlq_file_syncs_total", map[string]string{"result": "ok"}); v < 1 {
		t.Fatalf("file_syncs_total{ok} = %v after a durable write", v)
	}
}

func TestNewRejectsWhatCannotWork(t *testing.T) {
	if _, err := dlq.New(ctxT(t), dlq.Config{Enabled: true, Mode: dlq.ModeSingle},
		dlq.Options{Backends: []dlq.Backend{&failingBackend{name: "a"}, &failingBackend{name: "b"}}, Metrics: newReg()}); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Fatalf("single mode with two backends: %v", err)
	}
	if _, err := dlq.New(ctxT(t), dlq.Config{Enabled: true}, dlq.Options{Backends: []dlq.Backend{}, Metrics: newReg()}); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Fatalf("no backend: %v", err)
	}
}
