package engine

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Stats are an engine's totals since New, over every run loop and every
// ProcessRecords call. All fields are counts.
type Stats struct {
	// Blocks is the number of non-empty batches received by the loops.
	Blocks uint64
	// Received and ReceivedBytes count the records and payload bytes
	// received by the loops or given to ProcessRecords.
	Received, ReceivedBytes uint64
	// Processed counts input records a process step or transform finished
	// without error.
	Processed uint64
	// Delivered counts output records the sink accepted.
	Delivered uint64
	// Committed counts successful commits made by the engine.
	Committed uint64
	// DeadLettered counts dead letters routed by the route function.
	DeadLettered uint64
	// Discarded counts dead letters dropped under the discard policy.
	Discarded uint64
	// Filtered counts records dropped without a dead letter: by a
	// drop_field_missing pre-route filter of ProcessRecords, or by the
	// process step of a run loop, which counts the input records it was
	// given minus the records and dead letters it returned, when fewer came
	// out (a fan-in counts the difference; a fan-out nothing). Records a
	// receiver's inbound filter dropped never reach the engine and are not
	// counted here.
	Filtered uint64
	// Skipped counts records dropped by parse_error_action skip.
	Skipped uint64
	// ParseErrors counts records whose payload failed to parse.
	ParseErrors uint64
	// Errors counts records that ended in an error: parse errors, format
	// mismatches under format_lock, pre-route dead letters and transform
	// errors of ProcessRecords.
	Errors uint64
	// Failures counts terminal loop errors.
	Failures uint64
	// Ticks and TickErrors count ticker runs and failed ones.
	Ticks, TickErrors uint64
}

type counters struct {
	blocks, received, receivedBytes, processed, delivered, committed atomic.Uint64
	deadLettered, discarded, filtered, skipped, parseErrors, errors  atomic.Uint64
	failures, ticks, tickErrors                                      atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Blocks: c.blocks.Load(), Received: c.received.Load(), ReceivedBytes: c.receivedBytes.Load(),
		Processed: c.processed.Load(), Delivered: c.delivered.Load(), Committed: c.committed.Load(),
		DeadLettered: c.deadLettered.Load(), Discarded: c.discarded.Load(), Filtered: c.filtered.Load(),
		Skipped: c.skipped.Load(), ParseErrors: c.parseErrors.Load(), Errors: c.errors.Load(),
		Failures: c.failures.Load(), Ticks: c.ticks.Load(), TickErrors: c.tickErrors.Load(),
	}
}

// instruments are the engine's series, resolved once in New so that a
// block never looks a metric up.
type instruments struct {
	blocks, received, receivedBytes, processed, delivered, commits prometheus.Counter
	routed, discarded, rejected                                    prometheus.Counter
	filtered, skipped, parseErrors, recordErrors                   prometheus.Counter
	subBlocks, ticks, tickErrors, tokenMismatch                    prometheus.Counter
	failures                                                       *metrics.CounterVec
	drainCommitted, drainAbandoned                                 prometheus.Counter

	blockDur, parseDur, processDur, sinkDur, commitDur prometheus.Observer
	blockRecords, blockBytesHist                       prometheus.Observer

	inflightBytes prometheus.Gauge
	budgetBytes   prometheus.Gauge
}

func newInstruments(reg *metrics.Registry) *instruments {
	reg = metrics.OrDefault(reg)
	o := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "engine", Name: name, Help: help, Unit: unit, Group: "engine"}
	}
	drains := reg.CounterVec(o("drains_total",
		"Blocks in flight when a run loop was cancelled, by result: committed (finished within drain_timeout) or abandoned (not committed; delivered again).", ""), "result")
	dl := reg.CounterVec(o("dead_letters_total",
		"Dead letters handled by the engine, by action: routed to the route function, discarded by policy, or rejected (terminal).", ""), "action")
	return &instruments{
		blocks: reg.Counter(o("blocks_total", "Non-empty batches received by the engine loops.", "")),
		received: reg.Counter(o("records_received_total",
			"Records received by the engine loops or given to ProcessRecords.", "")),
		receivedBytes: reg.Counter(o("received_bytes_total",
			"Payload bytes received by the engine loops or given to ProcessRecords.", "bytes")),
		processed: reg.Counter(o("records_processed_total",
			"Input records that a process step or transform finished without error.", "")),
		delivered: reg.Counter(o("records_delivered_total", "Output records accepted by the sink.", "")),
		commits:   reg.Counter(o("commits_total", "Successful commits of input tokens made by the engine.", "")),
		routed:    dl.With("routed"),
		discarded: dl.With("discarded"),
		rejected:  dl.With("rejected"),
		filtered: reg.Counter(o("records_filtered_total",
			"Records dropped without a dead letter: by a pre-route filter (routing field missing), or by a run loop's process step (input records minus output records and dead letters, when fewer came out).", "")),
		skipped: reg.Counter(o("records_skipped_total",
			"Records dropped because they failed to parse under parse_error_action skip.", "")),
		parseErrors: reg.Counter(o("parse_errors_total", "Records whose payload failed to parse, whatever the action.", "")),
		recordErrors: reg.Counter(o("record_errors_total",
			"Records that ended in an error: parse errors, format mismatches under format_lock, pre-route dead letters and transform errors.", "")),
		subBlocks:  reg.Counter(o("sub_blocks_total", "Sub-blocks processed by the streaming and governed loops.", "")),
		ticks:      reg.Counter(o("ticks_total", "Runs of the loop ticker.", "")),
		tickErrors: reg.Counter(o("tick_errors_total", "Ticker runs that returned an error (logged, not fatal).", "")),
		tokenMismatch: reg.Counter(o("token_count_changes_total",
			"Blocks whose process step returned a different number of commit tokens than it was given.", "")),
		drainCommitted: drains.With("committed"),
		drainAbandoned: drains.With("abandoned"),
		failures: reg.CounterVec(o("failures_total",
			"Terminal loop errors by stage (recv, process, route, sink, commit, parse): the loop stopped.", ""), "stage"),
		blockDur: reg.Histogram(o("block_duration_seconds",
			"Time from receiving a block to its commit (or to the sink for sink-managed commits).", "seconds"), nil),
		parseDur: reg.Histogram(o("parse_duration_seconds", "Time to parse a whole block on the pre-parsed path.", "seconds"), nil),
		processDur: reg.Histogram(o("process_duration_seconds",
			"Time spent in the process step per block or sub-block.", "seconds"), nil),
		sinkDur:      reg.Histogram(o("sink_duration_seconds", "Time spent in the sink per block or sub-block.", "seconds"), nil),
		commitDur:    reg.Histogram(o("commit_duration_seconds", "Time spent committing a block's input tokens.", "seconds"), nil),
		blockRecords: reg.Histogram(o("block_records", "Records per received block.", ""), metrics.CountBuckets),
		blockBytesHist: reg.Histogram(o("block_size_bytes", "Payload bytes per received block.", "bytes"),
			metrics.SizeBuckets),
		inflightBytes: reg.Gauge(o("block_bytes",
			"Payload bytes of the blocks (or sub-blocks) in flight now, across the engines of the registry.", "bytes")),
		budgetBytes: reg.Gauge(o("budget_bytes",
			"Byte budget last read by the governed loop: its receive byte cap and sub-block target.", "bytes")),
	}
}

// since returns the seconds since t.
func since(t time.Time) float64 { return time.Since(t).Seconds() }
