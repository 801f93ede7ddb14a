package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/logtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(in io.Reader) Config {
	return Config{
		Input:   in,
		Metrics: metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	}
}

func newReceiver(t *testing.T, cfg Config) *Receiver {
	t.Helper()
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func recv(t *testing.T, r *Receiver, l transport.Limits) transport.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := r.Recv(ctx, l)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return b
}

func payloads(b transport.Batch) []string {
	out := make([]string, len(b.Records))
	for i, r := range b.Records {
		out[i] = string(r.Payload)
	}
	return out
}

func seqs(t *testing.T, toks []transport.Token) []uint64 {
	t.Helper()
	out := make([]uint64, len(toks))
	for i, tok := range toks {
		pt, ok := tok.(Token)
		if !ok {
			t.Fatalf("token %d is %T", i, tok)
		}
		out[i] = pt.Seq
	}
	return out
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
}

func writeAll(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		key string
	}{
		{Config{RecvTimeout: -1}, "transport.pipe.recv_timeout"},
		{Config{MaxLineBytes: -1}, "transport.pipe.max_line_bytes"},
		{Config{ReadBufferBytes: -1}, "transport.pipe.read_buffer_bytes"},
		{Config{WriteBufferBytes: -1}, "transport.pipe.write_buffer_bytes"},
	} {
		_, rerr := NewReceiver(c.cfg)
		_, serr := NewSender(c.cfg)
		for _, err := range []error{c.cfg.Validate(), rerr, serr} {
			if !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), c.key) {
				t.Errorf("%+v: got %v, want ErrConfig naming %s", c.cfg, err, c.key)
			}
		}
	}
	// The zero config reads stdin and writes stdout (nothing is read
	// before the first Recv, so this does not touch the test's stdin).
	r, err := NewReceiver(Config{})
	if err != nil || r.cfg.Input != os.Stdin || r.cfg.MaxLineBytes != DefaultMaxLineBytes || r.cfg.ReadBufferBytes != DefaultReadBufferBytes {
		t.Fatalf("receiver defaults: %+v, %v", r.cfg, err)
	}
	_ = r.Close(context.Background())
	s, err := NewSender(Config{})
	if err != nil || s.cfg.Output != os.Stdout || s.cfg.WriteBufferBytes != DefaultWriteBufferBytes {
		t.Fatalf("sender defaults: %+v, %v", s.cfg, err)
	}
}

func TestLinesThenEndOfInput(t *testing.T) {
	cfg := testConfig(strings.NewReader("{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}"))
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{MaxRecords: 2})
	equal(t, "first", payloads(b), []string{`{"a":1}`, `{"b":2}`})
	equal(t, "seqs", seqs(t, b.Tokens), []uint64{1, 2})
	if b.Tokens[1].String() != "pipe:2" || b.Records[0].Timestamp.IsZero() {
		t.Fatalf("token %q, timestamp %v", b.Tokens[1], b.Records[0].Timestamp)
	}
	b = recv(t, r, transport.Limits{})
	equal(t, "unterminated last line", payloads(b), []string{`{"c":3}`})
	equal(t, "seqs", seqs(t, b.Tokens), []uint64{3})
	for range 2 {
		if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("after the last line: %v", err)
		}
	}
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := r.Health(context.Background()); err != nil {
		t.Fatalf("a clean end of input is healthy: %v", err)
	}
	if v := testutil.ToFloat64(newPipeMetrics(cfg.Metrics).linesRead); v != 3 {
		t.Fatalf("lines_read_total = %v", v)
	}
	if v := testutil.ToFloat64(newPipeMetrics(cfg.Metrics).bytesRead); v != 28 {
		t.Fatalf("read_bytes_total = %v", v)
	}
}

func TestEmptyInputEndsAtOnce(t *testing.T) {
	r := newReceiver(t, testConfig(strings.NewReader("")))
	if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

func TestFirstLineWaitsAndTheRestAreNotWaitedFor(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	r := newReceiver(t, testConfig(pr))
	got := make(chan transport.Batch, 1)
	go func() {
		b, _ := r.Recv(context.Background(), transport.Limits{})
		got <- b
	}()
	// Recv is waiting; one line arrives and is returned without waiting
	// for a full batch (the writer keeps the pipe open).
	writeAll(t, pw, "a\n")
	equal(t, "first", payloads(<-got), []string{"a"})
	// A line split across writes is returned once complete.
	writeAll(t, pw, `{"par`)
	go func() {
		b, _ := r.Recv(context.Background(), transport.Limits{})
		got <- b
	}()
	writeAll(t, pw, "tial\":1}\nb\n")
	b := <-got
	if len(b.Records) == 0 || string(b.Records[0].Payload) != `{"partial":1}` {
		t.Fatalf("got %v", payloads(b))
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for {
		b, err := r.Recv(context.Background(), transport.Limits{})
		if errors.Is(err, transport.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rest = append(rest, payloads(b)...)
	}
	all := append(payloads(b)[1:], rest...)
	equal(t, "the rest", all, []string{"b"})
}

func TestRecvTimeout(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	cfg := testConfig(pr)
	cfg.RecvTimeout = 5 * time.Millisecond
	r := newReceiver(t, cfg)
	b, err := r.Recv(context.Background(), transport.Limits{})
	if err != nil || !b.IsEmpty() {
		t.Fatalf("idle input: %+v, %v; want an empty batch and nil", b, err)
	}
	go func() { _, _ = io.WriteString(pw, "late\n") }()
	for {
		b, err := r.Recv(context.Background(), transport.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !b.IsEmpty() {
			equal(t, "late line", payloads(b), []string{"late"})
			break
		}
	}
}

func TestLimits(t *testing.T) {
	in := strings.Repeat("0123456789\n", 5) + strings.Repeat("w", 50) + "\n"
	r := newReceiver(t, testConfig(strings.NewReader(in)))
	// Let the whole input be read so the limits, not availability, decide.
	if b := recv(t, r, transport.Limits{MaxRecords: 2}); b.Len() != 2 {
		t.Fatalf("record cap: %d", b.Len())
	}
	if b := recv(t, r, transport.Limits{MaxBytes: 15}); b.Len() != 2 {
		t.Fatalf("byte cap: %d", b.Len())
	}
	if b := recv(t, r, transport.Limits{MaxBytes: 1}); b.Len() != 1 {
		t.Fatalf("byte cap floor: %d", b.Len())
	}
	if b := recv(t, r, transport.Limits{MaxBytes: 5}); b.Len() != 1 || b.PayloadBytes() != 50 {
		t.Fatalf("big record alone: %d records, %d bytes", b.Len(), b.PayloadBytes())
	}
}

func TestCancellationLosesNothing(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	r := newReceiver(t, testConfig(pr))
	ctx := context.Background()
	// The first Recv starts the background reader.
	go func() { _, _ = io.WriteString(pw, "0\n") }()
	equal(t, "start", payloads(recv(t, r, transport.Limits{})), []string{"0"})

	// Cancel while Recv waits for the first line.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		b, err := r.Recv(wctx, transport.Limits{})
		if !b.IsEmpty() {
			err = fmt.Errorf("cancelled Recv returned %v", payloads(b))
		}
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting Recv: %v", err)
	}

	// Lines the background reader already took (io.Pipe's Write returns
	// only once they were read) survive a Recv with a cancelled context.
	writeAll(t, pw, "a\nb\nc\n")
	if _, err := r.Recv(wctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Recv: %v", err)
	}
	b := recv(t, r, transport.Limits{MaxRecords: 1})
	equal(t, "first after cancel", payloads(b), []string{"a"})
	// b and c are now in the receiver's own buffer.
	if _, err := r.Recv(wctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Recv: %v", err)
	}
	b = recv(t, r, transport.Limits{})
	equal(t, "buffered lines", payloads(b), []string{"b", "c"})
	equal(t, "contiguous seqs", seqs(t, b.Tokens), []uint64{3, 4})
}

func TestOversizeLine(t *testing.T) {
	cfg := testConfig(strings.NewReader("ok1\n" + strings.Repeat("x", 300) + "\r\nok2\n"))
	cfg.MaxLineBytes = 8
	cfg.ReadBufferBytes = 16 // the long line spans many reads
	r := newReceiver(t, cfg)
	b := recv(t, r, transport.Limits{})
	for b.Len()+len(b.DeadLetters) < 3 {
		more := recv(t, r, transport.Limits{})
		b.Records = append(b.Records, more.Records...)
		b.Tokens = append(b.Tokens, more.Tokens...)
		b.DeadLetters = append(b.DeadLetters, more.DeadLetters...)
	}
	equal(t, "records", payloads(b), []string{"ok1", "ok2"})
	equal(t, "tokens", seqs(t, b.Tokens), []uint64{1, 2, 3})
	if len(b.DeadLetters) != 1 {
		t.Fatalf("dead letters %+v", b.DeadLetters)
	}
	dl := b.DeadLetters[0]
	if !strings.Contains(dl.Reason, "300 bytes") || !strings.Contains(dl.Reason, "max_line_bytes 8") || dl.Source != "pipe:2" || string(dl.Record.Payload) != "xxxxxxxx" {
		t.Fatalf("dead letter %+v", dl)
	}
	if r.fr.BufferSize() > cfg.MaxLineBytes+2 {
		t.Fatalf("buffer grew to %d", r.fr.BufferSize())
	}
	if v := testutil.ToFloat64(newPipeMetrics(cfg.Metrics).oversize); v != 1 {
		t.Fatalf("oversize_lines_total = %v", v)
	}
}

func TestOversizeWarningsAreRateLimited(t *testing.T) {
	const msg = "line over the size limit sent to dead letters"
	var logs logtest.Recorder
	big := strings.Repeat("x", 10)
	pr, pw := io.Pipe()
	defer pw.Close()
	cfg := testConfig(pr)
	cfg.MaxLineBytes = 4
	cfg.Logger = slog.New(&logs)
	r := newReceiver(t, cfg)
	r.oversizeLog.Interval = time.Hour // the three lines fall in one interval
	go func() { _, _ = io.WriteString(pw, big+"\n"+big+"\n"+big+"\nok\n") }()
	var b transport.Batch
	for len(b.Records) == 0 {
		more := recv(t, r, transport.Limits{})
		b.Records = append(b.Records, more.Records...)
		b.DeadLetters = append(b.DeadLetters, more.DeadLetters...)
	}
	if len(b.DeadLetters) != 3 {
		t.Fatalf("dead letters: %+v", b.DeadLetters)
	}
	warns := logs.Find(slog.LevelWarn, msg)
	if len(warns) != 1 || warns[0]["seq"] != uint64(1) || warns[0]["line_bytes"] != int64(10) ||
		warns[0]["suppressed_since_last"] != uint64(0) {
		t.Fatalf("warnings %v, want one for the first line", warns)
	}
	if v := testutil.ToFloat64(newPipeMetrics(cfg.Metrics).oversize); v != 3 {
		t.Fatalf("oversize_lines_total = %v: every line is counted, logged or not", v)
	}
	// Once the interval is over, the next warning reports the two held back.
	r.oversizeLog.Interval = 0
	go func() { _, _ = io.WriteString(pw, big+"\n") }()
	recv(t, r, transport.Limits{})
	warns = logs.Find(slog.LevelWarn, msg)
	if len(warns) != 2 || warns[1]["suppressed_since_last"] != uint64(2) || warns[1]["seq"] != uint64(5) {
		t.Fatalf("warnings %v, want a second one reporting 2 suppressed", warns)
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestReadErrorAfterTheLinesBeforeIt(t *testing.T) {
	boom := errors.New("device gone")
	r := newReceiver(t, testConfig(&failingReader{data: []byte("a\nb\n"), err: boom}))
	var got []string
	for {
		b, err := r.Recv(context.Background(), transport.Limits{})
		if err != nil {
			if !errors.Is(err, transport.ErrRecv) || !errors.Is(err, boom) {
				t.Fatalf("got %v, want ErrRecv wrapping the read error", err)
			}
			break
		}
		got = append(got, payloads(b)...)
	}
	equal(t, "lines before the error", got, []string{"a", "b"})
	if err := r.Health(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("health: %v", err)
	}
}

func TestCloseWakesRecvAndStopsTheReader(t *testing.T) {
	pr, pw := io.Pipe()
	r := newReceiver(t, testConfig(pr))
	done := make(chan error, 1)
	go func() {
		_, err := r.Recv(context.Background(), transport.Limits{})
		done <- err
	}()
	writeAll(t, pw, "x\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := r.Recv(context.Background(), transport.Limits{})
		done <- err
	}()
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	// The reader goroutine may be blocked in Read: closing the pipe ends
	// it, and goleak (TestMain) proves nothing is left.
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	<-r.exited
	if err := r.Commit(context.Background(), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	if err := r.Health(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
	if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if r.Name() != "pipe" {
		t.Fatal(r.Name())
	}
}

func TestCloseStopsAReaderThatIsNotBlocked(t *testing.T) {
	// An endless input that never blocks: the reader goroutine fills its
	// queue and waits for a free buffer. Close must end it without any
	// help from the input.
	cfg := testConfig(endless{})
	cfg.ReadBufferBytes = 64
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "first", payloads(recv(t, r, transport.Limits{MaxRecords: 1})), []string{"line"})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-r.exited
}

// endless returns "line\n" forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	n := 0
	for n+5 <= len(p) {
		n += copy(p[n:], "line\n")
	}
	return n, nil
}

func TestCloseBeforeRecvStartsNothing(t *testing.T) {
	r, err := NewReceiver(testConfig(strings.NewReader("a\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("got %v", err)
	}
	r.gmu.Lock()
	defer r.gmu.Unlock()
	if r.started {
		t.Fatal("a closed receiver started its reader")
	}
}

// writes records each Write call.
type recordingWriter struct {
	bytes.Buffer
	calls int
	err   error
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.calls++
	return w.Buffer.Write(p)
}

func TestSender(t *testing.T) {
	out := &recordingWriter{}
	cfg := testConfig(nil)
	cfg.Output = out
	cfg.MaxLineBytes = 12
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = s.SendBatch(ctx, []transport.Record{
		{Payload: []byte(`{"a":1}`)}, {Payload: []byte("x\ny")}, {Payload: []byte(`{"b":2}`)},
		{Payload: nil}, {Payload: []byte("cr\r")}, {Payload: []byte("0123456789abc")},
	})
	var be *transport.BatchError
	if !errors.As(err, &be) || transport.Classify(err) != transport.Fatal || !errors.Is(err, ErrUnframable) {
		t.Fatalf("got %v", err)
	}
	equal(t, "failed", be.Indices(), []int{1, 3, 4, 5})
	if out.String() != "{\"a\":1}\n{\"b\":2}\n" || out.calls != 1 {
		t.Fatalf("output %q in %d writes; want one flush per call", out.String(), out.calls)
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "{\"a\":1}\n{\"b\":2}\nz\n" || out.calls != 2 {
		t.Fatalf("output %q after Send", out.String())
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte("a\nb")}); !errors.Is(err, ErrUnframable) {
		t.Fatalf("Send: %v", err)
	}
	m := newPipeMetrics(cfg.Metrics)
	if testutil.ToFloat64(m.linesWritten) != 3 || testutil.ToFloat64(m.bytesWritten) != 18 || testutil.ToFloat64(m.rejected) != 5 {
		t.Fatal("sender metrics")
	}
	// The downstream reader goes away.
	out.err = io.ErrClosedPipe
	if err := s.Send(ctx, transport.Record{Payload: []byte("lost")}); !errors.Is(err, transport.ErrSend) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write failure: %v", err)
	}
	if err := s.Health(ctx); err == nil {
		t.Fatal("health must report the failure")
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte("again")}); !errors.Is(err, transport.ErrSend) {
		t.Fatalf("broken sender: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, transport.Record{Payload: []byte("x")}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := s.Health(ctx); !errors.Is(err, transport.ErrClosed) || s.Name() != "pipe" {
		t.Fatalf("health after Close: %v", err)
	}
}

func TestPipeRoundTrip(t *testing.T) {
	pr, pw := io.Pipe()
	cfg := testConfig(pr)
	cfg.Output = pw
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, cfg)
	var want []string
	go func() {
		for i := range 100 {
			_ = s.SendBatch(context.Background(), []transport.Record{{Payload: fmt.Appendf(nil, `{"i":%d}`, i)}})
		}
		_ = s.Close(context.Background())
		_ = pw.Close()
	}()
	for i := range 100 {
		want = append(want, fmt.Sprintf(`{"i":%d}`, i))
	}
	var got []string
	for {
		b, err := r.Recv(context.Background(), transport.Limits{MaxRecords: 7})
		if errors.Is(err, transport.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Len() > 7 {
			t.Fatalf("batch of %d over the cap", b.Len())
		}
		got = append(got, payloads(b)...)
	}
	equal(t, "round trip", got, want)
}
