package gated_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// The engine's interfaces, checked at compile time here and not in the
// governor's code or tests: the governor sits below the engine and the
// transports and never imports them.
var (
	_ engine.ByteBudget       = (*governor.Budget)(nil)
	_ engine.ByteBudget       = governor.ByteBudget(nil)
	_ engine.MemoryAccountant = (*memory.Guard)(nil)
	_ transport.Receiver      = (*gated.Receiver)(nil)
)

// With self-regulation off, Governed leaves the receiver as it is and the
// governor's budget is a nil interface, so RunGoverned runs as Run.
func TestGovernedWithoutGovernor(t *testing.T) {
	g, err := governor.New(governor.Config{Enabled: ptr(false)}, governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()))
	if g != nil || err != nil {
		t.Fatalf("New(disabled) = %v, %v", g, err)
	}
	cfg := engine.Config{Budget: g.Budget()}
	if cfg.Budget != nil {
		t.Fatal("the nil governor's budget must be a nil interface so that RunGoverned runs as Run")
	}
	tr := inmem.New(inmem.Config{})
	if gated.Governed(g, tr) != transport.Receiver(tr) {
		t.Fatal("the nil governor must return the receiver unchanged")
	}
	// An enabled governor with a nil receiver returns it as it is too.
	if gated.Governed(newGovernor(t, governor.Config{}), nil) != nil {
		t.Fatal("a nil receiver must stay nil")
	}
}

// With self-regulation on, Governed brakes the receiver with the
// governor's own gate and re-evaluates it every self_regulation.interval:
// the gate is held, the receiver waits, and once the pressure falls its
// own re-evaluation (nothing else evaluates here) opens the gate and
// delivers the queued record.
func TestGovernedUsesTheGovernorsGateAndInterval(t *testing.T) {
	ctx := testCtx(t)
	d := &sampledDial{dial: newDial("memory", true, 1), samples: make(chan struct{}, 1)}
	g := newGovernor(t, governor.Config{Interval: 10 * time.Millisecond}, governor.WithSource(d))
	tr := inmem.New(inmem.Config{})
	if err := tr.InjectPayloads(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	rx, ok := gated.Governed(g, tr).(*gated.Receiver)
	if !ok || rx.Gate() != g.Gate() || rx.Unwrap() != transport.Receiver(tr) || rx.Interval() != 10*time.Millisecond {
		t.Fatalf("Governed = %T: want a *gated.Receiver on the governor's gate and interval", rx)
	}
	select { // a sample taken while the governor was built is not the receiver's
	case <-d.samples:
	default:
	}
	got := make(chan error, 1)
	go func() {
		b, err := rx.Recv(ctx, transport.Limits{})
		if err == nil && len(b.Records) != 1 {
			err = errors.New("want the queued record")
		}
		got <- err
	}()
	<-d.samples // the receiver's first evaluation: held
	<-d.samples // its re-evaluation on its timer: still held
	// Evaluate is serialised with the receiver's evaluations, so this
	// reads the state after they finished: still held at pressure 1.
	if held, err := g.Gate().Evaluate(ctx); err != nil || !held || tr.Len() != 1 {
		t.Fatalf("held %v (%v), queue %d: the receiver took a record at pressure 1", held, err, tr.Len())
	}
	d.set(0)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if g.Gate().Held() || rx.Waits() != 1 || tr.Len() != 0 {
		t.Fatalf("held %v, waits %d, queue %d", g.Gate().Held(), rx.Waits(), tr.Len())
	}
}

// The brake is applied to sources only: with pressure pinned high and the
// gate held, the same transport's Send and SendBatch, and an engine sink
// writing to it, still succeed, while receiving waits.
func TestSendsAreNeverGated(t *testing.T) {
	ctx := testCtx(t)
	d := &sampledDial{dial: newDial("memory", true, 1), samples: make(chan struct{}, 1)}
	g := newGovernor(t, governor.Config{Interval: time.Millisecond}, governor.WithSource(d))
	if held, _ := g.Gate().Evaluate(ctx); !held {
		t.Fatal("gate not held at pressure 1")
	}
	<-d.samples
	tr := inmem.New(inmem.Config{Capacity: 16})
	rx := gated.Governed(g, tr)

	if err := tr.Send(ctx, transport.Record{Payload: []byte("one")}); err != nil {
		t.Fatalf("Send while held: %v", err)
	}
	if err := tr.SendBatch(ctx, []transport.Record{{Payload: []byte("two")}, {Payload: []byte("three")}}); err != nil {
		t.Fatalf("SendBatch while held: %v", err)
	}
	e, err := engine.New(engine.Config{Metrics: testRegistry(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SinkTo(tr)(ctx, transport.FromRecords(transport.Record{Payload: []byte("four")})); err != nil {
		t.Fatalf("engine sink while held: %v", err)
	}
	if tr.Len() != 4 || tr.Sent() != 4 {
		t.Fatalf("queued %d sent %d, want 4", tr.Len(), tr.Sent())
	}
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := rx.Recv(rctx, transport.Limits{})
		errc <- err
	}()
	<-d.samples // the receiver evaluated: held, it waits
	<-d.samples // and again on its timer
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || tr.Len() != 4 {
		t.Fatalf("Recv while held = %v, queue %d", err, tr.Len())
	}
}

// Nothing the governor or this package exports takes or returns a
// transport.Sender.
func TestNoSenderWrapper(t *testing.T) {
	sender := reflect.TypeFor[transport.Sender]()
	for _, v := range []any{&governor.Governor{}, &governor.Gate{}, &gated.Receiver{}, &governor.Budget{}, &governor.Pressure{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumMethod(); i++ {
			m := typ.Method(i)
			for j := 0; j < m.Type.NumIn(); j++ {
				if m.Type.In(j).Implements(sender) {
					t.Fatalf("%s.%s takes a sender", typ, m.Name)
				}
			}
			for j := 0; j < m.Type.NumOut(); j++ {
				if out := m.Type.Out(j); out.Implements(sender) {
					t.Fatalf("%s.%s returns a sender", typ, m.Name)
				}
			}
		}
	}
}

// With self-regulation off the governed loop is the plain loop: one sink
// call per received block. On, the same wiring streams budget-sized
// sub-blocks and commits every token.
func TestRunGovernedWithAndWithoutGovernor(t *testing.T) {
	run := func(t *testing.T, cfg governor.Config) (sinkCalls int, committed uint64) {
		ctx := testCtx(t)
		reg := testRegistry()
		g, err := governor.New(cfg, governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		tr := inmem.New(inmem.Config{Capacity: 64})
		if err := tr.InjectPayloads(ctx, payloads(40, "r")...); err != nil { // 5 bytes each
			t.Fatal(err)
		}
		tr.CloseInput()
		e, err := engine.New(engine.Config{Budget: g.Budget(), Metrics: reg, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		var n, records int
		err = e.RunGoverned(ctx, gated.Governed(g, tr),
			func(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil },
			func(_ context.Context, b transport.Batch) error { n++; records += len(b.Records); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if records != 40 {
			t.Fatalf("sunk %d records, want 40", records)
		}
		return n, tr.Committed()
	}
	t.Run("off", func(t *testing.T) {
		calls, committed := run(t, governor.Config{Enabled: ptr(false)})
		if calls != 1 || committed != 40 {
			t.Fatalf("off: %d sink calls, committed %d; want one block as Run", calls, committed)
		}
	})
	t.Run("on", func(t *testing.T) {
		// Budget 40 bytes: records of 5 bytes, at most 8 per receive.
		calls, committed := run(t, governor.Config{Budget: governor.BudgetConfig{StartBytes: 40, MinBytes: 40, MaxBytes: 40}})
		if calls < 5 || committed != 40 {
			t.Fatalf("on: %d sink calls, committed %d; want >= 5 sub-blocks", calls, committed)
		}
	})
}
