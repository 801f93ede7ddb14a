package gated_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// countingRx counts the Recv calls that reach the receiver.
type countingRx struct {
	transport.Receiver
	recvs atomic.Int32
}

func (c *countingRx) Recv(ctx context.Context, l transport.Limits) (transport.Batch, error) {
	c.recvs.Add(1)
	return c.Receiver.Recv(ctx, l)
}

// sampledDial is a dial that reports each sampling on a channel, so a test
// can wait for evaluations instead of sleeping.
type sampledDial struct {
	*dial
	samples chan struct{}
}

func (s *sampledDial) PressureRatio() float64 {
	select {
	case s.samples <- struct{}{}:
	default:
	}
	return s.dial.PressureRatio()
}

func newSampledGate(t *testing.T) (*governor.Gate, *sampledDial) {
	t.Helper()
	d := &sampledDial{dial: newDial("queue", false, 0), samples: make(chan struct{}, 1)}
	return governor.NewGate("inmem", governor.NewPressure(d), nil, nil, governor.WithLogger(quietLogger())), d
}

func payloads(n int, prefix string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%03d", prefix, i))
	}
	return out
}

func TestReceiverHoldsThenDeliversEverything(t *testing.T) {
	ctx := testCtx(t)
	tr := inmem.New(inmem.Config{Capacity: 100})
	inner := &countingRx{Receiver: tr}
	gate, d := newSampledGate(t)
	rx := gated.New(inner, gate, gated.WithInterval(time.Millisecond))

	if err := tr.InjectPayloads(ctx, payloads(3, "before")...); err != nil {
		t.Fatal(err)
	}
	d.set(1)
	if !evaluate(t, gate) {
		t.Fatal("gate not held at level 1")
	}
	<-d.samples // the test's own sample: the next ones are the receiver's

	type result struct {
		b   transport.Batch
		err error
	}
	got := make(chan result, 1)
	go func() {
		b, err := rx.Recv(ctx, transport.Limits{MaxRecords: 100})
		got <- result{b, err}
	}()
	// The receiver re-evaluates the held gate; three evaluations later it
	// still has not called the inner Recv, records queued or not.
	evaluations := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			select {
			case <-d.samples:
			case r := <-got:
				t.Fatalf("Recv returned while held: %d records, %v", len(r.b.Records), r.err)
			}
		}
	}
	evaluations(3)
	if err := tr.InjectPayloads(ctx, payloads(5, "held")...); err != nil {
		t.Fatal(err)
	}
	evaluations(3)
	if n := inner.recvs.Load(); n != 0 {
		t.Fatalf("inner Recv called %d times while the gate was held", n)
	}
	if tr.Len() != 8 {
		t.Fatalf("queue holds %d records, want 8: nothing may be taken while held", tr.Len())
	}
	select {
	case r := <-got:
		t.Fatalf("Recv returned while held: %+v", r)
	default:
	}
	if rx.Waits() != 1 {
		t.Fatalf("waits %d", rx.Waits())
	}

	d.set(0) // the receiver's next evaluation opens the gate
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	var all []string
	for _, rec := range r.b.Records {
		all = append(all, string(rec.Payload))
	}
	if err := rx.Commit(ctx, r.b.Tokens); err != nil {
		t.Fatal(err)
	}
	for len(all) < 8 {
		b, err := rx.Recv(ctx, transport.Limits{MaxRecords: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range b.Records {
			all = append(all, string(rec.Payload))
		}
		if err := rx.Commit(ctx, b.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	want := append(payloads(3, "before"), payloads(5, "held")...)
	for i := range want {
		if all[i] != string(want[i]) {
			t.Fatalf("record %d = %q, want %q (all: %q)", i, all[i], want[i], all)
		}
	}
	if tr.Committed() != 8 || gate.Held() {
		t.Fatalf("committed %d, held %v", tr.Committed(), gate.Held())
	}
}

// A waiting receiver wakes on the gate's edge, not only on its own timer.
func TestReceiverWakesOnTheEdge(t *testing.T) {
	ctx := testCtx(t)
	tr := inmem.New(inmem.Config{})
	gate, d := newSampledGate(t)
	rx := gated.New(tr, gate, gated.WithInterval(time.Hour))
	d.set(1)
	evaluate(t, gate)
	<-d.samples
	if err := tr.InjectPayloads(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		b, err := rx.Recv(ctx, transport.Limits{})
		if err == nil && len(b.Records) != 1 {
			err = fmt.Errorf("got %d records", len(b.Records))
		}
		errc <- err
	}()
	<-d.samples // the receiver's own evaluation: held, it waits (the timer is an hour)
	d.set(0)
	if evaluate(t, gate) { // another evaluator opens the gate
		t.Fatal("still held")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestReceiverCancelWhileHeld(t *testing.T) {
	tr := inmem.New(inmem.Config{})
	inner := &countingRx{Receiver: tr}
	gate, d := newSampledGate(t)
	rx := gated.New(inner, gate, gated.WithInterval(time.Hour))
	d.set(1)
	evaluate(t, gate)
	if err := tr.InjectPayloads(context.Background(), []byte("kept")); err != nil {
		t.Fatal(err)
	}
	<-d.samples
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := rx.Recv(ctx, transport.Limits{})
		errc <- err
	}()
	<-d.samples // waiting
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv = %v, want context.Canceled", err)
	}
	if inner.recvs.Load() != 0 || tr.Len() != 1 {
		t.Fatalf("inner recvs %d, queue %d: a cancelled wait must take nothing", inner.recvs.Load(), tr.Len())
	}
	// An already cancelled context returns at once, before evaluating.
	if _, err := rx.Recv(ctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv = %v", err)
	}
}

func TestReceiverPassesThroughWhileHeld(t *testing.T) {
	ctx := testCtx(t)
	tr := inmem.New(inmem.Config{})
	gate, d := newSampledGate(t)
	rx := gated.New(tr, gate)
	if err := tr.InjectPayloads(ctx, []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	b, err := rx.Recv(ctx, transport.Limits{})
	if err != nil || len(b.Records) != 2 {
		t.Fatalf("open gate: %v %d", err, len(b.Records))
	}
	d.set(1)
	evaluate(t, gate)
	// Commit, Health and Name go through while held.
	if err := rx.Commit(ctx, b.Tokens); err != nil || tr.Committed() != 2 {
		t.Fatalf("commit while held: %v, committed %d", err, tr.Committed())
	}
	if rx.Health(ctx) != nil || rx.Name() != "inmem" || rx.Unwrap() != transport.Receiver(tr) || rx.Gate() != gate {
		t.Fatal("pass-through accessors")
	}
	if err := rx.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rx.Health(ctx), transport.ErrClosed) {
		t.Fatal("Close did not reach the inner receiver")
	}
}

func TestReceiverNilInnerAndNilGate(t *testing.T) {
	ctx := context.Background()
	rx := gated.New(nil, nil)
	if _, err := rx.Recv(ctx, transport.Limits{}); !errors.Is(err, gated.ErrNilReceiver) {
		t.Fatal(err)
	}
	if !errors.Is(rx.Commit(ctx, nil), gated.ErrNilReceiver) || !errors.Is(rx.Close(ctx), gated.ErrNilReceiver) ||
		!errors.Is(rx.Health(ctx), gated.ErrNilReceiver) || rx.Name() != "gated" {
		t.Fatal("nil inner")
	}
	// A wiring mistake: a transport config error, fatal to the engine, and
	// the message says what to pass.
	_, err := rx.Recv(ctx, transport.Limits{})
	if !errors.Is(err, transport.ErrConfig) || transport.Classify(err) != transport.Fatal ||
		!strings.Contains(err.Error(), "nil transport.Receiver") {
		t.Fatalf("nil inner error %q: want a fatal transport.ErrConfig naming the nil receiver", err)
	}
	if rx.Interval() != governor.DefaultInterval || gated.New(nil, nil, gated.WithInterval(-time.Second), nil).Interval() != governor.DefaultInterval {
		t.Fatal("a missing or non-positive interval must mean governor.DefaultInterval")
	}
	tr := inmem.New(inmem.Config{})
	if err := tr.InjectPayloads(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	b, err := gated.New(tr, nil).Recv(ctx, transport.Limits{})
	if err != nil || len(b.Records) != 1 {
		t.Fatalf("nil gate must pass through: %v", err)
	}
}
