package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// runEngine runs the engine from in to out in a goroutine and returns a
// function that cancels it and returns its error.
func runEngine(t *testing.T, cfg engine.Config, r transport.Receiver, process engine.ProcessFunc, s transport.Sender) (stop func() error, done <-chan error) {
	t.Helper()
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- eng.Run(ctx, r, process, engine.SinkTo(s)) }()
	var once sync.Once
	var res error
	return func() error {
		once.Do(func() { cancel(); res = <-ch })
		return res
	}, ch
}

func passThrough(_ context.Context, b transport.Batch) (transport.Batch, error) {
	return b.MapRecords(func(r transport.Record) []transport.Record {
		r.Payload = append([]byte("out-"), r.Payload...)
		return []transport.Record{r}
	}), nil
}

// Kafka -> process -> Kafka through the engine: every input record
// reaches the output at least once, with its key and trace context.
func TestEngineEndToEnd(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(4, "in", "out"))
	const n = 2000
	in := kafkatest.Numbered("e", n)
	for _, r := range in {
		r.Headers = []kgo.RecordHeader{{Key: TraceparentHeader, Value: []byte(testTraceparent)}}
	}
	c.Produce(t, "in", in...)

	cfg := testConfig(t, c, "e2e", "in")
	cfg.Producer.Topic = "out"
	tr, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	stop, _ := runEngine(t, engine.Config{MaxRecords: 100, Metrics: testMetrics(), Logger: testLogger(t)}, tr, passThrough, tr)

	seen := map[string]int{}
	out := c.ReadAll(ctx, t, "out", n)
	for _, r := range out {
		if string(r.Value) != "out-"+string(r.Key) {
			t.Fatalf("output %q has key %q", r.Value, r.Key)
		}
		tp := ""
		for _, h := range r.Headers {
			if h.Key == TraceparentHeader {
				tp = string(h.Value)
			}
		}
		if tp != testTraceparent {
			t.Fatalf("output %q lost its traceparent: %q", r.Value, tp)
		}
		seen[string(r.Key)]++
	}
	if err := stop(); err != nil {
		t.Fatalf("engine: %v", err)
	}
	for _, r := range in {
		if seen[string(r.Key)] == 0 {
			t.Fatalf("input %q never reached the output", r.Key)
		}
	}
}

// commitCounter observes OffsetCommit requests on a cluster, failing the
// one numbered failAt (1-based; 0 never) with OFFSET_METADATA_TOO_LARGE on
// every partition. It records the offsets of the commits that passed,
// per partition (the tests commit one topic).
type commitCounter struct {
	mu        sync.Mutex
	n         int
	failAt    int
	afterFail int
	passed    map[int32]int64
}

func (cc *commitCounter) install(c *kafkatest.Cluster) {
	cc.passed = map[int32]int64{}
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.OffsetCommitRequest)
		cc.mu.Lock()
		defer cc.mu.Unlock()
		cc.n++
		switch {
		case cc.failAt > 0 && cc.n == cc.failAt:
			resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
			resp.Version = req.Version
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition = p.Partition
					rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil, true
		case cc.failAt > 0 && cc.n > cc.failAt:
			cc.afterFail++
		default:
			for _, t := range req.Topics {
				for _, p := range t.Partitions {
					cc.passed[p.Partition] = p.Offset
				}
			}
		}
		return nil, nil, false
	})
}

func (cc *commitCounter) snapshot() (n, after int, passed map[int32]int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	passed = make(map[int32]int64, len(cc.passed))
	for k, v := range cc.passed {
		passed[k] = v
	}
	return cc.n, cc.afterFail, passed
}

// An OffsetCommit error stops the engine with a commit error, nothing is
// committed after it, and a new member resumes from the last successful
// commit, so the failed block comes again.
func TestEngineCommitErrorStops(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "in", "out"))
	c.Produce(t, "in", kafkatest.Numbered("c", 600)...)
	cc := &commitCounter{failAt: 3}
	cc.install(c)

	cfg := testConfig(t, c, "cg", "in")
	cfg.Producer.Topic = "out"
	tr, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, done := runEngine(t, engine.Config{MaxRecords: 50, Metrics: testMetrics(), Logger: testLogger(t)}, tr, passThrough, tr)
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		t.Fatal("engine did not stop on the commit error")
	}
	if !errors.Is(runErr, engine.ErrCommit) || !errors.Is(runErr, transport.ErrCommit) || !errors.Is(runErr, kerr.OffsetMetadataTooLarge) {
		t.Fatalf("engine error %v: want a commit error with the broker's cause", runErr)
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n, after, passed := cc.snapshot()
	if n != 3 || after != 0 {
		t.Fatalf("%d commit request(s), %d after the failure: want 3 and 0", n, after)
	}
	for _, m := range []struct {
		name string
		want float64
	}{
		{"keel_kafka_commit_failures_total", 1},
		{"keel_kafka_commits_total", 2},
		{"keel_kafka_commit_duration_seconds", 3}, // one sample per commit request
	} {
		if got := keeltest.MetricValue(t, cfg.Metrics.Gatherer(), m.name, nil); got != m.want {
			t.Errorf("%s = %v, want %v", m.name, got, m.want)
		}
	}

	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.Committed(ctx, "cg", "in")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(committed["in"]) != fmt.Sprint(passed) {
		t.Fatalf("committed %v, want the last successful commits %v", committed["in"], passed)
	}

	// A new member starts at the committed offsets.
	cons := newTestConsumer(t, testConfig(t, c, "cg", "in"))
	first := map[int32]int64{}
	for len(first) < 2 {
		b, err := cons.Recv(ctx, transport.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range b.Records {
			tok, _ := Position(b, i)
			if _, ok := first[tok.Partition]; !ok {
				first[tok.Partition] = tok.Offset
			}
		}
	}
	for p, off := range first {
		want := int64(0)
		if v, ok := committed["in"][p]; ok {
			want = v
		}
		if off != want {
			t.Fatalf("partition %d resumed at %d, want the committed %d", p, off, want)
		}
	}
}

// A produce error fails the sink; the engine stops and commits nothing.
func TestEngineProduceErrorCommitsNothing(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "in", "out"))
	c.Produce(t, "in", kafkatest.Numbered("p", 200)...)
	var produces atomic.Int64
	c.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	cc := &commitCounter{}
	cc.install(c)

	cfg := testConfig(t, c, "pg", "in")
	cfg.Producer.Topic = "out"
	tr, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	_, done := runEngine(t, engine.Config{MaxRecords: 50, Metrics: testMetrics(), Logger: testLogger(t)}, tr, passThrough, tr)
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		t.Fatal("engine did not stop on the produce error")
	}
	if !errors.Is(runErr, engine.ErrSink) || !errors.Is(runErr, kerr.TopicAuthorizationFailed) {
		t.Fatalf("engine error %v: want a sink error with the broker's cause", runErr)
	}
	if produces.Load() == 0 {
		t.Fatal("no produce request reached the broker")
	}
	if n, _, _ := cc.snapshot(); n != 0 {
		t.Fatalf("%d offset commit(s) after a failed sink; want none", n)
	}
	if err := tr.Health(ctx); err == nil {
		t.Fatal("producer health is nil after a fatal send failure")
	}
}
