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

// Recv honours the record cap and the soft byte cap (stop once reached,
// floor one record); the rest is served first by the next Recv, and a
// cancelled Recv loses nothing.
func TestRecvLimitsAndCancel(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "t"))
	var recs []*kgo.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%03d%097d", i, 0))}) // 100 bytes
	}
	c.Produce(t, "t", recs...)
	cfg := testConfig(t, c, "g", "t")
	cons := newTestConsumer(t, cfg)

	var got []string
	b, err := cons.Recv(ctx, transport.Limits{MaxRecords: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) < 1 || len(b.Records) > 3 {
		t.Fatalf("MaxRecords 3 gave %d", len(b.Records))
	}
	got = append(got, payloads(b.Records)...)

	b, err = cons.Recv(ctx, transport.Limits{MaxRecords: 100, MaxBytes: 250})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.Records); n > 3 {
		t.Fatalf("byte cap 250 with 100-byte records gave %d records", n)
	}
	if b.PayloadBytes() > 250+100 {
		t.Fatalf("byte cap 250 exceeded by more than one record: %d bytes", b.PayloadBytes())
	}
	got = append(got, payloads(b.Records)...)

	b, err = cons.Recv(ctx, transport.Limits{MaxRecords: 100, MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 1 {
		t.Fatalf("byte cap 1 gave %d records, want the floor of 1", len(b.Records))
	}
	got = append(got, payloads(b.Records)...)

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
