package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
)

// A batch that does not fit the produce buffer: the records that fit are
// delivered, the rest (in order) fail as backpressure by index, and
// sending those again delivers them.
func TestProducerBackpressure(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "bp"))
	cfg := testConfig(t, c, "")
	cfg.Producer.Topic = "bp"
	cfg.Producer.MaxBufferedBytes = 1000
	p := newTestProducer(t, cfg)
	recs := make([]transport.Record, 20)
	for i := range recs {
		recs[i].Payload = []byte(fmt.Sprintf("%02d%098d", i, 0)) // 100 bytes
	}
	err := p.SendBatch(ctx, recs)
	var be *transport.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("SendBatch: %v, want a *transport.BatchError", err)
	}
	if got := fmt.Sprint(be.Indices()); got != "[10 11 12 13 14 15 16 17 18 19]" {
		t.Fatalf("failed indices %s, want 10..19", got)
	}
	if transport.Classify(err) != transport.Backpressure || !errors.Is(err, transport.ErrBackpressure) {
		t.Fatalf("classified %v: %v", transport.Classify(err), err)
	}
	if err := p.SendBatch(ctx, recs[10:]); err != nil {
		t.Fatalf("resend: %v", err)
	}
	out := c.ReadAll(ctx, t, "bp", 20)
	for i, r := range out {
		if !bytes.HasPrefix(r.Value, []byte(fmt.Sprintf("%02d", i))) {
			t.Fatalf("record %d is %q: order broken", i, r.Value[:2])
		}
	}
}

// Routing picks the topic per record (never from the key); failures are
// reported by index with their kind: a broker error on one topic is
// fatal, a dead-lettered route is DeadLettered, a route error is fatal.
func TestProducerRoutingAndPerRecordFailures(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "ta", "tb"))
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "tb", Err: kerr.TopicAuthorizationFailed, Count: -1})
	cfg := testConfig(t, c, "")
	cfg.Route = func(r *transport.Record) (string, error) {
		switch {
		case bytes.HasPrefix(r.Payload, []byte("a")):
			return "ta", nil
		case bytes.HasPrefix(r.Payload, []byte("b")):
			return "tb", nil
		case bytes.HasPrefix(r.Payload, []byte("dl")):
			return "", fmt.Errorf("no route for %q: %w", r.Payload, transport.ErrDeadLettered)
		}
		return "", errors.New("unroutable")
	}
	p := newTestProducer(t, cfg)
	recs := []transport.Record{
		{Key: []byte("tb"), Payload: []byte("a0")},
		{Payload: []byte("b0")},
		{Payload: []byte("dl")},
		{Payload: []byte("zz")},
		{Key: []byte("tb"), Payload: []byte("a1")},
	}
	err := p.SendBatch(ctx, recs)
	var be *transport.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("SendBatch: %v", err)
	}
	if got := fmt.Sprint(be.Indices()); got != "[1 2 3]" {
		t.Fatalf("failed indices %s, want [1 2 3]", got)
	}
	if !errors.Is(be.Failed[0].Err, kerr.TopicAuthorizationFailed) || transport.Classify(be.Failed[0].Err) != transport.Fatal {
		t.Fatalf("index 1: %v", be.Failed[0].Err)
	}
	if transport.Classify(be.Failed[1].Err) != transport.DeadLettered {
		t.Fatalf("index 2: %v", be.Failed[1].Err)
	}
	if !errors.Is(be.Failed[2].Err, transport.ErrSend) || !strings.Contains(be.Failed[2].Err.Error(), "unroutable") {
		t.Fatalf("index 3: %v", be.Failed[2].Err)
	}
	if transport.Classify(err) != transport.Fatal {
		t.Fatalf("batch classified %v", transport.Classify(err))
	}
	out := c.ReadAll(ctx, t, "ta", 2)
	if string(out[0].Value) != "a0" || string(out[1].Value) != "a1" || string(out[0].Key) != "tb" {
		t.Fatalf("topic ta holds %q/%q (key %q): the key must not pick the topic", out[0].Value, out[1].Value, out[0].Key)
	}
	// Send of one record returns the record's error, not a batch error.
	err = p.Send(ctx, transport.Record{Payload: []byte("dl")})
	var be2 *transport.BatchError
	if errors.As(err, &be2) || !errors.Is(err, transport.ErrDeadLettered) {
		t.Fatalf("Send: %v", err)
	}
}

// The record key is the partition key: records with one key land on one
// partition, across batches, and different keys spread over the
// partitions.
func TestProducerKeyIsThePartitionKey(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(4, "keyed"))
	cfg := testConfig(t, c, "")
	cfg.Producer.Topic = "keyed"
	p := newTestProducer(t, cfg)
	const keys, rounds = 12, 5
	for round := 0; round < rounds; round++ {
		batch := make([]transport.Record, keys)
		for k := range batch {
			batch[k] = transport.Record{Key: []byte(fmt.Sprintf("key-%d", k)), Payload: []byte(fmt.Sprintf("%d/%d", k, round))}
		}
		if err := p.SendBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	partitionOf := map[string]int32{}
	used := map[int32]bool{}
	for _, r := range c.ReadAll(ctx, t, "keyed", keys*rounds) {
		k := string(r.Key)
		if p, ok := partitionOf[k]; ok && p != r.Partition {
			t.Fatalf("key %q landed on partitions %d and %d", k, p, r.Partition)
		}
		partitionOf[k] = r.Partition
		used[r.Partition] = true
	}
	if len(partitionOf) != keys {
		t.Fatalf("read %d keys, want %d", len(partitionOf), keys)
	}
	if len(used) < 2 {
		t.Fatalf("%d keys all landed on one partition: the key does not pick the partition", keys)
	}
}

// testSpanContext is a sampled span context with a trace state.
func testSpanContext(t *testing.T) trace.SpanContext {
	t.Helper()
	ts, err := trace.ParseTraceState("vendor=x")
	if err != nil {
		t.Fatal(err)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
}

// headerCount counts the headers named key, ignoring case.
func headerCount(r transport.Record, key string) int {
	n := 0
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, key) {
			n++
		}
	}
	return n
}

// The trace context and baggage of the sender's context cross Kafka
// through the global propagator: they replace the record's own trace
// headers whatever their case, so a record never carries two; without a
// span in the context the record's own pass through and are read back
// ignoring case.
func TestProducerPropagatesTraceAndBaggage(t *testing.T) {
	usePropagator(t, telemetry.Propagator())
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "tr"))
	cfg := testConfig(t, c, "trg", "tr")
	cfg.Producer.Topic = "tr"
	p := newTestProducer(t, cfg)
	cons := newTestConsumer(t, cfg)

	sc := testSpanContext(t)
	tenant, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(tenant)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(ctx, sc), bag)
	old := []transport.Header{
		{Key: "Traceparent", Value: []byte(testTraceparent)},
		{Key: "TRACESTATE", Value: []byte("old=1")},
		{Key: "Baggage", Value: []byte("tenant=old")},
		{Key: "keep", Value: []byte("me")},
	}
	if err := p.Send(sendCtx, transport.Record{Payload: []byte("with-span"), Headers: old}); err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, transport.Record{Payload: []byte("no-span"), Headers: old[:1]}); err != nil {
		t.Fatal(err)
	}
	if old[0].Key != "Traceparent" || string(old[0].Value) != testTraceparent || len(old) != 4 {
		t.Fatal("SendBatch changed the caller's headers")
	}
	b := recvN(ctx, t, cons, 2, transport.Limits{})
	for _, r := range b.Records {
		got, ok := TraceContext(r)
		if !ok {
			t.Fatalf("%s: no trace context", r.Payload)
		}
		if n := headerCount(r, TraceparentHeader); n != 1 {
			t.Fatalf("%s: %d traceparent headers: %v", r.Payload, n, r.Headers)
		}
		rctx := ContextWithTrace(ctx, r)
		if psc := trace.SpanContextFromContext(rctx); !psc.IsRemote() || psc.TraceID() != got.TraceID() || psc.SpanID() != got.SpanID() {
			t.Fatalf("%s: ContextWithTrace carries %v, want the record's %v", r.Payload, psc, got)
		}
		switch string(r.Payload) {
		case "with-span":
			if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() || !got.IsSampled() || got.TraceState().String() != "vendor=x" {
				t.Fatalf("injected %v, want %v", got, sc)
			}
			if n, m := headerCount(r, TracestateHeader), headerCount(r, "baggage"); n != 1 || m != 1 {
				t.Fatalf("%d tracestate and %d baggage headers, want one each: %v", n, m, r.Headers)
			}
			if v := baggage.FromContext(rctx).Member("tenant").Value(); v != "acme" {
				t.Fatalf("baggage tenant %q after Kafka, want acme", v)
			}
			if v, _ := r.Header("keep"); string(v) != "me" {
				t.Fatal("header keep lost")
			}
		case "no-span":
			if FormatTraceparent(got) != testTraceparent {
				t.Fatalf("passed through %q, want %q", FormatTraceparent(got), testTraceparent)
			}
			if baggage.FromContext(rctx).Len() != 0 {
				t.Fatal("baggage appeared on a record sent without any")
			}
		}
	}
}

// The producer uses the installed propagator, not a built-in one: with
// none installed (OTEL_PROPAGATORS=none) it writes no trace header and
// the record's own pass through.
func TestProducerFollowsTheGlobalPropagator(t *testing.T) {
	usePropagator(t, propagation.NewCompositeTextMapPropagator())
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "np"))
	cfg := testConfig(t, c, "")
	cfg.Producer.Topic = "np"
	p := newTestProducer(t, cfg)
	sendCtx := trace.ContextWithSpanContext(ctx, testSpanContext(t))
	recs := []transport.Record{
		{Payload: []byte("bare")},
		{Payload: []byte("own"), Headers: []transport.Header{{Key: TraceparentHeader, Value: []byte(testTraceparent)}}},
	}
	if err := p.SendBatch(sendCtx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.ReadAll(ctx, t, "np", 2) {
		switch string(r.Value) {
		case "bare":
			if len(r.Headers) != 0 {
				t.Fatalf("headers %v injected with no propagator installed", r.Headers)
			}
		case "own":
			if len(r.Headers) != 1 || string(r.Headers[0].Value) != testTraceparent {
				t.Fatalf("record's own traceparent did not pass through: %v", r.Headers)
			}
		}
	}
}

// holdProduces makes the broker hold produce requests until release is
// closed; held receives once when the first is held.
func holdProduces(c interface {
	ControlKey(int16, func(kmsg.Request) (kmsg.Response, error, bool))
	KeepControl()
	SleepControl(func())
}) (held <-chan struct{}, release chan struct{}) {
	h := make(chan struct{}, 1)
	release = make(chan struct{})
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case h <- struct{}{}:
		default:
		}
		c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	return h, release
}

// Close flushes what is in flight when the brokers answer in time, and
// reports the records left when its deadline passes first.
func TestProducerCloseFlushes(t *testing.T) {
	t.Run("in time", func(t *testing.T) {
		ctx := testCtx(t)
		c := startCluster(t, kfake.SeedTopics(1, "cf"))
		cfg := testConfig(t, c, "")
		cfg.Producer.Topic = "cf"
		p := newTestProducer(t, cfg)
		held, release := holdProduces(c)
		sent := make(chan error, 1)
		go func() { sent <- p.SendBatch(ctx, numbered("f", 10)) }()
		<-held
		closed := make(chan error, 1)
		go func() { closed <- p.Close(ctx) }()
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-sent; err != nil {
			t.Fatalf("SendBatch during Close: %v", err)
		}
		if err := p.SendBatch(ctx, numbered("g", 1)); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("SendBatch after Close: %v", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx := testCtx(t)
		c := startCluster(t, kfake.SeedTopics(1, "cf"))
		cfg := testConfig(t, c, "")
		cfg.Producer.Topic = "cf"
		p := newTestProducer(t, cfg)
		held, release := holdProduces(c)
		defer close(release)
		sent := make(chan error, 1)
		go func() { sent <- p.SendBatch(ctx, numbered("f", 10)) }()
		<-held
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		err := p.Close(cctx)
		if !errors.Is(err, transport.ErrTimeout) || !strings.Contains(err.Error(), "10 record(s)") {
			t.Fatalf("Close past its deadline: %v", err)
		}
		if err := <-sent; err == nil {
			t.Fatal("SendBatch succeeded although the producer closed before the acknowledgement")
		}
	})
}

// Using the side a role did not build is a config error naming the role.
func TestWrongRole(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "wr"))
	pcfg := testConfig(t, c, "")
	pcfg.Role, pcfg.Producer.Topic = RoleProducer, "wr"
	prod, err := New(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(ctx)
	if prod.Consumer() != nil || prod.Producer() == nil || prod.Role() != RoleProducer {
		t.Fatal("producer role built the wrong clients")
	}
	checks := map[string]error{}
	_, checks["recv"] = prod.Recv(ctx, transport.Limits{})
	checks["commit"] = prod.Commit(ctx, nil)
	checks["pause"] = prod.Pause(ctx)
	checks["resume"] = prod.Resume(ctx)

	ccfg := testConfig(t, c, "wrg", "wr")
	ccfg.Role = RoleConsumer
	cons, err := New(ctx, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(ctx)
	if cons.Producer() != nil || cons.Consumer() == nil {
		t.Fatal("consumer role built the wrong clients")
	}
	checks["send"] = cons.Send(ctx, transport.Record{Payload: []byte("x")})
	checks["sendbatch"] = cons.SendBatch(ctx, numbered("x", 1))
	for op, err := range checks {
		if !errors.Is(err, ErrWrongRole) || !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), "kafka.role") {
			t.Errorf("%s on the wrong role: %v", op, err)
		}
	}
	if _, err := NewConsumer(ctx, pcfg); !errors.Is(err, ErrWrongRole) {
		t.Errorf("NewConsumer with role producer: %v", err)
	}
	if _, err := NewProducer(ctx, ccfg); !errors.Is(err, ErrWrongRole) {
		t.Errorf("NewProducer with role consumer: %v", err)
	}
	if err := prod.Health(ctx); err != nil {
		t.Errorf("producer health: %v", err)
	}
	if err := cons.Health(ctx); err != nil {
		t.Errorf("consumer health: %v", err)
	}
}
