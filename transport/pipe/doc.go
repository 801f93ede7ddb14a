// Package pipe is the standard input / standard output transport for shell
// pipelines: a Receiver that reads NDJSON lines from an io.Reader
// (os.Stdin by default) and a Sender that writes records as lines to an
// io.Writer (os.Stdout by default). Configuration lives in the
// "transport.pipe" section.
//
//	// cat events.ndjson | myservice | jq .
//	in, err := pipe.NewReceiver(pipe.Config{})
//	if err != nil { ... }
//	out, err := pipe.NewSender(pipe.Config{})
//	if err != nil { ... }
//	for {
//		b, err := in.Recv(ctx, transport.Limits{MaxRecords: 500})
//		if errors.Is(err, transport.ErrClosed) {
//			break // end of input, every line returned
//		}
//		if err != nil { ... }
//		if err := out.SendBatch(ctx, transform(b.Records)); err != nil { ... }
//	}
//
// Recv waits for the first line (until ctx is done or Config.RecvTimeout
// passes) and then takes only what is already buffered, so a slow trickle
// of input is delivered line by line while a fast one fills batches.
// Cancelling ctx never loses input: what the background reader took from
// the stream stays buffered for the next Recv. Framing follows the file
// transport: "\r\n" is accepted, blank lines are skipped, and a line over
// Config.MaxLineBytes (1 MiB) becomes a dead letter without being held
// whole in memory. Tokens are "pipe:<seq>" and Commit does nothing: a
// stream cannot be replayed.
//
// The Sender flushes at the end of every call and refuses, with
// ErrUnframable at its index in a *transport.BatchError, a payload that
// would not reach the next program as exactly one line.
//
// The background reader cannot be interrupted while it is blocked in Read
// of os.Stdin; Close returns without waiting for it and it ends when that
// Read returns. Tests and embedders that need a clean stop use a reader
// they can close, such as io.Pipe.
//
// Metrics (namespace keel, subsystem pipe): lines_read_total,
// read_bytes_total, oversize_lines_total, lines_written_total,
// written_bytes_total, rejected_records_total.
package pipe
