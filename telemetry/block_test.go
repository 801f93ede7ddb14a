package telemetry

import (
	"context"
	"encoding/hex"
	"testing"

	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// withContext returns a record carrying sc in its headers.
func withContext(sc trace.SpanContext) transport.Record {
	rec := transport.Record{Payload: []byte("{}")}
	Inject(trace.ContextWithSpanContext(context.Background(), sc), &rec)
	return rec
}

func linkIDs(s *tracepb.Span) []string {
	var out []string
	for _, l := range s.Links {
		out = append(out, hex.EncodeToString(l.TraceId)+"/"+hex.EncodeToString(l.SpanId))
	}
	return out
}

// A trace started before the send continues in the consumer's block span:
// producer span → traceparent in the record → a real in-process transport →
// StartBlock → the block span is the producer span's child, and its
// children (per-record work) stay in the trace.
func TestTraceContinuesFromSendToBlockSpan(t *testing.T) {
	installPropagator(t)
	c := newGRPCCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{})
	tr := tel.TracerProvider().Tracer("test")

	q := inmem.New(inmem.Config{Capacity: 8})
	defer func() { _ = q.Close(context.Background()) }()
	pctx, send := tr.Start(context.Background(), "send", trace.WithSpanKind(trace.SpanKindProducer))
	for i := 0; i < 3; i++ {
		rec := transport.Record{Payload: []byte(`{"n":1}`)}
		Inject(pctx, &rec)
		if err := q.Send(pctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	send.End()

	b, err := q.Recv(context.Background(), transport.Limits{MaxRecords: 10})
	if err != nil {
		t.Fatal(err)
	}
	bctx, block := StartBlock(context.Background(), tel.Tracer(), "process block", b.Records)
	_, work := tr.Start(bctx, "work")
	work.End()
	block.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	s, bl, w := c.span(t, "send"), c.span(t, "process block"), c.span(t, "work")
	if bl.traceID() != s.traceID() || bl.parentID() != s.spanID() {
		t.Errorf("block span trace %s parent %s, want trace %s parent %s", bl.traceID(), bl.parentID(), s.traceID(), s.spanID())
	}
	if w.traceID() != s.traceID() || w.parentID() != bl.spanID() {
		t.Errorf("work span trace %s parent %s", w.traceID(), w.parentID())
	}
	if bl.span.Kind != tracepb.Span_SPAN_KIND_CONSUMER {
		t.Errorf("block span kind %v", bl.span.Kind)
	}
	// Three records from one producer span: one distinct context, linked.
	if ids := linkIDs(bl.span); len(ids) != 1 || ids[0] != s.traceID()+"/"+s.spanID() {
		t.Errorf("links %v", ids)
	}
	a := attrs(bl.span.Attributes)
	if a[string(AttrBlockRecords)] != "3" || a[string(AttrBlockLinkedContexts)] != "1" {
		t.Errorf("attributes %v", a)
	}
}

// Records of different traces: the block span starts its own trace (or
// continues ctx's) and links every distinct context.
func TestBlockOfManyTracesLinksThem(t *testing.T) {
	installPropagator(t)
	c := newHTTPCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{protocol: "http"})
	_, sa := remoteContext(0xa, 1)
	_, sb := remoteContext(0xb, 2)
	recs := []transport.Record{withContext(sa), {Payload: []byte("no headers")}, withContext(sb), withContext(sa)}

	ctx, run := tel.Tracer().Start(context.Background(), "run")
	_, block := StartBlock(ctx, tel.Tracer(), "mixed", recs)
	block.End()
	run.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, m := c.span(t, "run"), c.span(t, "mixed")
	if m.traceID() != r.traceID() || m.parentID() != r.spanID() {
		t.Errorf("mixed block: trace %s parent %s, want child of run", m.traceID(), m.parentID())
	}
	ids := linkIDs(m.span)
	want := []string{sa.TraceID().String() + "/" + sa.SpanID().String(), sb.TraceID().String() + "/" + sb.SpanID().String()}
	if len(ids) != 2 || ids[0] != want[0] || ids[1] != want[1] {
		t.Errorf("links %v, want %v", ids, want)
	}

	// Without a span in ctx the mixed block is a root.
	_, root := StartBlock(context.Background(), tel.Tracer(), "mixed-root", recs)
	root.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.span(t, "mixed-root"); got.parentID() != "" || got.traceID() == sa.TraceID().String() || got.traceID() == sb.TraceID().String() {
		t.Errorf("mixed-root: trace %s parent %s", got.traceID(), got.parentID())
	}
}

// A uniform block with a span already in ctx: the records' trace wins and
// the local span is linked.
func TestUniformBlockLinksTheLocalSpan(t *testing.T) {
	installPropagator(t)
	_, remote := remoteContext(0xc, 3)
	local := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}, TraceFlags: trace.FlagsSampled})
	ctx := trace.ContextWithSpanContext(context.Background(), local)
	links, same := collectLinks([]transport.Record{withContext(remote), withContext(remote)}, DefaultMaxLinks)
	if !same || len(links) != 1 {
		t.Fatalf("links %v same %v", links, same)
	}
	// With the no-op tracer the block span carries the parent's context,
	// so log lines name the upstream trace even when nothing is exported.
	bctx, span := StartBlock(ctx, tracenoop.NewTracerProvider().Tracer("x"), "noop", []transport.Record{withContext(remote)})
	defer span.End()
	if got := trace.SpanContextFromContext(bctx); got.TraceID() != remote.TraceID() {
		t.Errorf("no-op block context trace %s, want %s", got.TraceID(), remote.TraceID())
	}
}

func TestLinksAreCappedAndDeduplicated(t *testing.T) {
	installPropagator(t)
	var recs []transport.Record
	for i := 0; i < 300; i++ {
		_, sc := remoteContext(byte(i), byte(i))
		recs = append(recs, withContext(sc), withContext(sc))
	}
	if got := Links(recs, 0); len(got) != DefaultMaxLinks {
		t.Errorf("%d links, want %d", len(got), DefaultMaxLinks)
	}
	got := Links(recs, 5)
	if len(got) != 5 {
		t.Fatalf("%d links, want 5", len(got))
	}
	seen := map[trace.SpanID]bool{}
	for _, l := range got {
		if seen[l.SpanContext.SpanID()] {
			t.Error("duplicate link")
		}
		seen[l.SpanContext.SpanID()] = true
	}
	if len(Links([]transport.Record{{Payload: []byte("x")}}, 0)) != 0 {
		t.Error("links from a record without headers")
	}
	if len(Links(nil, 0)) != 0 {
		t.Error("links from no records")
	}
}
