package keel_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// runWith runs an app whose body is fn and returns Run's error.
func runWith(t *testing.T, overrides map[string]any, fn func(ctx context.Context, rt *keel.Runtime) error, opts ...keel.Option) error {
	t.Helper()
	app := keel.App{Name: "keeltest", Run: fn}
	all := append(isolated(t, &syncBuffer{}, overrides), opts...)
	return keel.Run(testCtx(t), app, all...)
}

func TestFactoryTypeErrorsListKnownTypes(t *testing.T) {
	err := runWith(t, map[string]any{"input.type": "carrier_pigeon"}, func(ctx context.Context, rt *keel.Runtime) error {
		if _, err := rt.Receiver(ctx, "input"); !errors.Is(err, keel.ErrUnknownTransport) {
			return errors.New("unknown type: " + errString(err))
		} else {
			for _, want := range []string{"input.type", "carrier_pigeon", "file, http, inmem, kafka, pipe"} {
				if !strings.Contains(err.Error(), want) {
					return errors.New("the error lacks " + want + ": " + err.Error())
				}
			}
		}
		if _, err := rt.Sender(ctx, "nowhere"); !errors.Is(err, keel.ErrUnknownTransport) ||
			!strings.Contains(err.Error(), "nowhere.type is not set") || !strings.Contains(err.Error(), "KEELTEST_NOWHERE__TYPE") {
			return errors.New("missing type: " + errString(err))
		}
		if got := strings.Join(rt.TransportTypes(), ","); got != "file,http,inmem,kafka,pipe" {
			return errors.New("types " + got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFactoryInmemSectionIsOneQueue(t *testing.T) {
	err := runWith(t, map[string]any{"transport.type": "inmem", "transport.inmem.buffer_size": 3, "other.type": "inmem"},
		func(ctx context.Context, rt *keel.Runtime) error {
			s, err := rt.Sender(ctx, "")
			if err != nil {
				return err
			}
			r, err := rt.Receiver(ctx, keel.SectionTransport)
			if err != nil {
				return err
			}
			if err := s.SendBatch(ctx, []transport.Record{{Payload: []byte("a")}, {Payload: []byte("b")}}); err != nil {
				return err
			}
			b, err := r.Recv(ctx, transport.Limits{})
			if err != nil || len(b.Records) != 2 {
				return errors.New("the sender and the receiver of one section are not one queue")
			}
			// buffer_size from the sub-section: the fourth record is
			// backpressure.
			err = s.SendBatch(ctx, []transport.Record{{Payload: []byte("1")}, {Payload: []byte("2")}, {Payload: []byte("3")}, {Payload: []byte("4")}})
			if !errors.Is(err, transport.ErrBackpressure) {
				return errors.New("transport.inmem.buffer_size not applied: " + errString(err))
			}
			other, err := rt.Receiver(ctx, "other")
			if err != nil {
				return err
			}
			if queue(r) == nil || queue(r) != queue(s) {
				return errors.New("the receiver is not the section's queue under the governor's brake")
			}
			if queue(other) == queue(r) {
				return errors.New("two sections share a queue")
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// A bad inmem setting names its key.
	err = runWith(t, map[string]any{"transport.type": "inmem", "transport.inmem.buffer_size": -1}, func(ctx context.Context, rt *keel.Runtime) error {
		_, err := rt.Receiver(ctx, "")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "transport.inmem.buffer_size") {
		t.Fatalf("bad buffer_size: %v", err)
	}
}

func TestFactoryFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	out := filepath.Join(dir, "out.ndjson")
	if err := os.WriteFile(in, []byte("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	overrides := map[string]any{
		"input.type": "file", "input.file.path": in, "input.file.stop_at_eof": true,
		"output.type": "file", "output.file.path": out,
	}
	err := runWith(t, overrides, func(ctx context.Context, rt *keel.Runtime) error {
		r, err := rt.Receiver(ctx, "input")
		if err != nil {
			return err
		}
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		// A finite source: the engine returns at its end, and so does the
		// service.
		return rt.Engine().Run(ctx, r, passThrough, rt.Engine().SinkTo(s))
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" {
		t.Fatalf("output %q", got)
	}
	pos, err := os.ReadFile(in + ".pos")
	if err != nil || strings.TrimSpace(string(pos)) != "24" {
		t.Fatalf("committed position %q (%v), want 24", pos, err)
	}
	// A file section without a path names the section's own key.
	err = runWith(t, map[string]any{"input.type": "file"}, func(ctx context.Context, rt *keel.Runtime) error {
		_, err := rt.Receiver(ctx, "input")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "input.file.path") || strings.Contains(err.Error(), "transport.file.path") {
		t.Fatalf("missing path: %v", err)
	}
}

// countingTransport is a custom transport type registered with
// WithTransport: an inmem queue that counts closes and reports a health
// error on demand.
type countingTransport struct {
	*inmem.Transport
	closes  *atomic.Int32
	healthy *atomic.Bool
}

func (c *countingTransport) Close(ctx context.Context) error {
	c.closes.Add(1)
	return c.Transport.Close(ctx)
}

func (c *countingTransport) Health(context.Context) error {
	if !c.healthy.Load() {
		return errors.New("broker unreachable: password=hunter2")
	}
	return nil
}

func TestFactoryCustomTypeHealthAndClose(t *testing.T) {
	var closes atomic.Int32
	var healthy atomic.Bool
	healthy.Store(true)
	var wrapped atomic.Int32
	type settings struct {
		Topic string `koanf:"topic"`
	}
	var mu sync.Mutex
	var topics []string
	builder := keel.TransportBuilder{
		Validate: func(tc keel.TransportContext) error {
			var s settings
			if err := tc.Decode(&s); err != nil {
				return err
			}
			if s.Topic == "" {
				return errors.New(tc.Key + ".topic is empty: name the topic")
			}
			return nil
		},
		Receiver: func(_ context.Context, tc keel.TransportContext) (transport.Receiver, error) {
			var s settings
			if err := tc.Decode(&s); err != nil {
				return nil, err
			}
			mu.Lock()
			topics = append(topics, s.Topic)
			mu.Unlock()
			return &countingTransport{Transport: inmem.New(inmem.Config{}), closes: &closes, healthy: &healthy}, nil
		},
	}
	wrapper := func(_ context.Context, tc keel.TransportContext, r transport.Receiver) (transport.Receiver, error) {
		if tc.Type == "bus" {
			wrapped.Add(1)
		}
		return r, nil
	}
	overrides := map[string]any{"input.type": "bus", "input.bus.topic": "orders"}
	app := keel.App{Name: "keeltest", Transports: []string{"input"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		if _, err := rt.Receiver(ctx, "input"); err != nil {
			return err
		}
		if _, err := rt.Receiver(ctx, "input"); err != nil {
			return err
		}
		if _, err := rt.Sender(ctx, "input"); err == nil || !strings.Contains(err.Error(), "has no sender") {
			return errors.New("a receiver-only type built a sender: " + errString(err))
		}
		rt.MarkStarted()
		if !rt.Health().Ready(ctx) {
			return errors.New("not ready with healthy transports")
		}
		healthy.Store(false)
		if rt.Health().Ready(ctx) {
			return errors.New("ready while a receiver is unhealthy")
		}
		rep := rt.Health().Report(ctx)
		for _, c := range rep.Checks {
			if strings.Contains(c.Message, "hunter2") {
				return errors.New("a health message leaked a secret")
			}
		}
		var receivers []string
		for _, c := range rep.Checks {
			if strings.HasPrefix(c.Name, "receiver:") {
				receivers = append(receivers, c.Name)
			}
		}
		if len(receivers) != 2 || receivers[1] != "receiver:input#2" {
			return errors.New("health checks not one per receiver")
		}
		healthy.Store(true)
		return nil
	}}
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("bus", builder), keel.WithReceiverWrapper(wrapper))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	if closes.Load() != 2 {
		t.Fatalf("%d closes, want each receiver closed once at shutdown", closes.Load())
	}
	if wrapped.Load() != 2 {
		t.Fatalf("wrapper applied %d times", wrapped.Load())
	}
	if len(topics) != 2 || topics[0] != "orders" {
		t.Fatalf("topics %v", topics)
	}
	// The start-up check runs the builder's Validate for App.Transports.
	delete(overrides, "input.bus.topic")
	opts = append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("bus", builder))
	err := keel.Run(testCtx(t), app, opts...)
	if err == nil || !strings.Contains(err.Error(), "input.bus.topic") {
		t.Fatalf("start-up check of a custom type: %v", err)
	}
}

func TestFactoryRefusesAfterClose(t *testing.T) {
	var late error
	hook := func(rt *keel.Runtime) func(context.Context) error {
		return func(ctx context.Context) error {
			_, late = rt.Receiver(ctx, "")
			return nil
		}
	}
	err := runWith(t, map[string]any{"transport.type": "inmem"}, func(ctx context.Context, rt *keel.Runtime) error {
		return rt.OnShutdownLast("late", hook(rt))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(late, keel.ErrShuttingDown) {
		t.Fatalf("Receiver after the transports closed: %v", late)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
