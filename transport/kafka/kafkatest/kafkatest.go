package kafkatest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a running in-process Kafka cluster.
type Cluster struct {
	*kfake.Cluster
	opts  []kfake.Opt
	addrs []string
}

// Start starts a one-broker cluster (opts may override that), and closes
// it when the test ends.
func Start(tb testing.TB, opts ...kfake.Opt) *Cluster {
	tb.Helper()
	all := append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	kc, err := kfake.NewCluster(all...)
	if err != nil {
		tb.Fatalf("kafkatest: starting the cluster: %v", err)
	}
	c := &Cluster{Cluster: kc, opts: all, addrs: kc.ListenAddrs()}
	tb.Cleanup(func() { c.Cluster.Close() })
	return c
}

// Addrs returns the brokers' host:port addresses.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Restart closes the cluster and starts it again on the same ports with
// the same options. With kfake.DataDir among them, topics, records and
// committed offsets survive; without it the new cluster starts empty.
func (c *Cluster) Restart(tb testing.TB) {
	tb.Helper()
	c.Cluster.Close()
	ports := make([]int, 0, len(c.addrs))
	for _, a := range c.addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			tb.Fatalf("kafkatest: address %q: %v", a, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			tb.Fatalf("kafkatest: port of %q: %v", a, err)
		}
		ports = append(ports, n)
	}
	opts := append(append([]kfake.Opt(nil), c.opts...), kfake.Ports(ports...))
	var (
		kc  *kfake.Cluster
		err error
	)
	// The closed listeners' ports are free at once on most systems; retry
	// briefly in case one is still being released.
	for i := 0; i < 50; i++ {
		if kc, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("kafkatest: restarting the cluster on ports %v: %v", ports, err)
	}
	c.Cluster = kc
}

// Client returns a plain franz-go client on the cluster, closed when the
// test ends.
func (c *Cluster) Client(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs...)}, opts...)...)
	if err != nil {
		tb.Fatalf("kafkatest: client: %v", err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Produce writes records to topic with a plain client and waits for
// their acknowledgement. Keys pick the partitions.
func (c *Cluster) Produce(tb testing.TB, topic string, recs ...*kgo.Record) {
	tb.Helper()
	cl := c.Client(tb, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	defer cl.Close()
	for _, r := range recs {
		r.Topic = topic
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		tb.Fatalf("kafkatest: producing %d record(s) to %q: %v", len(recs), topic, err)
	}
}

// Values returns records with the given values and no key.
func Values(values ...string) []*kgo.Record {
	out := make([]*kgo.Record, len(values))
	for i, v := range values {
		out[i] = &kgo.Record{Value: []byte(v)}
	}
	return out
}

// Numbered returns n records with values prefix0..prefix<n-1> and the
// same keys, so that they spread over the partitions.
func Numbered(prefix string, n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		v := prefix + strconv.Itoa(i)
		out[i] = &kgo.Record{Key: []byte(v), Value: []byte(v)}
	}
	return out
}

// ReadAll reads topic from the start with a plain client (no group) until
// want records arrived or ctx ends, and returns them.
func (c *Cluster) ReadAll(ctx context.Context, tb testing.TB, topic string, want int) []*kgo.Record {
	tb.Helper()
	cl := c.Client(tb, kgo.ConsumeTopics(topic), kgo.FetchMaxWait(50*time.Millisecond))
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("kafkatest: read %d of %d record(s) from %q before the deadline", len(out), want, topic)
		}
		fs.EachError(func(t string, p int32, err error) {
			tb.Logf("kafkatest: fetch error %s/%d: %v", t, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// String describes the cluster.
func (c *Cluster) String() string { return fmt.Sprintf("kfake%v", c.addrs) }
