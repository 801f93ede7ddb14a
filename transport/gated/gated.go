package gated

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/transport"
)

// ErrNilReceiver is returned by every method of a Receiver built around a
// nil transport.Receiver. It is a *transport.Error of kind
// transport.ErrConfig, so errors.Is matches both and transport.Classify
// calls it fatal.
var ErrNilReceiver error = transport.NewError(transport.ErrConfig, "gated", "",
	errors.New("the gated receiver wraps a nil transport.Receiver; pass the receiver to gate to gated.New"))

// Option configures New.
type Option func(*options)

type options struct {
	interval time.Duration
}

// WithInterval sets how often a held gate is re-evaluated while Recv
// waits. A value <= 0 means governor.DefaultInterval.
func WithInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// Receiver brakes a transport.Receiver that has no native pause: before
// each Recv it evaluates the gate, and while the gate is held it does not
// call the inner Recv at all. It waits until the gate opens, re-evaluating
// it every interval (so it needs no other evaluator) and waking at once on
// an edge made by another evaluator, or until ctx is done, and then
// returns ctx's error with an empty batch.
//
// Nothing is dropped: records stay in the source (or its buffer) until the
// gate opens and they are received as usual. Commit, Close, Health and
// Name go straight to the inner receiver: acknowledgements and shutdown
// are never gated. Only intake is braked; senders are never wrapped.
type Receiver struct {
	inner    transport.Receiver
	gate     *governor.Gate
	interval time.Duration
	waits    atomic.Uint64
}

var _ transport.Receiver = (*Receiver)(nil)

// New wraps inner with the gate g. A nil g never holds: the receiver then
// passes everything through. It takes WithInterval, the re-evaluation
// period while held (default governor.DefaultInterval).
func New(inner transport.Receiver, g *governor.Gate, opts ...Option) *Receiver {
	var o options
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.interval <= 0 {
		o.interval = governor.DefaultInterval
	}
	return &Receiver{inner: inner, gate: g, interval: o.interval}
}

// Governed returns r braked by the governor's own gate (gov.Gate()),
// re-evaluated every self_regulation.interval while held. On a nil
// *Governor (self_regulation.enabled false) or a nil r it returns r
// itself, so the same wiring serves both cases:
//
//	err := eng.RunGoverned(ctx, gated.Governed(gov, r), process, sink)
//
// Use it for receivers without a native pause; give a receiver that has
// one to governor.WithActuator or Governor.NewGate instead.
func Governed(gov *governor.Governor, r transport.Receiver) transport.Receiver {
	if gov == nil || r == nil {
		return r
	}
	return New(r, gov.Gate(), WithInterval(gov.Config().Interval))
}

// Recv waits while the gate is held, then receives from the inner
// receiver. Cancelling ctx while held returns promptly with ctx's error
// and takes nothing from the source.
func (r *Receiver) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
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
func (r *Receiver) hold(ctx context.Context) error {
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
		held, changed := r.gate.Watch()
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
func (r *Receiver) Commit(ctx context.Context, tokens []transport.Token) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Commit(ctx, tokens)
}

// Close closes the inner receiver; it is never gated.
func (r *Receiver) Close(ctx context.Context) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Close(ctx)
}

// Health returns the inner receiver's health. A held gate is not a fault:
// the receiver is healthy while it waits.
func (r *Receiver) Health(ctx context.Context) error {
	if r.inner == nil {
		return ErrNilReceiver
	}
	return r.inner.Health(ctx)
}

// Name returns the inner receiver's name, so logs and metrics name the
// backend; "gated" around a nil receiver.
func (r *Receiver) Name() string {
	if r.inner == nil {
		return "gated"
	}
	return r.inner.Name()
}

// Unwrap returns the inner receiver.
func (r *Receiver) Unwrap() transport.Receiver { return r.inner }

// Interval returns the period at which a held gate is re-evaluated.
func (r *Receiver) Interval() time.Duration { return r.interval }

// Gate returns the gate that brakes the receiver.
func (r *Receiver) Gate() *governor.Gate { return r.gate }

// Waits counts the Recv calls that found the gate held and waited.
func (r *Receiver) Waits() uint64 { return r.waits.Load() }
