package kafka

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// The admin operations against a live cluster: topics, partitions,
// configs, lag, offset resets and groups.
func TestAdmin(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t)
	cfg := testConfig(t, c, "")
	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	if err := adm.CreateTopics(ctx, TopicSpec{Name: "adm", Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "3600000"}}); err != nil {
		t.Fatal(err)
	}
	if err := adm.CreateTopics(ctx, TopicSpec{Name: "adm", Partitions: 2}); err != nil {
		t.Fatalf("creating an existing topic: %v", err)
	}
	info, err := adm.DescribeTopic(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions != 2 || info.ReplicationFactor != 1 || info.Internal {
		t.Fatalf("DescribeTopic: %+v", info)
	}
	if _, err := adm.DescribeTopic(ctx, "missing"); err == nil {
		t.Fatal("DescribeTopic of a missing topic: nil error")
	}
	if err := adm.AddPartitions(ctx, "adm", 3); err != nil {
		t.Fatal(err)
	}
	if info, _ = adm.DescribeTopic(ctx, "adm"); info.Partitions != 3 {
		t.Fatalf("after AddPartitions: %d partitions", info.Partitions)
	}
	if err := adm.AddPartitions(ctx, "adm", 1); err == nil {
		t.Fatal("lowering the partition count: nil error")
	}
	conf, err := adm.TopicConfig(ctx, "adm")
	if err != nil {
		t.Fatal(err)
	}
	if conf["retention.ms"] != "3600000" {
		t.Fatalf("retention.ms %q", conf["retention.ms"])
	}
	if err := adm.SetTopicConfig(ctx, "adm", map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	if conf, _ = adm.TopicConfig(ctx, "adm"); conf["retention.ms"] != "60000" {
		t.Fatalf("retention.ms after SetTopicConfig %q", conf["retention.ms"])
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil || !slices.Contains(topics, "adm") {
		t.Fatalf("ListTopics %v, %v", topics, err)
	}

	// Records with timestamps 1000, 2000, ... on partition 0.
	cl := c.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := int64(1); i <= 6; i++ {
		r := &kgo.Record{Topic: "adm", Partition: 0, Value: []byte("v"), Timestamp: time.UnixMilli(i * 1000)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	gcfg := testConfig(t, c, "admg", "adm")
	cons := newTestConsumer(t, gcfg)
	b := recvN(ctx, t, cons, 6, transport.Limits{})
	if err := cons.Commit(ctx, b.Tokens[:2]); err != nil {
		t.Fatal(err)
	}
	lag, err := adm.ConsumerLag(ctx, "admg", "adm")
	if err != nil {
		t.Fatal(err)
	}
	if lag["adm"][0] != 4 || lag["adm"][1] != 0 || lag["adm"][2] != 0 {
		t.Fatalf("lag %v, want partition 0 at 4", lag)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil || !slices.Contains(groups, "admg") {
		t.Fatalf("ListGroups %v, %v", groups, err)
	}
	if _, err := adm.ResetOffsets(ctx, "admg", ResetEarliest(), "adm"); !errors.Is(err, ErrGroupActive) {
		t.Fatalf("reset of a live group: %v, want ErrGroupActive", err)
	}
	if err := cons.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the group to be empty", func() bool {
		_, err := adm.ResetOffsets(ctx, "admg", ResetLatest(), "adm")
		return err == nil
	})
	if got, _ := adm.Committed(ctx, "admg", "adm"); got["adm"][0] != 6 {
		t.Fatalf("after reset to latest: %v", got)
	}
	if _, err := adm.ResetOffsets(ctx, "admg", ResetEarliest(), "adm"); err != nil {
		t.Fatal(err)
	}
	if got, _ := adm.Committed(ctx, "admg", "adm"); got["adm"][0] != 0 {
		t.Fatalf("after reset to earliest: %v", got)
	}
	if _, err := adm.ResetOffsets(ctx, "admg", ResetToTime(time.UnixMilli(3500)), "adm"); err != nil {
		t.Fatal(err)
	}
	if got, _ := adm.Committed(ctx, "admg", "adm"); got["adm"][0] != 3 {
		t.Fatalf("after reset to 3.5 s: %v, want offset 3 (timestamp 4 s)", got)
	}
	if _, err := adm.ResetOffsets(ctx, "admg", ResetTo{}, "adm"); err == nil {
		t.Fatal("reset with a zero ResetTo: nil error")
	}

	if err := adm.DeleteTopics(ctx, "adm"); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "the topic to be gone", func() bool {
		topics, err := adm.ListTopics(ctx)
		return err == nil && !slices.Contains(topics, "adm")
	})
	if err := adm.DeleteTopics(ctx, "adm"); err == nil {
		t.Fatal("deleting a missing topic: nil error")
	}
}

// The lag reading drives group_members, consumer_lag and the
// partition-limited verdict and health check: two members on two lagging
// partitions are partition-limited, one member is not, and neither is a
// group without lag.
func TestLagAndPartitionLimited(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(2, "lag"))
	c.Produce(t, "lag", kafkatest.Numbered("x", 40)...)
	cfg := testConfig(t, c, "lagg", "lag")
	reg := testMetrics()
	cfg.Metrics = reg
	hr := health.New(health.Config{})
	cfg.Health = hr
	m := newConsumerMetrics(reg)
	a := newTestConsumer(t, cfg)
	eventually(ctx, t, "an assignment", func() bool { return len(a.Assigned()["lag"]) == 2 })
	if _, ok := a.LastLag(); ok {
		t.Fatal("LastLag reports a reading before the first one")
	}

	l, err := a.Lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Members != 1 || l.Partitions != 2 || l.Total != 40 || l.PartitionLimited {
		t.Fatalf("one member: %+v", l)
	}
	if total, ok := a.LastLag(); !ok || total != 40 {
		t.Fatalf("LastLag = %d, %v after a reading of 40", total, ok)
	}
	bcfg := testConfig(t, c, "lagg", "lag")
	b := newTestConsumer(t, bcfg)
	eventually(ctx, t, "two members", func() bool { return len(b.Assigned()["lag"]) == 1 && len(a.Assigned()["lag"]) == 1 })
	if l, err = a.Lag(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Members != 2 || !l.PartitionLimited || !a.PartitionLimited() {
		t.Fatalf("two members on two lagging partitions: %+v", l)
	}
	if v := testutil.ToFloat64(m.limited); v != 1 {
		t.Fatalf("partition_limited gauge %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.lagTotal); v != 40 {
		t.Fatalf("consumer_lag_total %v, want 40", v)
	}
	if v := testutil.ToFloat64(m.members); v != 2 {
		t.Fatalf("group_members %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.lag.With("lag", "0")) + testutil.ToFloat64(m.lag.With("lag", "1")); v != 40 {
		t.Fatalf("per-partition lag sums to %v, want 40", v)
	}
	if st := checkStatus(ctx, t, hr, HealthCheckPartitionLimited); st != health.Degraded {
		t.Fatalf("%s is %v, want degraded", HealthCheckPartitionLimited, st)
	}

	// Both members drain their partition and commit: no lag, not limited.
	for _, cons := range []*Consumer{a, b} {
		p := cons.Assigned()["lag"][0]
		got := recvN(ctx, t, cons, int(l.ByPartition["lag"][p]), transport.Limits{})
		if err := cons.Commit(ctx, got.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	if l, err = a.Lag(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Total != 0 || l.PartitionLimited || a.PartitionLimited() {
		t.Fatalf("after draining: %+v", l)
	}
	if total, ok := a.LastLag(); !ok || total != 0 {
		t.Fatalf("LastLag = %d, %v after draining", total, ok)
	}
	if st := checkStatus(ctx, t, hr, HealthCheckPartitionLimited); st != health.Healthy {
		t.Fatalf("%s is %v after draining, want healthy", HealthCheckPartitionLimited, st)
	}
	if st := checkStatus(ctx, t, hr, HealthCheckTransport); st != health.Healthy {
		t.Fatalf("%s is %v, want healthy", HealthCheckTransport, st)
	}
}

// lag_max_partitions caps the per-partition lag series: with a cap of 1
// on a three-partition topic only the first partition gets a series,
// while consumer_lag_total covers all three.
func TestLagSeriesCapped(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(3, "capped"))
	c.Produce(t, "capped", kafkatest.Numbered("x", 60)...)
	cfg := testConfig(t, c, "capg", "capped")
	cfg.LagMaxPartitions = 1
	reg := testMetrics()
	cfg.Metrics = reg
	cons := newTestConsumer(t, cfg)
	eventually(ctx, t, "an assignment", func() bool { return len(cons.Assigned()["capped"]) == 3 })
	for i := 0; i < 2; i++ { // a second reading adds no series
		l, err := cons.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l.Partitions != 3 || l.Total != 60 || len(l.ByPartition["capped"]) != 3 {
			t.Fatalf("lag reading %+v", l)
		}
		n, err := testutil.GatherAndCount(reg.Gatherer(), "keel_kafka_consumer_lag")
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("%d consumer_lag series with lag_max_partitions 1, want 1", n)
		}
		if v := keeltest.MetricValue(t, reg.Gatherer(), "keel_kafka_consumer_lag", map[string]string{"topic": "capped", "partition": "0"}); v != float64(l.ByPartition["capped"][0]) {
			t.Fatalf("consumer_lag{partition 0} = %v, want %d", v, l.ByPartition["capped"][0])
		}
		if v := keeltest.MetricValue(t, reg.Gatherer(), "keel_kafka_consumer_lag_total", nil); v != 60 {
			t.Fatalf("consumer_lag_total = %v, want 60 over every partition", v)
		}
	}
}

func TestPartitionLimitedTruthTable(t *testing.T) {
	cases := []struct {
		members, partitions int
		lag                 int64
		want                bool
	}{
		{0, 0, 0, false},
		{1, 0, 10, false},
		{1, 2, 10, false},
		{2, 2, 0, false},
		{2, 2, 1, true},
		{3, 2, 1, true},
	}
	for _, tc := range cases {
		if got := partitionLimited(tc.members, tc.partitions, tc.lag); got != tc.want {
			t.Errorf("partitionLimited(%d, %d, %d) = %v", tc.members, tc.partitions, tc.lag, got)
		}
	}
}

func checkStatus(ctx context.Context, t *testing.T, hr *health.Registry, name string) health.Status {
	t.Helper()
	for _, r := range hr.Report(ctx).Checks {
		if r.Name == name {
			return r.Status
		}
	}
	t.Fatalf("no health check %q", name)
	return 0
}
