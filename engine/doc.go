// Package engine is keel's batch engine: the loop that moves blocks of
// records from a transport.Receiver through a process step to a sink and
// commits the input tokens, at least once and never past a failure.
//
// # The loop
//
// Each turn checks ctx, runs the ticker if it is due, then:
//
//  1. receive one block (max_chunk_size records, max_bytes soft cap);
//  2. route the dead letters the receiver put on it (inbound filters) by
//     the dead-letter policy;
//  3. lease the block's payload bytes against Config.Memory;
//  4. process it (ProcessFunc; never called with zero records);
//  5. route the dead letters process produced;
//  6. sink the out-batch (skipped when it has no records);
//  7. commit exactly the input tokens the block came with, whatever the
//     process step did to the records (a fan-out of 1 to 2 still commits
//     the one input token). A block whose records were all filtered out
//     but that carries tokens is committed, or the source would stall.
//
// A process, routing, sink or commit error, a fail_batch parse error or a
// receive error stops the loop and is returned as a *StageError (or a
// *ParseError inside one) matching ErrProcess, ErrRoute, ErrSink,
// ErrCommit, ErrParseBatch or ErrRecv, and the cause, with errors.Is. This
// is the ack barrier: nothing of the failed block is committed and no later
// block is received, so an ordered source with cumulative commits never
// moves past records that were not delivered. Restart and retry belong to
// the caller. The end of a finite source (transport.ErrClosed from Recv)
// returns nil after the last block was committed.
//
// # Graceful drain
//
// Cancelling ctx stops intake: the loop never calls Recv again (a Recv in
// progress returns as the transport contract says, losing nothing, and
// records it hands back are drained like a received block). The block
// already received is finished — processed, its dead letters routed,
// sunk and committed — under a context that keeps ctx's values but not its
// cancellation, and that expires batch_processing.drain_timeout (10 s by
// default) after the cancellation, with ErrDrainTimeout as its cause. A
// streaming or governed block finishes its remaining sub-blocks within the
// same deadline and commits once. The loop then returns nil, or the
// block's own terminal error if it failed. When the deadline passes first,
// nothing of the block is committed (the commit is refused once the
// context is done, even if a sink ignored it) and the block comes again
// from the source; the loop returns nil. Sinks must honour their context
// for the deadline to cut them short. A negative drain_timeout abandons
// the block in flight at once. keel_engine_drains_total{result} counts
// committed and abandoned drains.
//
// # Modes
//
//   - Run: on demand; nothing is parsed (pass-through costs no parse).
//   - RunParsed: each block is parsed on the worker pool before process,
//     with a shared field-name interner (used for every payload's keys
//     when intern_keys is set); parse failures follow parse_error_action
//     (dead_letter, skip, fail_batch). With format_lock each loop locks to
//     the first payload format it sees and dead-letters records of the
//     other format ("format mismatch: ..."), relocking after
//     format_relock_after mismatches in a row.
//   - RunStreaming: each block is processed in sub-blocks of about
//     sub_block_bytes, drawn one at a time, so one sub-block is leased at
//     once; the tokens are committed once after the last sub-block.
//   - RunGoverned: RunStreaming with the receive byte cap and sub-block
//     size taken from a ByteBudget, which is told each block's bytes and
//     timings; without a budget it is Run.
//
// Sink-managed commits (the sink commits the tokens it is handed) work with
// Run and RunParsed; RunStreaming and RunGoverned with a budget refuse them
// at start with ErrSinkManagedUnsupported.
//
// # Starting
//
//	eng, err := engine.New(engine.Config{})
//	if err != nil { ... }
//	err = eng.Run(ctx, receiver,
//	    func(ctx context.Context, b transport.Batch) (transport.Batch, error) {
//	        return b.MapRecords(func(r transport.Record) []transport.Record { return []transport.Record{r} }), nil
//	    },
//	    eng.SinkTo(sender))
//
// ProcessRecords runs the parse, pre-route filters and a transform over a
// slice of records without a transport.
//
// Metrics are keel_engine_* (records and bytes received, processed,
// delivered, dead letters by action, filtered, skipped, parse errors,
// failures by stage, drains by result, block/parse/process/sink/commit
// durations, in-flight block bytes). Filtered records are those dropped
// without a dead letter: in the run loops, the input records a process
// step was given minus the records and dead letters it returned, when
// fewer came out; in ProcessRecords, those a drop_field_missing filter
// dropped (see Stats.Filtered). Receive errors other than ErrClosed are
// terminal: a receiver that can recover from a transient fault retries
// inside Recv.
//
// # Tracing
//
// Each loop starts one consumer span per block (BlockSpanName) with
// Config.Tracer, or the global provider's tracer, through
// telemetry.StartBlock: linked to the trace contexts in the records'
// headers and a child of the producer's span when the records share one
// trace. Process, the dead-letter route and the sink run under it, so a
// sender that injects trace headers carries the trace on; sub-blocks are
// events on it; a failed block sets its status to error with the stage.
// With a no-op tracer (no SDK installed) no span is started and no header
// is read.
package engine
