package gated_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/metrics"
)

const kib = int64(1) << 10

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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

func newGovernor(t *testing.T, cfg governor.Config, opts ...governor.Option) *governor.Governor {
	t.Helper()
	opts = append([]governor.Option{governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger())}, opts...)
	g, err := governor.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		t.Fatal("New returned a nil governor for an enabled config")
	}
	return g
}
