// Package background holds two building blocks for work that runs beside
// the data path: a batching Sink and a Periodic worker.
//
// # Sink
//
// A Sink is a bounded queue in front of a Drain, written by one goroutine
// in batches (by size, or after an interval). Producers hand items over
// cheaply; a barrier says when they are durable:
//
//	sink, err := background.New(background.Config{Name: "audit"}, drain)
//	if err != nil { ... }
//	defer sink.Close(ctx)
//	_ = sink.Push(ctx, item)        // queued; waits for room (overflow: block)
//	_ = sink.TryPush(item)          // never waits; ErrQueueFull when full
//	err = sink.Flush(ctx)           // everything before is written and durable, or why not
//	err = sink.Write(ctx, a, b)     // these items are written and durable, or why not
//
// The queue is bounded in items (queue_capacity, counting items until their
// batch is written). On a full queue Push waits (overflow: block, the
// default) or refuses at once (overflow: drop); a refusal is counted and
// the item stays with the caller. A failed write is retried with backoff
// (max_attempts), then the batch is dropped: counted, logged and reported
// to the next barrier and to the Drain's Dropped method. Close writes out
// everything taken, runs Drain.Flush and Drain.Close, and reports what
// failed.
//
// Metrics are keel_<subsystem>_{pushed,overflow,dropped,writes,write_errors,flushes}_total,
// keel_<subsystem>_pending and keel_<subsystem>_write_seconds, labelled by
// sink; the subsystem is "background" unless the owner sets its own (the
// dead-letter queue uses "dlq").
//
// # Periodic
//
// Periodic runs a function every interval, with optional jitter, the first
// time one interval after the start; a slow tick delays the next one
// rather than piling ticks up; errors and panics are logged and counted;
// cancelling the context (or Worker.Stop) ends it without leaving a
// goroutine behind:
//
//	w, err := background.Periodic{Name: "cleanup", Interval: time.Minute, Jitter: 0.1}.
//	    Start(ctx, func(ctx context.Context) error { return cleanup(ctx) })
//	if err != nil { ... }
//	defer w.Stop()
package background
