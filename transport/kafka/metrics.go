package kafka

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// consumerMetrics are the consumer's keel_kafka_* collectors. Instances
// sharing a registry share them; gauges that count are moved by deltas so
// that several consumers add up.
type consumerMetrics struct {
	records        prometheus.Counter
	bytes          prometheus.Counter
	commits        prometheus.Counter
	commitFailures prometheus.Counter
	commitFenced   prometheus.Counter
	commitSeconds  prometheus.Histogram
	rebalances     *metrics.CounterVec
	assigned       prometheus.Gauge
	paused         prometheus.Gauge
	pollErrors     prometheus.Counter
	lag            *metrics.GaugeVec
	lagTotal       prometheus.Gauge
	members        prometheus.Gauge
	limited        prometheus.Gauge
	topics         prometheus.Gauge
}

func newConsumerMetrics(reg *metrics.Registry) *consumerMetrics {
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "kafka", Name: n, Help: help, Unit: unit, Group: "kafka"}
	}
	return &consumerMetrics{
		records:        reg.Counter(o("received_records_total", "Records the Kafka consumer returned from Recv.", "")),
		bytes:          reg.Counter(o("received_bytes_total", "Payload bytes of the records the Kafka consumer returned from Recv.", "bytes")),
		commits:        reg.Counter(o("commits_total", "Offset commits the Kafka consumer completed.", "")),
		commitFailures: reg.Counter(o("commit_failures_total", "Offset commits that failed and were returned to the caller.", "")),
		commitFenced:   reg.Counter(o("commit_fenced_partitions_total", "Partition offsets left uncommitted because the partition was revoked or lost before the commit (the new owner re-delivers them).", "")),
		commitSeconds:  reg.Histogram(o("commit_duration_seconds", "Duration of synchronous offset commits.", "seconds"), nil),
		rebalances:     reg.CounterVec(o("rebalances_total", "Partition assignment changes seen by the consumer, by event (assigned, revoked, lost).", ""), "event"),
		assigned:       reg.Gauge(o("assigned_partitions", "Partitions currently assigned to the consumer.", "")),
		paused:         reg.Gauge(o("paused_partitions", "Assigned partitions paused by the inbound gate.", "")),
		pollErrors:     reg.Counter(o("poll_errors_total", "Errors reported by fetches; the client retries them.", "")),
		lag:            reg.GaugeVec(o("consumer_lag", "Records between the group's committed offset and the end of the partition (partitions capped by lag_max_partitions).", ""), "topic", "partition"),
		lagTotal:       reg.Gauge(o("consumer_lag_total", "Sum of the group's lag over every partition of its topics.", "")),
		members:        reg.Gauge(o("group_members", "Members of the consumer group at the last lag read.", "")),
		limited:        reg.Gauge(o("partition_limited", "1 when the group has at least as many members as partitions and still lags: more pods will not help.", "")),
		topics:         reg.Gauge(o("subscribed_topics", "Topics the consumer is subscribed to.", "")),
	}
}

// producerMetrics are the producer's keel_kafka_* collectors.
type producerMetrics struct {
	records      prometheus.Counter
	bytes        prometheus.Counter
	backpressure prometheus.Counter
	failures     prometheus.Counter
	sendSeconds  prometheus.Histogram
}

func newProducerMetrics(reg *metrics.Registry) *producerMetrics {
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "kafka", Name: n, Help: help, Unit: unit, Group: "kafka"}
	}
	return &producerMetrics{
		records:      reg.Counter(o("sent_records_total", "Records the Kafka producer delivered (acknowledged by the brokers).", "")),
		bytes:        reg.Counter(o("sent_bytes_total", "Payload bytes of the records the Kafka producer delivered.", "bytes")),
		backpressure: reg.Counter(o("send_backpressure_total", "Records refused because the produce buffer was full (retryable).", "")),
		failures:     reg.Counter(o("send_failures_total", "Records that failed to be delivered for another reason.", "")),
		sendSeconds:  reg.Histogram(o("send_duration_seconds", "Duration of SendBatch until every record was acknowledged.", "seconds"), nil),
	}
}

// RegisterMetrics registers the keel_kafka_* metrics of the consumer and
// the producer on reg (nil means metrics.Default()) without building a
// client, so that a metrics manifest lists them before the transport is
// used. NewConsumer and NewProducer register them too.
func RegisterMetrics(reg *metrics.Registry) {
	reg = metrics.OrDefault(reg)
	newConsumerMetrics(reg)
	newProducerMetrics(reg)
}
