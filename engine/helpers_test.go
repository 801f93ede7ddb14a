package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// newEngine builds an engine with a private registry and a logger that
// writes to a buffer the test can read.
func newEngine(t testing.TB, cfg engine.Config) (*engine.Engine, *metrics.Registry, *syncBuffer) {
	t.Helper()
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	cfg.Metrics = reg
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	return e, reg, logs
}

// counter reads a keel_engine_* counter, gauge or histogram (its sample
// count), summed over its series.
func counter(t testing.TB, reg *metrics.Registry, name string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, nil)
}

// labelled reads one series of a labelled counter.
func labelled(t testing.TB, reg *metrics.Registry, name, label, value string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, map[string]string{label: value})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// jsonLine returns a JSON log line with a sequence number: 170 bytes for
// sequence numbers 0..9, 173 for 1000..9999 (a 10 000-record benchmark
// block averages 172.9 bytes a line).
func jsonLine(i int) []byte {
	return []byte(`{"timestamp":"2026-01-01T00:00:00Z","level":"info","service":"api","host":"api-7f9c2",` +
		`"msg":"request completed","status":200,"latency_ms":12.5,"path":"/v1/items","seq":` + strconv.Itoa(i) + `}`)
}

// feed returns an inmem transport holding n JSON records, input closed.
func feed(t testing.TB, n int) *inmem.Transport {
	t.Helper()
	tr := inmem.New(inmem.Config{Capacity: max(n, 1)})
	for i := range n {
		if err := tr.Inject(context.Background(), transport.Record{Payload: jsonLine(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tr.CloseInput()
	return tr
}

// passThrough keeps the block as it is.
func passThrough(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }

// collector is a sink that keeps what it was given.
type collector struct {
	mu      sync.Mutex
	batches []transport.Batch
	records int
	fail    func(call int, b transport.Batch) error
	calls   int
}

func (c *collector) sink(_ context.Context, b transport.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		if err := c.fail(c.calls, b); err != nil {
			return err
		}
	}
	c.batches = append(c.batches, b)
	c.records += len(b.Records)
	return nil
}

func (c *collector) snapshot() (calls, records int, batches []transport.Batch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls, c.records, append([]transport.Batch(nil), c.batches...)
}

// seqToken is the token of orderedSource.
type seqToken uint64

func (s seqToken) String() string { return "seq:" + strconv.FormatUint(uint64(s), 10) }

// orderedSource hands out one record per Recv with monotonic tokens and
// keeps a cumulative watermark (the highest committed token), like an
// ordered partition. It records how many blocks were fetched.
type orderedSource struct {
	mu         sync.Mutex
	payloads   [][]byte
	fetched    int
	watermark  uint64
	failCommit error // returned by the first Commit
}

func newOrderedSource(n int) *orderedSource {
	s := &orderedSource{}
	for i := range n {
		s.payloads = append(s.payloads, jsonLine(i))
	}
	return s
}

func (s *orderedSource) Recv(ctx context.Context, _ transport.Limits) (transport.Batch, error) {
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetched >= len(s.payloads) {
		return transport.Batch{}, transport.NewError(transport.ErrClosed, "ordered", "recv", nil)
	}
	i := s.fetched
	s.fetched++
	return transport.NewBatch([]transport.Record{{Payload: s.payloads[i]}}, []transport.Token{seqToken(i + 1)}), nil
}

func (s *orderedSource) Commit(_ context.Context, tokens []transport.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCommit != nil {
		err := s.failCommit
		s.failCommit = nil
		return transport.NewError(transport.ErrCommit, "ordered", "commit", err)
	}
	for _, t := range tokens {
		if st, ok := t.(seqToken); ok && uint64(st) > s.watermark {
			s.watermark = uint64(st)
		}
	}
	return nil
}

func (s *orderedSource) Close(context.Context) error  { return nil }
func (s *orderedSource) Health(context.Context) error { return nil }
func (s *orderedSource) Name() string                 { return "ordered" }

func (s *orderedSource) state() (fetched int, watermark uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetched, s.watermark
}

// filteringReceiver wraps an inmem transport the way an inbound
// dead-letter filter does: records whose payload contains marker are
// moved to the batch's dead letters and their tokens stay on the batch.
// It logs commits into events and the limits of every Recv.
type filteringReceiver struct {
	*inmem.Transport
	marker string
	drop   bool // drop (no dead letter) instead of dead-lettering
	ev     *events

	mu     sync.Mutex
	limits []transport.Limits
}

func (f *filteringReceiver) Recv(ctx context.Context, l transport.Limits) (transport.Batch, error) {
	f.mu.Lock()
	f.limits = append(f.limits, l)
	f.mu.Unlock()
	b, err := f.Transport.Recv(ctx, l)
	if err != nil || f.marker == "" {
		return b, err
	}
	kept := b.Records[:0:0]
	for _, r := range b.Records {
		if bytes.Contains(r.Payload, []byte(f.marker)) {
			if !f.drop {
				b.DeadLetters = append(b.DeadLetters, transport.DeadLetter{Record: r, Reason: "inbound filter " + f.marker})
			}
			continue
		}
		kept = append(kept, r)
	}
	b.Records = kept
	return b, nil
}

func (f *filteringReceiver) Commit(ctx context.Context, tokens []transport.Token) error {
	err := f.Transport.Commit(ctx, tokens)
	if f.ev != nil {
		f.ev.add(fmt.Sprintf("commit:%d", len(tokens)))
	}
	return err
}

func (f *filteringReceiver) recvLimits() []transport.Limits {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]transport.Limits(nil), f.limits...)
}

// events is an ordered log of what happened.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// accountant records the bytes in flight and their high-water mark.
type accountant struct {
	mu        sync.Mutex
	cur, high int64
	adds      int
}

func (a *accountant) Add(n int64) {
	a.mu.Lock()
	a.cur += n
	a.adds++
	a.high = max(a.high, a.cur)
	a.mu.Unlock()
}

func (a *accountant) Release(n int64) {
	a.mu.Lock()
	a.cur -= n
	a.mu.Unlock()
}

func (a *accountant) state() (cur, high int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur, a.high
}

// halvingBudget starts at start bytes and halves on every non-empty
// observation, down to floor; it records what it was told.
type halvingBudget struct {
	mu       sync.Mutex
	bytes    int64
	floor    int64
	cap      int
	observed []int64
}

func (b *halvingBudget) Bytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}

func (b *halvingBudget) RecordCap() int { return b.cap }

func (b *halvingBudget) Observe(n int64, _, _ time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n == 0 {
		return
	}
	b.observed = append(b.observed, n)
	b.bytes = max(b.bytes/2, b.floor)
}

func (b *halvingBudget) observations() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int64(nil), b.observed...)
}

var errBoom = errors.New("boom")

// runCtx returns a context bounded so that a broken test fails instead of
// hanging the package run.
func runCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
