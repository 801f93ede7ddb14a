package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keel-go/keel/transport"
)

// drainContext returns the context the blocks of one loop run under and
// the function that releases it when the loop returns.
//
// The context carries ctx's values but not its cancellation: when ctx is
// cancelled, a timer starts and the context is cancelled DrainTimeout
// later with the cause ErrDrainTimeout. The loop receives nothing after
// ctx is cancelled, so the only block that ever runs on the detached
// context after the cancellation is the one in flight. With a negative
// DrainTimeout the blocks run under ctx itself and are abandoned at once.
func (e *Engine) drainContext(ctx context.Context) (context.Context, func()) {
	d := e.cfg.drainTimeout()
	if d < 0 {
		return ctx, func() {}
	}
	dctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var (
		mu       sync.Mutex
		timer    *time.Timer
		released bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			timer = time.AfterFunc(d, func() { cancel(ErrDrainTimeout) })
		}
	})
	return dctx, func() {
		stop()
		mu.Lock()
		released = true
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

// contextFailure reports whether err is what a block returns because ctx
// ended: ctx is done and err carries a context error or ctx's cause.
func contextFailure(ctx context.Context, err error) bool {
	if ctx.Err() == nil || err == nil {
		return false
	}
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Cause(ctx))
}

// runBlock drives one block under the drain context dctx and says whether
// the loop must stop, and with which error. While ctx is live it is the
// plain block path: stop only on a terminal error. Once ctx is cancelled
// (before, during or right after the block) the loop stops: with nil when
// the block was committed or when the drain deadline cut it short (then
// nothing of it was committed), or with the block's own terminal error.
func (e *Engine) runBlock(ctx, dctx context.Context, mode, receiver string, drive blockFunc,
	b transport.Batch, at time.Time) (stop bool, err error) {
	ferr := e.driveChecked(dctx, mode, receiver, drive, b, at)
	if ctx.Err() == nil {
		return ferr != nil, ferr
	}
	log := e.logger()
	switch {
	case ferr == nil:
		e.ins.drainCommitted.Inc()
		log.Info("engine drained the block in flight at shutdown: committed",
			"mode", mode, "receiver", receiver, "records", len(b.Records), "tokens", len(b.Tokens))
		return true, nil
	case contextFailure(dctx, ferr):
		e.ins.drainAbandoned.Inc()
		reason := "batch_processing.drain_timeout passed"
		if e.cfg.drainTimeout() < 0 {
			reason = "the run context was cancelled and batch_processing.drain_timeout is negative (no drain)"
		}
		log.Warn("engine stopped with the block in flight not committed; it will be delivered again",
			"mode", mode, "receiver", receiver, "records", len(b.Records), "tokens", len(b.Tokens),
			"reason", reason, "drain_timeout", e.cfg.drainTimeout())
		return true, nil
	default:
		return true, ferr
	}
}
