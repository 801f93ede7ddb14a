package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/bytedance/sonic"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
)

// Errors of the records ProcessRecords could not hand to the transform.
var (
	// ErrRecordParse marks a record whose payload failed to parse.
	ErrRecordParse = errors.New("engine: record failed to parse")
	// ErrRecordDeadLettered marks a record dead-lettered by a pre-route
	// filter.
	ErrRecordDeadLettered = errors.New("engine: record dead-lettered by a pre-route filter")
	// ErrBatchFailed marks the records of a ProcessRecords call that was
	// failed by a parse error under parse_error_action fail_batch.
	ErrBatchFailed = errors.New("engine: batch failed due to a parse error (parse_error_action fail_batch)")
)

// RecordError is the error of one record that did not reach the
// transform. It matches its Kind (ErrRecordParse, ErrRecordDeadLettered or
// ErrBatchFailed) and its cause with errors.Is; Reason is the dead-letter
// reason to store with the record.
type RecordError struct {
	// Kind is the sentinel.
	Kind error
	// Reason is a one-line reason, e.g. "parse error: ...".
	Reason string
	// Err is the cause, if any (the codec error of a parse failure).
	Err error
}

// Error returns Reason.
func (e *RecordError) Error() string { return e.Reason }

// Unwrap returns Kind and the cause.
func (e *RecordError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Message is one parsed record handed to the transform of ProcessRecords.
type Message struct {
	// Index is the record's position in the input slice.
	Index int
	// Record is the record.
	Record transport.Record
	// Value is its parsed payload.
	Value *codec.Value
}

// Field reads a top-level field of the payload.
func (m *Message) Field(name string) codec.Field { return m.Value.Field(name) }

// Result is the outcome of one input record of ProcessRecords: the
// transform's output, or why the record has none.
type Result[O any] struct {
	// Index is the record's position in the input slice.
	Index int
	// Value is what the transform returned.
	Value O
	// Err is the transform's error, a *RecordError for a record that did
	// not reach it, or a *pool.PanicError if the transform panicked.
	Err error
}

// ProcessRecords parses records on the engine's pool and runs fn on each
// that parsed and passed the pre-route filters, without a transport. The
// results are in input order, one per record, except for records dropped
// by a drop_field_missing filter (counted as filtered) and records that
// failed to parse under parse_error_action skip (counted as skipped):
// those have no result.
//
// Records are taken in chunks of batch_processing.max_chunk_size. A record
// that matches a dead_letter_field_value filter, or fails to parse under
// dead_letter, gets a *RecordError carrying the dead-letter reason. Under
// fail_batch the first parse failure stops the call: that record gets a
// *RecordError (ErrRecordParse), every successful result before it (in
// this chunk and the earlier ones) is replaced by ErrBatchFailed, and
// nothing after it is transformed or returned.
//
// Strings read from a Message's value are copies, so the caller may reuse
// the payload buffers once the call returned. fn runs concurrently on the pool and must be safe for that; a panic in
// it becomes that record's error. When ctx is done, records not started
// get ctx's error. ProcessRecords is safe for concurrent use.
func ProcessRecords[O any](ctx context.Context, e *Engine, records []transport.Record,
	fn func(ctx context.Context, m *Message) (O, error)) []Result[O] {
	out := make([]Result[O], 0, len(records))
	chunk := e.cfg.maxRecords()
	for lo := 0; lo < len(records); lo += chunk {
		hi := min(lo+chunk, len(records))
		var failed bool
		out, failed = processChunk(ctx, e, records[lo:hi], lo, out, fn)
		if failed {
			return out
		}
	}
	return out
}

// routeOutcome is what the pre-route filters decided for a record.
type routeOutcome uint8

const (
	routeContinue routeOutcome = iota
	routeFiltered
	routeDeadLetter
)

// slotKind is what became of one record of a chunk.
type slotKind uint8

const (
	slotParsed     slotKind = iota // parsed and passed the filters; not yet transformed
	slotDone                       // transformed (err holds the transform's error)
	slotParseError                 // failed to parse (err holds the codec error)
	slotFiltered                   // dropped by a pre-route filter
	slotDeadLetter                 // dead-lettered by a pre-route filter (reason)
	slotAborted                    // not run: ctx done or pool closed (err)
)

// markAborted applies the pool's per-item errors to the slots: a panic
// is the record's transform error, anything else (ctx done, pool closed)
// means the record was not run.
func markAborted[O any](slots []slot[O], errs []error, at func(int) int) {
	for k, err := range errs {
		if err == nil {
			continue
		}
		s := &slots[at(k)]
		var pe *pool.PanicError
		if errors.As(err, &pe) {
			s.kind, s.err = slotDone, err
		} else {
			s.kind, s.err = slotAborted, err
		}
	}
}

// slot is one record's state inside processChunk.
type slot[O any] struct {
	kind   slotKind
	val    O
	err    error
	reason string
	msg    Message
}

func processChunk[O any](ctx context.Context, e *Engine, records []transport.Record, base int, out []Result[O],
	fn func(ctx context.Context, m *Message) (O, error)) ([]Result[O], bool) {
	nrec := len(records)
	bytes := transport.PayloadBytes(records)
	e.c.received.Add(uint64(nrec))
	e.c.receivedBytes.Add(uint64(bytes))
	e.ins.received.Add(float64(nrec))
	e.ins.receivedBytes.Add(float64(bytes))
	e.lease(bytes)
	defer e.release(bytes)

	// Under fail_batch no record may be transformed once a parse failed, so
	// the transform waits for the whole chunk to parse. Otherwise parse,
	// filters and transform run as one pass on the pool.
	twoPhase := e.cfg.ParseErrorAction == ParseFailBatch
	slots := make([]slot[O], nrec)
	t := time.Now()
	_, errs := pool.Map(ctx, e.pool, records, func(ctx context.Context, i int, rec transport.Record) (struct{}, error) {
		s := &slots[i]
		o := e.callParse
		if rec.Format != codec.Auto {
			o.Format = rec.Format
		}
		v, err := codec.Parse(rec.Payload, o)
		if err != nil {
			s.kind, s.err = slotParseError, err
			return struct{}{}, nil
		}
		switch outcome, reason := e.preRoute(v); outcome {
		case routeFiltered:
			s.kind = slotFiltered
			return struct{}{}, nil
		case routeDeadLetter:
			s.kind, s.reason = slotDeadLetter, reason
			return struct{}{}, nil
		}
		s.msg = Message{Index: base + i, Record: rec, Value: v}
		if twoPhase {
			return struct{}{}, nil
		}
		s.kind = slotDone
		s.val, s.err = fn(ctx, &s.msg)
		return struct{}{}, nil
	})
	e.ins.parseDur.Observe(since(t))
	markAborted(slots, errs, func(i int) int { return i })

	if twoPhase {
		for i := range slots {
			if slots[i].kind != slotParseError {
				continue
			}
			e.countParseError()
			for j := range out {
				if out[j].Err == nil {
					var zero O
					out[j].Value = zero
					out[j].Err = ErrBatchFailed
				}
			}
			for j := range i {
				switch slots[j].kind {
				case slotParsed:
					out = append(out, Result[O]{Index: base + j, Err: ErrBatchFailed})
				case slotDeadLetter:
					e.c.errors.Add(1)
					e.ins.recordErrors.Inc()
					out = append(out, Result[O]{Index: base + j, Err: &RecordError{Kind: ErrRecordDeadLettered, Reason: slots[j].reason}})
				case slotFiltered:
					e.c.filtered.Add(1)
					e.ins.filtered.Inc()
				}
			}
			err := slots[i].err
			out = append(out, Result[O]{Index: base + i, Err: &RecordError{
				Kind: ErrRecordParse, Reason: "parse error (fail_batch): " + err.Error(), Err: err}})
			return out, true
		}
		var pending []int
		for i := range slots {
			if slots[i].kind == slotParsed {
				pending = append(pending, i)
			}
		}
		_, terrs := pool.Map(ctx, e.pool, pending, func(ctx context.Context, _ int, i int) (struct{}, error) {
			s := &slots[i]
			s.kind = slotDone
			s.val, s.err = fn(ctx, &s.msg)
			return struct{}{}, nil
		})
		markAborted(slots, terrs, func(k int) int { return pending[k] })
	}

	var ok, failed int
	for i := range slots {
		s := &slots[i]
		idx := base + i
		switch s.kind {
		case slotDone:
			out = append(out, Result[O]{Index: idx, Value: s.val, Err: s.err})
			if s.err != nil {
				failed++
			} else {
				ok++
			}
		case slotParseError:
			e.countParseError()
			if e.cfg.ParseErrorAction == ParseSkip {
				e.c.skipped.Add(1)
				e.ins.skipped.Inc()
				continue
			}
			out = append(out, Result[O]{Index: idx, Err: &RecordError{
				Kind: ErrRecordParse, Reason: "parse error: " + s.err.Error(), Err: s.err}})
		case slotFiltered:
			e.c.filtered.Add(1)
			e.ins.filtered.Inc()
		case slotDeadLetter:
			failed++
			out = append(out, Result[O]{Index: idx, Err: &RecordError{Kind: ErrRecordDeadLettered, Reason: s.reason}})
		case slotAborted:
			out = append(out, Result[O]{Index: idx, Err: s.err})
		case slotParsed:
			// Not transformed: ctx ended between the two phases.
			out = append(out, Result[O]{Index: idx, Err: ctx.Err()})
		}
	}
	e.c.processed.Add(uint64(ok))
	e.ins.processed.Add(float64(ok))
	if failed > 0 {
		e.c.errors.Add(uint64(failed))
		e.ins.recordErrors.Add(float64(failed))
	}
	return out, false
}

// preRoute applies the pre-route filters to a parsed record.
func (e *Engine) preRoute(v *codec.Value) (routeOutcome, string) {
	if len(e.cfg.PreRouteFilters) == 0 {
		return routeContinue, ""
	}
	f := v.Field(e.cfg.RoutingField)
	for _, rule := range e.cfg.PreRouteFilters {
		switch rule.Type {
		case DropFieldMissing:
			if !f.Exists() {
				return routeFiltered, ""
			}
		case DeadLetterFieldValue:
			if f.Exists() {
				if text := fieldText(f); text == rule.Value {
					return routeDeadLetter, "field value '" + text + "' matches dead-letter rule"
				}
			}
		}
	}
	return routeContinue, ""
}

// fieldText is a field's string, or the JSON text of any other value.
func fieldText(f codec.Field) string {
	switch f.Kind() {
	case codec.KindString:
		s, _ := f.Str()
		return s
	case codec.KindInt:
		i, _ := f.Int()
		return strconv.FormatInt(i, 10)
	case codec.KindBool:
		b, _ := f.Bool()
		return strconv.FormatBool(b)
	case codec.KindNull:
		return "null"
	case codec.KindFloat:
		if x, ok := f.Float(); ok {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	b, err := sonic.ConfigStd.Marshal(f.Interface())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
