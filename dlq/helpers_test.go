package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newReg() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newDLQ builds an enabled DLQ with a private registry, a quiet logger and
// the given clock, and closes it at the end of the test.
func newDLQ(t testing.TB, cfg dlq.Config, opts dlq.Options) (*dlq.DLQ, *metrics.Registry) {
	t.Helper()
	cfg.Enabled = true
	if opts.Metrics == nil {
		opts.Metrics = newReg()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.Service == "" {
		opts.Service = "svc"
	}
	q, err := dlq.New(ctxT(t), cfg, opts)
	if err != nil {
		t.Fatalf("dlq.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q, opts.Metrics
}

// readDir reads every entry of every dlq file in dir, in file order.
func readDir(t testing.TB, dir string) []dlq.Entry {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.ndjson*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []dlq.Entry
	for _, n := range names {
		es, err := dlq.ReadFile(n)
		if err != nil {
			t.Fatalf("ReadFile %s: %v", n, err)
		}
		out = append(out, es...)
	}
	return out
}

// entry returns the i-th test entry; even ones carry the original
// record's key and a header.
func entry(i int) dlq.Entry {
	e := dlq.Entry{
		Reason:      fmt.Sprintf("reason %d", i),
		Payload:     []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Destination: "orders",
		Source:      dlq.SourceFromToken(fmt.Sprintf("inmem:%d", i)),
	}
	if i%2 == 0 {
		e.Key = []byte(fmt.Sprintf("key-%d", i))
		e.Headers = []transport.Header{{Key: "trace-id", Value: []byte{byte(i), 0xff}}}
	}
	return e
}

func entries(from, n int) []dlq.Entry {
	out := make([]dlq.Entry, n)
	for i := range out {
		out[i] = entry(from + i)
	}
	return out
}

// metricValue sums the series of a metric whose labels include want.
func metricValue(t testing.TB, reg *metrics.Registry, name string, want map[string]string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, want)
}

// reasons returns the reasons of es, in order.
func reasons(es []dlq.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Reason
	}
	return out
}

func wantReasons(from, n int) []string { return reasons(entries(from, n)) }

// redisClient returns a client of the local Redis server, skipping the test
// when it is unreachable unless KEEL_REQUIRE_SERVICES=1.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("KEEL_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = conn.Close()
	}
	var c *redis.Client
	if err == nil {
		c = redis.NewClient(&redis.Options{Addr: addr})
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		if err != nil {
			_ = c.Close()
		}
	}
	if err != nil {
		if os.Getenv("KEEL_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis server at %s (KEEL_TEST_REDIS_ADDR) is required (KEEL_REQUIRE_SERVICES=1) but unreachable: %v", addr, err)
		}
		t.Skipf("Redis server at %s (KEEL_TEST_REDIS_ADDR) unreachable, skipping: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// failingBackend is a Backend whose writes fail until ok is set; it
// records what it took.
type failingBackend struct {
	mu      sync.Mutex
	name    string
	fail    bool
	syncErr error
	took    []string
	syncs   int
	closed  bool
	// failed, when set, receives (without blocking) on each failed write.
	failed chan struct{}
}

func (b *failingBackend) Name() string { return b.name }

func (b *failingBackend) Write(ctx context.Context, es []dlq.Encoded) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail {
		if b.failed != nil {
			select {
			case b.failed <- struct{}{}:
			default:
			}
		}
		return errors.New(b.name + " is down")
	}
	for _, e := range es {
		b.took = append(b.took, e.Entry.Reason)
	}
	return nil
}

func (b *failingBackend) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *failingBackend) set(fail bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = fail
}

func (b *failingBackend) taken() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.took...)
}

// syncingBackend is a failingBackend that also implements Syncer.
type syncingBackend struct{ failingBackend }

func (b *syncingBackend) Sync(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.syncs++
	return b.syncErr
}

// recv receives from ch, failing the test when nothing comes within 10 s.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received within 10s")
		var zero T
		return zero
	}
}
