package kafka

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// testTimeout bounds each test's waits; a healthy run takes far less.
const testTimeout = 30 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("KEEL_KAFKA_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testMetrics() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// startCluster starts a one-broker cluster with short group timeouts.
func startCluster(t testing.TB, opts ...kfake.Opt) *kafkatest.Cluster {
	base := []kfake.Opt{kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	return kafkatest.Start(t, append(base, opts...)...)
}

// testConfig is a config for a consumer and producer on c, tuned for fast
// tests: devtest profile, low-latency sizing, 100 ms heartbeats.
func testConfig(t testing.TB, c *kafkatest.Cluster, group string, topics ...string) Config {
	return Config{
		Brokers:     c.Addrs(),
		Group:       group,
		Topics:      topics,
		Environment: "test",
		Profile:     ProfileDevTest,
		Sizing:      SizingLowLatency,
		Consumer: ConsumerConfig{
			SessionTimeout:    3 * time.Second,
			HeartbeatInterval: 100 * time.Millisecond,
			RebalanceTimeout:  10 * time.Second,
			RevokeWait:        2 * time.Second,
		},
		LagInterval: -1,
		Metrics:     testMetrics(),
		Logger:      testLogger(t),
	}
}

func newTestConsumer(t testing.TB, cfg Config) *Consumer {
	t.Helper()
	cfg.Role = RoleConsumer
	c, err := NewConsumer(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func newTestProducer(t testing.TB, cfg Config) *Producer {
	t.Helper()
	cfg.Role = RoleProducer
	p, err := NewProducer(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// recvN receives until n records arrived, committing nothing.
func recvN(ctx context.Context, t testing.TB, r transport.Receiver, n int, lim transport.Limits) transport.Batch {
	t.Helper()
	var all transport.Batch
	for len(all.Records) < n {
		b, err := r.Recv(ctx, lim)
		if err != nil {
			t.Fatalf("Recv after %d of %d record(s): %v", len(all.Records), n, err)
		}
		all.Records = append(all.Records, b.Records...)
		all.Tokens = append(all.Tokens, b.Tokens...)
	}
	return all
}

func payloads(recs []transport.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Payload)
	}
	return out
}

func sortedPayloads(recs []transport.Record) []string {
	out := payloads(recs)
	sort.Strings(out)
	return out
}

func numbered(prefix string, n int) []transport.Record {
	out := make([]transport.Record, n)
	for i := range out {
		v := prefix + itoa(i)
		out[i] = transport.Record{Key: []byte(v), Payload: []byte(v)}
	}
	return out
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = digits[i%10]
	}
	return string(b[n:])
}

func wantErrContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error containing %q, got nil", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// eventually polls cond until it holds or the test context ends. It is
// for states reached asynchronously (group membership); it asserts no
// timing.
func eventually(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// usePropagator installs p as the global propagator for the test and
// restores the previous one after it.
func usePropagator(t testing.TB, p propagation.TextMapPropagator) {
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(p)
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}
