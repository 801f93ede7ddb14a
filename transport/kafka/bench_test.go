package kafka

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// benchChunk is the records produced, then consumed and committed, per
// round: one engine block.
const benchChunk = 1000

// BenchmarkRoundTrip measures produce -> consume -> commit through keel's
// Producer and Consumer ("keel"), through the same transport driven by the
// engine ("engine"), and through a raw franz-go loop doing the same work
// with the same client options ("raw"), each on its own in-process
// cluster. Each round produces benchChunk records synchronously, then
// receives and commits them in blocks of benchChunk. MB/s counts payload
// bytes; records/s is reported as a metric. BenchmarkOverhead compares
// the sides on one cluster; this one gives each side's allocations alone.
func BenchmarkRoundTrip(b *testing.B) {
	for _, size := range []int{200, 2048} {
		for _, impl := range benchImpls {
			b.Run(fmt.Sprintf("%s/%dB", impl.name, size), func(b *testing.B) {
				benchRoundTrip(b, impl, size)
			})
		}
	}
}

// benchImpl is one side of the benchmarks: it builds a round function
// that produces n records, then receives and commits them.
type benchImpl struct {
	name  string
	build func(b *testing.B, side benchSide) func(n int) error
}

// benchImpls are the compared sides; raw is the baseline.
var benchImpls = []benchImpl{{"raw", rawRound}, {"keel", keelRound}, {"engine", engineRound}}

// BenchmarkOverhead runs the raw, keel and engine rounds of
// BenchmarkRoundTrip in turn on one cluster, round by round and in
// rotating order, so that every side sees the same machine load and the
// same broker. It reports, per side, records/s, MB/s of payload and
// bytes allocated per record (process-wide, measured around that side's
// rounds), and the overhead of keel and of the engine against raw in
// percent of raw's time. ns/op is the time of one record on all three
// sides together.
func BenchmarkOverhead(b *testing.B) {
	for _, size := range []int{200, 2048} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			c := kafkatest.Start(b)
			rounds := make([]func(int) error, len(benchImpls))
			for i, impl := range benchImpls {
				rounds[i] = impl.build(b, benchSetup(b, c, impl.name, size))
				// Join the group and warm up outside the measurement.
				if err := rounds[i](benchChunk); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := make([]time.Duration, len(benchImpls))
			allocated := make([]uint64, len(benchImpls))
			var ms runtime.MemStats
			b.ResetTimer()
			round := 0
			for done := 0; done < b.N; {
				n := min(benchChunk, b.N-done)
				for k := range benchImpls {
					// Rotate which side goes first, so that none inherits
					// the others' garbage or warm caches more often.
					i := (round + k) % len(benchImpls)
					b.StopTimer()
					runtime.ReadMemStats(&ms)
					before := ms.TotalAlloc
					b.StartTimer()
					t0 := time.Now()
					if err := rounds[i](n); err != nil {
						b.Fatal(err)
					}
					elapsed[i] += time.Since(t0)
					b.StopTimer()
					runtime.ReadMemStats(&ms)
					allocated[i] += ms.TotalAlloc - before
					b.StartTimer()
				}
				done += n
				if round++; round%20 == 0 {
					b.StopTimer()
					c.ApplyRetention()
					b.StartTimer()
				}
			}
			b.StopTimer()
			for i, impl := range benchImpls {
				secs := elapsed[i].Seconds()
				b.ReportMetric(float64(b.N)/secs, impl.name+"-rec/s")
				b.ReportMetric(float64(b.N)*float64(size)/secs/1e6, impl.name+"-MB/s")
				b.ReportMetric(float64(allocated[i])/float64(b.N), impl.name+"-B/rec")
				if i > 0 {
					b.ReportMetric(100*(float64(elapsed[i])/float64(elapsed[0])-1), impl.name+"-overhead-%")
				}
			}
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

func benchRoundTrip(b *testing.B, impl benchImpl, size int) {
	c := kafkatest.Start(b)
	round := impl.build(b, benchSetup(b, c, impl.name, size))
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

// commitCounting counts the tokens its receiver committed and signals
// each commit, so that a benchmark round can wait for the engine to
// commit what it produced.
type commitCounting struct {
	transport.Receiver
	committed atomic.Int64
	progress  chan struct{}
}

// Commit commits through the receiver, then counts and signals.
func (r *commitCounting) Commit(ctx context.Context, tokens []transport.Token) error {
	if err := r.Receiver.Commit(ctx, tokens); err != nil {
		return err
	}
	r.committed.Add(int64(len(tokens)))
	select {
	case r.progress <- struct{}{}:
	default:
	}
	return nil
}

// engineRound runs the engine on the transport for the whole benchmark:
// Recv, an identity process step, a sink that drops the block, Commit. A
// round produces n records and returns once the engine committed them.
func engineRound(b *testing.B, side benchSide) func(int) error {
	cfg, payload := side.cfg, side.payload
	ctx := context.Background()
	t, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(engine.Config{MaxRecords: benchChunk, Metrics: testMetrics(), Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	r := &commitCounting{Receiver: t, progress: make(chan struct{}, 1)}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- eng.Run(runCtx, r, identity, func(context.Context, transport.Batch) error { return nil })
	}()
	b.Cleanup(func() {
		stop()
		<-done
		_ = t.Close(context.Background())
	})
	recs := make([]transport.Record, benchChunk)
	for i := range recs {
		recs[i].Payload = payload
	}
	var target int64
	return func(n int) error {
		if err := t.SendBatch(ctx, recs[:n]); err != nil {
			return err
		}
		target += int64(n)
		for r.committed.Load() < target {
			select {
			case <-r.progress:
			case err := <-done:
				return fmt.Errorf("the engine stopped: %v", err)
			}
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
