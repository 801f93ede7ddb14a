package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/transport"
)

func newSender(t testing.TB, cfg Config) *Sender {
	t.Helper()
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func recs(payloads ...string) []transport.Record {
	out := make([]transport.Record, len(payloads))
	for i, p := range payloads {
		out[i] = transport.Record{Payload: []byte(p), Key: []byte("ignored")}
	}
	return out
}

func TestSenderRefusesUnframablePayloads(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxLineBytes = 10
	s := newSender(t, cfg)
	err := s.SendBatch(context.Background(), recs(`{"a":1}`, "two\nlines", `{"b":2}`, "", "cr\r", "   ", "01234567890", `{"c":3}`))
	var be *transport.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want *transport.BatchError", err)
	}
	equal(t, "failed indices", be.Indices(), []int{1, 3, 4, 5, 6})
	if !errors.Is(err, ErrUnframable) || !errors.Is(err, transport.ErrSend) || transport.Classify(err) != transport.Fatal {
		t.Fatalf("classification of %v", err)
	}
	for _, f := range be.Failed {
		if f.Index == 6 && !strings.Contains(f.Err.Error(), "max_line_bytes 10") {
			t.Fatalf("size refusal must name the limit: %v", f.Err)
		}
	}
	if got := readFile(t, cfg.Path); got != "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n" {
		t.Fatalf("file holds %q", got)
	}
	if err := s.Send(context.Background(), transport.Record{Payload: []byte("x\ny")}); !errors.Is(err, ErrUnframable) {
		t.Fatalf("Send = %v", err)
	}
	var single *transport.BatchError
	if errors.As(s.Send(context.Background(), transport.Record{}), &single) {
		t.Fatal("Send reports the record's own error, not a batch error")
	}
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).rejected); v != 7 {
		t.Fatalf("rejected_records_total = %v", v)
	}
}

func TestSenderWritesReadBackByteForByte(t *testing.T) {
	cfg := testConfig(t)
	cfg.WriteBufferBytes = 16 // smaller than a batch: several writes per call
	s := newSender(t, cfg)
	ctx := context.Background()
	want := []string{`{"k":"v"}`, `{"unicode":"é€"}`, `  {"lead":1}`, `[1,2,3]`, `"\r in a string"`}
	if err := s.SendBatch(ctx, recs(want...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte(`{"one":1}`)}); err != nil {
		t.Fatal(err)
	}
	want = append(want, `{"one":1}`)
	// Visible to a reader before Close: every call flushes.
	cfg2 := cfg
	cfg2.StopAtEOF = true
	r := newReceiver(t, cfg2)
	equal(t, "read back", payloads(recv(t, r, transport.Limits{})), want)
	if v := testutil.ToFloat64(newFileMetrics(cfg.Metrics).bytesWritten); int(v) != len(readFile(t, cfg.Path)) {
		t.Fatalf("written_bytes_total = %v", v)
	}
}

func TestSenderAppendAndTruncate(t *testing.T) {
	cfg := testConfig(t)
	appendFile(t, cfg.Path, "old\n")
	s := newSender(t, cfg)
	if err := s.Send(context.Background(), transport.Record{Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(context.Background())
	if got := readFile(t, cfg.Path); got != "old\nnew\n" {
		t.Fatalf("append: %q", got)
	}
	no := false
	cfg.Append = &no
	s = newSender(t, cfg)
	if got := readFile(t, cfg.Path); got != "" {
		t.Fatalf("Append=false must truncate on open: %q", got)
	}
	if err := s.Send(context.Background(), transport.Record{Payload: []byte("only")}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, cfg.Path); got != "only\n" {
		t.Fatalf("truncate: %q", got)
	}
}

func fsyncs(cfg Config) float64 { return testutil.ToFloat64(newFileMetrics(cfg.Metrics).fsyncs) }

func TestSyncPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("every_write", func(t *testing.T) {
		cfg := testConfig(t)
		s := newSender(t, cfg) // creates the file: one directory fsync
		base := fsyncs(cfg)
		if base != 1 {
			t.Fatalf("creating the file fsyncs its directory once, got %v", base)
		}
		for i := 1; i <= 3; i++ {
			if err := s.SendBatch(ctx, recs("a", "b")); err != nil {
				t.Fatal(err)
			}
			if got := fsyncs(cfg) - base; got != float64(i) {
				t.Fatalf("after %d calls: %v fsyncs", i, got)
			}
		}
		// A call with nothing written does not fsync.
		_ = s.SendBatch(ctx, recs("bad\n"))
		if got := fsyncs(cfg) - base; got != 3 {
			t.Fatalf("refused-only batch fsynced: %v", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Sync = SyncNone
		s := newSender(t, cfg)
		for range 3 {
			if err := s.SendBatch(ctx, recs("a")); err != nil {
				t.Fatal(err)
			}
		}
		if got := fsyncs(cfg); got != 0 {
			t.Fatalf("none: %v fsyncs before Close", got)
		}
		if got := readFile(t, cfg.Path); got != "a\na\na\n" {
			t.Fatalf("none still flushes every call: %q", got)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := fsyncs(cfg); got != 1 {
			t.Fatalf("Close must fsync: %v", got)
		}
	})
	t.Run("interval", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Sync = SyncOnInterval
		cfg.SyncInterval = time.Millisecond
		s := newSender(t, cfg)
		synced := make(chan struct{}, 1)
		s.mu.Lock()
		s.onSync = func() {
			select {
			case synced <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
		base := fsyncs(cfg)
		if err := s.SendBatch(ctx, recs("a")); err != nil {
			t.Fatal(err)
		}
		<-synced
		if got := fsyncs(cfg) - base; got != 1 {
			t.Fatalf("interval: %v fsyncs after one background sync", got)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFlushPolicies reads the file right after each send: what it holds
// is what a crash of the process at that moment would leave.
func TestFlushPolicies(t *testing.T) {
	ctx := context.Background()
	t.Run("batch_flushes_before_each_call_returns", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Flush = FlushBatch
		s := newSender(t, cfg)
		want := ""
		for i := range 3 {
			p := fmt.Sprintf(`{"n":%d}`, i)
			if err := s.Send(ctx, transport.Record{Payload: []byte(p)}); err != nil {
				t.Fatal(err)
			}
			want += p + "\n"
			if got := readFile(t, cfg.Path); got != want {
				t.Fatalf("after send %d the file holds %q, want %q", i, got, want)
			}
		}
	})
	t.Run("bytes_flushes_once_the_threshold_is_buffered", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Flush, cfg.FlushBytes, cfg.Sync = FlushBytes, 16, SyncNone
		s := newSender(t, cfg)
		if err := s.SendBatch(ctx, recs("a", "b")); err != nil { // 4 bytes buffered
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "" {
			t.Fatalf("flushed %q below flush_bytes", got)
		}
		if err := s.SendBatch(ctx, recs("0123456789", "c")); err != nil { // 17 bytes buffered
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "a\nb\n0123456789\nc\n" {
			t.Fatalf("at flush_bytes the file holds %q", got)
		}
		if err := s.Send(ctx, transport.Record{Payload: []byte("d")}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "a\nb\n0123456789\nc\n" {
			t.Fatalf("a record below flush_bytes was flushed: %q", got)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "a\nb\n0123456789\nc\nd\n" {
			t.Fatalf("Close must flush: %q", got)
		}
	})
	t.Run("interval_leaves_records_buffered_until_the_tick", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Flush, cfg.FlushInterval, cfg.Sync = FlushOnInterval, time.Hour, SyncNone
		s := newSender(t, cfg)
		if err := s.SendBatch(ctx, recs("a", "b")); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "" {
			t.Fatalf("flushed %q before the interval", got)
		}
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "a\nb\n" {
			t.Fatalf("Flush must write the buffer: %q", got)
		}
		if err := s.Send(ctx, transport.Record{Payload: []byte("c")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, cfg.Path); got != "a\nb\nc\n" {
			t.Fatalf("Close must flush: %q", got)
		}
	})
	t.Run("interval_flushes_in_the_background", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Flush, cfg.FlushInterval = FlushOnInterval, time.Millisecond
		cfg.Sync, cfg.SyncInterval = SyncOnInterval, time.Millisecond
		s := newSender(t, cfg)
		flushed := make(chan struct{}, 1)
		synced := make(chan struct{}, 1)
		signal := func(c chan struct{}) func() {
			return func() {
				select {
				case c <- struct{}{}:
				default:
				}
			}
		}
		var fsyncsAtFlush float64
		s.mu.Lock()
		s.onFlush = func() {
			fsyncsAtFlush = fsyncs(cfg)
			signal(flushed)()
		}
		s.onSync = signal(synced)
		s.mu.Unlock()
		if err := s.SendBatch(ctx, recs("a")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, flushed, "a background flush")
		if got := readFile(t, cfg.Path); got != "a\n" {
			t.Fatalf("after the background flush the file holds %q", got)
		}
		// The sync interval then fsyncs what the flush wrote.
		for fsyncs(cfg) <= fsyncsAtFlush {
			waitFor(t, synced, "a background fsync after the flush")
		}
	})
}

// waitFor fails the test unless c delivers within 10 s.
func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
}

func TestSenderFlushFsyncs(t *testing.T) {
	cfg := testConfig(t)
	cfg.Sync = SyncNone
	s := newSender(t, cfg)
	if err := s.Send(context.Background(), transport.Record{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fsyncs(cfg) != 1 {
		t.Fatal("Flush must fsync")
	}
}

func TestSenderBreaksOnWriteFailure(t *testing.T) {
	cfg := testConfig(t)
	s := newSender(t, cfg)
	ctx := context.Background()
	// Pull the file from under the sender: the next write fails.
	if err := s.f.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.SendBatch(ctx, recs("a"))
	if !errors.Is(err, transport.ErrSend) || transport.Classify(err) != transport.Fatal || !strings.Contains(err.Error(), cfg.Path) {
		t.Fatalf("write on a closed file: %v", err)
	}
	if err := s.Health(ctx); err == nil {
		t.Fatal("health must report the failure")
	}
	if err := s.SendBatch(ctx, recs("b")); !errors.Is(err, transport.ErrSend) {
		t.Fatalf("a broken sender must refuse sends: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, transport.ErrSend) {
		t.Fatalf("Flush on a broken sender: %v", err)
	}
}

func TestSenderOpenErrorsAndClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.Path = filepath.Join(t.TempDir(), "no", "such", "dir", "out.ndjson")
	if _, err := NewSender(cfg); !errors.Is(err, transport.ErrConnection) || !strings.Contains(err.Error(), cfg.Path) {
		t.Fatalf("open in a missing directory: %v", err)
	}
	cfg = testConfig(t)
	s := newSender(t, cfg)
	ctx := context.Background()
	if err := s.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte("x")}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := s.Health(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s2 := newSender(t, cfg)
	if err := s2.SendBatch(cancelled, recs("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SendBatch: %v", err)
	}
	if s2.Name() != "file" {
		t.Fatal(s2.Name())
	}
}
