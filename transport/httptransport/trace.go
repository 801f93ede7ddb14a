package httptransport

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
)

// w3cHeaders are the W3C trace context and baggage headers, carried
// whatever the global propagator.
var w3cHeaders = []string{telemetry.HeaderTraceparent, telemetry.HeaderTracestate, telemetry.HeaderBaggage}

// traceFields returns the names of the headers that carry trace context:
// the W3C ones followed by the other headers the global propagator reads
// and writes, each once (ignoring case).
func traceFields() []string {
	out := slices.Clip(w3cHeaders)
	for _, f := range otel.GetTextMapPropagator().Fields() {
		if !containsFold(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// containsFold reports whether names holds name, ignoring case.
func containsFold(names []string, name string) bool {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// headerValue returns the value of the first header named key, ignoring
// case.
func headerValue(hs []transport.Header, key string) ([]byte, bool) {
	for i := range hs {
		if strings.EqualFold(hs[i].Key, key) {
			return hs[i].Value, true
		}
	}
	return nil, false
}

// setTraceHeaders writes the trace context of a request into h, over
// static headers of the same names. The span context and baggage of ctx
// are injected through the global propagator; with a span, a static
// tracestate is dropped first, as it belongs to another trace. When ctx
// holds no valid span and every record of the request carries the same
// trace headers (always the case for a request of one record), those are
// passed on, beside what ctx injected (its baggage). sent(i) reports
// whether records[i] is in the request.
func setTraceHeaders(ctx context.Context, h http.Header, records []transport.Record, sent func(int) bool) {
	if trace.SpanContextFromContext(ctx).IsValid() {
		h.Del(telemetry.HeaderTracestate)
		telemetry.InjectHTTP(ctx, h)
		return
	}
	out := make(http.Header)
	telemetry.InjectHTTP(ctx, out)
	if first, ok := sharedTrace(records, sent); ok {
		for _, name := range traceFields() {
			if v, _ := headerValue(records[first].Headers, name); len(v) > 0 && out.Get(name) == "" {
				out.Set(name, string(v))
			}
		}
	}
	for k, vs := range out {
		h[k] = vs
	}
}

// sharedTrace returns the index of the first sent record when every sent
// record carries the same trace headers (see traceFields), absent ones
// included.
func sharedTrace(records []transport.Record, sent func(int) bool) (int, bool) {
	fields := traceFields()
	first := -1
	for i := range records {
		if !sent(i) {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		for _, name := range fields {
			a, _ := headerValue(records[first].Headers, name)
			b, _ := headerValue(records[i].Headers, name)
			if string(a) != string(b) {
				return 0, false
			}
		}
	}
	return first, first >= 0
}

// traceRecordHeaders returns the trace headers of an incoming request as
// record headers named as traceFields names them ("traceparent"), except
// those in skip (already copied through Config.CopyHeaders). A header sent
// on several lines becomes one record header with the values joined by
// ",", as W3C tracestate and baggage lines combine.
func traceRecordHeaders(h http.Header, skip []string) []transport.Header {
	var out []transport.Header
	for _, name := range traceFields() {
		if containsFold(skip, name) {
			continue
		}
		vs := h.Values(name)
		if len(vs) == 0 {
			continue
		}
		out = append(out, transport.Header{Key: name, Value: []byte(strings.Join(vs, ","))})
	}
	return out
}
