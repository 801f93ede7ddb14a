package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the outcome of one item of FanOut.
type Result[R any] struct {
	// Index is the item's position in the input slice.
	Index int
	// Value is what the item's function returned; the zero value when the
	// item did not run or timed out.
	Value R
	// Err is the item's error: what its function returned, a *PanicError,
	// an error wrapping ErrItemTimeout, the ctx error for an item that never
	// started, or nil.
	Err error
}

// Future is the pending result of a function started with Go.
type Future[R any] struct {
	done  chan struct{}
	val   R
	err   error
	p     *Pool
	parts atomic.Int32
}

// Done returns a channel that is closed when the result is ready.
func (f *Future[R]) Done() <-chan struct{} { return f.done }

// Wait returns the function's result once it is ready, or ctx's error if
// ctx is done first (the function keeps running; Wait may be called again).
func (f *Future[R]) Wait(ctx context.Context) (R, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// Go runs fn on its own goroutine once p has a free slot, and returns a
// Future for its result. It blocks until the slot is taken: that is the
// back-pressure that bounds the work in flight by the target. It fails with
// ErrClosed after Close, and with an error wrapping ctx.Err() when ctx is
// done before a slot frees.
//
// fn gets a ctx derived from ctx, with worker_pool.item_timeout as deadline
// when one is set. A function still running at the deadline yields an error
// wrapping ErrItemTimeout at once; it keeps its slot until it returns, so
// the concurrency bound counts it. A panic in fn becomes a *PanicError.
//
// Called from inside an item of the same pool, Go queues for a slot like
// any caller: an item that waits for such a Future can deadlock a full pool.
// Use Map for nested work.
func Go[R any](ctx context.Context, p *Pool, fn func(ctx context.Context) (R, error)) (*Future[R], error) {
	if p == nil {
		return nil, ErrNilPool
	}
	if !p.enter() {
		return nil, ErrClosed
	}
	if err := p.lim.acquire(ctx); err != nil {
		p.exit()
		return nil, fmt.Errorf("pool %q: waiting for a worker slot: %w", p.name, err)
	}
	f := &Future[R]{done: make(chan struct{}), p: p}
	it := &asyncItem[struct{}, R]{p: p, index: -1, sink: f,
		fn: func(ctx context.Context, _ int, _ struct{}) (R, error) { return fn(ctx) }}
	go it.run(p.workerCtx(ctx))
	return f, nil
}

// deliver and finish make a Future the sink of its item. The call is over
// for Close once fn has returned and its result is delivered, in either
// order (a timeout delivers first).
func (f *Future[R]) deliver(_ int, r R, err error) {
	f.val, f.err = r, err
	close(f.done)
	f.over()
}

func (f *Future[R]) finish() {
	f.p.lim.release()
	f.over()
}

func (f *Future[R]) over() {
	if f.parts.Add(1) == 2 {
		f.p.exit()
	}
}

// FanOut runs fn over items on p, each item on its own goroutine, and
// streams one Result per item on the returned channel as items complete (in
// completion order; Result.Index says which). The channel is buffered for
// every item, so a slow or absent reader never blocks the pool, and it is
// closed after the last Result; Collect puts the results back in input
// order.
//
// No more items run at once than the target, counted across everything
// sharing p. Each item gets worker_pool.item_timeout like Go. When ctx is
// done, items not yet started are not run and get ctx.Err(); running items
// see the cancellation through their ctx and are waited for. FanOut fails
// with ErrClosed after Close; Close waits for an accepted FanOut to finish.
func FanOut[T, R any](ctx context.Context, p *Pool, items []T, fn func(ctx context.Context, i int, item T) (R, error)) (<-chan Result[R], error) {
	if p == nil {
		return nil, ErrNilPool
	}
	if !p.enter() {
		return nil, ErrClosed
	}
	n := len(items)
	out := make(chan Result[R], n)
	if n == 0 {
		close(out)
		p.exit()
		return out, nil
	}
	fo := &fanOut[R]{p: p, out: out}
	fo.pending.Add(n)
	go func() {
		ictx := p.workerCtx(ctx)
		for i := range items {
			if err := p.lim.acquire(ctx); err != nil {
				for k := i; k < n; k++ {
					fo.deliver(k, *new(R), err)
				}
				break
			}
			fo.running.Add(1)
			fo.live.Add(1)
			it := &asyncItem[T, R]{p: p, index: i, item: items[i], fn: fn, sink: fo}
			go it.run(ictx)
		}
		fo.pending.Wait()
		if fo.live.Load() == 0 {
			// Every function has returned: the call is over before the
			// reader sees the channel close.
			p.exit()
			close(out)
			return
		}
		close(out)
		// Items abandoned at their timeout still hold their slot; the call
		// is over for Close only when they return.
		fo.running.Wait()
		p.exit()
	}()
	return out, nil
}

// fanOut is the sink shared by the items of one FanOut call.
type fanOut[R any] struct {
	p       *Pool
	out     chan Result[R]
	pending sync.WaitGroup // results not yet delivered
	running sync.WaitGroup // functions not yet returned
	live    atomic.Int64   // same count as running, readable
}

func (fo *fanOut[R]) deliver(i int, r R, err error) {
	fo.out <- Result[R]{Index: i, Value: r, Err: err}
	fo.pending.Done()
}

func (fo *fanOut[R]) finish() {
	fo.p.lim.release()
	fo.live.Add(-1)
	fo.running.Done()
}

// Collect drains a FanOut channel into input order: results[i] and errs[i]
// are item i's, for n items. errs is nil when no item failed.
func Collect[R any](results <-chan Result[R], n int) ([]R, []error) {
	vals := make([]R, n)
	var errs []error
	for r := range results {
		if r.Index < 0 || r.Index >= n {
			continue
		}
		vals[r.Index] = r.Value
		if r.Err != nil {
			if errs == nil {
				errs = make([]error, n)
			}
			errs[r.Index] = r.Err
		}
	}
	return vals, errs
}

// timeoutCause is the cause of an item context that reached item_timeout,
// which tells it apart from a cancelled parent.
var timeoutCause = errors.New("pool: item_timeout reached")

// itemSink receives the outcome of an asyncItem.
type itemSink[R any] interface {
	deliver(index int, r R, err error) // exactly once per item
	finish()                           // once fn has returned (or exited), before deliver unless a timeout delivered first
}

// asyncItem is one function run by Go or FanOut on a slot it already holds.
type asyncItem[T, R any] struct {
	p     *Pool
	index int // -1 for Go
	item  T
	fn    func(ctx context.Context, i int, item T) (R, error)
	sink  itemSink[R]

	delivered atomic.Bool
}

// settle delivers the outcome once and accounts it; the loser of a race
// between the deadline and the return is dropped.
func (it *asyncItem[T, R]) settle(r R, err error, pe *PanicError, timedOut bool) bool {
	if !it.delivered.CompareAndSwap(false, true) {
		return false
	}
	c := counts{ran: 1}
	if err != nil {
		c.failed = 1
	}
	if pe != nil {
		c.panicked = 1
	}
	if timedOut {
		c.timedOut = 1
	}
	it.p.account(c)
	it.sink.deliver(it.index, r, err)
	return true
}

// timeoutErr builds the error of an item that ran past item_timeout; cause
// is what fn returned, if it returned in time to say.
func (it *asyncItem[T, R]) timeoutErr(cause error) error {
	what := "call"
	if it.index >= 0 {
		what = fmt.Sprintf("item %d", it.index)
	}
	return &timeoutError{
		msg: fmt.Sprintf("pool %q: %s ran past worker_pool.item_timeout (%s); raise it or make the item honour its ctx sooner",
			it.p.name, what, it.p.cfg.itemTimeout),
		cause: cause,
	}
}

// timeoutError matches ErrItemTimeout and context.DeadlineExceeded.
type timeoutError struct {
	msg   string
	cause error
}

func (e *timeoutError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *timeoutError) Unwrap() error { return e.cause }

func (e *timeoutError) Is(target error) bool {
	return target == ErrItemTimeout || target == context.DeadlineExceeded
}

// Timeout reports true, like net.Error.
func (e *timeoutError) Timeout() bool { return true }

// run calls fn on ctx (already marked as inside the pool) and settles.
func (it *asyncItem[T, R]) run(ctx context.Context) {
	var stopWatch func() bool
	if d := it.p.cfg.itemTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, timeoutCause)
		defer cancel()
		tctx := ctx
		// Report the timeout at the deadline even if fn ignores its ctx.
		stopWatch = context.AfterFunc(tctx, func() {
			if context.Cause(tctx) == timeoutCause {
				var zero R
				it.settle(zero, it.timeoutErr(nil), nil, true)
			}
		})
	}

	start := time.Now()
	var (
		r        R
		err      error = ErrGoexit
		pe       *PanicError
		finished bool
	)
	defer func() {
		// Runs when fn returns, panics or calls runtime.Goexit.
		if !finished {
			if v := recover(); v != nil {
				pe = newPanicError(v)
				err = pe
			}
		}
		if stopWatch != nil {
			stopWatch()
		}
		it.p.ins.duration.Observe(time.Since(start).Seconds())
		if pe != nil {
			it.p.logPanic(it.index, pe)
		}
		timedOut := false
		if err != nil && context.Cause(ctx) == timeoutCause && errors.Is(err, context.DeadlineExceeded) {
			// fn honoured its deadline: report it as the item timeout.
			err, timedOut = it.timeoutErr(err), true
		}
		// Free the slot before the result is seen, so that a caller who
		// got every result finds the pool idle.
		it.sink.finish()
		if !it.settle(r, err, pe, timedOut) && pe != nil {
			// The item was already reported as timed out; still count the
			// panic it ended with.
			it.p.panics.Add(1)
			it.p.ins.panics.Inc()
		}
	}()
	r, err = it.fn(ctx, it.index, it.item)
	finished = true
}
