package kafka

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/telemetry"
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

// TraceContext returns the span context that the global propagator
// (otel.GetTextMapPropagator, installed by telemetry.Setup from
// OTEL_PROPAGATORS) extracts from the record's headers, whose names match
// ignoring case. ok is false when the record carries no valid one, or
// when no propagator is installed.
func TraceContext(rec transport.Record) (sc trace.SpanContext, ok bool) {
	sc = trace.SpanContextFromContext(telemetry.Extract(context.Background(), rec))
	return sc, sc.IsValid()
}

// ContextWithTrace returns ctx carrying what the global propagator
// extracts from the record's headers: the producer's span context as the
// remote parent, so that a span started from it joins the producer's
// trace, and the W3C baggage. Header names match ignoring case. Without
// trace headers (or without a propagator) it returns ctx.
func ContextWithTrace(ctx context.Context, rec transport.Record) context.Context {
	return telemetry.Extract(ctx, rec)
}

// traceInjection returns the headers the global propagator writes for ctx
// (traceparent, tracestate and baggage with the default propagators), or
// nil when it writes none: no span and no baggage in ctx, or no
// propagator.
func traceInjection(ctx context.Context) []transport.Header {
	var carrier transport.Record
	telemetry.Inject(ctx, &carrier)
	return carrier.Headers
}

// replacedBy reports whether the record header key gives way to the
// injected headers: it has the name of one of them (ignoring case), or it
// is the tracestate of a trace whose traceparent is replaced.
func replacedBy(key string, injected []transport.Header) bool {
	for i := range injected {
		ik := injected[i].Key
		if strings.EqualFold(key, ik) ||
			(strings.EqualFold(ik, TraceparentHeader) && strings.EqualFold(key, TracestateHeader)) {
			return true
		}
	}
	return false
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
