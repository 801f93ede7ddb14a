// Package dlq is keel's dead-letter queue: where records that can never be
// delivered go, with the reason, so that nothing is lost and someone can
// look at them or replay them.
//
// # Start
//
//	var cfg dlq.Config // the "dlq" section; zero value: disabled
//	if err := conf.Section(dlq.Section, &cfg); err != nil { ... }
//	q, err := dlq.New(ctx, cfg, dlq.Options{Service: "orders"})
//	if err != nil { ... }          // names the bad key, e.g. dlq.kafka.brokers
//	defer q.Close(ctx)             // writes out the queue
//
//	eng, _ := engine.New(engine.Config{RouteDeadLetters: q.Router()})
//
// or directly:
//
//	_ = q.Push(ctx, dlq.Entry{Reason: "schema mismatch", Payload: raw, Destination: "orders",
//	    Source: dlq.KafkaSource("events", 3, 12345)})
//	err = q.Flush(ctx)             // written and durable, or why not
//
// # Entries
//
// An Entry holds the time, service, reason, attempts, payload,
// destination, source (Kafka topic, partition and offset, and/or the
// text of the input's commit token), and the original record's key and
// headers. It is written as one JSON object per
// line with the payload in base64 (see Entry); Decode, Reader and ReadFile
// read it back.
//
// # Backends and modes
//
// Four backends: file (NDJSON files rotated hourly or daily, optionally
// gzipped once their period is over, removed after max_age), kafka (a
// common topic or one per destination), http (each batch POSTed as
// NDJSON; a status other than 2xx is an error) and redis (XADD to a
// stream, trimmed with MAXLEN ~). Any type implementing Backend can be
// given in Options.Backends.
//
// cascade (the default) tries the backends in dlq.order (by default
// kafka, redis, http, file) and stops at the first that takes an entry;
// what a backend refuses goes on to the next, counted in
// keel_dlq_fallthrough_total. fan_out writes to all and succeeds if any
// took the entry. single uses one backend. With no backend enabled the
// file backend is used.
//
// # Queue, barrier, shutdown
//
// Entries go through a bounded queue (queue_capacity) and are written in
// batches (batch_size, flush_interval) by one goroutine; see package
// background. A batch that no backend takes is tried again (max_attempts,
// with backoff) while the queue holds; after that its entries are dropped,
// counted in keel_dlq_dropped_total, logged at ERROR and reported to the
// next Flush and to Close. Flush returns once every entry queued before it
// is written and durable (the file backend fsyncs; Kafka, Redis and HTTP
// writes are acknowledged when they return), and returns the error when
// that is not so. Written entries are also synced every sync_interval.
// When a file sync fails, the entries written since the last good sync
// are handed to the other backends before anything is reported lost.
// Close writes out the queue, syncs and closes the backends.
//
// # Engine route
//
// Router converts the engine's dead letters (reason, payload, destination,
// the source token's text) and queues them. It fails rather than drop:
// when the queue has no room within route_wait, the engine stops without
// committing the block. With route_durable it waits until the entries are
// durable before the engine commits.
//
// # Health
//
// Health is a health.CheckFunc (the keel runtime registers it as "dlq"):
// unhealthy while a batch is taken by no backend, for HealthDropWindow
// after entries were dropped, while the queue is full and once closed;
// degraded while one backend fails and another takes its entries, or the
// queue is 80% full. A backend that takes entries again turns it back.
//
// # Metrics
//
// keel_dlq_backend_entries_total{backend,result},
// keel_dlq_backend_write_seconds{backend}, keel_dlq_fallthrough_total{backend},
// keel_dlq_sync_errors_total{backend}, keel_dlq_dropped_total{reason},
// keel_dlq_routed_total, keel_dlq_route_rejected_total, the queue's
// keel_dlq_queue_* (pushed, overflow, dropped, writes, write errors,
// flushes, pending) and the file backend's keel_dlq_file_* (bytes,
// rotations, removed, compressions, syncs).
package dlq
