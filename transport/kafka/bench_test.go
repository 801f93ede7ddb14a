package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// benchChunk is the records produced, then consumed and committed, per
// round: one engine block.
const benchChunk = 1000

// BenchmarkRoundTrip measures produce -> consume -> commit through keel's
// Producer and Consumer ("keel") against a raw franz-go loop doing the
// same work with the same client options ("raw"), on the same in-process
// cluster in the same run. Each round produces benchChunk records
// synchronously, then receives and commits them in blocks of benchChunk.
// MB/s counts payload bytes; records/s is reported as a metric. Compare
// keel/<size> with raw/<size>: the ratio is keel's overhead.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{200, 2048} {
		for _, impl := range []string{"raw", "keel"} {
			b.Run(fmt.Sprintf("%s/%dB", impl, size), func(b *testing.B) {
				benchRoundTrip(b, impl, size)
			})
		}
	}
}

// BenchmarkOverhead runs the keel and raw rounds of BenchmarkRoundTrip
// alternately on one cluster, so that both see the same machine load, and
// reports each side's ns/record and keel's overhead in percent. ns/op and
// MB/s count both sides together.
func BenchmarkOverhead(b *testing.B) {
	for _, size := range []int{200, 2048} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			c := kafkatest.Start(b)
			keel := keelRound(b, benchSetup(b, c, "keel", size))
			raw := rawRound(b, benchSetup(b, c, "raw", size))
			for _, r := range []func(int) error{keel, raw} {
				if err := r(benchChunk); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			var keelD, rawD time.Duration
			rounds := 0
			for done := 0; done < b.N; {
				n := min(benchChunk, b.N-done)
				// Alternate which side goes first, so neither inherits
				// the other's garbage or warm caches more often.
				sides := [2]func(int) error{keel, raw}
				times := [2]*time.Duration{&keelD, &rawD}
				if rounds%2 == 1 {
					sides[0], sides[1] = sides[1], sides[0]
					times[0], times[1] = times[1], times[0]
				}
				for i, side := range sides {
					t0 := time.Now()
					if err := side(n); err != nil {
						b.Fatal(err)
					}
					*times[i] += time.Since(t0)
				}
				done += n
				if rounds++; rounds%20 == 0 {
					b.StopTimer()
					c.ApplyRetention()
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(keelD.Nanoseconds())/float64(b.N), "keel-ns/record")
			b.ReportMetric(float64(rawD.Nanoseconds())/float64(b.N), "raw-ns/record")
			b.ReportMetric(100*(float64(keelD)/float64(rawD)-1), "overhead-%")
		})
	}
}

// benchSetup creates a topic for one side and returns its config and
// payload.
func benchSetup(b *testing.B, c *kafkatest.Cluster, impl string, size int) benchSide {
	ctx := context.Background()
	topic := fmt.Sprintf("bench-%s-%d", impl, size)
	adm, err := NewAdmin(ctx, Config{Brokers: c.Addrs(), Environment: "test", Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	// Keep the in-memory log bounded: retention is applied between rounds.
	if err := adm.CreateTopics(ctx, TopicSpec{Name: topic, Partitions: 4, Configs: map[string]string{"retention.bytes": "4194304"}}); err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		Brokers: c.Addrs(), Group: "bench-" + impl, Topics: []string{topic}, Environment: "test",
		Sizing: SizingLowLatency, Producer: ProducerConfig{Topic: topic}, LagInterval: -1,
		Metrics: testMetrics(), Logger: testLogger(b),
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	return benchSide{cfg: cfg, payload: payload}
}

// benchSide is the config and payload of one side of a benchmark.
type benchSide struct {
	cfg     Config
	payload []byte
}

func benchRoundTrip(b *testing.B, impl string, size int) {
	c := kafkatest.Start(b)
	var round func(n int) error
	switch impl {
	case "keel":
		round = keelRound(b, benchSetup(b, c, impl, size))
	default:
		round = rawRound(b, benchSetup(b, c, impl, size))
	}
	// Join the group and warm up outside the measurement.
	if err := round(benchChunk); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	rounds := 0
	for done := 0; done < b.N; {
		n := min(benchChunk, b.N-done)
		if err := round(n); err != nil {
			b.Fatal(err)
		}
		done += n
		if rounds++; rounds%20 == 0 {
			b.StopTimer()
			c.ApplyRetention()
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func keelRound(b *testing.B, side benchSide) func(int) error {
	cfg, payload := side.cfg, side.payload
	ctx := context.Background()
	t, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = t.Close(context.Background()) })
	recs := make([]transport.Record, benchChunk)
	for i := range recs {
		recs[i].Payload = payload
	}
	lim := transport.Limits{MaxRecords: benchChunk}
	return func(n int) error {
		if err := t.SendBatch(ctx, recs[:n]); err != nil {
			return err
		}
		for got := 0; got < n; {
			bt, err := t.Recv(ctx, lim)
			if err != nil {
				return err
			}
			if err := t.Commit(ctx, bt.Tokens); err != nil {
				return err
			}
			got += len(bt.Records)
		}
		return nil
	}
}

func rawRound(b *testing.B, side benchSide) func(int) error {
	cfg, payload := side.cfg, side.payload
	ctx := context.Background()
	s, err := cfg.resolve()
	if err != nil {
		b.Fatal(err)
	}
	common, err := s.commonOpts(testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	consOpts := append(append(append([]kgo.Opt(nil), common...), s.fetchOpts()...), s.groupOpts()...)
	consOpts = append(consOpts, kgo.ConsumeTopics(s.topics...))
	cons, err := kgo.NewClient(consOpts...)
	if err != nil {
		b.Fatal(err)
	}
	prod, err := kgo.NewClient(append(append([]kgo.Opt(nil), common...), s.producerOpts()...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cons.Close(); prod.Close() })
	topic := s.produceTopic
	return func(n int) error {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Value: payload}
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
		for got := 0; got < n; {
			fs := cons.PollRecords(ctx, benchChunk)
			if err := fs.Err0(); err != nil {
				return err
			}
			offsets := map[string]map[int32]kgo.EpochOffset{}
			fs.EachRecord(func(r *kgo.Record) {
				ps := offsets[r.Topic]
				if ps == nil {
					ps = map[int32]kgo.EpochOffset{}
					offsets[r.Topic] = ps
				}
				if eo, ok := ps[r.Partition]; !ok || r.Offset+1 > eo.Offset {
					ps[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
				}
				got++
			})
			var cerr error
			cons.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
			if cerr != nil {
				return cerr
			}
		}
		return nil
	}
}
