package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Every malformedEvery-th generated event is not valid JSON (malformed) and
// every poisonEvery-th is valid JSON the service cannot handle (poison: the
// amount is not a number): 1% and 0.5%, at fixed positions so that even a
// short run has both (the first malformed event is the 50th, the first
// poison event the 75th).
const (
	malformedEvery = 100
	poisonEvery    = 200
)

var eventTypes = []string{"order", "payment", "click", "view", "signup"}

// generator produces JSON events to Kafka at a fixed rate, each with the
// run's id in its "run" field. generated counts the events the cluster
// acknowledged.
type generator struct {
	client *kgo.Client
	topic  string
	rate   int
	runID  string

	acked  atomic.Int64
	failed atomic.Int64

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	done                chan struct{}
}

func newGenerator(brokers []string, topic string, rate int, runID string) (*generator, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ClientID("keel-demo-generator"),
	)
	if err != nil {
		return nil, fmt.Errorf("create the load generator's Kafka client for --brokers %v: %w", brokers, err)
	}
	return &generator{client: cl, topic: topic, rate: rate, runID: runID, done: make(chan struct{})}, nil
}

// start starts producing in the background.
func (g *generator) start() {
	g.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		g.cancel = cancel
		go g.loop(ctx)
	})
}

// stop stops producing, waits for every outstanding produce to be
// acknowledged or fail, and closes the client. It is safe to call more
// than once and without start.
func (g *generator) stop() {
	g.stopOnce.Do(func() {
		g.startOnce.Do(func() { close(g.done) }) // never started
		if g.cancel != nil {
			g.cancel()
		}
		<-g.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.client.Flush(ctx)
		g.client.Close()
	})
}

// generated returns the events the cluster acknowledged so far.
func (g *generator) generated() int64 { return g.acked.Load() }

func (g *generator) loop(ctx context.Context) {
	defer close(g.done)
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int64(now.Sub(start).Seconds() * float64(g.rate))
			for ; sent < due; sent++ {
				if ctx.Err() != nil {
					return
				}
				seq++
				g.client.Produce(context.WithoutCancel(ctx), &kgo.Record{Value: event(g.runID, seq)}, g.promise)
			}
		}
	}
}

func (g *generator) promise(_ *kgo.Record, err error) {
	if err != nil {
		g.failed.Add(1)
		return
	}
	g.acked.Add(1)
}

// event returns the seq-th event of the run: mostly valid JSON, with a
// share of malformed and poison events. Every one, malformed or not,
// carries the run id.
func event(runID string, seq int64) []byte {
	typ := eventTypes[rand.IntN(len(eventTypes))]
	head := `{"run":"` + runID + `","id":` + strconv.FormatInt(seq, 10) + `,"type":"` + typ + `","amount":`
	switch {
	case seq%malformedEvery == malformedEvery/2:
		return []byte(head) // truncated
	case seq%poisonEvery == poisonEvery*3/8:
		return []byte(head + `"NaN","user":"u` + strconv.Itoa(rand.IntN(500)) + `"}`)
	default:
		amount := strconv.FormatFloat(float64(rand.IntN(100000))/100, 'f', 2, 64)
		return []byte(head + amount + `,"user":"u` + strconv.Itoa(rand.IntN(500)) + `","ts":"` +
			time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	}
}
