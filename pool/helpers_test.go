package pool

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
)

// guard bounds a wait in a test so that a broken guarantee fails the test
// instead of hanging it. It is a ceiling, never a synchronisation point.
const guard = 20 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestPool builds a pool on a fresh registry and closes it at cleanup.
func newTestPool(t testing.TB, cfg Config) (*Pool, *metrics.Registry) {
	t.Helper()
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	p, err := New(cfg, WithMetrics(reg), WithLogger(quietLogger()), WithName("t"))
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(p.Close)
	return p, reg
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// concurrency tracks how many items are inside fn at once.
type concurrency struct {
	cur, peak atomic.Int64
}

func (c *concurrency) enter() int64 {
	n := c.cur.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

func (c *concurrency) leave() { c.cur.Add(-1) }

// latch opens once when n parties have arrived; waiters give up at the
// guard deadline and report it.
type latch struct {
	n       int64
	arrived atomic.Int64
	once    sync.Once
	ch      chan struct{}
}

func newLatch(n int) *latch { return &latch{n: int64(n), ch: make(chan struct{})} }

func (l *latch) arrive() {
	if l.arrived.Add(1) >= l.n {
		l.open()
	}
}

func (l *latch) open() { l.once.Do(func() { close(l.ch) }) }

// wait returns false if the latch did not open within the guard.
func (l *latch) wait(ctx context.Context) bool {
	t := time.NewTimer(guard)
	defer t.Stop()
	select {
	case <-l.ch:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

func newRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

func runtimeGosched() { runtime.Gosched() }

func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }

// recordHandler keeps every record's attributes as strings.
type recordHandler struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) all() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]string(nil), h.recs...)
}

func strContains(s, sub string) bool { return strings.Contains(s, sub) }

// waitFor spins (yielding) until cond holds; the guard turns a hang into a
// failure.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("condition not reached within %s", guard)
			return
		}
		runtime.Gosched()
	}
}

// metricValue reads the series of a keel_pool_* metric of pool from reg;
// for a histogram it returns the sample count.
func metricValue(t testing.TB, reg *metrics.Registry, name, pool string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, map[string]string{"pool": pool})
}
