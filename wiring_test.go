package keel_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// component returns the named component of one evaluation of the
// runtime's scaling pressure, or an error naming the components there are.
func component(rt *keel.Runtime, name string) (scaling.ComponentValue, error) {
	r := rt.Scaling().Evaluate()
	var names []string
	for _, c := range r.Components {
		if c.Name == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return scaling.ComponentValue{}, fmt.Errorf("the scaling pressure has no component %q (it has %v)", name, names)
}

// fixedFill is a receiver of the custom type "gauge": an inmem queue that
// reports a fixed queue fill even once closed, so that only the runtime
// can stop counting it.
type fixedFill struct {
	*inmem.Transport
	fill float64
}

func (f *fixedFill) QueueFill() float64 { return f.fill }

// TestScalingQueueFromReceivers: every receiver the factory builds that
// reports its queue fill feeds the scaling pressure's queue component,
// which is the largest fill; a receiver the runtime closed stops counting.
func TestScalingQueueFromReceivers(t *testing.T) {
	var captured atomic.Pointer[keel.Runtime]
	gauge := keel.TransportBuilder{
		Receiver: func(context.Context, keel.TransportContext) (transport.Receiver, error) {
			return &fixedFill{Transport: inmem.New(inmem.Config{}), fill: 0.1}, nil
		},
	}
	overrides := map[string]any{
		"input.type": "inmem", "input.inmem.buffer_size": 4,
		"other.type": "inmem", "other.inmem.buffer_size": 10,
		"steady.type": "gauge",
	}
	err := runWith(t, overrides, func(ctx context.Context, rt *keel.Runtime) error {
		captured.Store(rt)
		if c, err := component(rt, scaling.Queue); err != nil || c.Reported {
			return fmt.Errorf("queue reported before any receiver was built: %+v (%v)", c, err)
		}
		// The sender of the section is its queue too: closed at shutdown
		// as a sender, before the receivers.
		if _, err := rt.Sender(ctx, "input"); err != nil {
			return err
		}
		in, err := rt.Receiver(ctx, "input")
		if err != nil {
			return err
		}
		if err := queue(in).InjectPayloads(ctx, []byte(`{"a":1}`), []byte(`{"a":2}`)); err != nil {
			return err
		}
		c, err := component(rt, scaling.Queue)
		if err != nil {
			return err
		}
		if !c.Reported || math.Abs(c.Value-0.5) > 1e-9 {
			return fmt.Errorf("an inmem receiver holding 2 of 4: queue component %+v, want reported 0.5", c)
		}
		// The largest fill wins.
		other, err := rt.Receiver(ctx, "other")
		if err != nil {
			return err
		}
		payloads := make([][]byte, 8)
		for i := range payloads {
			payloads[i] = []byte(`{"b":1}`)
		}
		if err := queue(other).InjectPayloads(ctx, payloads...); err != nil {
			return err
		}
		if c, err := component(rt, scaling.Queue); err != nil || math.Abs(c.Value-0.8) > 1e-9 {
			return fmt.Errorf("receivers at 0.5 and 0.8: queue component %+v (%v), want 0.8", c, err)
		}
		// A receiver the app closed reports an empty queue.
		if err := other.Close(ctx); err != nil {
			return err
		}
		if c, err := component(rt, scaling.Queue); err != nil || math.Abs(c.Value-0.5) > 1e-9 {
			return fmt.Errorf("after closing the fuller receiver: queue component %+v (%v), want 0.5", c, err)
		}
		if _, err := rt.Receiver(ctx, "steady"); err != nil {
			return err
		}
		rt.MarkStarted()
		return nil
	}, keel.WithTransport("gauge", gauge))
	if err != nil {
		t.Fatal(err)
	}
	// The shutdown closed every receiver: none counts any more, not even
	// the one that would still report 0.1, nor the queue closed as the
	// sender of its section.
	rt := captured.Load()
	if c, err := component(rt, scaling.Queue); err != nil || c.Reported {
		t.Fatalf("after the receivers were closed: queue component %+v (%v), want not reported", c, err)
	}
}

// TestWorkerPoolScalerAndScalingSignals: the runtime runs the worker
// pool's scaler, which drops the pool's target to min_workers once memory
// pressure passes worker_pool.memory_pressure_cap, and the scaling
// pressure reports the memory, pool and CPU components.
func TestWorkerPoolScalerAndScalingSignals(t *testing.T) {
	overrides := map[string]any{
		"memory.limit_bytes":          64 << 20,
		"worker_pool.min_workers":     1,
		"worker_pool.max_workers":     4,
		"worker_pool.initial_workers": 4,
		"worker_pool.scale_interval":  "100ms",
		"scaling.interval":            "100ms",
	}
	err := runWith(t, overrides, func(ctx context.Context, rt *keel.Runtime) error {
		rt.MarkStarted()
		if got := rt.Pool().Target(); got != 4 {
			return fmt.Errorf("initial pool target %d, want worker_pool.initial_workers 4", got)
		}
		if err := until(ctx, "the scaler's first step", func() bool { _, ok := rt.Scaler().Last(); return ok }); err != nil {
			return err
		}
		// Memory pressure above the cap (0.80 by default).
		n := rt.Memory().Limit()
		rt.Memory().Add(n)
		defer rt.Memory().Release(n)
		if err := until(ctx, "the pool target at min_workers under memory pressure", func() bool {
			d, _ := rt.Scaler().Last()
			return rt.Pool().Target() == 1 && d.Direction == pool.DirectionMemoryCap
		}); err != nil {
			return err
		}
		mem, err := component(rt, scaling.Memory)
		if err != nil {
			return err
		}
		if !mem.Reported || mem.Value < 0.99 {
			return fmt.Errorf("memory component %+v under full memory pressure, want reported near 1", mem)
		}
		p, err := component(rt, scaling.Pool)
		if err != nil {
			return err
		}
		if !p.Reported {
			return fmt.Errorf("pool component not reported: %+v", p)
		}
		// CPU needs two samples (the first sets the baseline); the
		// scaling pressure's own loop takes them.
		return until(ctx, "the CPU component reported", func() bool {
			c, err := component(rt, scaling.CPU)
			return err == nil && c.Reported && c.Value >= 0 && c.Value <= 1
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// until waits until cond holds, or returns an error naming what when ctx
// ends first.
func until(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// TestFactoryPipeRoundTrip: the pipe type built from its sections reads
// the input stream and writes the output stream given with WithPipeIO,
// record for record, and the engine stops at the end of the input.
func TestFactoryPipeRoundTrip(t *testing.T) {
	in := strings.NewReader("{\"a\":1}\n{\"a\":2}\r\n\n   \n{\"a\":3}")
	var out syncBuffer
	overrides := map[string]any{"input.type": "pipe", "output.type": "pipe", "output.pipe.write_buffer_bytes": 8}
	app := keel.App{Name: "keeltest", Transports: []string{"input", "output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		r, err := rt.Receiver(ctx, "input")
		if err != nil {
			return err
		}
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		return rt.Engine().Run(ctx, r, passThrough, rt.Engine().SinkTo(s))
	}}
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithPipeIO(in, &out))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"; got != want {
		t.Fatalf("pipe output %q, want %q", got, want)
	}
	// A bad pipe setting names the section's own key.
	err := runWith(t, map[string]any{"input.type": "pipe", "input.pipe.max_line_bytes": -1}, func(ctx context.Context, rt *keel.Runtime) error {
		_, err := rt.Receiver(ctx, "input")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "input.pipe.max_line_bytes") {
		t.Fatalf("bad max_line_bytes: %v", err)
	}
}

// stuckSender is a sender of the custom type "stuck" whose Close hangs
// until released.
type stuckSender struct {
	*inmem.Transport
	closing chan struct{}
	release chan struct{}
}

func (s *stuckSender) Close(ctx context.Context) error {
	close(s.closing)
	<-s.release
	return s.Transport.Close(ctx)
}

// TestRunSenderCloseHangsPastDeadline: a sender whose Close outlasts
// lifecycle.shutdown_timeout does not hold Run: Run returns an error
// wrapping ErrShutdownIncomplete that names the sender.
func TestRunSenderCloseHangsPastDeadline(t *testing.T) {
	ctx := testCtx(t)
	logs := &syncBuffer{}
	signals := make(chan os.Signal, 2)
	stuck := &stuckSender{Transport: inmem.New(inmem.Config{}), closing: make(chan struct{}), release: make(chan struct{})}
	defer close(stuck.release)
	builder := keel.TransportBuilder{
		Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return stuck, nil },
	}
	running := make(chan struct{})
	app := keel.App{
		Name:       "keeltest",
		Transports: []string{"output"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			if _, err := rt.Sender(ctx, "output"); err != nil {
				return err
			}
			rt.MarkStarted()
			close(running)
			<-ctx.Done()
			return nil
		},
	}
	opts := append(isolated(t, logs, map[string]any{
		"output.type": "stuck", "lifecycle.shutdown_timeout": "300ms", "lifecycle.prestop_delay": "-1s",
	}), keel.WithSignals(signals), keel.WithTransport("stuck", builder))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, app, opts...) }()
	wait(t, ctx, running, "the app")
	signals <- syscall.SIGTERM
	err := wait(t, ctx, done, "Run")
	select {
	case <-stuck.closing:
	default:
		t.Fatal("the sender's Close was never called")
	}
	if !errors.Is(err, keel.ErrShutdownIncomplete) {
		t.Fatalf("Run: %v, want ErrShutdownIncomplete", err)
	}
	contains(t, err.Error(), `sender "output" (stuck)`, "the error")
	contains(t, err.Error(), keel.PhaseSenders, "the error")
	if keel.ExitCode(err) != keel.ExitError {
		t.Fatalf("exit code %d, want %d", keel.ExitCode(err), keel.ExitError)
	}
	contains(t, logs.String(), "still_running", "logs")
}
