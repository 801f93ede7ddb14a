package background_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

// fakeTimers hands out timers the test fires by hand and records the
// requested waits.
type fakeTimers struct {
	waits chan time.Duration
	fire  chan chan time.Time
}

func newFakeTimers() *fakeTimers {
	return &fakeTimers{waits: make(chan time.Duration, 16), fire: make(chan chan time.Time, 16)}
}

func (f *fakeTimers) after(d time.Duration) (<-chan time.Time, func() bool) {
	c := make(chan time.Time, 1)
	f.waits <- d
	f.fire <- c
	return c, func() bool { return true }
}

// next waits for the worker to arm its next timer and returns the wait and
// a function that fires it.
func (f *fakeTimers) next(t *testing.T) (time.Duration, func()) {
	t.Helper()
	ctx := ctxT(t)
	select {
	case d := <-f.waits:
		c := <-f.fire
		return d, func() { c <- time.Now() }
	case <-ctx.Done():
		t.Fatal("worker never armed its timer")
		return 0, nil
	}
}

func newPeriodic(reg *metrics.Registry, interval time.Duration) background.Periodic {
	return background.Periodic{Name: "test", Interval: interval, Metrics: reg, Logger: slog.New(slog.DiscardHandler)}
}

func TestPeriodicFirstTickAfterOneIntervalNotAtStart(t *testing.T) {
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	ft := newFakeTimers()
	var ticks, stops atomic.Int32
	p := newPeriodic(reg, time.Minute)
	p.OnStop = func() { stops.Add(1) }
	p = background.WithTestHooks(p, nil, ft.after)
	w, err := p.Start(context.Background(), func(context.Context) error { ticks.Add(1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	d, _ := ft.next(t)
	if d != time.Minute {
		t.Fatalf("first wait %s, want one interval", d)
	}
	w.Stop()
	w.Stop() // idempotent
	if ticks.Load() != 0 {
		t.Fatalf("ticked %d times before the first interval passed", ticks.Load())
	}
	if stops.Load() != 1 {
		t.Fatalf("OnStop ran %d times", stops.Load())
	}
}

func TestPeriodicTicksErrorsAndPanicsDoNotStopIt(t *testing.T) {
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	ft := newFakeTimers()
	ticked := make(chan int, 8)
	var n atomic.Int32
	p := background.WithTestHooks(newPeriodic(reg, time.Second), nil, ft.after)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := p.Start(ctx, func(context.Context) error {
		i := int(n.Add(1))
		defer func() { ticked <- i }()
		switch i {
		case 1:
			return errBoom
		case 2:
			panic("tick panics")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		_, fire := ft.next(t)
		fire()
		if got := recv(t, ticked); got != want {
			t.Fatalf("tick %d, want %d", got, want)
		}
	}
	ft.next(t) // armed for the fourth
	cancel()   // the context stops it too
	<-w.Done()
	w.Stop()
	for result, want := range map[string]float64{"ok": 1, "error": 1, "panic": 1} {
		mfs, _ := reg.Gatherer().Gather()
		var got float64
		for _, mf := range mfs {
			if mf.GetName() != "keel_background_periodic_ticks_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == result {
						got += m.GetCounter().GetValue()
					}
				}
			}
		}
		if got != want {
			t.Errorf("ticks_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func TestPeriodicJitterStretchesTheWait(t *testing.T) {
	ft := newFakeTimers()
	p := newPeriodic(nil, 100*time.Millisecond)
	p.Metrics = metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	p.Jitter = 0.2
	p = background.WithTestHooks(p, func() float64 { return 0.5 }, ft.after)
	w, err := p.Start(context.Background(), func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if d, _ := ft.next(t); d != 110*time.Millisecond {
		t.Fatalf("wait %s, want 110ms (interval + 0.5 × 0.2 × interval)", d)
	}
}

func TestPeriodicWithRealTimers(t *testing.T) {
	ticked := make(chan struct{}, 16)
	p := newPeriodic(metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}), time.Millisecond)
	p.Jitter = 1
	w, err := p.Start(context.Background(), func(ctx context.Context) error {
		select {
		case ticked <- struct{}{}:
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case <-ticked:
		case <-ctxT(t).Done():
			t.Fatal("no tick")
		}
	}
	w.Stop()
}

func TestPeriodicRunReturnsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stopped bool
	p := newPeriodic(metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}), time.Hour)
	p.OnStop = func() { stopped = true }
	if err := p.Run(ctx, func(context.Context) error { t.Error("ticked"); return nil }); err != nil {
		t.Fatal(err)
	}
	if !stopped {
		t.Fatal("OnStop did not run")
	}
}

func TestPeriodicValidate(t *testing.T) {
	for _, p := range []background.Periodic{{}, {Interval: -1}, {Interval: time.Second, Jitter: 1.5}, {Interval: time.Second, Jitter: -0.1}} {
		if _, err := p.Start(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, background.ErrInvalidConfig) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if err := (background.Periodic{Interval: time.Second}).Run(context.Background(), nil); !errors.Is(err, background.ErrInvalidArgument) {
		t.Fatalf("nil tick: %v", err)
	}
}
