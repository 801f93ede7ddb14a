package background_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

func TestFlushWritesEverythingBeforeItInOrderThenSyncs(t *testing.T) {
	d := &recDrain{}
	s, reg := newSink(t, background.Config{BatchSize: 10, FlushInterval: time.Hour}, d)
	ctx := ctxT(t)
	for i := range 95 {
		if err := s.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := d.written(); !slices.Equal(got, seq(0, 95)) {
		t.Fatalf("written %v", got)
	}
	batches, flushes, _, events := d.snapshot()
	if len(batches) != 10 {
		t.Fatalf("want 9 full batches and one partial, got %d", len(batches))
	}
	for _, b := range batches {
		if len(b) > 10 {
			t.Fatalf("batch of %d over batch_size 10", len(b))
		}
	}
	if flushes != 1 || events[len(events)-1] != "flush" {
		t.Fatalf("want one durability flush after the last write, got %d flushes, events %v", flushes, events)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d after flush", s.Pending())
	}
	if got := metric(t, reg, "keel_background_pushed_total"); got != 95 {
		t.Fatalf("pushed_total %v", got)
	}
	if got := metric(t, reg, "keel_background_writes_total"); got != 10 {
		t.Fatalf("writes_total %v", got)
	}
	if got := metric(t, reg, "keel_background_pending"); got != 0 {
		t.Fatalf("pending gauge %v", got)
	}
	// A barrier with nothing written since the last one does not flush.
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, f, _, _ := d.snapshot(); f != 1 {
		t.Fatalf("idle barrier flushed: %d", f)
	}
}

func TestPartialBatchIsWrittenAfterTheInterval(t *testing.T) {
	d := &recDrain{wrote: make(chan int, 4)}
	s, _ := newSink(t, background.Config{BatchSize: 100, FlushInterval: time.Millisecond}, d)
	if err := s.TryPush(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-d.wrote:
		if n != 3 {
			t.Fatalf("timer wrote %d items, want 3", n)
		}
	case <-ctxT(t).Done():
		t.Fatal("partial batch never written without a barrier")
	}
	if _, f, _, _ := d.snapshot(); f != 0 {
		t.Fatalf("the interval write must not sync; flushes=%d", f)
	}
}

func TestTryPushOnFullQueueRefusesAndCounts(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	s, reg := newSink(t, background.Config{QueueCapacity: 3, BatchSize: 1}, d)
	ctx := ctxT(t)
	if err := s.TryPush(1); err != nil {
		t.Fatal(err)
	}
	recv(t, d.entered) // item 1 is being written and still counts
	if err := s.TryPush(2, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.TryPush(4); !errors.Is(err, background.ErrQueueFull) {
		t.Fatalf("TryPush on a full queue: %v", err)
	}
	// All or nothing: two items do not fit either.
	if err := s.TryPush(5, 6); !errors.Is(err, background.ErrQueueFull) {
		t.Fatalf("TryPush of two on a full queue: %v", err)
	}
	if got := metric(t, reg, "keel_background_overflow_total"); got != 3 {
		t.Fatalf("overflow_total %v, want 3", got)
	}
	if s.Pending() != 3 {
		t.Fatalf("pending %d", s.Pending())
	}
	close(d.gate)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.written(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("written %v", got)
	}
	if s.Dropped() != 0 {
		t.Fatalf("refused items are not drops: %d", s.Dropped())
	}
}

func TestPushBlocksForRoomUnderBlockOverflow(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	s, _ := newSink(t, background.Config{QueueCapacity: 1, BatchSize: 1}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	recv(t, d.entered)
	// A Push that cannot get room waits until its context ends.
	cctx, cancel := context.WithCancel(ctx)
	res := make(chan error, 1)
	go func() { res <- s.Push(cctx, 2) }()
	cancel()
	if err := recv(t, res); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Push after cancel: %v", err)
	}
	// A Push that waits gets in once the write completes.
	go func() { res <- s.Push(ctx, 3) }()
	close(d.gate)
	if err := recv(t, res); err != nil {
		t.Fatalf("Push after room freed: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.written(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("written %v", got)
	}
}

func TestPushUnderDropOverflowRefusesAtOnce(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	s, reg := newSink(t, background.Config{QueueCapacity: 1, BatchSize: 1, Overflow: background.OverflowDrop}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	recv(t, d.entered)
	if err := s.Push(ctx, 2); !errors.Is(err, background.ErrQueueFull) {
		t.Fatalf("Push under drop on a full queue: %v", err)
	}
	if got := metric(t, reg, "keel_background_overflow_total"); got != 1 {
		t.Fatalf("overflow_total %v", got)
	}
	close(d.gate)
}

func TestFlushReportsADroppedBatchOnceAndDropperGetsIt(t *testing.T) {
	d := &recDrain{failWrite: func([]int, int) error { return errBoom }}
	s, reg := newSink(t, background.Config{BatchSize: 4, MaxAttempts: 2, RetryBackoff: time.Millisecond}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 7, 8); err != nil {
		t.Fatal(err)
	}
	err := s.Flush(ctx)
	if !errors.Is(err, background.ErrWriteFailed) || !errors.Is(err, errBoom) {
		t.Fatalf("Flush after a failed write: %v", err)
	}
	var we *background.WriteError
	if !errors.As(err, &we) || we.Dropped != 2 || we.Attempts != 2 || we.Op != "write" {
		t.Fatalf("WriteError %+v", we)
	}
	if s.Dropped() != 2 {
		t.Fatalf("Dropped %d", s.Dropped())
	}
	if got := metric(t, reg, "keel_background_dropped_total"); got != 2 {
		t.Fatalf("dropped_total %v", got)
	}
	if got := metric(t, reg, "keel_background_write_errors_total"); got != 2 {
		t.Fatalf("write_errors_total %v", got)
	}
	d.mu.Lock()
	dropped := append([]int(nil), d.dropped...)
	d.mu.Unlock()
	if !slices.Equal(dropped, []int{7, 8}) {
		t.Fatalf("Dropper got %v", dropped)
	}
	// The failure was reported; the next barrier has nothing to report.
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d", s.Pending())
	}
}

func TestRetriedWriteThatSucceedsIsNotADrop(t *testing.T) {
	d := &recDrain{failWrite: func(_ []int, attempt int) error {
		if attempt < 3 {
			return errBoom
		}
		return nil
	}}
	s, _ := newSink(t, background.Config{MaxAttempts: 3, RetryBackoff: time.Millisecond}, d)
	ctx := ctxT(t)
	if err := s.Write(ctx, 1, 2); err != nil {
		t.Fatalf("Write after two failed attempts and a good one: %v", err)
	}
	if got := d.written(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("written %v", got)
	}
	if s.Dropped() != 0 {
		t.Fatal("counted a drop")
	}
}

func TestFlushReportsDurabilityFailureAndRetriesIt(t *testing.T) {
	d := &recDrain{failFlush: func(n int) error {
		if n == 1 {
			return errBoom
		}
		return nil
	}}
	s, reg := newSink(t, background.Config{}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	err := s.Flush(ctx)
	var we *background.WriteError
	if !errors.As(err, &we) || we.Op != "flush" || !errors.Is(err, errBoom) {
		t.Fatalf("Flush with a failing sync: %v", err)
	}
	// Nothing new was written, but the data is still not durable: the next
	// barrier syncs again.
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if _, f, _, _ := d.snapshot(); f != 2 {
		t.Fatalf("flushes %d, want 2", f)
	}
	if got := metric(t, reg, "keel_background_flushes_total"); got != 2 {
		t.Fatalf("flushes_total %v", got)
	}
}

func TestWriteReportsExactlyItsOwnItems(t *testing.T) {
	d := &recDrain{failWrite: func(items []int, _ int) error {
		if slices.Contains(items, 666) {
			return errBoom
		}
		return nil
	}}
	s, _ := newSink(t, background.Config{BatchSize: 1, MaxAttempts: 1}, d)
	ctx := ctxT(t)
	if err := s.Write(ctx, 666); !errors.Is(err, errBoom) {
		t.Fatalf("Write of a failing item: %v", err)
	}
	if err := s.Write(ctx, 1, 2, 3); err != nil {
		t.Fatalf("Write of good items after a failure: %v", err)
	}
	// Write waits for room whatever the overflow policy, and takes more
	// items than the capacity in parts.
	s2, _ := newSink(t, background.Config{QueueCapacity: 4, BatchSize: 2, Overflow: background.OverflowDrop}, &recDrain{})
	if err := s2.Write(ctx, seq(0, 25)...); err != nil {
		t.Fatalf("Write over capacity: %v", err)
	}
}

func TestUnlimitedAttemptsHoldTheQueueUntilCloseGivesUp(t *testing.T) {
	d := &recDrain{failWrite: func([]int, int) error { return errBoom }, entered: make(chan struct{}, 64)}
	s, _ := newSink(t, background.Config{MaxAttempts: background.UnlimitedAttempts, RetryBackoff: time.Millisecond, QueueCapacity: 2, BatchSize: 1}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		recv(t, d.entered) // it keeps trying
	}
	if err := s.TryPush(3); !errors.Is(err, background.ErrQueueFull) {
		t.Fatalf("a failing drain must hold the queue: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := s.Close(cctx)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, background.ErrWriteFailed) {
		t.Fatalf("Close that gave up: %v", err)
	}
	if s.Dropped() != 2 {
		t.Fatalf("Dropped %d, want 2", s.Dropped())
	}
}

func TestCloseDrainsTheQueueThenClosesTheDrain(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s, _ := newSink(t, background.Config{BatchSize: 8, QueueCapacity: 200}, d)
	ctx := ctxT(t)
	for i := range 100 {
		if err := s.Push(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, d.entered)
	res := make(chan error, 1)
	go func() { res <- s.Close(ctx) }()
	// Admission stops once Close has begun.
	for {
		err := s.TryPush(1000)
		if errors.Is(err, background.ErrClosed) {
			break
		}
		if err != nil && !errors.Is(err, background.ErrQueueFull) {
			t.Fatalf("TryPush during Close: %v", err)
		}
		// Taken before Close began: it must be written too.
	}
	close(d.gate)
	if err := recv(t, res); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := d.written()
	if len(got) < 100 || !slices.Equal(got[:100], seq(0, 100)) {
		t.Fatalf("written %v", got)
	}
	for _, v := range got[100:] {
		if v != 1000 {
			t.Fatalf("unexpected item %d", v)
		}
	}
	_, _, closes, events := d.snapshot()
	if closes != 1 || events[len(events)-1] != "close" || events[len(events)-2] != "flush" {
		t.Fatalf("want write..., flush, close; got %v", events)
	}
	if err := s.Push(ctx, 1); !errors.Is(err, background.ErrClosed) {
		t.Fatalf("Push after Close: %v", err)
	}
	if err := s.Flush(ctx); !errors.Is(err, background.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if s.Pending() != 0 {
		t.Fatalf("pending %d", s.Pending())
	}
}

func TestCloseReportsUnreportedDrops(t *testing.T) {
	d := &recDrain{failWrite: func([]int, int) error { return errBoom }}
	s, _ := newSink(t, background.Config{MaxAttempts: 1}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); !errors.Is(err, background.ErrWriteFailed) {
		t.Fatalf("Close after a drop no barrier saw: %v", err)
	}
}

func TestManyProducersEveryItemOnce(t *testing.T) {
	d := &recDrain{}
	s, _ := newSink(t, background.Config{QueueCapacity: 64, BatchSize: 16}, d)
	ctx := ctxT(t)
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if err := s.Push(ctx, p*each+i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := d.written()
	if len(got) != producers*each {
		t.Fatalf("written %d items", len(got))
	}
	slices.Sort(got)
	if !slices.Equal(got, seq(0, producers*each)) {
		t.Fatal("an item is missing or written twice")
	}
	if s.Pushed() != producers*each {
		t.Fatalf("Pushed %d", s.Pushed())
	}
}

func TestSyncIntervalMakesWritesDurableWithoutABarrier(t *testing.T) {
	d := &recDrain{flushed: make(chan struct{}, 8)}
	s, _ := newSink(t, background.Config{FlushInterval: time.Millisecond, SyncInterval: time.Millisecond}, d)
	if err := s.TryPush(1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.flushed:
	case <-ctxT(t).Done():
		t.Fatal("no sync without a barrier")
	}
}

func TestFlushRespectsItsContext(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s, _ := newSink(t, background.Config{BatchSize: 1}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	recv(t, d.entered)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Flush(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush with a cancelled context: %v", err)
	}
	close(d.gate)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	if err := (background.Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	err := background.Config{QueueCapacity: -1, BatchSize: -2, FlushInterval: -1, SyncInterval: -1,
		Overflow: 9, MaxAttempts: -5, RetryBackoff: -1, WriteTimeout: -1}.ValidateAt("dlq")
	for _, key := range []string{"dlq.queue_capacity", "dlq.batch_size", "dlq.flush_interval", "dlq.sync_interval",
		"dlq.overflow", "dlq.max_attempts", "dlq.retry_backoff", "dlq.write_timeout"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate does not name %s: %v", key, err)
		}
	}
	if !errors.Is(err, background.ErrInvalidConfig) {
		t.Fatal("not ErrInvalidConfig")
	}
	if err := (background.Config{QueueCapacity: 10, BatchSize: 11}).Validate(); err == nil || !strings.Contains(err.Error(), "batch_size") {
		t.Fatalf("batch over capacity: %v", err)
	}
	if _, err := background.New[int](background.Config{BatchSize: -1}, &recDrain{}); !errors.Is(err, background.ErrInvalidConfig) {
		t.Fatalf("New with a bad config: %v", err)
	}
	if _, err := background.New[int](background.Config{}, nil); !errors.Is(err, background.ErrInvalidArgument) {
		t.Fatalf("New with a nil drain: %v", err)
	}
}

func TestOverflowText(t *testing.T) {
	for in, want := range map[string]background.Overflow{"": background.OverflowBlock, "block": background.OverflowBlock, " DROP ": background.OverflowDrop} {
		var o background.Overflow
		if err := o.UnmarshalText([]byte(in)); err != nil || o != want {
			t.Fatalf("%q: %v %v", in, o, err)
		}
		b, _ := want.MarshalText()
		if string(b) != want.String() {
			t.Fatal(string(b))
		}
	}
	var o background.Overflow
	if err := o.UnmarshalText([]byte("spill")); !errors.Is(err, background.ErrInvalidConfig) {
		t.Fatalf("bad overflow: %v", err)
	}
}

// partialDrain fails the items listed in bad on every attempt and reports
// them with a PartialError.
type partialDrain struct {
	recDrain
	bad map[int]bool
}

func (d *partialDrain) WriteBatch(_ context.Context, items []int) error {
	var failed []int
	d.mu.Lock()
	var ok []int
	for i, v := range items {
		if d.bad[v] {
			failed = append(failed, i)
			continue
		}
		ok = append(ok, v)
	}
	d.batches = append(d.batches, ok)
	d.attempts++
	d.mu.Unlock()
	if len(failed) > 0 {
		return &background.PartialError{Failed: failed, Err: errBoom}
	}
	return nil
}

func TestPartialFailureRetriesAndDropsOnlyTheFailedItems(t *testing.T) {
	d := &partialDrain{bad: map[int]bool{2: true, 4: true}}
	reg := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	s, err := background.New[int](background.Config{MaxAttempts: 3, RetryBackoff: time.Millisecond, Metrics: reg,
		Logger: slog.New(slog.DiscardHandler)}, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	err = s.Write(ctx, 1, 2, 3, 4, 5)
	var we *background.WriteError
	if !errors.As(err, &we) || we.Dropped != 2 {
		t.Fatalf("Write with two bad items: %v", err)
	}
	if got := d.written(); !slices.Equal(got, []int{1, 3, 5}) {
		t.Fatalf("written %v: the good items must be written once, not again on retry", got)
	}
	d.mu.Lock()
	attempts := d.attempts
	d.mu.Unlock()
	if attempts != 3 {
		t.Fatalf("attempts %d", attempts)
	}
	if s.Dropped() != 2 {
		t.Fatalf("Dropped %d", s.Dropped())
	}
	// Every drop is also reported to the next plain barrier (here Close),
	// which cannot know whose items they were.
	if err := s.Close(ctx); !errors.Is(err, background.ErrWriteFailed) {
		t.Fatalf("Close: %v", err)
	}
}

func TestPushWaitIgnoresTheDropPolicy(t *testing.T) {
	d := &recDrain{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	s, _ := newSink(t, background.Config{QueueCapacity: 1, BatchSize: 1, Overflow: background.OverflowDrop}, d)
	ctx := ctxT(t)
	if err := s.Push(ctx, 1); err != nil {
		t.Fatal(err)
	}
	recv(t, d.entered)
	res := make(chan error, 1)
	go func() { res <- s.PushWait(ctx, 2) }()
	close(d.gate)
	if err := recv(t, res); err != nil {
		t.Fatalf("PushWait: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.written(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("written %v", got)
	}
}
