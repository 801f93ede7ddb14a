package pool

import (
	"context"
	"errors"
	"testing"
)

func TestCloseThenSubmitFailsWithErrClosed(t *testing.T) {
	p, _ := newTestPool(t, Config{})
	p.Close()
	p.Close() // idempotent
	if !p.Stats().Closed {
		t.Fatal("Stats().Closed = false after Close")
	}
	if _, err := Go(context.Background(), p, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close = %v", err)
	}
	if _, err := FanOut(context.Background(), p, ints(3), func(context.Context, int, int) (int, error) { return 0, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("FanOut after Close = %v", err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of an idle closed pool = %v", err)
	}
}

func TestCloseWaitsForAcceptedWork(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 4})
	ctx := context.Background()
	hold := make(chan struct{})
	var finished [3]bool
	f, err := Go(ctx, p, func(context.Context) (int, error) { <-hold; finished[0] = true; return 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	ch, err := FanOut(ctx, p, ints(2), func(_ context.Context, i int, _ int) (int, error) {
		<-hold
		finished[1+i] = true
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mapDone := make(chan struct{})
	mapStarted := make(chan struct{})
	go func() {
		defer close(mapDone)
		Map(ctx, p, ints(1), func(context.Context, int, int) (int, error) { close(mapStarted); <-hold; return 0, nil })
	}()
	<-mapStarted
	waitFor(t, func() bool { return p.Stats().InFlight == 3 })

	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Shutdown(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a done ctx while work runs = %v", err)
	}
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while accepted work was running")
	default:
	}
	if _, err := Go(ctx, p, func(context.Context) (int, error) { return 0, nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go during Close = %v", err)
	}
	close(hold)
	<-closed
	// Close returned, so every accepted item has finished.
	if finished != [3]bool{true, true, true} {
		t.Fatalf("Close returned before the work finished: %v", finished)
	}
	<-mapDone
	if _, err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, errs := Collect(ch, 2); errs != nil {
		t.Fatal(errs)
	}
	if s := p.Stats(); s.InFlight != 0 || s.Active != 0 {
		t.Fatalf("stats after Close = %+v", s)
	}
}

func TestWaitReturnsWhenIdle(t *testing.T) {
	p, _ := newTestPool(t, Config{MaxWorkers: 2})
	p.Wait() // idle: returns at once
	hold := make(chan struct{})
	if _, err := Go(context.Background(), p, func(context.Context) (int, error) { <-hold; return 0, nil }); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { p.Wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Wait returned while a call was in flight")
	default:
	}
	close(hold)
	<-waited
	if _, err := Go(context.Background(), p, func(context.Context) (int, error) { return 0, nil }); err != nil {
		t.Fatalf("Wait must not close the pool: %v", err)
	}
}
