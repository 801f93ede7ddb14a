package scaling_test

import (
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/scaling"
)

const eps = 1e-9

func near(a, b float64) bool { return math.Abs(a-b) <= eps }

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	// Start at the real time: the log rate limiter measures from process start.
	return &fakeClock{now: time.Now()}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

type env struct {
	reg   *metrics.Registry
	clock *fakeClock
	logs  *syncBuffer
}

func newEnv() *env {
	return &env{
		reg:   metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		clock: newFakeClock(),
		logs:  &syncBuffer{},
	}
}

func (e *env) opts(extra ...scaling.Option) []scaling.Option {
	return append([]scaling.Option{
		scaling.WithMetrics(e.reg),
		scaling.WithClock(e.clock.Now),
		scaling.WithLogger(slog.New(slog.NewJSONHandler(e.logs, nil))),
	}, extra...)
}

// newPressure builds a Pressure on a fresh env, failing the test on error.
func newPressure(t *testing.T, cfg scaling.Config, extra ...scaling.Option) (*scaling.Pressure, *env) {
	t.Helper()
	e := newEnv()
	p, err := scaling.New(cfg, e.opts(extra...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, e
}

// metricValue reads a gauge or counter from the registry; labels are
// name/value pairs. It reports false when the series does not exist.
func (e *env) metricValue(t *testing.T, name string, labels ...string) (float64, bool) {
	t.Helper()
	fams, err := e.reg.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == k && lp.GetValue() == v {
			return true
		}
	}
	return false
}

func component(t *testing.T, r scaling.Result, name string) scaling.ComponentValue {
	t.Helper()
	for _, c := range r.Components {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("component %q not in result %+v", name, r.Components)
	return scaling.ComponentValue{}
}

func mustSet(t *testing.T, p *scaling.Pressure, kv map[string]float64) {
	t.Helper()
	for k, v := range kv {
		if err := p.Set(k, v); err != nil {
			t.Fatalf("Set(%q, %v): %v", k, v, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
