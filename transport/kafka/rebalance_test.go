package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// collector is a sink that counts every payload it is given, per member.
type collector struct {
	mu     sync.Mutex
	counts map[string]int
	by     map[string]int
	total  int
}

func newCollector() *collector {
	return &collector{counts: map[string]int{}, by: map[string]int{}}
}

func (c *collector) sink(member string) engine.SinkFunc {
	return func(_ context.Context, b transport.Batch) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range b.Records {
			c.counts[string(r.Payload)]++
		}
		c.by[member] += len(b.Records)
		c.total += len(b.Records)
		return nil
	}
}

func (c *collector) stats() (distinct, total int, by map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	by = map[string]int{}
	for k, v := range c.by {
		by[k] = v
	}
	return len(c.counts), c.total, by
}

func identity(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }

// startMember runs an engine on a new consumer of cfg and returns its stop
// function (cancel, wait, close).
func startMember(t *testing.T, cfg Config, col *collector, member string, maxRecords int) (cons *Consumer, stop func()) {
	t.Helper()
	cons = newTestConsumer(t, cfg)
	eng, err := engine.New(engine.Config{MaxRecords: maxRecords, Metrics: testMetrics(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, cons, identity, col.sink(member)) }()
	var once sync.Once
	return cons, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("member %s engine: %v", member, err)
			}
			_ = cons.Close(context.Background())
		})
	}
}

// A second member joins under load, then the first leaves: nothing is
// lost, duplicates stay within the blocks in flight, and every offset is
// committed in the end.
func TestRebalanceUnderLoadLosesNothing(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(6, "load"))
	const backlog, live, block = 1500, 1500, 50
	c.Produce(t, "load", kafkatest.Numbered("b", backlog)...)
	cfg := testConfig(t, c, "lg", "load")
	col := newCollector()

	// Keep producing while members come and go.
	pcfg := cfg
	pcfg.Producer.Topic = "load"
	prod := newTestProducer(t, pcfg)
	prodDone := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		for i := 0; i < live; i += 50 {
			if i == 500 {
				<-release
			}
			if err := prod.SendBatch(ctx, numbered("l", live)[i:i+50]); err != nil {
				prodDone <- err
				return
			}
		}
		prodDone <- nil
	}()

	a, stopA := startMember(t, cfg, col, "a", block)
	defer stopA()
	eventually(ctx, t, "member a to process 500 records", func() bool { _, n, _ := col.stats(); return n >= 500 })
	b, stopB := startMember(t, cfg, col, "b", block)
	defer stopB()
	eventually(ctx, t, "the partitions to be shared", func() bool {
		return len(a.Assigned()["load"]) < 6 && len(b.Assigned()["load"]) > 0
	})
	close(release)
	eventually(ctx, t, "2000 distinct records", func() bool { d, _, _ := col.stats(); return d >= 2000 })
	stopA()
	if err := <-prodDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	eventually(ctx, t, "every record", func() bool { d, _, _ := col.stats(); return d == backlog+live })

	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	eventually(ctx, t, "member b to commit everything", func() bool {
		lag, err := adm.ConsumerLag(ctx, "lg", "load")
		if err != nil {
			return false
		}
		var total int64
		for _, l := range lag["load"] {
			total += l
		}
		return total == 0 && len(lag["load"]) == 6
	})
	stopB()

	distinct, total, by := col.stats()
	if distinct != backlog+live {
		t.Fatalf("%d distinct records, want %d", distinct, backlog+live)
	}
	if by["b"] == 0 {
		t.Fatal("member b processed nothing")
	}
	// Two rebalances (join, leave), each can repeat at most the block in
	// flight of each member; cancelling member a repeats at most its block.
	if dup := total - distinct; dup > 5*block {
		t.Fatalf("%d duplicates (a %d, b %d records), want at most %d", dup, by["a"], by["b"], 5*block)
	}
	t.Logf("records: a %d, b %d, duplicates %d", by["a"], by["b"], total-distinct)
}

// splitGroup starts member b next to a (which holds both partitions of a
// two-partition topic) and returns the partition that moves to b, once b
// owns it.
func splitGroup(ctx context.Context, t *testing.T, a, b *Consumer, topic string) int32 {
	t.Helper()
	eventually(ctx, t, "member b to get a partition", func() bool { return len(b.Assigned()[topic]) == 1 })
	eventually(ctx, t, "member a to keep one partition", func() bool { return len(a.Assigned()[topic]) == 1 })
	return b.Assigned()[topic][0]
}

// A block in flight on a revoked partition is committed before the revoke
// completes: the new owner starts after it.
func TestRevokeWaitsForTheBlockInFlight(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "rv"))
	c.Produce(t, "rv", kafkatest.Numbered("x", 40)...)
	cfg := testConfig(t, c, "rg", "rv")
	cfg.Consumer.RevokeWait = 8 * time.Second

	a := newTestConsumer(t, cfg)
	waiting := make(chan struct{})
	var once sync.Once
	a.hookRevokeWait = func() { once.Do(func() { close(waiting) }) }
	block := recvN(ctx, t, a, 40, transport.Limits{MaxRecords: 100})

	b := newTestConsumer(t, cfg)
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatal("the revoke did not wait for the block in flight")
	}
	// The revoke is waiting: the block commits in full, both partitions.
	if err := a.Commit(ctx, block.Tokens); err != nil {
		t.Fatalf("commit during the revoke: %v", err)
	}
	moved := splitGroup(ctx, t, a, b, "rv")

	c.Produce(t, "rv", kafkatest.Numbered("y", 40)...)
	got := recvN(ctx, t, b, 1, transport.Limits{})
	for i, r := range got.Records {
		tok, _ := Position(got, i)
		if tok.Partition != moved || r.Payload[0] != 'y' {
			t.Fatalf("new owner got %q from partition %d: the committed block came again", r.Payload, tok.Partition)
		}
	}
}

// A commit that arrives after the revoke fenced the partition does not
// commit it: the new owner's commit stands.
func TestLateCommitIsFenced(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "lc"))
	c.Produce(t, "lc", kafkatest.Numbered("x", 40)...)
	cfg := testConfig(t, c, "lcg", "lc")
	cfg.Consumer.RevokeWait = 50 * time.Millisecond
	reg := testMetrics()
	cfg.Metrics = reg

	a := newTestConsumer(t, cfg)
	stale := recvN(ctx, t, a, 40, transport.Limits{MaxRecords: 100})

	bcfg := cfg
	bcfg.Metrics = testMetrics()
	b := newTestConsumer(t, bcfg)
	moved := splitGroup(ctx, t, a, b, "lc")
	kept := a.Assigned()["lc"][0]

	// The new owner reads three records of the moved partition and
	// commits them.
	got := recvN(ctx, t, b, 3, transport.Limits{MaxRecords: 3})
	if err := b.Commit(ctx, got.Tokens[:3]); err != nil {
		t.Fatal(err)
	}
	// The old owner's late commit covers both partitions.
	if err := a.Commit(ctx, stale.Tokens); err != nil {
		t.Fatalf("late commit: %v", err)
	}
	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.Committed(ctx, "lcg", "lc")
	if err != nil {
		t.Fatal(err)
	}
	if got := committed["lc"][moved]; got != 3 {
		t.Fatalf("moved partition %d committed at %d: the late commit overwrote the new owner's 3", moved, got)
	}
	var keptEnd int64
	for i := range stale.Records {
		if tok, _ := Position(stale, i); tok.Partition == kept && tok.Offset+1 > keptEnd {
			keptEnd = tok.Offset + 1
		}
	}
	if got := committed["lc"][kept]; got != keptEnd {
		t.Fatalf("kept partition %d committed at %d, want %d", kept, got, keptEnd)
	}
	if v := testutil.ToFloat64(newConsumerMetrics(reg).commitFenced); v != 1 {
		t.Fatalf("commit_fenced_partitions_total %v, want 1", v)
	}
	// Member a saw one assignment (both partitions) and one revoke (the
	// moved partition).
	for _, event := range []string{"assigned", "revoked"} {
		if v := keeltest.MetricValue(t, reg.Gatherer(), "keel_kafka_rebalances_total", map[string]string{"event": event}); v != 1 {
			t.Errorf("rebalances_total{event=%q} = %v, want 1", event, v)
		}
	}
	if v := keeltest.MetricValue(t, reg.Gatherer(), "keel_kafka_assigned_partitions", nil); v != 1 {
		t.Errorf("assigned_partitions = %v after the split, want 1", v)
	}
}

// Partitions lost on a group error are fenced at once: a commit of their
// tokens sends nothing, and the records come again after the member
// rejoins.
func TestLostPartitionsAreFenced(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "lp"))
	c.Produce(t, "lp", kafkatest.Numbered("x", 10)...)
	cfg := testConfig(t, c, "lpg", "lp")
	reg := testMetrics()
	cfg.Metrics = reg
	a := newTestConsumer(t, cfg)
	stale := recvN(ctx, t, a, 10, transport.Limits{})

	cc := &commitCounter{}
	cc.install(c)
	// Expel the member: its next heartbeat is answered UNKNOWN_MEMBER_ID.
	c.ControlKey(kmsg.Heartbeat.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.HeartbeatRequest)
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.Version = req.Version
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	lost := newConsumerMetrics(reg).rebalances.With("lost")
	eventually(ctx, t, "the partitions to be lost", func() bool { return testutil.ToFloat64(lost) >= 1 })
	if err := a.Commit(ctx, stale.Tokens); err != nil {
		t.Fatalf("commit of lost partitions: %v", err)
	}
	if n, _, _ := cc.snapshot(); n != 0 {
		t.Fatalf("%d commit request(s) for lost partitions, want none", n)
	}
	again := recvN(ctx, t, a, 10, transport.Limits{})
	if len(again.Records) != 10 || again.Records[0].Payload == nil {
		t.Fatalf("records after rejoining: %d", len(again.Records))
	}
	if err := a.Commit(ctx, again.Tokens); err != nil {
		t.Fatalf("commit after rejoining: %v", err)
	}
	if n, _, _ := cc.snapshot(); n != 1 {
		t.Fatalf("%d commit request(s) after rejoining, want 1", n)
	}
	if err := a.Commit(ctx, stale.Tokens); err != nil {
		t.Fatalf("second stale commit: %v", err)
	}
	if n, _, _ := cc.snapshot(); n != 1 {
		t.Fatalf("a stale token was committed after rejoining (%d requests)", n)
	}
}
