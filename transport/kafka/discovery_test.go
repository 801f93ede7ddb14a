package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// Auto-discovery subscribes to the matching topics at start and to new
// ones at the next refresh; excluded topics are never subscribed.
func TestAutoDiscovery(t *testing.T) {
	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "app.a", "app.skip", "other", "__hidden"))
	cfg := testConfig(t, c, "dg")
	cfg.AutoDiscover = true
	cfg.TopicInclude = []string{`^app\.`, `^__`}
	cfg.TopicExclude = []string{`^__`, `\.skip$`}
	cfg.TopicRefresh = 50 * time.Millisecond
	cons := newTestConsumer(t, cfg)
	if got := fmt.Sprint(cons.Topics()); got != "[app.a]" {
		t.Fatalf("subscribed at start to %s, want [app.a]", got)
	}

	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopics(ctx, TopicSpec{Name: "app.b", Partitions: 2}, TopicSpec{Name: "other.b", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "app.b to be subscribed", func() bool { return len(cons.Topics()) == 2 })
	if got := fmt.Sprint(cons.Topics()); got != "[app.a app.b]" {
		t.Fatalf("subscribed to %s, want [app.a app.b]", got)
	}
	c.Produce(t, "app.b", kafkatest.Values("found")...)
	c.Produce(t, "other", kafkatest.Values("ignored")...)
	b := recvN(ctx, t, cons, 1, transport.Limits{})
	if string(b.Records[0].Payload) != "found" {
		t.Fatalf("got %q from %v", b.Records[0].Payload, b.Tokens[0])
	}
}

// The include/exclude rules: exclude wins, no include means all, the
// default excludes internal topics.
func TestMatchTopic(t *testing.T) {
	cases := []struct {
		include, exclude []string
		topic            string
		want             bool
	}{
		{nil, nil, "orders", true},
		{nil, nil, "__consumer_offsets", false},
		{nil, []string{}, "__consumer_offsets", true},
		{[]string{"^a"}, nil, "abc", true},
		{[]string{"^a"}, nil, "bcd", false},
		{[]string{"^a", "^b"}, nil, "bcd", true},
		{[]string{"^a"}, []string{"c$"}, "abc", false},
	}
	for _, tc := range cases {
		s, err := Config{Role: RoleProducer, Producer: ProducerConfig{Topic: "x"}, TopicInclude: tc.include, TopicExclude: tc.exclude, Environment: "test"}.resolve()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.matchTopic(tc.topic); got != tc.want {
			t.Errorf("include %q exclude %q topic %q: %v, want %v", tc.include, tc.exclude, tc.topic, got, tc.want)
		}
	}
}
