package kafka

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// The gate's actuator contract, as the governor uses it.
var _ interface {
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
} = (*Consumer)(nil)

func countPaused(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// Paused partitions return nothing while the member keeps its assignment
// past a session timeout (no rebalance); partitions assigned while paused
// are paused too; Resume continues at the right offsets.
func TestPauseGate(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(3, "g"))
	c.Produce(t, "g", kafkatest.Numbered("first", 30)...)
	cfg := testConfig(t, c, "pg", "g")
	cfg.Consumer.SessionTimeout = 2 * time.Second
	// Notice a new partition quickly.
	cfg.Overrides = map[string]string{"metadata.max.age.ms": "200"}
	reg := testMetrics()
	cfg.Metrics = reg
	m := newConsumerMetrics(reg)
	c1 := newTestConsumer(t, cfg)

	b := recvN(ctx, t, c1, 30, transport.Limits{})
	if err := c1.Commit(ctx, b.Tokens); err != nil {
		t.Fatal(err)
	}
	_, gen := c1.Client().GroupMetadata()

	if err := c1.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Pause(ctx); err != nil {
		t.Fatalf("second Pause: %v", err)
	}
	if n := countPaused(c1.Client().PauseFetchPartitions(nil)); n != 3 {
		t.Fatalf("%d partitions paused in the client, want 3", n)
	}
	c.Produce(t, "g", kafkatest.Numbered("second", 30)...)

	// Wait longer than the session timeout: nothing comes, and the member
	// is still the same generation with the same partitions.
	wctx, cancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	got, err := c1.Recv(wctx, transport.Limits{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || len(got.Records) != 0 {
		t.Fatalf("paused Recv returned %d record(s), err %v", len(got.Records), err)
	}
	if _, g := c1.Client().GroupMetadata(); g != gen {
		t.Fatalf("generation moved from %d to %d while paused: the pause caused a rebalance", gen, g)
	}
	if n := len(c1.Assigned()["g"]); n != 3 {
		t.Fatalf("paused member owns %d partitions, want 3", n)
	}
	if v := testutil.ToFloat64(m.paused); v != 3 {
		t.Fatalf("paused_partitions %v, want 3", v)
	}

	// A member joins and leaves while the gate holds: the partitions that
	// come back are paused as well.
	c2 := newTestConsumer(t, testConfig(t, c, "pg", "g"))
	eventually(ctx, t, "the second member to take partitions", func() bool { return len(c2.Assigned()["g"]) > 0 })
	eventually(ctx, t, "member one to give them up", func() bool { return len(c1.Assigned()["g"]) < 3 })
	if err := c2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "member one to own all partitions again", func() bool { return len(c1.Assigned()["g"]) == 3 })
	if n := countPaused(c1.Client().PauseFetchPartitions(nil)); n < 3 {
		t.Fatalf("%d partitions paused in the client after the reassignment, want 3", n)
	}

	// A partition the member never had, added while the gate holds, is
	// paused before it is fetched.
	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.AddPartitions(ctx, "g", 4); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the new partition to be assigned", func() bool { return len(c1.Assigned()["g"]) == 4 })
	paused := c1.Client().PauseFetchPartitions(nil)["g"]
	sort.Slice(paused, func(i, j int) bool { return paused[i] < paused[j] })
	if len(paused) != 4 || paused[3] != 3 {
		t.Fatalf("paused partitions in the client %v, want [0 1 2 3]", paused)
	}
	c.Produce(t, "g", kafkatest.Numbered("second", 40)[30:]...)
	wctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	got, err = c1.Recv(wctx, transport.Limits{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || len(got.Records) != 0 {
		t.Fatalf("Recv after the reassignment while paused returned %d record(s), err %v", len(got.Records), err)
	}

	if err := c1.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Resume(ctx); err != nil {
		t.Fatalf("second Resume: %v", err)
	}
	if v := testutil.ToFloat64(m.paused); v != 0 {
		t.Fatalf("paused_partitions %v after Resume, want 0", v)
	}
	rest := recvN(ctx, t, c1, 40, transport.Limits{})
	var want []string
	for i := 0; i < 40; i++ {
		want = append(want, "second"+itoa(i))
	}
	sort.Strings(want)
	gotP := sortedPayloads(rest.Records)
	if len(gotP) != 40 {
		t.Fatalf("got %d records after Resume, want 40", len(gotP))
	}
	for i := range want {
		if gotP[i] != want[i] {
			t.Fatalf("after Resume got %v, want %v", gotP, want)
		}
	}
}

// Pause and Resume on a closed consumer report ErrClosed.
func TestPauseAfterClose(t *testing.T) {
	c := startCluster(t, kfake.SeedTopics(1, "g"))
	c1 := newTestConsumer(t, testConfig(t, c, "pg", "g"))
	if err := c1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c1.Pause(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Pause after Close: %v", err)
	}
	if err := c1.Resume(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Resume after Close: %v", err)
	}
	if _, err := c1.Recv(context.Background(), transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := c1.Health(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
}
