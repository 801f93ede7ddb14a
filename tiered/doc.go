// Package tiered is a transport.Sender that keeps accepting records while
// its downstream is slow or down: it delivers directly when it can, spools
// to local disk when it cannot, and replays the spool in the background once
// the downstream recovers. Records that can never be delivered go to a
// dead-letter queue with their reason and attempt count.
//
//	sink, err := tiered.New(ctx, kafkaSender, cfg.Tiered, tiered.Options{DeadLetters: dlq})
//	if err != nil {
//		return err
//	}
//	defer sink.Close(shutdownCtx)
//	err = eng.Run(ctx, receiver, process, engine.SinkTo(sink))
//
// # Send path
//
// SendBatch calls the downstream, bounded by tiered.send_timeout, while the
// circuit breaker (package breaker) is closed and, in strict ordering, the
// spool is empty. Records the downstream did not accept, and every record
// when the call failed, timed out or the breaker is open, are appended to the
// spool and SendBatch returns nil, so the engine commits the input.
// A whole-call failure, timeout or permanent refusal counts as a breaker
// failure (a permanent error may be one record's fault, which the drainer
// finds out, or a failing downstream's: an HTTP endpoint answering 500);
// backpressure (the downstream is up but full) does not. SendBatch returns
// an error only
// when the spool cannot take the records (tiered.spool.full_policy error,
// a full disk, a broken spool, after Close), so the input is then not
// committed. When the spool took part of the batch, the error is a
// *transport.BatchError naming only the records it did not take; a full
// disk is backpressure, so the engine's sink waits and sends those again
// (the pipeline pauses until space is back), anything else is fatal.
//
// # What "durable" means when SendBatch returns
//
// The records are in the spool as its tiered.spool.sync policy guarantees:
// under always they are on stable storage; under interval (the default) they
// survive a crash of the process at once and a crash of the machine once the
// next fsync ran (at most tiered.spool.sync_interval later); under never they
// survive a crash of the process, and a machine crash can lose what the
// operating system had not written back. A record the spool's drop_newest
// or drop_oldest policy discards is counted (keel_spool_drops_total,
// keel_tiered_dropped_records_total) and lost by configuration.
//
// # Drainer
//
// One goroutine reads the spool in batches (tiered.drain_batch records,
// tiered.drain_bytes bytes), sends each batch with one SendBatch and
// acknowledges records in the spool only after the downstream accepted them
// (or the dead-letter queue took them). Acknowledgement is cumulative, up to
// the last record of the resolved prefix; records a *transport.BatchError
// names are retried alone, so an accepted record is not sent twice within
// one run. After a failed round the drainer waits with exponential backoff
// and jitter (tiered.backoff), and it waits the same way while the breaker
// is open; tiered.rate_limit caps the drain rate in records/s.
//
// What is charged to a record. Outage errors, of the whole call or of one
// record (a *transport.BatchError entry), are never charged: timeouts (a
// Kafka producer's delivery timeout, the call's deadline, a retriable
// broker error such as NOT_LEADER_FOR_PARTITION), connection,
// closed-sender and configuration errors. The records are tried again after
// a backoff wait, and a call in which the downstream accepted nothing
// counts as a breaker failure. Backpressure is charged to nothing and is
// no breaker failure. An outage therefore never dead-letters data.
//
// A record goes to the dead-letter queue:
//
//   - at once, when the downstream dead-lettered it on purpose (a per-record
//     error transport.Classify calls dead-lettered, such as an outbound
//     filter);
//   - at once, when the downstream refused it by itself with a permanent
//     error (fatal by transport.Classify and none of the outage kinds) in a
//     call in which it accepted other records: the downstream is up and
//     judged this record;
//   - after tiered.max_attempts refusals alone, proven by the record after
//     it, as below.
//
// A downstream may refuse a whole call with one permanent error, for one
// record in it (an HTTP endpoint answering 400 to an NDJSON body with one
// bad line) or for none (the same endpoint answering 500 while its backend
// is down); a call in which it refuses every record by itself, permanently,
// is handled the same. The drainer splits the batch: it sends the first
// half alone, halving again while the call is refused, so the records
// before the one at fault are accepted on the way, until a record is
// refused alone. That record is charged an attempt and, after a backoff
// wait, tried alone again, so a downstream refusing a few calls in a row (a
// blip shorter than the waits of tiered.max_attempts refusals, at least
// 0.75 s with the default backoff) never condemns a record, and the order
// is kept. Once the record has been refused alone tiered.max_attempts
// times, a refusal goes on at once with the record after it, alone: if the
// downstream accepts that one, the record is dead-lettered with its
// attempts; if that one is refused alone too, it is passed the same way
// once it has been refused tiered.max_attempts times (two poison records in
// a row), and otherwise the round ends with a wait. After a wait the next
// round starts again from the first unresolved record, which a downstream
// that recovered meanwhile accepts.
//
// For the breaker, a round that ends at a record refused alone counts one
// failure when it tried a record after a passed one (refused too: the
// downstream more likely refuses everything) or when no record follows
// (nothing can tell the record's fault from the downstream's), and nothing
// otherwise; the splitting calls count nothing. A downstream that refuses
// every call thus opens the breaker, whether the spool holds one record or
// a backlog, and its records stay spooled until it recovers: nothing is
// dead-lettered. A record is condemned only in the round in which a later
// record is accepted; the one race left is a downstream that recovers
// between those two calls after refusing the record tiered.max_attempts
// times.
//
// A spooled record that does not decode and a record too large for the
// spool are dead-lettered too. The dead-letter entry carries the reason,
// the attempts, the downstream's name as destination and
// "spool:<name>:<seq>" as source token.
//
// Without a dead-letter queue (Options.DeadLetters nil) such a record is
// not lost: it stays in the spool and the drainer holds at it, so nothing
// behind it is delivered (the records before it are acknowledged); the hold
// is logged at ERROR, Health fails with an error matching
// ErrNoDeadLetterQueue and CannotDrain holds, until the sink is opened again
// with a dead-letter queue. tiered.drop_undeliverable: true chooses to
// discard such records instead, each logged at ERROR and counted in
// keel_tiered_dropped_records_total{reason="no_dead_letter_queue"}. A record
// too large for the spool, with neither, fails SendBatch.
//
// # Ordering
//
// Strict (the default): while the spool holds records every new record is
// appended behind them, and the switch back to direct sends happens only
// once the drainer has emptied the spool, under the same lock as the sends.
// The downstream therefore receives records in the order SendBatch took
// them, as long as it accepts each batch as a prefix (a downstream that
// rejects one record of a batch and takes the later ones has reordered them
// itself). Interleaved: new records go directly whenever the breaker lets
// them, beside the drainer; spooled records arrive after newer ones.
//
// Delivery is at least once across restarts: a record sent by the drainer
// and not yet acknowledged when the process dies is sent again by the next
// Sink, and a direct send that timed out may have landed and is spooled too.
//
// # Signals
//
// PressureRatio (the spool's fill level) is a soft pressure source for the
// governor. CannotDrain suits scaling.CircuitSource: a sink that cannot
// drain forces the scaling pressure to zero, since more instances would
// only push more into a downstream that takes nothing more. It holds while
// the breaker is open (CircuitOpen), while the drainer holds an
// undeliverable record for want of a dead-letter queue, while the spool is
// stalled (Stalled:
// it holds records and none was delivered or dead-lettered for
// tiered.stall_timeout, 30 s by default, which also covers a downstream
// that answers with backpressure forever and so never opens the breaker),
// and while the spool is full (PressureRatio reached 1). The fill level is
// thus not a component that could raise the scaling pressure: it can only
// force it down. Draining reports a backlog. Health fails while the spool
// fails and whenever CannotDrain holds, with an error matching
// ErrCannotDrain and ErrCircuitOpen, ErrStalled or spool.ErrFull, or
// with one matching ErrNoDeadLetterQueue.
//
// # Lifecycle
//
// New opens the spool (tiered.spool) and starts the drainer, which first
// replays what an earlier Sink left. Close stops accepting and lets the
// drainer work until the spool is empty, for at most
// tiered.close_drain_timeout (10 s by default) and at most half the time its
// context has left, and not at all, or no longer, while the breaker is
// open, the spool stalled or a record held (the downstream takes nothing, so waiting would only
// hold the shutdown). It then stops the drainer, leaves the rest in the
// spool (fsynced at close, the count logged) for the next start, closes the
// downstream and returns nil: records left spooled are not an error.
//
// # Metrics
//
// Labelled sink=<name>: keel_tiered_direct_records_total,
// keel_tiered_spooled_records_total{reason}, keel_tiered_drained_records_total,
// keel_tiered_dead_lettered_records_total{reason},
// keel_tiered_retries_total, keel_tiered_dropped_records_total{reason}; the
// spool's depth is in keel_spool_* and the breaker's state in
// keel_breaker_state and keel_breaker_transitions_total.
package tiered
