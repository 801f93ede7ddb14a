package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
)

// ParsedBatch is a block parsed ahead of processing, for RunParsed.
// Records and Values are aligned (Values[i] is Records[i] parsed) and hold
// only the records that parsed; the others were handled by
// batch_processing.parse_error_action.
//
// Unless batch_processing.intern_keys is set, values are parsed without
// copying strings out of the payloads: strings read from a value share
// the payload's memory, so do not modify payload bytes in place, and
// clone (strings.Clone) a string kept long after the block.
type ParsedBatch struct {
	// Records are the records that parsed, in block order.
	Records []transport.Record
	// Values are their parsed payloads.
	Values []*codec.Value
	// Tokens are the block's input tokens, whatever parsed.
	Tokens []transport.Token
	// ParseFailures are the records that failed to parse under the
	// dead_letter action, with the reason "parse error: ...", and, under
	// batch_processing.format_lock, the records whose format did not match
	// the lock, with the reason "format mismatch: ...". They are for
	// information: the engine routes them itself, whatever process returns,
	// so do not copy them into the out-batch.
	ParseFailures []transport.DeadLetter
	// Interner is the engine's field-name interner, shared across blocks.
	Interner *codec.Interner
}

// Len returns the number of parsed records.
func (b *ParsedBatch) Len() int { return len(b.Records) }

// Intern returns the shared copy of a field name, so a routing field read
// once per record does not allocate its name each time.
func (b *ParsedBatch) Intern(name string) string { return b.Interner.Intern(name) }

// Output returns the out-batch for the parsed records: each record with
// its payload re-encoded if its value was modified (the original bytes
// otherwise), and the block's tokens. A modified value that cannot be
// encoded becomes a dead letter with the reason "encode error: ...".
func (b *ParsedBatch) Output() transport.Batch {
	out := transport.Batch{Records: make([]transport.Record, 0, len(b.Records)), Tokens: b.Tokens}
	for i := range b.Records {
		rec := b.Records[i]
		if v := b.Values[i]; v.Modified() {
			p, err := v.Bytes()
			if err != nil {
				out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: rec, Reason: "encode error: " + err.Error()})
				continue
			}
			rec.Payload = p
		}
		out.Records = append(out.Records, rec)
	}
	return out
}

// ParsedProcessFunc transforms one parsed block into its out-batch; it
// must keep b.Tokens (ParsedBatch.Output does). It is never called with
// zero parsed records. An error is terminal for the loop.
type ParsedProcessFunc func(ctx context.Context, b *ParsedBatch) (transport.Batch, error)

// RunParsed is Run with each block parsed ahead of process, on the worker
// pool (Config.Pool), with the engine's shared field-name interner. A
// record that fails to parse (malformed, too deep, empty) is handled by
// batch_processing.parse_error_action: dead_letter routes it by the
// dead-letter policy before the sink and the commit, skip drops and counts
// it, fail_batch stops the loop with a *ParseError and commits nothing of
// the block. A block whose records all failed to parse is still committed
// (after its dead letters were routed) without calling process.
//
// With batch_processing.format_lock each call of RunParsed has its own
// codec.Detector: the loop locks to the first detectable format of its
// stream, checks the records in block order before the parse, and
// dead-letters a record of the other format with the reason
// "format mismatch: ..." (whatever parse_error_action says), relocking
// after format_relock_after mismatches in a row.
func (e *Engine) RunParsed(ctx context.Context, r transport.Receiver, process ParsedProcessFunc, sink SinkFunc) error {
	if err := checkArgs(r, process == nil, sink == nil); err != nil {
		return err
	}
	det, err := e.newDetector()
	if err != nil {
		return err
	}
	proc := func(ctx context.Context, b transport.Batch) (transport.Batch, int, error) {
		pb, err := e.parseBlock(ctx, b, det)
		if err != nil {
			return transport.Batch{}, 0, err
		}
		failures := pb.ParseFailures
		if len(pb.Records) == 0 {
			return transport.Batch{Tokens: pb.Tokens, DeadLetters: failures}, 0, nil
		}
		out, err := process(ctx, pb)
		if err != nil {
			return out, 0, err
		}
		e.countFiltered(len(pb.Records), out)
		if len(failures) > 0 {
			out.DeadLetters = append(failures[:len(failures):len(failures)], out.DeadLetters...)
		}
		return out, len(pb.Records), nil
	}
	return e.loop(ctx, r, "parsed", e.fixedLimits(), func(ctx context.Context, b transport.Batch, _ time.Time, _ trace.Span) error {
		return e.driveBlock(ctx, r, b, proc, sink)
	}, nil)
}

// parseAll parses records on the pool with base options, each record in
// its own format when it has one, else in the format the lock gave it.
// A record the lock refused is not parsed (its value and error are nil).
// errs is nil when all parsed. A ctx error is returned as such; a panic in
// the parser is that record's error.
func (e *Engine) parseAll(ctx context.Context, records []transport.Record, base codec.ParseOptions, lk *lockResult) ([]*codec.Value, []error, error) {
	t := time.Now()
	values, errs := pool.Map(ctx, e.pool, records, func(_ context.Context, i int, rec transport.Record) (*codec.Value, error) {
		o := base
		switch {
		case rec.Format != codec.Auto:
			o.Format = rec.Format
		case lk != nil:
			if lk.refused(i) {
				return nil, nil
			}
			o.Format = lk.formats[i]
		}
		return codec.Parse(rec.Payload, o)
	})
	e.ins.parseDur.Observe(since(t))
	if errs != nil {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for _, err := range errs {
			if errors.Is(err, pool.ErrClosed) {
				return nil, nil, err
			}
		}
	}
	return values, errs, nil
}

// parseBlock checks the block against the format lock (det, nil without
// one), parses it and applies the parse-error action.
func (e *Engine) parseBlock(ctx context.Context, b transport.Batch, det *codec.Detector) (*ParsedBatch, error) {
	lk := lockFormats(det, b.Records)
	values, errs, err := e.parseAll(ctx, b.Records, e.loopParse, lk)
	if err != nil {
		return nil, err
	}
	pb := &ParsedBatch{Records: b.Records, Values: values, Tokens: b.Tokens, Interner: e.interner}
	if errs == nil && !lk.anyRefused() {
		return pb, nil
	}
	keepRec := make([]transport.Record, 0, len(b.Records))
	keepVal := make([]*codec.Value, 0, len(b.Records))
	for i := range b.Records {
		if lk.refused(i) {
			e.c.errors.Add(1)
			e.ins.recordErrors.Inc()
			pb.ParseFailures = append(pb.ParseFailures, transport.DeadLetter{Record: b.Records[i], Reason: lk.reasons[i]})
			continue
		}
		var err error
		if errs != nil {
			err = errs[i]
		}
		if err == nil {
			keepRec = append(keepRec, b.Records[i])
			keepVal = append(keepVal, values[i])
			continue
		}
		e.countParseError()
		switch e.cfg.ParseErrorAction {
		case ParseSkip:
			e.c.skipped.Add(1)
			e.ins.skipped.Inc()
		case ParseFailBatch:
			return nil, &ParseError{Index: i, Err: err}
		default:
			pb.ParseFailures = append(pb.ParseFailures, transport.DeadLetter{Record: b.Records[i], Reason: "parse error: " + err.Error()})
		}
	}
	pb.Records, pb.Values = keepRec, keepVal
	return pb, nil
}

func (e *Engine) countParseError() {
	e.c.parseErrors.Add(1)
	e.c.errors.Add(1)
	e.ins.parseErrors.Inc()
	e.ins.recordErrors.Inc()
}

// newDetector returns the format lock of one RunParsed loop, or nil when
// batch_processing.format_lock is off.
func (e *Engine) newDetector() (*codec.Detector, error) {
	if !e.cfg.FormatLock {
		return nil, nil
	}
	det, err := codec.NewDetector(codec.DetectorConfig{
		RelockAfter: e.cfg.FormatRelockAfter, Metrics: e.cfg.Metrics, Logger: e.cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s.format_relock_after: %w", ErrInvalidConfig, Section, err)
	}
	return det, nil
}

// lockResult is what the format lock decided for the records of one
// block: the format to parse each record as and, for the records of the
// wrong format, the dead-letter reason.
type lockResult struct {
	formats []codec.Format
	reasons []string // nil when no record was refused
}

// lockFormats checks the records whose transport declared no format
// against det, in block order, so the lock and any relock follow the
// stream. It returns nil when det is nil.
func lockFormats(det *codec.Detector, records []transport.Record) *lockResult {
	if det == nil {
		return nil
	}
	lk := &lockResult{formats: make([]codec.Format, len(records))}
	for i := range records {
		if records[i].Format != codec.Auto {
			continue
		}
		f, err := det.Check(records[i].Payload)
		lk.formats[i] = f
		var me *codec.MismatchError
		if err == nil || !errors.As(err, &me) {
			continue
		}
		if lk.reasons == nil {
			lk.reasons = make([]string, len(records))
		}
		lk.reasons[i] = mismatchReason(me)
	}
	return lk
}

// refused reports whether record i was refused by the lock.
func (lk *lockResult) refused(i int) bool { return lk.anyRefused() && lk.reasons[i] != "" }

// anyRefused reports whether the lock refused a record of the block.
func (lk *lockResult) anyRefused() bool { return lk != nil && lk.reasons != nil }

// mismatchReason is the dead-letter reason of a record refused by the
// format lock, e.g. "format mismatch: expected json, got msgpack (1 in a
// row)".
func mismatchReason(me *codec.MismatchError) string {
	reason := "format mismatch: expected " + me.Locked.String() + ", got " + me.Detected.String() +
		" (" + strconv.Itoa(me.Run) + " in a row"
	if me.Relocked {
		reason += "; now locked to " + me.Detected.String()
	}
	return reason + ")"
}
