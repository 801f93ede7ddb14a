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
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/spool"
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

// flakySender fails every call while down is set (a whole-call error of
// kind downKind, transport.ErrConnection when nil) and otherwise collects
// the records it takes.
type flakySender struct {
	down     *atomic.Bool
	downKind error
	mu       sync.Mutex
	got      []string
	want     int
	filled   chan struct{}
}

func (f *flakySender) Send(ctx context.Context, rec transport.Record) error {
	return f.SendBatch(ctx, []transport.Record{rec})
}

func (f *flakySender) SendBatch(_ context.Context, recs []transport.Record) error {
	if f.down.Load() {
		kind := f.downKind
		if kind == nil {
			kind = transport.ErrConnection
		}
		return transport.NewError(kind, "flaky", "send", errors.New("downstream unreachable"))
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

// A downstream that answers with backpressure forever never opens the
// breaker; once the spool has not drained for stall_timeout the scaling
// pressure is forced to 0 and readiness fails, and both come back once the
// downstream takes records again.
func TestTieredStalledDownstreamForcesScalingDown(t *testing.T) {
	dir := t.TempDir()
	var down atomic.Bool
	down.Store(true)
	fs := &flakySender{down: &down, downKind: transport.ErrBackpressure, want: 3, filled: make(chan struct{})}
	builder := keel.TransportBuilder{Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return fs, nil }}
	overrides := map[string]any{
		"output.type": "flaky", "output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
		"output.tiered.breaker.failure_threshold": 1, "output.tiered.stall_timeout": "200ms",
		"output.tiered.backoff.initial": "1ms", "output.tiered.backoff.max": "5ms",
	}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		sink := s.(*tiered.Sink)
		rt.MarkStarted()
		if err := rt.Scaling().Set(scaling.Queue, 1); err != nil {
			return err
		}
		if r := rt.Scaling().Evaluate(); r.Value == 0 || r.CircuitOpen {
			return fmt.Errorf("before any send: pressure %v, circuit open %v; want a full queue to count", r.Value, r.CircuitOpen)
		}
		for _, p := range []string{"r1", "r2", "r3"} {
			if err := s.Send(ctx, transport.Record{Payload: []byte(p)}); err != nil {
				return fmt.Errorf("send %s while the downstream is full: %w", p, err)
			}
		}
		if sink.Spool().Len() == 0 {
			return errors.New("nothing spooled while the downstream answers with backpressure")
		}
		for r := rt.Scaling().Evaluate(); !r.CircuitOpen; r = rt.Scaling().Evaluate() {
			if ctx.Err() != nil {
				return errors.New("the scaling circuit never opened while the spool did not drain")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if r := rt.Scaling().Evaluate(); r.Value != 0 || r.Gate != scaling.GateCircuitOpen {
			return fmt.Errorf("stalled: pressure %v by gate %q, want 0 by %q", r.Value, r.Gate, scaling.GateCircuitOpen)
		}
		if sink.CircuitOpen() {
			return errors.New("backpressure opened the breaker")
		}
		if rt.Health().Ready(ctx) {
			return errors.New("ready while the tiered sink cannot drain")
		}
		down.Store(false)
		wait(t, ctx, fs.filled, "the spooled records to drain")
		for r := rt.Scaling().Evaluate(); r.CircuitOpen || r.Value == 0; r = rt.Scaling().Evaluate() {
			if ctx.Err() != nil {
				return fmt.Errorf("after recovery: pressure %v, circuit open %v", r.Value, r.CircuitOpen)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !rt.Health().Ready(ctx) {
			return errors.New("not ready after the spool drained")
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

// A downstream that is down for good, with a breaker that does not open:
// the shutdown drains for close_drain_timeout, leaves the records spooled
// and goes on with the later phases; Run returns nil.
func TestTieredShutdownBoundedWhileDownstreamDown(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	var down atomic.Bool
	down.Store(true)
	fs := &flakySender{down: &down}
	builder := keel.TransportBuilder{Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return fs, nil }}
	overrides := map[string]any{
		"output.type": "flaky", "output.tiered.enabled": true, "output.tiered.spool.dir": spoolDir,
		"output.tiered.breaker.failure_threshold": 1_000_000, "output.tiered.close_drain_timeout": "200ms",
		"output.tiered.backoff.initial": "1ms", "output.tiered.backoff.max": "5ms",
		"lifecycle.shutdown_timeout": "10s", "lifecycle.prestop_delay": "-1s",
	}
	ps := []string{"a", "b", "c", "d", "e"}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		for _, p := range ps {
			if err := s.Send(ctx, transport.Record{Payload: []byte(p)}); err != nil {
				return fmt.Errorf("send %s while the downstream is down: %w", p, err)
			}
		}
		if s.(*tiered.Sink).CircuitOpen() {
			return errors.New("the breaker opened; the case is a closed breaker")
		}
		return nil
	}}
	var finalRan atomic.Bool
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("flaky", builder),
		keel.WithFinalShutdownHook("probe", func(context.Context) error { finalRan.Store(true); return nil }))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatalf("Run with a downstream down at shutdown: %v", err)
	}
	if !finalRan.Load() {
		t.Fatal("the final shutdown hooks did not run")
	}
	sp, err := spool.Open(context.Background(), spool.Config{Dir: spoolDir, Name: "output", MinFreeBytes: -1,
		Metrics: metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.Close() }()
	if n := sp.Len(); n != int64(len(ps)) {
		t.Fatalf("the spool kept %d records across the shutdown, want %d", n, len(ps))
	}
	es, err := sp.TryPeek(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		rec, err := tiered.DecodeRecord(e.Payload)
		if err != nil || string(rec.Payload) != ps[i] {
			t.Fatalf("spooled record %d = %q, %v; want %q", i, rec.Payload, err, ps[i])
		}
	}
}

// poisonSender refuses the record "bad" by index with a permanent error and
// takes every other record.
type poisonSender struct {
	mu  sync.Mutex
	got []string
}

func (p *poisonSender) Send(ctx context.Context, rec transport.Record) error {
	return p.SendBatch(ctx, []transport.Record{rec})
}

func (p *poisonSender) SendBatch(_ context.Context, recs []transport.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	be := &transport.BatchError{}
	for i, r := range recs {
		if string(r.Payload) == "bad" {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i,
				Err: transport.NewError(transport.ErrSend, "poison", "send", errors.New("schema mismatch"))})
			continue
		}
		p.got = append(p.got, string(r.Payload))
	}
	if len(be.Failed) > 0 {
		return be
	}
	return nil
}

func (p *poisonSender) delivered() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func (p *poisonSender) Close(context.Context) error  { return nil }
func (p *poisonSender) Health(context.Context) error { return nil }
func (p *poisonSender) Name() string                 { return "poison" }

// sendPoison sends x, bad and y, then z once bad is spooled: z, sent alone
// behind it, is what proves bad at fault.
func sendPoison(ctx context.Context, s transport.Sender) error {
	if err := s.SendBatch(ctx, []transport.Record{{Payload: []byte("x")}, {Payload: []byte("bad")}, {Payload: []byte("y")}}); err != nil {
		return err
	}
	return s.Send(ctx, transport.Record{Payload: []byte("z")})
}

// With no dlq section, a tiered sink's undeliverable record takes the
// app's own dead-letter route (WithDeadLetterRouter), with its reason,
// attempts and spool position.
func TestTieredDLQTakesTheAppDeadLetterRoute(t *testing.T) {
	dir := t.TempDir()
	ps := &poisonSender{}
	builder := keel.TransportBuilder{Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return ps, nil }}
	overrides := map[string]any{
		"output.type": "poison", "output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
		"output.tiered.backoff.initial": "1ms", "output.tiered.backoff.max": "5ms",
	}
	routed := make(chan transport.DeadLetter, 4)
	router := func(context.Context, *keel.Runtime) (engine.DeadLetterRouter, error) {
		return func(_ context.Context, letters []transport.DeadLetter) error {
			for _, l := range letters {
				routed <- l
			}
			return nil
		}, nil
	}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		if err := sendPoison(ctx, s); err != nil {
			return err
		}
		l := wait(t, ctx, routed, "the poison record on the app's route")
		if string(l.Record.Payload) != "bad" || !strings.Contains(l.Reason, "schema mismatch") ||
			!strings.Contains(l.Reason, "(attempts: ") || !strings.HasPrefix(l.Source, "spool:output:") || l.Destination != "poison" {
			return fmt.Errorf("routed %q: reason %q source %q destination %q", l.Record.Payload, l.Reason, l.Source, l.Destination)
		}
		sink := s.(*tiered.Sink)
		for sink.Spool().Len() > 0 {
			if ctx.Err() != nil {
				return errors.New("the spool did not empty")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}}
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("poison", builder), keel.WithDeadLetterRouter(router))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ps.delivered(), ","); got != "x,y,z" {
		t.Fatalf("downstream got %s, want x,y,z", got)
	}
}

// With no dead-letter queue and no route, a tiered sink keeps an
// undeliverable record in its spool (readiness fails, saying why) instead
// of losing it; the next start with a dlq section dead-letters it.
func TestTieredWithoutDLQHoldsUndeliverableRecords(t *testing.T) {
	dir := t.TempDir()
	ps := &poisonSender{}
	builder := keel.TransportBuilder{Sender: func(context.Context, keel.TransportContext) (transport.Sender, error) { return ps, nil }}
	overrides := map[string]any{
		"output.type": "poison", "output.tiered.enabled": true, "output.tiered.spool.dir": filepath.Join(dir, "spool"),
		"output.tiered.backoff.initial": "1ms", "output.tiered.backoff.max": "5ms",
	}
	app := keel.App{Name: "keeltest", Transports: []string{"output"}, Run: func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		if err := sendPoison(ctx, s); err != nil {
			return err
		}
		sink := s.(*tiered.Sink)
		for !errors.Is(sink.Health(ctx), tiered.ErrNoDeadLetterQueue) {
			if ctx.Err() != nil {
				return fmt.Errorf("the sink's health never reported the held record: %v", sink.Health(ctx))
			}
			time.Sleep(time.Millisecond)
		}
		if rt.Health().Ready(ctx) {
			return errors.New("ready while the tiered sink holds an undeliverable record")
		}
		if n := sink.Spool().Len(); n == 0 {
			return errors.New("the undeliverable record left the spool without a dead-letter queue")
		}
		return nil
	}}
	opts := append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("poison", builder))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}

	// The next start has a dead-letter queue: the record goes there.
	dlqDir := filepath.Join(dir, "dlq")
	overrides["dlq.enabled"] = true
	overrides["dlq.file.enabled"] = true
	overrides["dlq.file.path"] = dlqDir
	app.Run = func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		rt.MarkStarted()
		sink := s.(*tiered.Sink)
		for sink.Spool().Len() > 0 {
			if ctx.Err() != nil {
				return errors.New("the held record was not dead-lettered at the next start")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	opts = append(isolated(t, &syncBuffer{}, overrides), keel.WithTransport("poison", builder))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatal(err)
	}
	var found bool
	err := filepath.WalkDir(dlqDir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		es, rerr := dlq.ReadFile(p)
		for _, e := range es {
			found = found || (string(e.Payload) == "bad" && strings.Contains(e.Reason, "schema mismatch"))
		}
		return rerr
	})
	if err != nil || !found {
		t.Fatalf("the dead-letter queue does not hold the record (%v)", err)
	}
}
