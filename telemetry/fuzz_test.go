package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
)

// FuzzParseKeyValues feeds the OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES parser arbitrary text: it never panics, every
// entry it returns has a name, headers pass the header checks, and an
// error about headers never quotes what followed an '='.
func FuzzParseKeyValues(f *testing.F) {
	for _, s := range []string{
		"", "a=b", "a=b,c=d", " a = b , c = d ", "authorization=Bearer%20tok", "k=%zz", "=v", "novalue",
		"a=b,,c=d", "a==b", "service.name=x,service.version=1.0", "bad name=v", "k=v%0A", "k=%",
		strings.Repeat("k=v,", 100),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, secret := range []bool{false, true} {
			kvs, err := parseKeyValues("OTEL_TEST", s, secret)
			if err != nil {
				if secret {
					for _, entry := range strings.Split(s, ",") {
						if _, v, ok := strings.Cut(entry, "="); ok && len(strings.TrimSpace(v)) >= 6 && strings.Contains(err.Error(), strings.TrimSpace(v)) {
							t.Fatalf("header error quotes the value %q: %v", v, err)
						}
					}
				}
				continue
			}
			for _, kv := range kvs {
				if kv.key == "" {
					t.Fatalf("empty key from %q", s)
				}
				if secret && checkHeader("x", kv.key, kv.val) != nil {
					t.Fatalf("accepted header %q fails the header check", kv.key)
				}
			}
		}
	})
}

// FuzzExtract feeds Extract arbitrary traceparent, tracestate and baggage
// values: it never panics, and whatever it accepts is a valid context that
// Inject writes back to the same trace and span.
func FuzzExtract(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "rojo=00f067aa0ba902b7", "k=v")
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "", "")
	f.Add("garbage", "=", "%%%")
	f.Add("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", "a=b,c=d", "k=v;p=1")
	f.Fuzz(func(t *testing.T, tp, ts, bg string) {
		prop := Propagator()
		rec := transport.Record{Headers: []transport.Header{
			{Key: HeaderTraceparent, Value: []byte(tp)}, {Key: HeaderTracestate, Value: []byte(ts)}, {Key: HeaderBaggage, Value: []byte(bg)},
		}}
		ctx := prop.Extract(context.Background(), headerReader(rec.Headers))
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return
		}
		out := transport.Record{}
		prop.Inject(ctx, RecordCarrier{Record: &out})
		back := trace.SpanContextFromContext(prop.Extract(context.Background(), headerReader(out.Headers)))
		if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || back.TraceFlags() != sc.TraceFlags() {
			t.Fatalf("round trip %v -> %v", sc, back)
		}
	})
}
