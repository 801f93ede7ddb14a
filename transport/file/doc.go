// Package file is the NDJSON file transport: a Receiver that reads a file
// line by line from a committed byte offset, and a Sender that appends
// records as lines. Configuration lives in the "transport.file" section.
//
// Receiving:
//
//	r, err := file.NewReceiver(file.Config{Path: "/data/events.ndjson"})
//	if err != nil { ... }
//	defer r.Close(ctx)
//	for {
//		b, err := r.Recv(ctx, transport.Limits{MaxRecords: 500})
//		if err != nil { ... }          // ctx.Err(), or transport.ErrClosed
//		deliver(b.Records, b.DeadLetters)
//		if err := r.Commit(ctx, b.Tokens); err != nil { ... }
//	}
//
// Each line is a record; its token ("file:<offset>") is the byte offset
// after the line. Commit persists the highest offset to a position file
// (default <path>.pos) by writing a temporary file, fsyncing it, renaming
// it into place and fsyncing the directory, so a restarted receiver
// resumes exactly after the last commit and re-delivers what was received
// but not committed (at-least-once). A position file that does not hold a
// byte offset stops NewReceiver with ErrCorruptPosition rather than
// silently re-reading or skipping the file.
//
// By default the receiver follows the file like tail -f: it waits for the
// file to appear, holds a partial last line back until its newline
// arrives, polls at the end of the file, and restarts from offset 0 (with
// a warning) when the file is truncated or replaced. Config.StopAtEOF
// reads a finished file instead and ends with transport.ErrClosed. Lines
// over Config.MaxLineBytes (1 MiB) become dead letters without ever being
// held whole in memory; their tokens still advance the position.
//
// Sending:
//
//	s, err := file.NewSender(file.Config{Path: "/data/out.ndjson"})
//	if err != nil { ... }
//	defer s.Close(ctx)
//	err = s.SendBatch(ctx, records)
//
// By default each call flushes to the operating system before it returns
// (Flush "batch": safe from a process crash) and fsyncs (Sync
// "every_write": safe from a machine crash). Flush "bytes" (once
// flush_bytes are buffered) and "interval" (every flush_interval) write
// less often, and Sync "interval" and "none" fsync less often; each trades
// a window of accepted records lost in a crash for speed, which breaks
// at-least-once delivery for a source committed after the send, and a lazy
// flush needs a lazy sync. A payload that would not read back as the same
// single line (it contains "\n", is blank, ends with "\r" or is over
// MaxLineBytes) is refused with ErrUnframable at its index in a
// *transport.BatchError.
//
// Metrics (namespace keel, subsystem file): lines_read_total,
// read_bytes_total, oversize_lines_total, commits_total, resets_total,
// lines_written_total, written_bytes_total, rejected_records_total,
// fsyncs_total.
package file
