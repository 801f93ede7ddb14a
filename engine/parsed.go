package engine

import (
	"context"
	"errors"
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
	// dead_letter action, with the reason "parse error: ...". They are for
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
func (e *Engine) RunParsed(ctx context.Context, r transport.Receiver, process ParsedProcessFunc, sink SinkFunc) error {
	if err := checkArgs(r, process == nil, sink == nil); err != nil {
		return err
	}
	proc := func(ctx context.Context, b transport.Batch) (transport.Batch, int, error) {
		pb, err := e.parseBlock(ctx, b)
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
// its own format when it has one. errs is nil when all parsed. A ctx
// error is returned as such; a panic in the parser is that record's error.
func (e *Engine) parseAll(ctx context.Context, records []transport.Record, base codec.ParseOptions) ([]*codec.Value, []error, error) {
	t := time.Now()
	values, errs := pool.Map(ctx, e.pool, records, func(_ context.Context, _ int, rec transport.Record) (*codec.Value, error) {
		o := base
		if rec.Format != codec.Auto {
			o.Format = rec.Format
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

// parseBlock parses a block and applies the parse-error action.
func (e *Engine) parseBlock(ctx context.Context, b transport.Batch) (*ParsedBatch, error) {
	values, errs, err := e.parseAll(ctx, b.Records, e.loopParse)
	if err != nil {
		return nil, err
	}
	pb := &ParsedBatch{Records: b.Records, Values: values, Tokens: b.Tokens, Interner: e.interner}
	if errs == nil {
		return pb, nil
	}
	keepRec := make([]transport.Record, 0, len(b.Records))
	keepVal := make([]*codec.Value, 0, len(b.Records))
	for i, err := range errs {
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
