package keel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
	"github.com/keel-go/keel/transport/kafka"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// kafkaApp consumes the kafka section "input" through the governed engine
// into the inmem section "output", and hands the test the handles it
// needs to drive it.
type kafkaApp struct {
	pressure  level
	handles   chan *keel.Runtime
	consumer  chan *kafka.Consumer
	out       chan *inmem.Transport
	delivered atomic.Int64
	progress  chan struct{}
}

func newKafkaApp() *kafkaApp {
	return &kafkaApp{
		handles: make(chan *keel.Runtime, 1), consumer: make(chan *kafka.Consumer, 1),
		out: make(chan *inmem.Transport, 1), progress: make(chan struct{}, 1024),
	}
}

func (k *kafkaApp) app() keel.App {
	return keel.App{
		Name:       "keeltest",
		Transports: []string{"input", "output"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			rt.Governor().Pressure().AddSoft(governor.FuncSource("test", k.pressure.get), 1)
			in, err := rt.Receiver(ctx, "input")
			if err != nil {
				return err
			}
			c, ok := in.(*kafka.Consumer)
			if !ok {
				return fmt.Errorf("the kafka receiver is a %T, want the consumer itself (its gate pauses partitions)", in)
			}
			out, err := rt.Sender(ctx, "output")
			if err != nil {
				return err
			}
			k.handles <- rt
			k.consumer <- c
			k.out <- queue(out)
			rt.MarkStarted()
			send := rt.Engine().SinkTo(out)
			return rt.Engine().RunGoverned(ctx, in, passThrough, func(ctx context.Context, b transport.Batch) error {
				if err := send(ctx, b); err != nil {
					return err
				}
				k.delivered.Add(int64(len(b.Records)))
				k.progress <- struct{}{}
				return nil
			})
		},
	}
}

// waitDelivered waits until n records reached the sink.
func (k *kafkaApp) waitDelivered(t *testing.T, ctx context.Context, n int64) {
	t.Helper()
	for k.delivered.Load() < n {
		wait(t, ctx, k.progress, fmt.Sprintf("%d records delivered (have %d)", n, k.delivered.Load()))
	}
}

// TestKafkaThroughEngine: a service reads the kafka section from an
// in-process cluster through the governed engine into an inmem sink.
// Every record is delivered and committed; under pressure the
// governor's gate pauses the consumer's partitions (the member keeps its
// assignment and generation: no rebalance) and resumes them, and what was
// produced meanwhile is delivered after the resume.
func TestKafkaThroughEngine(t *testing.T) {
	ctx := testCtx(t)
	cluster := kafkatest.Start(t, kfake.SeedTopics(3, "orders"))
	cluster.Produce(t, "orders", kafkatest.Numbered("first-", 40)...)

	k := newKafkaApp()
	signals := make(chan os.Signal, 2)
	logs := &syncBuffer{}
	opts := append(isolated(t, logs, map[string]any{
		"input.type": "kafka", "input.kafka.brokers": cluster.Addrs(), "input.kafka.group": "keeltest",
		"input.kafka.topics": []string{"orders"}, "input.kafka.profile": "devtest", "input.kafka.sizing": "low_latency",
		// The test reads the lag itself.
		"input.kafka.lag_interval": "1h",
		"output.type":              "inmem", "output.inmem.buffer_size": 1000,
		"self_regulation.interval": "2ms", "lifecycle.prestop_delay": "-1s",
	}), keel.WithSignals(signals))
	done := make(chan error, 1)
	go func() { done <- keel.Run(ctx, k.app(), opts...) }()
	rt := waitApp(t, ctx, k.handles, done, "the app to start")
	c := wait(t, ctx, k.consumer, "the consumer")
	out := wait(t, ctx, k.out, "the output queue")
	k.waitDelivered(t, ctx, 40)

	// Pressure: the gate pauses every assigned partition.
	_, gen := c.Client().GroupMetadata()
	k.pressure.set(1)
	eventually(t, ctx, "the consumer to be paused", c.Paused)
	cluster.Produce(t, "orders", kafkatest.Numbered("second-", 20)...)
	code, body := get(t, rt.Admin().Addr(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	contains(t, body, `keel_self_regulation_inbound_paused{source="kafka:input"} 1`, "/metrics")
	if got := k.delivered.Load(); got != 40 {
		t.Fatalf("%d records delivered while paused, want 40", got)
	}
	if n := len(c.Assigned()["orders"]); n != 3 {
		t.Fatalf("the paused member owns %d partitions, want 3", n)
	}
	// The consumer's lag feeds the scaling pressure's lag signal: no
	// reading before the first lag read, the group's lag after it.
	if lag := scalingComponent(t, rt, scaling.Lag); lag.Reported {
		t.Fatalf("lag reported before any lag reading: %+v", lag)
	}
	eventually(t, ctx, "a lag of 20 (the first 40 committed)", func() bool {
		l, err := c.Lag(ctx)
		return err == nil && l.Total == 20
	})
	if lag := scalingComponent(t, rt, scaling.Lag); !lag.Reported || lag.Raw != 20 {
		t.Fatalf("scaling lag component %+v, want 20 messages", lag)
	}
	// Released: the consumer resumes where it stopped.
	k.pressure.set(0)
	eventually(t, ctx, "the consumer to resume", func() bool { return !c.Paused() })
	k.waitDelivered(t, ctx, 60)
	if _, g := c.Client().GroupMetadata(); g != gen {
		t.Fatalf("the group generation moved from %d to %d: pausing caused a rebalance", gen, g)
	}
	var gate governor.GateStats
	for _, g := range rt.Governor().Stats().Gates {
		if g.Source == "kafka:input" {
			gate = g
		}
	}
	if gate.Pauses != 1 || gate.Resumes != 1 {
		t.Fatalf("kafka gate %+v, want one pause and one resume", gate)
	}
	if b, ok := rt.Governor().Budget().(*governor.Budget); !ok || b.Stats().Observations == 0 {
		t.Fatal("the governed engine did not run on the governor's byte budget")
	}
	if !slices.Contains(rt.Health().Names(), "receiver:input") {
		t.Fatalf("no health check for the kafka receiver: %v", rt.Health().Names())
	}

	signals <- syscall.SIGTERM
	if err := wait(t, ctx, done, "Run"); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	// Everything delivered once and committed.
	if out.Len() != 60 {
		t.Fatalf("%d records in the output, want 60", out.Len())
	}
	seen := map[string]bool{}
	for _, r := range out.Drain() {
		seen[string(r.Payload)] = true
	}
	for i := range 40 {
		if !seen[fmt.Sprintf("first-%d", i)] || (i < 20 && !seen[fmt.Sprintf("second-%d", i)]) {
			t.Fatalf("record %d missing from the output", i)
		}
	}
	adm, err := kafka.NewAdmin(ctx, kafka.Config{Brokers: cluster.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.Committed(ctx, "keeltest", "orders")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, off := range committed["orders"] {
		sum += off
	}
	if sum != 60 {
		t.Fatalf("committed offsets %v sum to %d, want 60", committed, sum)
	}
}

// scalingComponent evaluates the runtime's scaling pressure and returns
// the component name.
func scalingComponent(t *testing.T, rt *keel.Runtime, name string) scaling.ComponentValue {
	t.Helper()
	for _, c := range rt.Scaling().Evaluate().Components {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the scaling pressure has no component %q", name)
	return scaling.ComponentValue{}
}

// TestKafkaSectionChecks: a kafka section is checked at start-up and by
// config-check without connecting: it must serve as a receiver or a
// sender, a role that forbids the use is refused, and the errors name
// the section's own keys. Its sub-section is in the config dump.
func TestKafkaSectionChecks(t *testing.T) {
	app := keel.App{Name: "keeltest", Transports: []string{"input"}, Run: func(context.Context, *keel.Runtime) error { return nil }}
	for _, c := range []struct {
		name string
		file string
		want []string
	}{
		{"neither side", "input:\n  type: kafka\n", []string{"input.kafka.group", "input.kafka.producer.topic"}},
		{"override", "input:\n  type: kafka\n  kafka:\n    group: g\n    topics: [a]\n    overrides: {bogus.property: 1}\n", []string{"bogus.property", "input.kafka.overrides"}},
		{"profile", "input:\n  type: kafka\n  kafka:\n    group: g\n    topics: [a]\n    profile: turbo\n", []string{"input.kafka.profile"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCommand(t, app, nil, "config-check", "-c", writeFile(t, "kafka.yaml", c.file))
			if err == nil {
				t.Fatal("config-check accepted a bad kafka section")
			}
			for _, w := range c.want {
				contains(t, err.Error(), w, "the error")
			}
			if strings.Contains(err.Error(), " kafka.group") {
				t.Fatalf("the error names the package's key, not the section's: %v", err)
			}
		})
	}
	stdout, stderr, err := runCommand(t, app, nil, "config-check", "-c",
		writeFile(t, "kafka.yaml", "input:\n  type: kafka\n  kafka:\n    group: g\n    topics: [a]\n    sasl_password: hunter2-never-print\n"))
	if err != nil {
		t.Fatalf("config-check: %v\n%s", err, stderr)
	}
	contains(t, stdout, `"input.kafka"`, "the dump")
	noSecrets(t, stdout, stderr)
	// The role follows the use; a role that forbids it is refused before
	// connecting.
	err = runWith(t, map[string]any{"input.type": "kafka", "input.kafka.role": "producer", "input.kafka.producer.topic": "t"},
		func(ctx context.Context, rt *keel.Runtime) error {
			_, err := rt.Receiver(ctx, "input")
			return err
		})
	if !errors.Is(err, kafka.ErrWrongRole) || !strings.Contains(err.Error(), "input.kafka.role") {
		t.Fatalf("receiver on a producer section: %v", err)
	}
}

// TestKafkaSenderFromSection: the kafka type builds a producer for Sender
// with the topic of its section, delivers to the cluster, and flushes and
// closes at shutdown.
func TestKafkaSenderFromSection(t *testing.T) {
	ctx := testCtx(t)
	cluster := kafkatest.Start(t, kfake.SeedTopics(1, "events"))
	err := runWith(t, map[string]any{
		"output.type": "kafka", "output.kafka.brokers": cluster.Addrs(), "output.kafka.producer.topic": "events",
		"output.kafka.profile": "devtest",
	}, func(ctx context.Context, rt *keel.Runtime) error {
		s, err := rt.Sender(ctx, "output")
		if err != nil {
			return err
		}
		if _, ok := s.(*kafka.Producer); !ok {
			return fmt.Errorf("the kafka sender is a %T, want a producer", s)
		}
		return s.SendBatch(ctx, []transport.Record{{Payload: []byte("a")}, {Payload: []byte("b")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs := cluster.ReadAll(ctx, t, "events", 2); len(recs) != 2 {
		t.Fatalf("%d records in the topic, want 2", len(recs))
	}
}
