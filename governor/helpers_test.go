package governor_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/metrics"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logBuffer is a concurrency-safe log sink for asserting on log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func bufferLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// dial is a pressure source whose ratio the test sets.
type dial struct {
	name string
	hard bool
	bits atomic.Uint64
}

func newDial(name string, hard bool, v float64) *dial {
	d := &dial{name: name, hard: hard}
	d.set(v)
	return d
}

func (d *dial) Name() string           { return d.name }
func (d *dial) Hard() bool             { return d.hard }
func (d *dial) PressureRatio() float64 { return math.Float64frombits(d.bits.Load()) }
func (d *dial) set(v float64)          { d.bits.Store(math.Float64bits(v)) }

// recorder is an actuator that records its calls in order and can fail.
type recorder struct {
	mu        sync.Mutex
	calls     []string
	pauseErrs []error
	resumeErr []error
	inPause   atomic.Int32 // for the concurrency test: calls in flight
	overlap   atomic.Bool
}

func (r *recorder) Pause(context.Context) error  { return r.call("pause", &r.pauseErrs) }
func (r *recorder) Resume(context.Context) error { return r.call("resume", &r.resumeErr) }

func (r *recorder) call(op string, errs *[]error) error {
	if r.inPause.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.inPause.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(*errs) > 0 {
		err := (*errs)[0]
		*errs = (*errs)[1:]
		r.calls = append(r.calls, op+"!")
		return err
	}
	r.calls = append(r.calls, op)
	return nil
}

func (r *recorder) failNext(op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op == "pause" {
		r.pauseErrs = append(r.pauseErrs, err)
	} else {
		r.resumeErr = append(r.resumeErr, err)
	}
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

var errActuator = errors.New("actuator unavailable")

// gateOn returns a gate on a single soft dial of weight 1 with the default
// thresholds.
func gateOn(t *testing.T, act governor.Actuator) (*governor.Gate, *dial) {
	t.Helper()
	d := newDial("queue", false, 0)
	l, err := governor.NewLatch(0.80, 0.65)
	if err != nil {
		t.Fatal(err)
	}
	return governor.NewGate("test", governor.NewPressure(d), l, act, governor.WithLogger(quietLogger())), d
}

func evaluate(t *testing.T, g *governor.Gate) bool {
	t.Helper()
	held, err := g.Evaluate(context.Background())
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return held
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }
