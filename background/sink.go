package background

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/logging"
)

// Drain is where a Sink writes. The Sink calls it from one goroutine only,
// so an implementation needs no locking of its own for these calls.
type Drain[T any] interface {
	// WriteBatch writes items, in order. It must not keep the slice after
	// it returns: the Sink reuses it. An error makes the Sink try the same
	// batch again (Config.MaxAttempts) and then drop it. It must honour
	// ctx.
	WriteBatch(ctx context.Context, items []T) error
	// Flush makes everything written so far durable (fsync, a producer
	// flush). It runs at every barrier that follows a write and at Close.
	// Drains whose writes are durable when WriteBatch returns return nil.
	Flush(ctx context.Context) error
	// Close releases the drain. It runs once, after the last Flush.
	Close(ctx context.Context) error
}

// Dropper is implemented by a Drain that wants the items the Sink drops
// after their write attempts failed, to log or count them. Dropped runs on
// the Sink's goroutine and must not keep the slice.
type Dropper[T any] interface {
	Dropped(items []T, err error)
}

// Sink is a bounded queue in front of a Drain, written by one goroutine in
// batches of up to Config.BatchSize items, or sooner after
// Config.FlushInterval. Its methods are safe for concurrent use.
//
// Admission: Push, TryPush and Write take all the items of a call or none
// (a call with more items than the queue capacity is split into
// capacity-sized parts, each taken whole). Items stay counted against the
// capacity until their batch was written or dropped, so memory is bounded
// by QueueCapacity items.
//
// Barriers: Flush returns after every item taken before it was written and
// Drain.Flush ran after the last write. Its error reports the batches
// dropped since the previous barrier and the Flush failure, if any; each
// failure is reported to one barrier (use Dropped for the total). Write
// reports exactly the fate of its own items.
//
// Failures: a batch whose write fails is tried again up to
// Config.MaxAttempts times, with a growing backoff, while the queue holds
// (so Push under OverflowBlock waits). Then it is dropped: counted in
// keel_<subsystem>_dropped_total, logged at ERROR (rate-limited), handed to
// the Drain's Dropped method when it has one, and reported to the next
// barrier or to Close.
//
// Close stops admission (later calls get ErrClosed), writes everything
// already taken, runs Drain.Flush and Drain.Close and returns what failed.
type Sink[T any] struct {
	cfg     Config
	drain   Drain[T]
	dropper Dropper[T]
	name    string
	cap     int
	batchN  int
	logger  func() *slog.Logger
	m       *sinkMetrics
	warnLog *logging.Sampler
	dropLog *logging.Sampler

	in           chan msg[T]
	barrierSlots chan struct{}
	done         chan struct{}
	abortCtx     context.Context
	abort        context.CancelFunc

	mu      sync.Mutex
	pending int
	closed  bool
	waiters int
	space   chan struct{}
	sends   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
	dropped   atomic.Uint64
	pushed    atomic.Uint64

	// actor state, touched only by run.
	batch        []T
	batchTickets []*ticket
	dirty        bool
	unreported   []error
	unrepMore    int
	timer        *time.Timer
	timerOn      bool
}

// maxBarriers bounds the barriers queued at once; more Flush callers wait
// for a slot (with their context).
const maxBarriers = 64

// maxUnreported bounds the failures kept for the next barrier; further ones
// are counted.
const maxUnreported = 16

type msgKind uint8

const (
	kindItems msgKind = iota
	kindBarrier
	kindStop
)

type msg[T any] struct {
	kind  msgKind
	items []T
	// t, for Write, collects the failures of these items.
	t *ticket
	// reply, on a barrier or on the last part of a Write, receives the
	// barrier's verdict.
	reply chan error
}

// ticket collects the failures of the items of one Write call. Only the
// actor touches it.
type ticket struct {
	errs []error
}

// New starts a Sink writing to drain. It fails on an invalid Config or a
// nil drain.
func New[T any](cfg Config, drain Drain[T]) (*Sink[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if drain == nil {
		return nil, fmt.Errorf("%w: background.New needs a drain", ErrInvalidArgument)
	}
	s := &Sink[T]{
		cfg:          cfg,
		drain:        drain,
		name:         cfg.name(),
		cap:          cfg.queueCapacity(),
		batchN:       cfg.batchSize(),
		m:            newSinkMetrics(cfg.Metrics, cfg.subsystem(), cfg.name()),
		warnLog:      logging.Every(10 * time.Second),
		dropLog:      logging.Every(10 * time.Second),
		done:         make(chan struct{}),
		barrierSlots: make(chan struct{}, maxBarriers),
		space:        make(chan struct{}),
	}
	if cfg.Logger != nil {
		l := cfg.Logger
		s.logger = func() *slog.Logger { return l }
	} else {
		s.logger = slog.Default
	}
	if d, ok := drain.(Dropper[T]); ok {
		s.dropper = d
	}
	// Item messages never exceed the capacity (each holds at least one
	// counted item), barriers are bounded by their slots, plus the stop.
	s.in = make(chan msg[T], s.cap+maxBarriers+1)
	s.abortCtx, s.abort = context.WithCancel(context.Background())
	s.batch = make([]T, 0, s.batchN)
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	go s.run()
	return s, nil
}

// Name returns the sink's name (Config.Name or DefaultName).
func (s *Sink[T]) Name() string { return s.name }

// Capacity returns the number of items the sink holds at most.
func (s *Sink[T]) Capacity() int { return s.cap }

// Pending returns the items taken and not yet written or dropped.
func (s *Sink[T]) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Dropped returns the number of items taken and then lost because their
// writes failed (or Close ran out of time), since the sink started.
func (s *Sink[T]) Dropped() uint64 { return s.dropped.Load() }

// Pushed returns the number of items taken since the sink started.
func (s *Sink[T]) Pushed() uint64 { return s.pushed.Load() }

// TryPush takes items if the queue has room for all of them, and never
// waits: on a full queue it returns ErrQueueFull (counted in
// keel_<subsystem>_overflow_total) and the items stay with the caller.
// After Close it returns ErrClosed.
func (s *Sink[T]) TryPush(items ...T) error {
	return s.push(context.Background(), items, false, nil, nil)
}

// Push takes items. On a full queue it waits for room under OverflowBlock
// (until ctx ends, returning its error) and returns ErrQueueFull at once
// under OverflowDrop. After Close it returns ErrClosed. When Push returns
// nil the items are queued, not yet written; see Flush and Write.
func (s *Sink[T]) Push(ctx context.Context, items ...T) error {
	return s.push(ctx, items, s.cfg.Overflow == OverflowBlock, nil, nil)
}

// PushWait takes items, waiting for room whatever the overflow policy
// until ctx ends (then it returns the context's error and the items stay
// with the caller). After Close it returns ErrClosed.
func (s *Sink[T]) PushWait(ctx context.Context, items ...T) error {
	return s.push(ctx, items, true, nil, nil)
}

// Write takes items, waiting for room whatever the overflow policy, and
// returns once they were written and Drain.Flush succeeded after them. It
// returns nil only if that is so for every one of them; otherwise the
// error says what failed (a *WriteError for drops, the context's error
// when ctx ended first, in which case some items may still be written).
// A drop is also reported to the next Flush or Close, which cannot tell
// whose items they were.
func (s *Sink[T]) Write(ctx context.Context, items ...T) error {
	if len(items) == 0 {
		return s.Flush(ctx)
	}
	reply := make(chan error, 1)
	if err := s.push(ctx, items, true, &ticket{}, reply); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("background sink %s: write: items queued but not confirmed durable: %w", s.name, ctx.Err())
	}
}

// push admits items in parts of at most the capacity. reply, when set, is
// given to the last part, which then acts as a barrier for t.
func (s *Sink[T]) push(ctx context.Context, items []T, wait bool, t *ticket, reply chan error) error {
	if len(items) == 0 {
		return nil
	}
	admitted := 0
	for admitted < len(items) {
		n := min(len(items)-admitted, s.cap)
		if err := s.reserve(ctx, n, wait); err != nil {
			if admitted > 0 {
				return fmt.Errorf("background sink %s: %d of %d items taken, the rest refused: %w", s.name, admitted, len(items), err)
			}
			return err
		}
		part := items[admitted : admitted+n]
		admitted += n
		m := msg[T]{kind: kindItems, items: part, t: t}
		if admitted == len(items) {
			m.reply = reply
		}
		s.pushed.Add(uint64(n))
		s.m.pushed.Add(float64(n))
		s.m.pending.Add(float64(n))
		// Never blocks: the channel has room for every reserved item.
		s.in <- m
		s.sends.Done()
	}
	return nil
}

// reserve counts n items against the capacity, waiting for room when wait
// is set. On success the caller must send one message and call
// s.sends.Done.
func (s *Sink[T]) reserve(ctx context.Context, n int, wait bool) error {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.pending+n <= s.cap {
			s.pending += n
			s.sends.Add(1)
			s.mu.Unlock()
			return nil
		}
		if !wait {
			s.mu.Unlock()
			s.m.overflow.Add(float64(n))
			return ErrQueueFull
		}
		ch := s.space
		s.waiters++
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiters--
			s.mu.Unlock()
			return ctx.Err()
		}
		s.mu.Lock()
		s.waiters--
	}
}

// release returns n items' room and wakes the waiters.
func (s *Sink[T]) release(n int) {
	s.mu.Lock()
	s.pending -= n
	if s.waiters > 0 {
		close(s.space)
		s.space = make(chan struct{})
	}
	s.mu.Unlock()
	s.m.pending.Sub(float64(n))
}

// Flush is a barrier: it returns after every item taken before the call
// was written and Drain.Flush ran after the last write. It returns nil if
// that succeeded and no batch was dropped since the previous barrier;
// otherwise the failures (matching ErrWriteFailed). When ctx ends first it
// returns the context's error. After Close it returns ErrClosed.
func (s *Sink[T]) Flush(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.sends.Add(1)
	s.mu.Unlock()
	select {
	case s.barrierSlots <- struct{}{}:
	case <-ctx.Done():
		s.sends.Done()
		return fmt.Errorf("background sink %s: flush: %w", s.name, ctx.Err())
	}
	reply := make(chan error, 1)
	s.in <- msg[T]{kind: kindBarrier, reply: reply}
	s.sends.Done()
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("background sink %s: flush: earlier items not confirmed durable: %w", s.name, ctx.Err())
	}
}

// Close stops admission, writes and flushes everything already taken,
// closes the drain and returns what failed: drops not yet reported to a
// barrier, the last Flush and Close errors. When ctx ends first, the
// writes in progress are cancelled, what remains is dropped and counted,
// and the context's error is part of the result. Close is idempotent;
// later calls return the same result once the sink has stopped.
func (s *Sink[T]) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		if s.waiters > 0 {
			close(s.space)
			s.space = make(chan struct{})
		}
		s.mu.Unlock()
		go func() {
			// Every admitted send completes before the stop is queued, so
			// the stop is the last message.
			s.sends.Wait()
			s.in <- msg[T]{kind: kindStop}
		}()
	})
	select {
	case <-s.done:
		return s.closeErr
	case <-ctx.Done():
	}
	s.abort()
	<-s.done
	return errors.Join(s.closeErr, fmt.Errorf("background sink %s: close: %w", s.name, ctx.Err()))
}

// Done is closed when the sink has stopped after Close.
func (s *Sink[T]) Done() <-chan struct{} { return s.done }

// run is the sink's goroutine.
func (s *Sink[T]) run() {
	defer close(s.done)
	defer s.timer.Stop()
	var syncC <-chan time.Time
	if s.cfg.SyncInterval > 0 {
		tk := time.NewTicker(s.cfg.SyncInterval)
		defer tk.Stop()
		syncC = tk.C
	}
	for {
		select {
		case m := <-s.in:
			switch m.kind {
			case kindItems:
				s.add(m)
				if m.reply != nil {
					s.writeBatch()
					err := s.durable()
					m.reply <- errors.Join(append(m.t.errs, err)...)
				}
			case kindBarrier:
				<-s.barrierSlots
				s.writeBatch()
				err := s.durable()
				m.reply <- s.takeUnreported(err)
			case kindStop:
				s.writeBatch()
				err := s.durable()
				s.closeErr = s.takeUnreported(err)
				ctx, cancel := context.WithTimeout(s.abortCtx, s.cfg.writeTimeout())
				if cerr := s.drain.Close(ctx); cerr != nil {
					s.closeErr = errors.Join(s.closeErr, fmt.Errorf("background sink %s: close drain: %w", s.name, cerr))
				}
				cancel()
				return
			}
		case <-s.timer.C:
			s.timerOn = false
			s.writeBatch()
		case <-syncC:
			if s.dirty {
				if err := s.durable(); err != nil {
					s.addUnreported(err)
				}
			}
		}
	}
}

// add appends the items of m to the batch, writing each full batch.
func (s *Sink[T]) add(m msg[T]) {
	items := m.items
	for len(items) > 0 {
		if len(s.batch) == 0 && !s.timerOn {
			s.timer.Reset(s.cfg.flushInterval())
			s.timerOn = true
		}
		if m.t != nil && (len(s.batchTickets) == 0 || s.batchTickets[len(s.batchTickets)-1] != m.t) {
			s.batchTickets = append(s.batchTickets, m.t)
		}
		n := min(s.batchN-len(s.batch), len(items))
		s.batch = append(s.batch, items[:n]...)
		items = items[n:]
		if len(s.batch) >= s.batchN {
			s.writeBatch()
		}
	}
}

// writeBatch writes the current batch, retrying, and drops it when every
// attempt failed.
func (s *Sink[T]) writeBatch() {
	if s.timerOn {
		s.timer.Stop()
		s.timerOn = false
	}
	n := len(s.batch)
	if n == 0 {
		return
	}
	maxAttempts := s.cfg.maxAttempts()
	var err error
	attempts := 0
	for {
		attempts++
		ctx, cancel := context.WithTimeout(s.abortCtx, s.cfg.writeTimeout())
		start := time.Now()
		err = s.drain.WriteBatch(ctx, s.batch)
		cancel()
		s.m.writeDur.Observe(time.Since(start).Seconds())
		if err == nil {
			s.m.writes.Inc()
			s.dirty = true
			break
		}
		s.m.writeErrors.Inc()
		// Only the items the drain says failed are tried again.
		var pe *PartialError
		if errors.As(err, &pe) {
			if kept := keepFailed(s.batch, pe.Failed); kept < len(s.batch) {
				s.batch = s.batch[:kept]
				s.dirty = true // the others were written
			}
		}
		if (maxAttempts > 0 && attempts >= maxAttempts) || s.abortCtx.Err() != nil {
			break
		}
		wait := s.backoff(attempts)
		if ok, skipped := s.warnLog.Allow(); ok {
			s.logger().Warn("background sink write failed, retrying",
				"sink", s.name, "items", n, "attempt", attempts, "retry_in", wait, "error", err, "suppressed", skipped)
		}
		if !s.sleep(wait) {
			break
		}
	}
	if err != nil {
		lost := len(s.batch)
		we := &WriteError{Sink: s.name, Op: "write", Dropped: lost, Attempts: attempts, Err: err}
		s.dropped.Add(uint64(lost))
		s.m.dropped.Add(float64(lost))
		s.addUnreported(we)
		for _, t := range s.batchTickets {
			t.errs = append(t.errs, we)
		}
		if ok, skipped := s.dropLog.Allow(); ok {
			s.logger().Error("background sink dropped items after failed writes",
				"sink", s.name, "items", lost, "attempts", attempts, "error", err,
				"dropped_total", s.dropped.Load(), "suppressed", skipped)
		}
		if s.dropper != nil {
			s.dropper.Dropped(s.batch, err)
		}
	}
	s.batch = s.batch[:cap(s.batch)]
	clear(s.batch)
	s.batch = s.batch[:0]
	clear(s.batchTickets)
	s.batchTickets = s.batchTickets[:0]
	s.release(n)
}

// durable runs Drain.Flush when something was written since the last
// successful one.
func (s *Sink[T]) durable() error {
	if !s.dirty {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.abortCtx, s.cfg.writeTimeout())
	err := s.drain.Flush(ctx)
	cancel()
	if err != nil {
		s.m.flushes.With(s.name, "error").Inc()
		if ok, skipped := s.warnLog.Allow(); ok {
			s.logger().Warn("background sink flush failed", "sink", s.name, "error", err, "suppressed", skipped)
		}
		return &WriteError{Sink: s.name, Op: "flush", Err: err}
	}
	s.m.flushes.With(s.name, "ok").Inc()
	s.dirty = false
	return nil
}

func (s *Sink[T]) addUnreported(err error) {
	if len(s.unreported) < maxUnreported {
		s.unreported = append(s.unreported, err)
		return
	}
	s.unrepMore++
}

// takeUnreported returns the failures kept for this barrier joined with
// extra, and forgets them.
func (s *Sink[T]) takeUnreported(extra error) error {
	errs := s.unreported
	if s.unrepMore > 0 {
		errs = append(errs, fmt.Errorf("background sink %s: %d more failure(s) not shown: %w", s.name, s.unrepMore, ErrWriteFailed))
	}
	errs = append(errs, extra)
	err := errors.Join(errs...)
	s.unreported = nil
	s.unrepMore = 0
	return err
}

// backoff returns the wait after the given failed attempt: RetryBackoff
// doubled per attempt, capped, with up to 20% jitter.
func (s *Sink[T]) backoff(attempt int) time.Duration {
	d := s.cfg.retryBackoff()
	for i := 1; i < attempt && d < MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxRetryBackoff)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// sleep waits d, or returns false when the sink is aborted.
func (s *Sink[T]) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.abortCtx.Done():
		return false
	}
}
