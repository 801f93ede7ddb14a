package dlq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/secret"
)

func TestHTTPBackendPostsNDJSON(t *testing.T) {
	col := newCollector(t)
	b, err := dlq.NewHTTPBackend(dlq.HTTPConfig{Endpoint: col.URL + "/dlq",
		Headers: map[string]secret.String{"Authorization": secret.New("Bearer s3cr3t")}}, dlq.HTTPOptions{})
	must(t, err)
	defer b.Close(context.Background())
	ctx := ctxT(t)
	must(t, b.Write(ctx, encode(entries(0, 3)...)))
	if got := reasons(col.entries()); !slices.Equal(got, wantReasons(0, 3)) {
		t.Fatalf("got %v", got)
	}
	col.mu.Lock()
	ctype, auth, posts := col.ctype, col.headers.Get("Authorization"), col.posts
	col.mu.Unlock()
	if ctype != "application/x-ndjson" || auth != "Bearer s3cr3t" || posts != 1 {
		t.Fatalf("content-type %q, authorization %q, posts %d", ctype, auth, posts)
	}
	col.status.Store(http.StatusTooManyRequests)
	err = b.Write(ctx, encode(entry(3)))
	if !errors.Is(err, dlq.ErrBackend) || !strings.Contains(err.Error(), "status 429") {
		t.Fatalf("non-2xx: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "s3cr3t") {
		t.Fatal("header value leaked")
	}
	// An unreachable endpoint is an error too.
	col.Close()
	if err := b.Write(ctx, encode(entry(4))); !errors.Is(err, dlq.ErrBackend) {
		t.Fatalf("unreachable: %v", err)
	}
}

// startKafka starts an in-process Kafka cluster with the given topics.
func startKafka(t *testing.T, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	must(t, err)
	t.Cleanup(c.Close)
	return c
}

// consume reads n records from topic.
func consume(t *testing.T, c *kfake.Cluster, topic string, n int) []dlq.Entry {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	must(t, err)
	defer cl.Close()
	ctx := ctxT(t)
	var out []dlq.Entry
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records from %s", len(out), n, topic)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			e, err := dlq.Decode(r.Value)
			if err != nil {
				t.Fatalf("record value: %v", err)
			}
			if !bytes.Equal(r.Key, e.Key) || (r.Key == nil) != (e.Key == nil) {
				t.Fatalf("record key %q, want the entry's key %q", r.Key, e.Key)
			}
			out = append(out, e)
		})
	}
	return out
}

func TestKafkaBackendCommonTopic(t *testing.T) {
	c := startKafka(t, "keel.dlq")
	q, reg := newDLQ(t, dlq.Config{Mode: dlq.ModeSingle, Kafka: dlq.KafkaConfig{Enabled: true, Brokers: c.ListenAddrs()}}, dlq.Options{})
	ctx := ctxT(t)
	must(t, q.Write(ctx, entries(0, 5)...))
	got := consume(t, c, "keel.dlq", 5)
	if !slices.Equal(reasons(got), wantReasons(0, 5)) {
		t.Fatalf("got %v", reasons(got))
	}
	if got[0].Service != "svc" || got[0].Source.Token != "inmem:0" {
		t.Fatalf("entry %+v", got[0])
	}
	if v := metricValue(t, reg, "keel_dlq_backend_entries_total", map[string]string{"backend": "kafka", "result": "ok"}); v != 5 {
		t.Fatalf("kafka ok %v", v)
	}
}

func TestKafkaBackendPerDestinationTopics(t *testing.T) {
	c := startKafka(t, "common.dlq", "orders.dlq", "users.dlq")
	b, err := dlq.NewKafkaBackend(dlq.KafkaConfig{Brokers: c.ListenAddrs(), Routing: dlq.RoutingPerDestination, Topic: "common.dlq"},
		dlq.KafkaOptions{Metrics: newReg(), Logger: quietLogger()})
	must(t, err)
	ctx := ctxT(t)
	es := []dlq.Entry{
		{Reason: "a", Destination: "orders"},
		{Reason: "b", Destination: "users"},
		{Reason: "c"},                           // no destination: common topic
		{Reason: "d", Destination: "bad topic"}, // not a legal topic: common topic
		{Reason: "e", Destination: "orders"},
	}
	must(t, b.Write(ctx, encode(es...)))
	must(t, b.Close(ctx))
	if got := reasons(consume(t, c, "orders.dlq", 2)); !slices.Equal(got, []string{"a", "e"}) {
		t.Fatalf("orders.dlq %v", got)
	}
	if got := reasons(consume(t, c, "users.dlq", 1)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("users.dlq %v", got)
	}
	if got := reasons(consume(t, c, "common.dlq", 2)); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("common.dlq %v", got)
	}
}

func TestKafkaBackendReportsUnacknowledgedRecords(t *testing.T) {
	c := startKafka(t, "known.dlq")
	b, err := dlq.NewKafkaBackend(dlq.KafkaConfig{Brokers: c.ListenAddrs(), Routing: dlq.RoutingPerDestination,
		Topic: "known.dlq", SendTimeout: 2 * time.Second}, dlq.KafkaOptions{Metrics: newReg(), Logger: quietLogger(),
		ClientOpts: []kgo.Opt{kgo.UnknownTopicRetries(0)}})
	must(t, err)
	defer b.Close(context.Background())
	err = b.Write(ctxT(t), encode(dlq.Entry{Reason: "ok"}, dlq.Entry{Reason: "lost", Destination: "missing"}))
	var pe *dlq.PartialError
	if !errors.As(err, &pe) || !slices.Equal(pe.Failed, []int{1}) || !errors.Is(err, dlq.ErrBackend) {
		t.Fatalf("want entry 1 reported, got %v", err)
	}
}

func TestRedisBackendAddsToTheStream(t *testing.T) {
	rc := redisClient(t)
	ctx := ctxT(t)
	key := fmt.Sprintf("keel:test:dlq:%d", time.Now().UnixNano())
	t.Cleanup(func() { rc.Del(context.Background(), key) })
	addr := rc.Options().Addr
	q, reg := newDLQ(t, dlq.Config{Mode: dlq.ModeSingle,
		Redis: dlq.RedisConfig{Enabled: true, URL: secret.New("redis://" + addr), StreamKey: key}}, dlq.Options{})
	must(t, q.Write(ctx, entries(0, 4)...))
	msgs, err := rc.XRange(ctx, key, "-", "+").Result()
	must(t, err)
	if len(msgs) != 4 {
		t.Fatalf("stream has %d entries", len(msgs))
	}
	for i, m := range msgs {
		data, ok := m.Values["data"].(string)
		if !ok {
			t.Fatalf("message %s has no data field: %v", m.ID, m.Values)
		}
		e, err := dlq.Decode([]byte(data))
		must(t, err)
		if e.Reason != entry(i).Reason || string(e.Payload) != string(entry(i).Payload) {
			t.Fatalf("message %d: %+v", i, e)
		}
	}
	if v := metricValue(t, reg, "keel_dlq_backend_entries_total", map[string]string{"backend": "redis", "result": "ok"}); v != 4 {
		t.Fatalf("redis ok %v", v)
	}
}

func TestRedisBackendTrimsWithMaxLen(t *testing.T) {
	rc := redisClient(t)
	ctx := ctxT(t)
	key := fmt.Sprintf("keel:test:dlq:trim:%d", time.Now().UnixNano())
	t.Cleanup(func() { rc.Del(context.Background(), key) })
	b, err := dlq.NewRedisBackend(dlq.RedisConfig{StreamKey: key, MaxLen: 10}, dlq.RedisOptions{Client: rc})
	must(t, err)
	for i := 0; i < 5; i++ {
		must(t, b.Write(ctx, encode(entries(i*100, 100)...)))
	}
	n, err := rc.XLen(ctx, key).Result()
	must(t, err)
	// MAXLEN ~ trims whole stream nodes (100 entries by default), so about
	// max_len entries stay, never fewer.
	if n < 10 || n >= 500 {
		t.Fatalf("stream length %d after 500 adds with max_len ~10", n)
	}
	must(t, b.Close(ctx))
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("Close closed a client it did not build: %v", err)
	}
}

func TestRedisBackendUnreachableIsAnError(t *testing.T) {
	b, err := dlq.NewRedisBackend(dlq.RedisConfig{URL: secret.New("redis://127.0.0.1:1"), Timeout: time.Second}, dlq.RedisOptions{})
	must(t, err)
	defer b.Close(context.Background())
	if err := b.Write(ctxT(t), encode(entry(0))); !errors.Is(err, dlq.ErrBackend) {
		t.Fatalf("unreachable Redis: %v", err)
	}
}
