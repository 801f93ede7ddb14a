package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// KafkaOptions wires a KafkaBackend.
type KafkaOptions struct {
	// ClientOpts are added to the client's options after the ones the
	// config implies (TLS, SASL and the like go here).
	ClientOpts []kgo.Opt
	// Metrics receives keel_dlq_kafka_*. Nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives warnings. Nil means slog.Default().
	Logger *slog.Logger
}

// KafkaBackend produces each entry's JSON as the value of a record without
// a key, to the common topic or to <destination><suffix>. A write waits
// until the brokers acknowledged every record (acks from all in-sync
// replicas, idempotent producer), so a written entry is durable when Write
// returns and a failed one is reported by index.
type KafkaBackend struct {
	client  *kgo.Client
	routing Routing
	topic   string
	suffix  string
	timeout time.Duration
	logger  *slog.Logger
	badDest *logging.Sampler
	fallbk  prometheus.Counter
}

// NewKafkaBackend creates the producer. It does not connect until the
// first write.
func NewKafkaBackend(cfg KafkaConfig, opts KafkaOptions) (*KafkaBackend, error) {
	cfg.Enabled = true
	if err := (Config{Kafka: cfg}).Validate(); err != nil {
		return nil, err
	}
	b := &KafkaBackend{
		routing: cfg.Routing, topic: cfg.Topic, suffix: cfg.TopicSuffix, timeout: cfg.SendTimeout,
		logger: opts.Logger, badDest: logging.Every(10 * time.Second),
	}
	if b.topic == "" {
		b.topic = DefaultKafkaTopic
	}
	if b.suffix == "" {
		b.suffix = DefaultKafkaTopicSuffix
	}
	if b.timeout == 0 {
		b.timeout = DefaultKafkaSendTimeout
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	clientID := cfg.ClientID
	if clientID == "" {
		clientID = DefaultKafkaClientID
	}
	kopts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(clientID),
		kgo.DefaultProduceTopic(b.topic),
		kgo.RecordDeliveryTimeout(b.timeout),
		kgo.ProducerLinger(0),
	}
	if cfg.AllowAutoTopicCreation {
		kopts = append(kopts, kgo.AllowAutoTopicCreation())
	}
	kopts = append(kopts, opts.ClientOpts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, &BackendError{Backend: BackendKafka, Op: "open", Err: fmt.Errorf("%w; check dlq.kafka", err)}
	}
	b.client = cl
	b.fallbk = kafkaFallbackCounter(opts.Metrics)
	return b, nil
}

// kafkaFallbackCounter registers keel_dlq_kafka_topic_fallbacks_total on
// reg (nil means metrics.Default()), or returns it when it already is.
func kafkaFallbackCounter(reg *metrics.Registry) prometheus.Counter {
	return metrics.OrDefault(reg).Counter(metrics.Opts{Namespace: "keel", Subsystem: "dlq",
		Name: "kafka_topic_fallbacks_total", Group: "dlq",
		Help: "Dead-letter entries sent to the common topic because their destination does not make a legal topic name."})
}

// Name returns "kafka".
func (b *KafkaBackend) Name() string { return BackendKafka }

// Topic returns the topic an entry goes to.
func (b *KafkaBackend) Topic(e *Entry) string {
	if b.routing != RoutingPerDestination || e.Destination == "" {
		return b.topic
	}
	t := e.Destination + b.suffix
	if !validTopic(t) {
		b.fallbk.Inc()
		if ok, skipped := b.badDest.Allow(); ok {
			b.logger.Warn("dlq destination is not a legal Kafka topic; using the common topic",
				"destination", e.Destination, "topic", b.topic, "suppressed", skipped)
		}
		return b.topic
	}
	return t
}

// Write produces the entries and waits for every acknowledgement (at most
// send_timeout).
func (b *KafkaBackend) Write(ctx context.Context, entries []Encoded) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	wg.Add(len(entries))
	for i := range entries {
		// The original key keeps the entries of one key in one partition.
		rec := &kgo.Record{Topic: b.Topic(&entries[i].Entry), Key: entries[i].Entry.Key, Value: entries[i].JSON}
		b.client.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	var failed []int
	var first error
	for i, err := range errs {
		if err != nil {
			failed = append(failed, i)
			if first == nil {
				first = err
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	werr := &BackendError{Backend: BackendKafka, Op: "write", Err: fmt.Errorf("%d of %d records not acknowledged: %w", len(failed), len(entries), first)}
	if len(failed) == len(entries) {
		return werr
	}
	return &PartialError{Failed: failed, Err: werr}
}

// Close flushes what is buffered (within ctx) and closes the client.
func (b *KafkaBackend) Close(ctx context.Context) error {
	err := b.client.Flush(ctx)
	b.client.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return &BackendError{Backend: BackendKafka, Op: "close", Err: err}
	}
	return nil
}
