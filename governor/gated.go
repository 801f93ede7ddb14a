package governor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/transport"
)

// GatedReceiver brakes a transport.Receiver that has no native pause:
// before each Recv it evaluates the gate, and while the gate is held it
// does not call the inner Recv at all. It waits until the gate opens,
// re-evaluating it every interval (so it needs no other evaluator), or
// until ctx is done, and then returns ctx's error with an empty batch.
//
// Nothing is dropped: records stay in the source (or its buffer) until
// the gate opens and they are received as usual. Commit, Close, Health
// and Name go straight to the inner receiver: acknowledgements and
// shutdown are never gated. Only intake is braked; senders are never
// wrapped.
type GatedReceiver struct {
	inner    transport.Receiver
	gate     *Gate
	interval time.Duration
	waits    atomic.Uint64
}

var _ transport.Receiver = (*GatedReceiver)(nil)

// NewGatedReceiver wraps inner with gate. A nil gate never holds. It takes
// WithInterval, the re-evaluation period while held (default
// DefaultInterval).
func NewGatedReceiver(inner transport.Receiver, gate *Gate, opts ...Option) *GatedReceiver {
	o := collect(opts)
	iv := o.interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	return &GatedReceiver{inner: inner, gate: gate, interval: iv}
}

// Recv waits while the gate is held, then receives from the inner
// receiver. Cancelling ctx while held returns promptly with ctx's error
// and takes nothing from the source.
func (r *GatedReceiver) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if r.inner == nil {
		return transport.Batch{}, ErrNilReceiver
	}
	if err := r.hold(ctx); err != nil {
		return transport.Batch{}, err
	}
	return r.inner.Recv(ctx, limits)
}

// hold returns nil once the gate is open, or ctx's error. An actuator
// error of the gate does not stop the receiver: the gate's state decides,
// and the error is counted and logged by the gate's observers.
func (r *GatedReceiver) hold(ctx context.Context) error {
	if r.gate == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if held, _ := r.gate.Evaluate(ctx); !held {
		return nil
	}
	r.waits.Add(1)
	timer := time.NewTimer(r.interval)
	defer timer.Stop()
	for {
		held, changed := r.gate.watch()
		if !held {
			return nil
		}
		select {
		case <-changed:
		case <-timer.C:
			timer.Reset(r.interval)
		case <-ctx.Done():
			return ctx.Err()
		}
		if held, _ := r.gate.Evaluate(ctx); !held {
			return nil
		}
	}
}

// Commit acknowledges tokens on the inner receiver; it is never gated.
func (r *GatedReceiver) Commit(ctx context.Context, tokens []transport.Token) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Commit(ctx, tokens)
}

// Close closes the inner receiver; it is never gated.
func (r *GatedReceiver) Close(ctx context.Context) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Close(ctx)
}

// Health returns the inner receiver's health. A held gate is not a fault:
// the receiver is healthy while it waits.
func (r *GatedReceiver) Health(ctx context.Context) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Health(ctx)
}

// Name returns the inner receiver's name, so logs and metrics name the
// backend.
func (r *GatedReceiver) Name() string {
	if r.inner == nil {
		return "gated"
	}
	return r.inner.Name()
}

// Unwrap returns the inner receiver.
func (r *GatedReceiver) Unwrap() transport.Receiver { return r.inner }

// Gate returns the gate that brakes the receiver.
func (r *GatedReceiver) Gate() *Gate { return r.gate }

// Waits counts the Recv calls that found the gate held and waited.
func (r *GatedReceiver) Waits() uint64 { return r.waits.Load() }
