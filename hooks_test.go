package keel_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// fixedBudget is a byte budget that records what the engine tells it.
type fixedBudget struct {
	bytes    int64
	observed atomic.Int32
}

func (b *fixedBudget) Bytes() int64                        { return b.bytes }
func (b *fixedBudget) RecordCap() int                      { return 0 }
func (b *fixedBudget) Observe(n int64, _, _ time.Duration) { b.observed.Add(1) }

// feedRecords queues n records and ends the input.
func feedRecords(ctx context.Context, q *inmem.Transport, n int) error {
	for i := range n {
		if err := q.InjectPayloads(ctx, []byte(`{"i":`+string(rune('0'+i))+`}`)); err != nil {
			return err
		}
	}
	q.CloseInput()
	return nil
}

// TestEngineWiringOptions: the byte budget and the dead-letter route given
// as options are built with the runtime and wired into its engine; the
// route's flush hook runs at shutdown.
func TestEngineWiringOptions(t *testing.T) {
	budget := &fixedBudget{bytes: 1 << 20}
	var mu sync.Mutex
	var routed []string
	var flushed, built atomic.Bool
	var sawMemory atomic.Bool
	var ticks atomic.Int32
	router := func(ctx context.Context, rt *keel.Runtime) (engine.DeadLetterRouter, error) {
		built.Store(true)
		sawMemory.Store(rt.Memory() != nil && rt.Config() != nil)
		if err := rt.OnShutdown("dlq", func(context.Context) error { flushed.Store(true); return nil }); err != nil {
			return nil, err
		}
		return func(_ context.Context, dls []transport.DeadLetter) error {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range dls {
				routed = append(routed, d.Reason)
			}
			return nil
		}, nil
	}
	app := keel.App{
		Name:     "keeltest",
		Defaults: map[string]any{"transport.type": "inmem", "out.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			out, err := rt.Sender(ctx, "out")
			if err != nil {
				return err
			}
			if err := feedRecords(ctx, queue(in), 4); err != nil {
				return err
			}
			// Every other record is dead-lettered by the process step.
			process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
				var keep []transport.Record
				for i, r := range b.Records {
					if i%2 == 1 {
						b.DeadLetters = append(b.DeadLetters, transport.DeadLetter{Record: r, Reason: "odd"})
						continue
					}
					keep = append(keep, r)
				}
				b.Records = keep
				return b, nil
			}
			return rt.Engine().RunGoverned(ctx, in, process, rt.Engine().SinkTo(out))
		},
	}
	opts := append(isolated(t, &syncBuffer{}, map[string]any{"batch_processing.tick_interval": "1h"}),
		keel.WithByteBudget(func(context.Context, *keel.Runtime) (engine.ByteBudget, error) { return budget, nil }),
		keel.WithDeadLetterRouter(router),
		keel.WithEngineConfig(func(c *engine.Config) { c.OnTick = func(context.Context) error { ticks.Add(1); return nil } }))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	if !built.Load() || !sawMemory.Load() {
		t.Fatal("the route builder did not run with the memory guard and config in place")
	}
	if budget.observed.Load() == 0 {
		t.Fatal("the governed loop did not use the byte budget")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(routed) == 0 || routed[0] != "odd" {
		t.Fatalf("dead letters not routed: %v", routed)
	}
	if !flushed.Load() {
		t.Fatal("the route's shutdown hook did not run")
	}
}

// TestBudgetBuilderNilPointerMeansNoBudget: a switched-off component may
// return a nil pointer; RunGoverned then runs as Run.
func TestBudgetBuilderNilPointerMeansNoBudget(t *testing.T) {
	var off *fixedBudget
	app := keel.App{
		Name:     "keeltest",
		Defaults: map[string]any{"transport.type": "inmem", "out.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			out, err := rt.Sender(ctx, "out")
			if err != nil {
				return err
			}
			if err := feedRecords(ctx, queue(in), 2); err != nil {
				return err
			}
			return rt.Engine().RunGoverned(ctx, in, passThrough, rt.Engine().SinkTo(out))
		},
	}
	opts := append(isolated(t, &syncBuffer{}, nil),
		keel.WithByteBudget(func(context.Context, *keel.Runtime) (engine.ByteBudget, error) { return off, nil }))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
}

// TestWiringBuilderErrorsStopStartUp: a failing builder stops the
// start-up with its error, and the app never runs.
func TestWiringBuilderErrorsStopStartUp(t *testing.T) {
	boom := errors.New("dlq topic missing")
	var ran atomic.Bool
	app := keel.App{Name: "keeltest", Run: func(context.Context, *keel.Runtime) error { ran.Store(true); return nil }}
	for name, opt := range map[string]keel.Option{
		"dead-letter route": keel.WithDeadLetterRouter(func(context.Context, *keel.Runtime) (engine.DeadLetterRouter, error) { return nil, boom }),
		"byte budget":       keel.WithByteBudget(func(context.Context, *keel.Runtime) (engine.ByteBudget, error) { return nil, boom }),
	} {
		err := keel.Run(testCtx(t), app, append(isolated(t, &syncBuffer{}, nil), opt)...)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), name) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if ran.Load() {
		t.Fatal("the app ran after a failed start-up")
	}
	for _, opt := range []keel.Option{
		keel.WithDeadLetterRouter(nil), keel.WithByteBudget(nil), keel.WithEngineConfig(nil), keel.WithReceiverWrapper(nil),
		keel.WithShutdownHook("", nil), keel.WithFinalShutdownHook("x", nil), keel.WithConfigOptions(nil),
		keel.WithTransport("kafka", keel.TransportBuilder{}),
	} {
		if err := keel.Run(testCtx(t), app, opt); !errors.Is(err, keel.ErrInvalidOption) {
			t.Fatalf("a bad option was accepted: %v", err)
		}
	}
}

// TestConfigCheckWithRouteOption: config-check validates a route policy
// against the configured route without building it.
func TestConfigCheckWithRouteOption(t *testing.T) {
	var built atomic.Bool
	app := cliApp()
	path := writeFile(t, "route.yaml", "batch_processing:\n  dead_letter_policy: route\n")
	var out, errb syncBuffer
	root, err := keel.Command(app, append(isolated(t, &errb, nil), keel.WithDeadLetterRouter(func(context.Context, *keel.Runtime) (engine.DeadLetterRouter, error) {
		built.Store(true)
		return func(context.Context, []transport.DeadLetter) error { return nil }, nil
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"config-check", "-c", path})
	if err := root.ExecuteContext(testCtx(t)); err != nil {
		t.Fatalf("config-check: %v\n%s", err, errb.String())
	}
	if built.Load() {
		t.Fatal("config-check built the dead-letter route")
	}
	// Without a route the same file is refused, naming the key.
	root, _ = keel.Command(app, isolated(t, &errb, nil)...)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"config-check", "-c", path})
	if err := root.ExecuteContext(testCtx(t)); err == nil || !strings.Contains(err.Error(), "batch_processing.dead_letter_policy") {
		t.Fatalf("route without a route builder: %v", err)
	}
}
