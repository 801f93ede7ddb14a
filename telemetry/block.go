package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
)

// DefaultMaxLinks is the most record contexts StartBlock links to a block
// span, the SDK's default link limit.
const DefaultMaxLinks = 128

// Attributes StartBlock sets on a block span.
const (
	// AttrBlockRecords is the number of records in the block.
	AttrBlockRecords = attribute.Key("messaging.batch.message_count")
	// AttrBlockLinkedContexts is the number of distinct trace contexts
	// found in the records' headers and linked.
	AttrBlockLinkedContexts = attribute.Key("keel.block.linked_contexts")
)

// StartBlock starts the consumer span of one block of records and returns
// the context carrying it. The span is linked to the distinct remote span
// contexts found in the records' headers (through the global propagator),
// up to DefaultMaxLinks; the records are examined in order until that many
// are found. When every context found belongs to one trace, the span is a
// child of the first one, so a trace started before the send continues in
// the consumer (a span already in ctx is then linked instead); otherwise it
// is a child of ctx's span, or a new root. Without an SDK tracer the span is
// a no-op that still carries the parent's trace id, so log lines written
// with its context name the upstream trace.
//
// tracer nil means the global tracer of ScopeName. The caller ends the
// span: defer span.End().
func StartBlock(ctx context.Context, tracer trace.Tracer, name string, recs []transport.Record, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tracer == nil {
		tracer = otel.Tracer(ScopeName)
	}
	links, sameTrace := collectLinks(recs, DefaultMaxLinks)
	parent := ctx
	if sameTrace && len(links) > 0 {
		if local := trace.SpanContextFromContext(ctx); local.IsValid() {
			links = append(links, trace.Link{SpanContext: local})
		}
		parent = trace.ContextWithRemoteSpanContext(ctx, links[0].SpanContext)
	}
	start := make([]trace.SpanStartOption, 0, 3+len(opts))
	start = append(start,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...),
		trace.WithAttributes(AttrBlockRecords.Int(len(recs)), AttrBlockLinkedContexts.Int(len(links))),
	)
	start = append(start, opts...)
	return tracer.Start(parent, name, start...)
}

// Links returns links to the distinct valid span contexts found in the
// records' headers through the global propagator, in the order of their
// first record, at most max (max <= 0 means DefaultMaxLinks).
func Links(recs []transport.Record, max int) []trace.Link {
	if max <= 0 {
		max = DefaultMaxLinks
	}
	links, _ := collectLinks(recs, max)
	return links
}

// spanKey identifies one span context.
type spanKey struct {
	tid trace.TraceID
	sid trace.SpanID
}

// collectLinks extracts the distinct span contexts of recs, stopping at
// max, and reports whether they all share one trace id.
func collectLinks(recs []transport.Record, max int) ([]trace.Link, bool) {
	prop := otel.GetTextMapPropagator()
	fields := prop.Fields()
	if len(fields) == 0 {
		return nil, false
	}
	var (
		links []trace.Link
		seen  map[spanKey]struct{}
		same  = true
	)
	for i := range recs {
		if !hasAnyHeader(recs[i].Headers, fields) {
			continue
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), headerReader(recs[i].Headers)))
		if !sc.IsValid() {
			continue
		}
		k := spanKey{sc.TraceID(), sc.SpanID()}
		if seen == nil {
			seen = make(map[spanKey]struct{}, 4)
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if len(links) > 0 && links[0].SpanContext.TraceID() != sc.TraceID() {
			same = false
		}
		links = append(links, trace.Link{SpanContext: sc})
		if len(links) >= max {
			break
		}
	}
	return links, same
}

// hasAnyHeader reports whether hs holds one of the propagator's fields.
func hasAnyHeader(hs []transport.Header, fields []string) bool {
	for i := range hs {
		for _, f := range fields {
			if strings.EqualFold(hs[i].Key, f) {
				return true
			}
		}
	}
	return false
}

var _ propagation.TextMapCarrier = headerReader(nil)
