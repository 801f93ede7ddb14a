package telemetry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/transport"
)

// lastLine decodes the last JSON line written to buf.
func lastLine(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("%v: %s", err, buf)
	}
	return m
}

// keel's logger adds trace_id and span_id from a span of the SDK, from a
// remote context extracted from a record, and from a block span; nothing
// without a span.
func TestLogLinesCarryTraceIDs(t *testing.T) {
	installPropagator(t)
	c := newGRPCCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{})
	log, buf := testLogger()

	ctx, span := tel.Tracer().Start(context.Background(), "handle")
	log.InfoContext(ctx, "inside a span")
	line := lastLine(t, buf)
	if line["trace_id"] != span.SpanContext().TraceID().String() || line["span_id"] != span.SpanContext().SpanID().String() {
		t.Errorf("line %v, want trace %s span %s", line, span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}
	span.End()

	rec := transport.Record{}
	Inject(ctx, &rec)
	rctx := Extract(context.Background(), rec)
	log.InfoContext(rctx, "from a record")
	if line := lastLine(t, buf); line["trace_id"] != span.SpanContext().TraceID().String() {
		t.Errorf("record context line %v", line)
	}

	bctx, block := StartBlock(context.Background(), tel.Tracer(), "block", []transport.Record{rec})
	log.InfoContext(bctx, "in the block")
	line = lastLine(t, buf)
	if line["trace_id"] != span.SpanContext().TraceID().String() || line["span_id"] != block.SpanContext().SpanID().String() {
		t.Errorf("block line %v, want trace %s span %s", line, span.SpanContext().TraceID(), block.SpanContext().SpanID())
	}
	block.End()

	log.InfoContext(context.Background(), "no span")
	if line := lastLine(t, buf); line["trace_id"] != nil || line["span_id"] != nil {
		t.Errorf("ids without a span: %v", line)
	}
	if !trace.SpanContextFromContext(bctx).IsSampled() {
		t.Error("block span not sampled")
	}
}
