package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/keel-go/keel/transport"
)

// The W3C headers the default propagators read and write.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	HeaderBaggage     = "baggage"
)

// Propagator returns keel's default propagator: W3C TraceContext
// (traceparent, tracestate) and W3C Baggage. Setup installs it (or the
// configured list) globally.
func Propagator() propagation.TextMapPropagator {
	return newPropagator([]string{PropagatorTraceContext, PropagatorBaggage})
}

// newPropagator builds the propagator of a checked list of names.
func newPropagator(names []string) propagation.TextMapPropagator {
	ps := make([]propagation.TextMapPropagator, 0, len(names))
	for _, n := range names {
		switch n {
		case PropagatorTraceContext:
			ps = append(ps, propagation.TraceContext{})
		case PropagatorBaggage:
			ps = append(ps, propagation.Baggage{})
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...)
}

// RecordCarrier adapts a transport.Record's headers to the OpenTelemetry
// propagation API, so any propagator can read and write them. Header names
// match ignoring case. Set never writes into the backing array of the
// Headers slice it found: a record copied before Set (copies share that
// array) keeps its headers.
type RecordCarrier struct {
	// Record is the record whose headers are read and written.
	Record *transport.Record
}

var _ propagation.TextMapCarrier = RecordCarrier{}

// Get returns the value of the first header named key, or "".
func (c RecordCarrier) Get(key string) string { return headerReader(c.Record.Headers).Get(key) }

// Set replaces every header named key by one header holding value.
func (c RecordCarrier) Set(key, value string) {
	hs := c.Record.Headers
	out := make([]transport.Header, 0, len(hs)+1)
	for _, h := range hs {
		if !strings.EqualFold(h.Key, key) {
			out = append(out, h)
		}
	}
	c.Record.Headers = append(out, transport.Header{Key: key, Value: []byte(value)})
}

// Keys returns the header names.
func (c RecordCarrier) Keys() []string { return headerReader(c.Record.Headers).Keys() }

// Inject writes the trace context and baggage of ctx into rec's headers
// (traceparent, tracestate, baggage with the default propagators) through
// the global propagator, replacing any already there. Without a span or
// baggage in ctx it leaves rec as it is. Senders call it per record on
// protocols that carry headers.
func Inject(ctx context.Context, rec *transport.Record) {
	otel.GetTextMapPropagator().Inject(ctx, RecordCarrier{Record: rec})
}

// Extract returns ctx carrying the remote span context and baggage found in
// rec's headers through the global propagator; ctx itself when there are
// none or they are malformed (a bad traceparent is ignored, never an
// error). Receivers, or the code that processes a record, call it per
// record; StartBlock does it for a whole block.
func Extract(ctx context.Context, rec transport.Record) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, headerReader(rec.Headers))
}

// headerReader is a read-only carrier over a record's headers, used by
// Extract so that the record is not copied to the heap.
type headerReader []transport.Header

// Get returns the value of the first header named key, or "".
func (h headerReader) Get(key string) string {
	for i := range h {
		if strings.EqualFold(h[i].Key, key) {
			return string(h[i].Value)
		}
	}
	return ""
}

// Set does nothing: extraction never writes.
func (headerReader) Set(string, string) {}

// Keys returns the header names.
func (h headerReader) Keys() []string {
	keys := make([]string, len(h))
	for i := range h {
		keys[i] = h[i].Key
	}
	return keys
}

// InjectHTTP writes the trace context and baggage of ctx into the headers
// of an outgoing HTTP request or response.
func InjectHTTP(ctx context.Context, h http.Header) {
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
}

// ExtractHTTP returns ctx carrying the remote span context and baggage of
// incoming HTTP headers.
func ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(h))
}
