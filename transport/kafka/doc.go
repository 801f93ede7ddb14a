// Package kafka is keel's Kafka transport, built on franz-go: a consumer
// group member that is a transport.Receiver, a producer that is a
// transport.Sender, and an Admin for topics, configs and group offsets.
// Configuration lives in the "kafka" section.
//
// # Start
//
//	cfg := kafka.Config{} // or config.Section("kafka", &cfg)
//	if err := cfg.ApplyEnv("ORDERS"); err != nil { ... } // KAFKA_* and ORDERS_*
//	t, err := kafka.New(ctx, cfg) // role both: consumer and producer
//	if err != nil { ... }         // names the key: kafka.group, kafka.brokers, ...
//	defer t.Close(ctx)
//	err = eng.Run(ctx, t, process, engine.SinkTo(t))
//
// New builds only what Config.Role needs (consumer, producer or both); Recv
// on a producer-only transport, or Send on a consumer-only one, returns an
// error wrapping ErrWrongRole. NewConsumer, NewProducer and NewAdmin build
// one side each. Every constructor checks that a broker answers.
//
// # Consuming and committing
//
// The consumer joins Config.Group with the cooperative-sticky balancer and
// never commits on its own. Recv returns up to consumer.max_poll_records
// records under the transport.Limits (it stops once the byte cap is
// reached, with a floor of one record); each record carries the Kafka key,
// headers, timestamp and value, and Batch.Tokens holds one *Token per
// record, aligned with the records, naming its topic, partition and offset
// (Position reads it back). Records fetched beyond the limits, or when the
// context of Recv is cancelled, stay in the consumer and come first on the
// next Recv: none is lost.
//
// Commit commits synchronously the highest offset + 1 per partition among
// the tokens and returns a failed commit as a transport.ErrCommit error, so
// that the engine's ack barrier stops the loop. It never moves a partition
// backwards.
//
// # Rebalances
//
// A member never commits a partition it no longer owns. Each assignment of
// a partition is tracked; tokens remember the assignment they came from.
// When a partition is revoked, the revoke waits up to consumer.revoke_wait
// (10 s; must be below the rebalance timeout) for the records already
// delivered from it to be committed, so the block in flight is normally
// committed before the partition moves and its new owner starts after it.
// Then the assignment is fenced under the commit lock: a commit in
// progress finishes first, and any later commit of its tokens (a slow
// block, a retry) leaves that partition alone, so the new owner's commit
// stands and it re-delivers the records. A partition lost because the
// member was expelled is fenced at once. Duplicates are possible, loss is
// not. Rebalances that move other partitions do not wait for the block in
// flight, and the member is never expelled for a slow block because the
// wait is bounded.
//
// # Inbound gate
//
// Pause and Resume make a *Consumer (or *Transport) the actuator of the
// governor's gate: Pause pauses fetching on every assigned partition and on
// every partition assigned while it holds; the member keeps heartbeating, so
// no rebalance happens. Recv returns nothing while paused. Resume continues
// every partition where it stopped.
//
// # Topic auto-discovery
//
// With auto_discover the consumer subscribes to every topic matching
// topic_include (all when empty) and no topic_exclude pattern (default
// "^__", internal topics), at start and every topic_refresh (1 min).
//
// # Lag and partition-limited
//
// Every lag_interval (15 s) the consumer reads its group's lag (end offset
// minus committed offset per partition) and the number of members, and sets
// keel_kafka_consumer_lag{topic,partition} (for up to lag_max_partitions
// partitions), keel_kafka_consumer_lag_total, keel_kafka_group_members and
// keel_kafka_partition_limited: 1 when members >= partitions and the group
// still lags, the signal that more pods (KEDA replicas) will not help. With
// Config.Health set, the check "kafka:partition_limited" turns degraded
// then, and "transport:kafka" follows Health.
//
// # Producing
//
// The topic of each record comes from Config.Route, else producer.topic;
// never from the record key, which is the partition key: records with the
// same key go to the same partition (murmur2 of the key, as the Java
// client does). Headers are copied, and the global OpenTelemetry
// propagator (installed by telemetry.Setup from OTEL_PROPAGATORS) injects
// the trace context and baggage of the context of Send/SendBatch into
// every record: a header it writes replaces the record's headers of that
// name, compared ignoring case, so a record never carries two
// traceparents; without a span in the context the record's own trace
// headers pass through. SendBatch returns once the brokers acknowledged
// every record (lingering partitions are sent at once); a batch that does
// not fit the produce buffer fails, from the first record that does not
// fit, with transport.ErrBackpressure by index in a *transport.BatchError,
// and other failures are reported by index too. Close flushes within its
// context or producer.close_timeout.
//
// # Tracing
//
// ContextWithTrace returns a context carrying what the global propagator
// extracts from a record's headers (names matched ignoring case): the
// producer's span as the remote parent, so a span started from it joins
// the producer's trace, and the baggage. TraceContext returns the span
// context alone. The engine parents its block span the same way
// (telemetry.StartBlock). ParseTraceparent and FormatTraceparent
// implement the W3C header format.
//
// # Profiles and overrides
//
// profile sets timeouts and retries; sizing sets fetch and batch sizes.
// Precedence, lowest first: profile, sizing, named knobs (kafka.consumer.*,
// kafka.producer.*), then overrides, a map of Kafka property names
// (fetch.min.bytes, linger.ms, compression.type, buffer.memory, ...; see
// OverrideNames). An unknown property is an error that names it.
//
//	profile     session  heartbeat  rebalance  revoke_wait  delivery  retry backoff   metadata age
//	production  45 s     3 s        60 s       10 s         2 min     client default  5 min
//	devtest     10 s     1 s        20 s       5 s          30 s      10-100 ms       30 s
//
//	sizing       fetch min  fetch wait  partition fetch  fetch max  poll cap
//	throughput   1 MiB      50 ms       10 MiB           100 MiB    2000
//	balanced     256 KiB    25 ms       5 MiB            50 MiB     1000
//	low_latency  1 B        10 ms       1 MiB            10 MiB     500
//
//	sizing       batch    linger  codec  buffer bytes  buffer records  in flight
//	throughput   128 KiB  20 ms   lz4    64 MiB        100000          5
//	balanced     64 KiB   5 ms    lz4    32 MiB        100000          5
//	low_latency  16 KiB   0       lz4    16 MiB        100000          5
//
// The columns are, in order, consumer.fetch_min_bytes, fetch_max_wait,
// fetch_max_partition_bytes, fetch_max_bytes and max_poll_records, then
// producer.batch_max_bytes, linger, compression, max_buffered_bytes,
// max_buffered_records and max_in_flight. In flight counts produce
// requests per broker: the idempotent producer (the default) always
// allows 5; max_in_flight applies with disable_idempotence.
//
// # Security
//
// security_protocol is plaintext (default), ssl, sasl_plaintext or
// sasl_ssl; sasl_mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with
// sasl_username and sasl_password (a secret.String, never printed);
// ssl_ca_location, ssl_certificate_location and ssl_key_location are PEM
// files. In production (Config.Environment, else APP_ENV) plaintext
// protocols and ssl_skip_verify are refused unless allow_insecure is set.
//
// # Environment
//
// Config.ApplyEnv overlays KAFKA_BOOTSTRAP_SERVERS (alias KAFKA_BROKERS),
// KAFKA_GROUP_ID, KAFKA_TOPICS, KAFKA_SASL_*, KAFKA_SSL_* and more, and the
// same names under a service prefix, which wins; a standard name wins over
// its aliases. See ApplyEnvFunc for the list.
//
// # Metrics
//
// Namespace keel, subsystem kafka: received_records_total,
// received_bytes_total, commits_total, commit_failures_total,
// commit_fenced_partitions_total, commit_duration_seconds,
// rebalances_total{event}, assigned_partitions, paused_partitions,
// poll_errors_total, subscribed_topics, consumer_lag{topic,partition},
// consumer_lag_total, group_members, partition_limited, sent_records_total,
// sent_bytes_total, send_backpressure_total, send_failures_total,
// send_duration_seconds.
//
// # Testing
//
// Package kafkatest starts an in-process cluster (kfake) that speaks the
// Kafka protocol over TCP, so tests go through the real client.
package kafka
