package dlq

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

// DefaultReplayBatch is the most records Replay sends at once.
const DefaultReplayBatch = 500

// ReplayOptions adjusts Replay. The zero value replays every entry, in
// batches of DefaultReplayBatch, and stops at the first line that does
// not decode.
type ReplayOptions struct {
	// Filter keeps the entries to replay (by reason, destination, source,
	// time...); nil keeps every entry.
	Filter func(Entry) bool
	// BatchSize is the most records sent at once. 0 means
	// DefaultReplayBatch.
	BatchSize int
	// SkipMalformed goes on past lines that do not decode, counting them,
	// instead of stopping with their *LineError.
	SkipMalformed bool
	// Sink overrides the send options (backoff, attempts) of
	// engine.SinkTo, which Replay sends through.
	Sink []engine.SinkOption
}

// ReplayStats counts what Replay did.
type ReplayStats struct {
	// Read is the number of entries decoded.
	Read int
	// Filtered is the number of entries the filter left out.
	Filtered int
	// Malformed is the number of lines skipped with SkipMalformed.
	Malformed int
	// Sent is the number of records the sender accepted, in whole
	// batches.
	Sent int
}

// Replay reads the entries of r and sends each one the filter keeps to s
// as the record it was dead-lettered from (payload, key and headers), in
// the order read, through engine.SinkTo: backpressure is retried with
// backoff and a partial failure sends only the records that failed. It
// returns when r is exhausted (nil), or at the first error: a send that
// failed for good, a line that does not decode (unless SkipMalformed), a
// read error or ctx. Sent then counts the batches accepted before the
// error; the failed batch may have been delivered in part, so replaying
// the same entries again can deliver some twice (at least once).
//
// A typical use is a service command that replays a DLQ file once the
// cause is fixed:
//
//	f, _ := os.Open(path)
//	out, _ := rt.Sender(ctx, "output")
//	st, err := dlq.Replay(ctx, dlq.NewReader(f), out, dlq.ReplayOptions{
//		Filter: func(e dlq.Entry) bool { return e.Destination == "orders" },
//	})
func Replay(ctx context.Context, r *Reader, s transport.Sender, opts ReplayOptions) (ReplayStats, error) {
	var st ReplayStats
	size := opts.BatchSize
	if size <= 0 {
		size = DefaultReplayBatch
	}
	send := engine.SinkTo(s, opts.Sink...)
	batch := make([]transport.Record, 0, size)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := send(ctx, transport.Batch{Records: batch}); err != nil {
			return fmt.Errorf("dlq: replay to %s after %d records: %w", s.Name(), st.Sent, err)
		}
		st.Sent += len(batch)
		batch = make([]transport.Record, 0, size)
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return st, flush()
		}
		var le *LineError
		if errors.As(err, &le) && opts.SkipMalformed {
			st.Malformed++
			continue
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return st, errors.Join(ferr, err)
			}
			return st, fmt.Errorf("dlq: replay stopped reading: %w", err)
		}
		st.Read++
		if opts.Filter != nil && !opts.Filter(e) {
			st.Filtered++
			continue
		}
		batch = append(batch, transport.Record{Payload: e.Payload, Key: e.Key, Headers: e.Headers})
		if len(batch) == size {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
}
