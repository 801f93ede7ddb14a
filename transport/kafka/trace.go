package kafka

import (
	"context"
	"encoding/hex"
	"errors"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
)

// W3C Trace Context header names.
const (
	// TraceparentHeader carries the W3C traceparent of a record.
	TraceparentHeader = "traceparent"
	// TracestateHeader carries the W3C tracestate of a record.
	TracestateHeader = "tracestate"
)

// ErrTraceparent is wrapped by ParseTraceparent's errors.
var ErrTraceparent = errors.New("invalid traceparent")

// ParseTraceparent parses a W3C traceparent value
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>") into a remote
// span context. It follows the W3C rules: lower-case hex, version ff
// refused, all-zero trace or parent ids refused, version 00 exactly 55
// characters, a later version at least 55 with a "-" after the flags.
func ParseTraceparent(s string) (trace.SpanContext, error) {
	if len(s) < 55 {
		return trace.SpanContext{}, errTP("shorter than 55 characters")
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, errTP("fields are not separated by '-'")
	}
	ver, ok := hexByte(s[0], s[1])
	if !ok {
		return trace.SpanContext{}, errTP("version is not lower-case hex")
	}
	switch {
	case ver == 0xff:
		return trace.SpanContext{}, errTP("version ff is invalid")
	case ver == 0 && len(s) != 55:
		return trace.SpanContext{}, errTP("version 00 must be 55 characters")
	case ver != 0 && len(s) > 55 && s[55] != '-':
		return trace.SpanContext{}, errTP("unexpected characters after the flags")
	}
	var tid trace.TraceID
	var sid trace.SpanID
	if !decodeLowerHex(tid[:], s[3:35]) {
		return trace.SpanContext{}, errTP("trace id is not 32 lower-case hex digits")
	}
	if !decodeLowerHex(sid[:], s[36:52]) {
		return trace.SpanContext{}, errTP("parent id is not 16 lower-case hex digits")
	}
	flags, ok := hexByte(s[53], s[54])
	if !ok {
		return trace.SpanContext{}, errTP("flags are not lower-case hex")
	}
	if !tid.IsValid() {
		return trace.SpanContext{}, errTP("trace id is all zeros")
	}
	if !sid.IsValid() {
		return trace.SpanContext{}, errTP("parent id is all zeros")
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		SpanID:     sid,
		TraceFlags: trace.TraceFlags(flags) & trace.FlagsSampled,
		Remote:     true,
	}), nil
}

func errTP(why string) error { return errors.Join(ErrTraceparent, errors.New(why)) }

// FormatTraceparent returns the version 00 traceparent of sc, or "" when
// sc is not valid.
func FormatTraceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// TraceContext extracts the W3C trace context a record carries in its
// traceparent (and tracestate) headers. ok is false when the record has
// no valid traceparent.
func TraceContext(rec transport.Record) (sc trace.SpanContext, ok bool) {
	v, found := rec.Header(TraceparentHeader)
	if !found {
		return trace.SpanContext{}, false
	}
	sc, err := ParseTraceparent(string(v))
	if err != nil {
		return trace.SpanContext{}, false
	}
	if ts, found := rec.Header(TracestateHeader); found {
		if state, err := trace.ParseTraceState(string(ts)); err == nil {
			sc = sc.WithTraceState(state)
		}
	}
	return sc, true
}

// ContextWithTrace returns ctx carrying the record's trace context as the
// remote parent, so that a span started from it joins the producer's
// trace. Without a valid traceparent it returns ctx.
func ContextWithTrace(ctx context.Context, rec transport.Record) context.Context {
	if sc, ok := TraceContext(rec); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// traceHeaders returns the traceparent and tracestate of the span in ctx,
// or nil values when ctx carries no valid span.
func traceHeaders(ctx context.Context) (parent, state []byte) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil, nil
	}
	parent = []byte(FormatTraceparent(sc))
	if ts := sc.TraceState().String(); ts != "" {
		state = []byte(ts)
	}
	return parent, state
}

func hexByte(a, b byte) (byte, bool) {
	x, ok1 := hexDigit(a)
	y, ok2 := hexDigit(b)
	return x<<4 | y, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func decodeLowerHex(dst []byte, s string) bool {
	for i := range dst {
		v, ok := hexByte(s[2*i], s[2*i+1])
		if !ok {
			return false
		}
		dst[i] = v
	}
	return true
}
