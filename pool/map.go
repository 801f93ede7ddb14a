package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Map runs fn over items on p and returns the results in input order.
//
// errs is nil when every item succeeded; otherwise it has len(items)
// entries and errs[i] is item i's error (results[i] then holds whatever fn
// returned with it). A panic in fn is recovered and becomes that item's
// error, a *PanicError; the other items and the pool carry on. When ctx is
// done, items not yet started are not run and get ctx.Err(); items already
// running finish. After Close every item gets ErrClosed.
//
// No more items run at once than p's target, counted across everything
// sharing p, and SetTarget applies to items started after it returns. A call
// with fewer than inline_below items, or while the target is 1, runs on the
// caller's goroutine alone; larger calls hand out chunks of consecutive
// items to up to target workers, the caller being one of them. fn must be
// safe for concurrent use. Map may be called from inside an item of the
// same pool with the ctx the item received: the inner call starts on the
// slot the item holds instead of queueing for another.
//
// A nil p runs the items one after the other on the caller's goroutine,
// with the same error, panic and ctx handling and no metrics.
func Map[T, R any](ctx context.Context, p *Pool, items []T, fn func(ctx context.Context, i int, item T) (R, error)) (results []R, errs []error) {
	n := len(items)
	out := make([]R, n)
	if n == 0 {
		return out, nil
	}
	j := &mapJob[T, R]{parent: ctx, done: ctx.Done(), items: items, fn: fn, out: out, n: n}
	if p == nil {
		j.ctx = ctx
		j.chunk = n
		w := &mapWorker{}
		j.runChunk(w, 0, n)
		return out, j.errSlice()
	}
	if !p.enter() {
		return out, filled(n, ErrClosed)
	}
	defer p.exit()
	j.p = p
	j.lim = p.lim
	j.chunk, j.parallel = p.plan(n)
	nested := p.insideItem(ctx)
	if nested {
		j.ctx = ctx
	} else {
		j.ctx = p.workerCtx(ctx)
	}

	// The caller is the first worker. Outside an item it queues for a slot
	// like any worker; inside one it rides the slot that item holds.
	w := &mapWorker{owns: !nested, caller: true}
	defer func() {
		// Also runs when fn calls runtime.Goexit on the caller's goroutine.
		if w.holding {
			j.lim.release()
		}
	}()
	j.workers.Store(1)
	for {
		if w.owns {
			if err := j.lim.acquire(ctx); err != nil {
				j.failUnclaimed(err)
				break
			}
			w.holding = true
		}
		j.work(w)
		if w.holding {
			j.lim.release()
			w.holding = false
		}
		j.wg.Wait()
		// A helper over a lowered target hands back the rest of its chunk
		// rather than queue for a slot (which could deadlock a nested
		// call); the caller runs what came back.
		if j.nreturned.Load() == 0 {
			break
		}
	}
	return out, j.errSlice()
}

// plan picks the chunk size and whether helpers may be started.
func (p *Pool) plan(n int) (chunk int, parallel bool) {
	if n < p.cfg.inlineBelow {
		return n, false
	}
	if p.cfg.chunk > 0 {
		return p.cfg.chunk, true
	}
	t := max(int(p.lim.target.Load()), 1)
	// About eight chunks per worker balances uneven items; the cap keeps a
	// chunk short enough that a grown target finds work left to share.
	return min(max(n/(t*8), 1), MaxAutoChunk), true
}

func filled(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

type mapJob[T, R any] struct {
	p        *Pool
	lim      *limiter
	parent   context.Context // the caller's ctx: slots are queued for under it
	ctx      context.Context // handed to fn: parent marked as inside this pool
	done     <-chan struct{}
	items    []T
	fn       func(ctx context.Context, i int, item T) (R, error)
	out      []R
	n        int
	chunk    int
	parallel bool

	next    atomic.Int64 // first index of the next unclaimed chunk
	workers atomic.Int64 // workers running, the caller included
	errs    atomic.Pointer[[]error]
	wg      sync.WaitGroup // helpers

	retMu     sync.Mutex
	returned  [][2]int     // ranges handed back by helpers; guarded by retMu
	nreturned atomic.Int64 // len(returned)
}

// mapWorker is one goroutine's state in a Map call.
type mapWorker struct {
	owns    bool // queues for its own slot (false: nested caller riding an item's slot)
	caller  bool // the goroutine that called Map
	holding bool // holds a slot now
	stop    bool // gave its slot up and its work back; must exit
	c       counts
}

// claim hands out the next chunk: a range a helper handed back first, else
// the next unclaimed one.
func (j *mapJob[T, R]) claim() (lo, hi int, ok bool) {
	if j.nreturned.Load() > 0 {
		j.retMu.Lock()
		if n := len(j.returned); n > 0 {
			r := j.returned[n-1]
			j.returned = j.returned[:n-1]
			j.nreturned.Store(int64(n - 1))
			j.retMu.Unlock()
			return r[0], r[1], true
		}
		j.retMu.Unlock()
	}
	end := j.next.Add(int64(j.chunk))
	lo64 := end - int64(j.chunk)
	if lo64 >= int64(j.n) {
		return 0, 0, false
	}
	return int(lo64), int(min(end, int64(j.n))), true
}

// unclaimed counts the chunks no worker has claimed yet, handed-back ranges
// included.
func (j *mapJob[T, R]) unclaimed() int64 {
	chunks := j.nreturned.Load()
	if left := int64(j.n) - j.next.Load(); left > 0 {
		chunks += (left + int64(j.chunk) - 1) / int64(j.chunk)
	}
	return chunks
}

// giveBack queues [lo, hi) for another worker.
func (j *mapJob[T, R]) giveBack(lo, hi int) {
	j.retMu.Lock()
	j.returned = append(j.returned, [2]int{lo, hi})
	j.nreturned.Store(int64(len(j.returned)))
	j.retMu.Unlock()
}

// work runs chunks until none is left.
func (j *mapJob[T, R]) work(w *mapWorker) {
	for {
		lo, hi, ok := j.claim()
		if !ok {
			return
		}
		j.runChunk(w, lo, hi)
		if w.stop {
			return
		}
	}
}

// helper is a worker started on a slot taken by grow.
func (j *mapJob[T, R]) helper() {
	w := &mapWorker{owns: true, holding: true}
	defer j.wg.Done()
	defer j.workers.Add(-1)
	defer func() {
		if w.holding {
			j.lim.release()
		}
	}()
	j.work(w)
}

// grow starts helpers while the pool has free slots and this call has
// chunks that no running worker will reach soon.
func (j *mapJob[T, R]) grow() {
	for j.unclaimed() >= j.workers.Load() && j.lim.tryAcquire() {
		j.workers.Add(1)
		j.wg.Add(1)
		go j.helper()
	}
}

// steer applies a target that moved away from the slots in use, before the
// worker starts its next item. Over the target, a worker gives its slot
// back: the caller queues for another, a helper hands the rest of its chunk
// back and stops (w.stop). Under the target, the call may start helpers.
// It returns the ctx error if the caller could not get a slot back.
func (j *mapJob[T, R]) steer(w *mapWorker) error {
	if j.lim.overTarget() {
		if w.owns && w.holding && j.lim.releaseIfOver() {
			w.holding = false
			if !w.caller {
				w.stop = true
				return nil
			}
			if err := j.lim.acquire(j.parent); err != nil {
				return err
			}
			w.holding = true
		}
		return nil
	}
	if j.parallel {
		j.grow()
	}
	return nil
}

// runChunk runs items [lo, hi), timing the first one for the duration
// histogram, and adds the tallies to the pool. A helper told to stop hands
// back what it did not start.
func (j *mapJob[T, R]) runChunk(w *mapWorker, lo, hi int) {
	i := lo
	if j.p != nil {
		start := time.Now()
		i = j.runFrom(w, lo, lo+1)
		if w.c.ran > 0 {
			j.p.ins.duration.Observe(time.Since(start).Seconds())
		}
	}
	for i < hi && !w.stop {
		i = j.runFrom(w, i, hi)
	}
	if w.stop && i < hi {
		j.giveBack(i, hi)
	}
	if j.p != nil {
		j.p.account(w.c)
		w.c = counts{}
	}
}

// runFrom runs items from i up to hi and returns where to go on: hi, the
// index after an item that panicked, or the first item not started when the
// worker was told to stop.
func (j *mapJob[T, R]) runFrom(w *mapWorker, i, hi int) (next int) {
	finished := false
	defer func() {
		if finished {
			return
		}
		v := recover()
		if v == nil {
			// runtime.Goexit: this goroutine is ending; leave no item of the
			// chunk without an outcome.
			j.setErr(i, ErrGoexit)
			for k := i + 1; k < hi; k++ {
				j.setErr(k, ErrGoexit)
			}
			return
		}
		pe := newPanicError(v)
		j.setErr(i, pe)
		w.c.failed++
		w.c.panicked++
		if j.p != nil {
			j.p.logPanic(i, pe)
		}
		next = i + 1
	}()
	for ; i < hi; i++ {
		if j.done != nil {
			select {
			case <-j.done:
				j.failRange(i, hi, j.parent.Err())
				finished = true
				return hi
			default:
			}
		}
		if j.lim != nil && j.lim.leased.Load() != j.lim.target.Load() {
			if err := j.steer(w); err != nil {
				j.failRange(i, hi, err)
				finished = true
				return hi
			}
			if w.stop {
				finished = true
				return i
			}
		}
		w.c.ran++
		r, err := j.fn(j.ctx, i, j.items[i])
		j.out[i] = r
		if err != nil {
			j.setErr(i, err)
			w.c.failed++
		}
	}
	finished = true
	return hi
}

func (j *mapJob[T, R]) failRange(lo, hi int, err error) {
	for k := lo; k < hi; k++ {
		j.setErr(k, err)
	}
}

// failUnclaimed gives every unclaimed item err.
func (j *mapJob[T, R]) failUnclaimed(err error) {
	for {
		lo, hi, ok := j.claim()
		if !ok {
			return
		}
		j.failRange(lo, hi, err)
	}
}

// setErr records item i's error, allocating the error slice on first use.
func (j *mapJob[T, R]) setErr(i int, err error) {
	e := j.errs.Load()
	if e == nil {
		s := make([]error, j.n)
		if j.errs.CompareAndSwap(nil, &s) {
			e = &s
		} else {
			e = j.errs.Load()
		}
	}
	(*e)[i] = err
}

func (j *mapJob[T, R]) errSlice() []error {
	if e := j.errs.Load(); e != nil {
		return *e
	}
	return nil
}
