package keel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport"
)

func TestTieredFileSenderDelivers(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	overrides := map[string]any{
		"output.type": "file", "output.file.path": out,
		"output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
	}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		sink, ok := s.(*tiered.Sink)
		if !ok {
			return fmt.Errorf("the sender is a %T, not a tiered sink", s)
		}
		if err := s.SendBatch(ctx, []transport.Record{{Payload: []byte(`{"a":1}`)}, {Payload: []byte(`{"a":2}`)}}); err != nil {
			return err
		}
		if n := sink.Spool().Len(); n != 0 {
			return fmt.Errorf("%d records spooled while the file sink works", n)
		}
		var found bool
		for _, src := range rt.Governor().Pressure().Snapshot().Sources {
			found = found || (src.Name == keel.TieredSourceName("output") && !src.Hard)
		}
		if !found {
			return errors.New("the spool is not a soft pressure source of the governor")
		}
		rt.MarkStarted()
		return nil
	}}
	if err := keel.Run(testCtx(t), app, isolated(t, &syncBuffer{}, overrides)...); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "{\"a\":1}\n{\"a\":2}\n" {
		t.Fatalf("output %q", got)
	}
}

func TestTieredBadKeyFailsStartupAndCheck(t *testing.T) {
	dir := t.TempDir()
	overrides := map[string]any{
		"output.type": "file", "output.file.path": filepath.Join(dir, "out.ndjson"),
		"output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
		"output.tiered.spool.max_bytes": -1,
	}
	var ran atomic.Bool
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(context.Context, *keel.Runtime) error {
		ran.Store(true)
		return nil
	}}
	err := keel.Run(testCtx(t), app, isolated(t, &syncBuffer{}, overrides)...)
	if err == nil || !strings.Contains(err.Error(), "output.tiered.spool.max_bytes") {
		t.Fatalf("start-up with a bad tiered key: %v", err)
	}
	if ran.Load() {
		t.Fatal("the app ran with a bad tiered key")
	}

	cfg := writeFile(t, "bad.yaml", "transport:\n  type: file\n  file:\n    path: "+filepath.Join(dir, "x.ndjson")+
		"\n  tiered:\n    enabled: true\n    ordering: sideways\n")
	stdout, _, err := runCommand(t, cliApp(), nil, "config-check", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "transport.tiered.ordering") {
		t.Fatalf("config-check with a bad tiered key: %v", err)
	}
	if stdout != "" {
		t.Fatalf("a failed check printed a configuration:\n%s", stdout)
	}
}

// flakySender fails every call while down is set (a whole-call
// connection failure) and otherwise collects the records it takes.
type flakySender struct {
	down   *atomic.Bool
	mu     sync.Mutex
	got    []string
	want   int
	filled chan struct{}
}

func (f *flakySender) Send(ctx context.Context, rec transport.Record) error {
	return f.SendBatch(ctx, []transport.Record{rec})
}

func (f *flakySender) SendBatch(_ context.Context, recs []transport.Record) error {
	if f.down.Load() {
		return transport.NewError(transport.ErrConnection, "flaky", "send", errors.New("downstream unreachable"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range recs {
		f.got = append(f.got, string(r.Payload))
	}
	if len(f.got) == f.want {
		close(f.filled)
	}
	return nil
}

func (f *flakySender) Close(context.Context) error  { return nil }
func (f *flakySender) Health(context.Context) error { return nil }
func (f *flakySender) Name() string                 { return "flaky" }

func TestTieredSpoolsWhileDownstreamFailsThenDrains(t *testing.T) {
	dir := t.TempDir()
	var down atomic.Bool
	down.Store(true)
	fs := &flakySender{down: &down, want: 3, filled: make(chan struct{})}
	builder := keel.TransportBuilder{Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return fs, nil }}
	overrides := map[string]any{
		"output.type": "flaky", "output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
		"output.tiered.breaker.failure_threshold": 1, "output.tiered.breaker.open_timeout": "1h",
		"output.tiered.backoff.initial": "1ms", "output.tiered.backoff.max": "5ms",
	}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		sink := s.(*tiered.Sink)
		rt.MarkStarted()
		if !rt.Health().Ready(ctx) {
			return errors.New("not ready with a healthy tiered sink")
		}
		if rt.Scaling().Evaluate().CircuitOpen {
			return errors.New("circuit open before any failure")
		}
		for _, p := range []string{"r1", "r2", "r3"} {
			if err := s.Send(ctx, transport.Record{Payload: []byte(p)}); err != nil {
				return fmt.Errorf("send %s while the downstream is down: %w", p, err)
			}
		}
		if n := sink.Spool().Len(); n == 0 {
			return errors.New("nothing spooled while the downstream fails")
		}
		if !rt.Scaling().Evaluate().CircuitOpen {
			return errors.New("the scaling circuit is not open while the tiered sink's breaker is")
		}
		if rt.Health().Ready(ctx) {
			return errors.New("ready while the tiered sink's breaker is open")
		}
		down.Store(false)
		sink.Breaker().Reset()
		wait(t, ctx, fs.filled, "the spooled records to drain")
		if rt.Scaling().Evaluate().CircuitOpen {
			return errors.New("the scaling circuit stays open after recovery")
		}
		return nil
	}}
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("flaky", builder))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if strings.Join(fs.got, ",") != "r1,r2,r3" {
		t.Fatalf("downstream got %v, want r1,r2,r3 once each in order", fs.got)
	}
}
