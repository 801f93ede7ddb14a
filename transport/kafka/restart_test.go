package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// The broker restarts (same ports, same data directory) under a running
// producer and consumer: both carry on, nothing is lost, committed offsets
// survive, and a new member resumes after the last commit.
func TestBrokerRestart(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "rs"), kfake.DataDir(t.TempDir()))
	cfg := testConfig(t, c, "rsg", "rs")
	cfg.Producer.Topic = "rs"
	tr, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(context.Background())
	if err := tr.SendBatch(ctx, numbered("a", 100)); err != nil {
		t.Fatal(err)
	}
	first := recvN(ctx, t, tr, 100, transport.Limits{})
	if err := tr.Commit(ctx, first.Tokens); err != nil {
		t.Fatal(err)
	}

	c.Restart(t)

	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.Committed(ctx, "rsg", "rs")
	if err != nil {
		t.Fatal(err)
	}
	if sum := committed["rs"][0] + committed["rs"][1]; sum != 100 {
		t.Fatalf("committed offsets after the restart %v: want the 100 records committed before it", committed["rs"])
	}

	if err := tr.SendBatch(ctx, numbered("b", 50)); err != nil {
		t.Fatalf("send after the restart: %v", err)
	}
	seen := map[string]bool{}
	var last transport.Batch
	for len(seen) < 50 {
		b, err := tr.Recv(ctx, transport.Limits{})
		if err != nil {
			t.Fatalf("recv after the restart: %v", err)
		}
		for _, r := range b.Records {
			if r.Payload[0] == 'a' {
				t.Fatalf("committed record %q came again after the restart", r.Payload)
			}
			seen[string(r.Payload)] = true
		}
		last.Tokens = append(last.Tokens, b.Tokens...)
	}
	if err := tr.Commit(ctx, last.Tokens); err != nil {
		t.Fatalf("commit after the restart: %v", err)
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lag, err := adm.ConsumerLag(ctx, "rsg", "rs")
	if err != nil {
		t.Fatal(err)
	}
	for p, l := range lag["rs"] {
		if l != 0 {
			t.Fatalf("partition %d lags %d after everything was committed", p, l)
		}
	}
	c.Produce(t, "rs", kafkatest.Numbered("c", 3)...)
	cons := newTestConsumer(t, cfg)
	b := recvN(ctx, t, cons, 3, transport.Limits{})
	for _, r := range b.Records {
		if r.Payload[0] != 'c' {
			t.Fatalf("new member got %q, want only records after the last commit", r.Payload)
		}
	}
}
