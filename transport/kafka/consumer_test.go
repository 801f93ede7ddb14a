package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// Records sent through the Producer come back from the Consumer with key,
// headers, timestamp, topic, partition and offset; a commit makes a
// restarted consumer resume after the committed offset.
func TestSendRecvCommitResume(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(3, "events"))
	cfg := testConfig(t, c, "g1", "events")
	cfg.Producer.Topic = "events"
	reg := testMetrics()
	cfg.Metrics = reg
	p := newTestProducer(t, cfg)

	ts := time.UnixMilli(1_700_000_000_123)
	recs := numbered("r", 30)
	for i := range recs {
		recs[i].Timestamp = ts
		recs[i].Headers = []transport.Header{{Key: "h", Value: []byte(fmt.Sprint(i))}}
	}
	if err := p.SendBatch(ctx, recs); err != nil {
		t.Fatalf("SendBatch: %v", err)
	}

	cons := newTestConsumer(t, cfg)
	b := recvN(ctx, t, cons, 30, transport.Limits{MaxRecords: 100})
	if len(b.Records) != 30 || len(b.Tokens) != 30 {
		t.Fatalf("got %d records, %d tokens; want 30 each", len(b.Records), len(b.Tokens))
	}
	seen := map[string]bool{}
	for i, r := range b.Records {
		tok, ok := Position(b, i)
		if !ok {
			t.Fatalf("no position for record %d", i)
		}
		if tok.Topic != "events" || tok.Partition < 0 || tok.Partition > 2 || tok.Offset < 0 {
			t.Fatalf("token %v: bad position", tok)
		}
		if string(r.Key) != string(r.Payload) {
			t.Fatalf("key %q, payload %q", r.Key, r.Payload)
		}
		if !r.Timestamp.Equal(ts) {
			t.Fatalf("timestamp %v, want %v", r.Timestamp, ts)
		}
		if v, ok := r.Header("h"); !ok || len(v) == 0 {
			t.Fatalf("record %q lost its header", r.Payload)
		}
		if got := tok.String(); got != fmt.Sprintf("kafka:events:%d:%d", tok.Partition, tok.Offset) {
			t.Fatalf("token string %q", got)
		}
		seen[string(r.Payload)] = true
	}
	if len(seen) != 30 {
		t.Fatalf("got %d distinct records, want 30", len(seen))
	}
	if err := cons.Commit(ctx, b.Tokens); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	cm, pm := newConsumerMetrics(reg), newProducerMetrics(reg)
	for _, m := range []struct {
		name      string
		got, want float64
	}{
		{"received_records_total", testutil.ToFloat64(cm.records), 30},
		{"received_bytes_total", testutil.ToFloat64(cm.bytes), float64(b.PayloadBytes())},
		{"commits_total", testutil.ToFloat64(cm.commits), 1},
		{"assigned_partitions", testutil.ToFloat64(cm.assigned), 3},
		{"sent_records_total", testutil.ToFloat64(pm.records), 30},
		{"sent_bytes_total", testutil.ToFloat64(pm.bytes), float64(b.PayloadBytes())},
	} {
		if m.got != m.want {
			t.Errorf("%s = %v, want %v", m.name, m.got, m.want)
		}
	}
	// Committing the same tokens again sends nothing (no rewind, no
	// duplicate request).
	if err := cons.Commit(ctx, b.Tokens); err != nil || testutil.ToFloat64(cm.commits) != 1 {
		t.Fatalf("second commit of the same tokens: %v, commits %v", err, testutil.ToFloat64(cm.commits))
	}
	// Foreign tokens are ignored.
	if err := cons.Commit(ctx, []transport.Token{&Token{Topic: "events", Offset: 99}, fakeToken{}}); err != nil {
		t.Fatalf("foreign tokens: %v", err)
	}
	if err := cons.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if v := testutil.ToFloat64(cm.assigned); v != 0 {
		t.Fatalf("assigned_partitions %v after Close", v)
	}

	// Committed offsets are the end offsets: a restarted member gets only
	// the new records.
	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	lag, err := adm.ConsumerLag(ctx, "g1", "events")
	if err != nil {
		t.Fatal(err)
	}
	for p, l := range lag["events"] {
		if l != 0 {
			t.Fatalf("partition %d lag %d after committing everything", p, l)
		}
	}
	if err := p.SendBatch(ctx, numbered("s", 5)); err != nil {
		t.Fatal(err)
	}
	cons2 := newTestConsumer(t, cfg)
	b2 := recvN(ctx, t, cons2, 5, transport.Limits{})
	for _, r := range b2.Records {
		if r.Payload[0] != 's' {
			t.Fatalf("restarted consumer re-delivered committed record %q", r.Payload)
		}
	}
}

type fakeToken struct{}

func (fakeToken) String() string { return "fake" }

// Static membership: the member joins with its instance id.
func TestStaticMembership(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "st"))
	cfg := testConfig(t, c, "stg", "st")
	cfg.GroupInstanceID = "pod-0"
	cons := newTestConsumer(t, cfg)
	eventually(ctx, t, "an assignment", func() bool { return len(cons.Assigned()["st"]) == 1 })
	adm := kadm.NewClient(c.Client(t))
	groups, err := adm.DescribeGroups(ctx, "stg")
	if err != nil {
		t.Fatal(err)
	}
	g := groups["stg"]
	if len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "pod-0" {
		t.Fatalf("group members %+v: want one with instance id pod-0", g.Members)
	}
}

// A consumer closed without committing leaves its records to the next
// member of the group.
func TestCloseWithoutCommitRedelivers(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "t"))
	c.Produce(t, "t", kafkatest.Numbered("x", 20)...)
	cfg := testConfig(t, c, "g", "t")

	c1 := newTestConsumer(t, cfg)
	first := recvN(ctx, t, c1, 20, transport.Limits{})
	// Commit only the records of one partition.
	var part0 []transport.Token
	n0 := 0
	for i := range first.Records {
		if tok, _ := Position(first, i); tok.Partition == 0 {
			part0 = append(part0, tok)
			n0++
		}
	}
	if err := c1.Commit(ctx, part0); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c2 := newTestConsumer(t, cfg)
	again := recvN(ctx, t, c2, 20-n0, transport.Limits{})
	for i := range again.Records {
		if tok, _ := Position(again, i); tok.Partition == 0 {
			t.Fatalf("committed partition 0 re-delivered %q", again.Records[i].Payload)
		}
	}
	if len(again.Records) != 20-n0 {
		t.Fatalf("re-delivered %d, want %d", len(again.Records), 20-n0)
	}
}

// waitBuffered waits until the consumer's client holds n fetched records,
// so that what a Recv returns depends on its limits alone.
func waitBuffered(ctx context.Context, t *testing.T, cons *Consumer, n int64) {
	t.Helper()
	eventually(ctx, t, fmt.Sprintf("%d fetched record(s)", n), func() bool { return cons.Client().BufferedFetchRecords() >= n })
}

// hundredByteRecords returns n records of 100-byte values numbered
// 000..n-1 in their first three bytes.
func hundredByteRecords(n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprintf("%03d%097d", i, 0))}
	}
	return recs
}

// Recv honours the record cap and the soft byte cap (stop once the cap is
// reached, floor one record), with exact counts once the records are
// buffered; the rest is served first by the next Recv, and a cancelled
// Recv loses nothing.
func TestRecvLimitsAndCancel(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "t"))
	c.Produce(t, "t", hundredByteRecords(10)...)
	cfg := testConfig(t, c, "g", "t")
	cons := newTestConsumer(t, cfg)
	waitBuffered(ctx, t, cons, 10)

	var got []string
	for _, step := range []struct {
		lim  transport.Limits
		want int
	}{
		{transport.Limits{MaxRecords: 3}, 3},
		// 100 + 100 < 250 <= 300: the third record reaches the cap.
		{transport.Limits{MaxRecords: 100, MaxBytes: 250}, 3},
		{transport.Limits{MaxRecords: 100, MaxBytes: 200}, 2},
		// A cap below one record still gives one.
		{transport.Limits{MaxRecords: 100, MaxBytes: 1}, 1},
	} {
		b, err := cons.Recv(ctx, step.lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) != step.want || len(b.Tokens) != step.want {
			t.Fatalf("limits %+v gave %d records, %d tokens; want %d", step.lim, len(b.Records), len(b.Tokens), step.want)
		}
		got = append(got, payloads(b.Records)...)
	}

	// A cancelled Recv returns the context error and keeps what was
	// buffered.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := cons.Recv(cctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Recv: %v", err)
	}
	rest := recvN(ctx, t, cons, 10-len(got), transport.Limits{})
	got = append(got, payloads(rest.Records)...)
	if len(got) != 10 {
		t.Fatalf("got %d records, want 10", len(got))
	}
	for i, v := range got {
		if v[:3] != fmt.Sprintf("%03d", i) {
			t.Fatalf("record %d is %q: order broken or record lost: %q", i, v[:3], got)
		}
	}
}

// consumer.max_poll_records caps a Recv below the caller's MaxRecords;
// the records past the cap come in the next calls, in order.
func TestRecvClampedToMaxPollRecords(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "t"))
	c.Produce(t, "t", hundredByteRecords(10)...)
	cfg := testConfig(t, c, "g", "t")
	cfg.Consumer.MaxPollRecords = 4
	cons := newTestConsumer(t, cfg)
	waitBuffered(ctx, t, cons, 10)

	var got []string
	for _, want := range []int{4, 4, 2} {
		b, err := cons.Recv(ctx, transport.Limits{MaxRecords: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) != want {
			t.Fatalf("Recv with MaxRecords 100 and max_poll_records 4 gave %d records, want %d", len(b.Records), want)
		}
		got = append(got, payloads(b.Records)...)
	}
	for i, v := range got {
		if v[:3] != fmt.Sprintf("%03d", i) {
			t.Fatalf("record %d is %q: order broken", i, v[:3])
		}
	}
}
