package background_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

var errBoom = errors.New("boom")

// recDrain is a Drain that records what it is given. Writes and flushes
// can be made to fail or to block until the test releases them.
type recDrain struct {
	mu        sync.Mutex
	batches   [][]int
	flushes   int
	closes    int
	dropped   []int
	events    []string // "write:N", "flush", "close" in order
	failWrite func(items []int, attempt int) error
	failFlush func(n int) error
	attempts  int

	// gate, when set, makes WriteBatch wait for a value (or ctx).
	gate chan struct{}
	// entered receives one value when a WriteBatch starts (if set).
	entered chan struct{}
	// wrote receives the batch size after each successful write (if set).
	wrote chan int
	// flushed receives after each Flush call (if set).
	flushed chan struct{}
}

func (d *recDrain) WriteBatch(ctx context.Context, items []int) error {
	if d.entered != nil {
		select {
		case d.entered <- struct{}{}:
		default:
		}
	}
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d.mu.Lock()
	d.attempts++
	attempt := d.attempts
	var err error
	if d.failWrite != nil {
		err = d.failWrite(items, attempt)
	}
	if err == nil {
		d.batches = append(d.batches, append([]int(nil), items...))
		d.events = append(d.events, "write")
	}
	d.mu.Unlock()
	if err == nil && d.wrote != nil {
		d.wrote <- len(items)
	}
	return err
}

func (d *recDrain) Flush(context.Context) error {
	d.mu.Lock()
	d.flushes++
	n := d.flushes
	d.events = append(d.events, "flush")
	var err error
	if d.failFlush != nil {
		err = d.failFlush(n)
	}
	d.mu.Unlock()
	if d.flushed != nil {
		d.flushed <- struct{}{}
	}
	return err
}

func (d *recDrain) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closes++
	d.events = append(d.events, "close")
	return nil
}

func (d *recDrain) Dropped(items []int, _ error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropped = append(d.dropped, items...)
}

// written returns every item written, in order.
func (d *recDrain) written() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int
	for _, b := range d.batches {
		out = append(out, b...)
	}
	return out
}

func (d *recDrain) snapshot() (batches [][]int, flushes, closes int, events []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([][]int(nil), d.batches...), d.flushes, d.closes, append([]string(nil), d.events...)
}

// newSink starts a sink over d with a private registry and closes it at
// the end of the test.
func newSink(t *testing.T, cfg background.Config, d *recDrain) (*background.Sink[int], *metrics.Registry) {
	t.Helper()
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	cfg.Metrics = reg
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := background.New[int](cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, reg
}

// metric returns the value of a keel_background_* series with the given
// labels (name=value pairs).
func metric(t *testing.T, reg *metrics.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
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
