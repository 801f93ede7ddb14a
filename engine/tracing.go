package engine

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
)

// TracerName is the instrumentation scope of the engine's block spans when
// Config.Tracer is nil.
const TracerName = "github.com/keel-go/keel/engine"

// BlockSpanName is the name of the span the run loops start per block.
const BlockSpanName = "keel.engine.block"

// SubBlockEventName is the name of the event the streaming and governed
// loops add to the block span for each sub-block.
const SubBlockEventName = "keel.engine.sub_block"

// Attributes of the block span and of its sub-block events, next to those
// telemetry.StartBlock sets (message count, linked contexts).
const (
	// AttrMode is the loop: on_demand, parsed, streaming or governed.
	AttrMode = attribute.Key("keel.engine.mode")
	// AttrReceiver is the receiver's name.
	AttrReceiver = attribute.Key("keel.engine.receiver")
	// AttrRecords is the number of records of the block or sub-block.
	AttrRecords = attribute.Key("keel.engine.records")
	// AttrBytes is the payload bytes of the block or sub-block.
	AttrBytes = attribute.Key("keel.engine.bytes")
	// AttrTokens is the number of commit tokens of the block.
	AttrTokens = attribute.Key("keel.engine.tokens")
	// AttrStage is the stage that failed (recv, process, route, sink,
	// commit, parse), set with the error status.
	AttrStage = attribute.Key("keel.engine.stage")
	// AttrSubBlock is the index of a sub-block within its block.
	AttrSubBlock = attribute.Key("keel.engine.sub_block")
)

// blockTracing decides, cheaply and per block, whether block spans are
// started, so that an engine without a tracing SDK never scans a block's
// headers.
//
// The rule: an explicit Config.Tracer traces unless it is a no-op
// implementation of the OpenTelemetry API (trace/noop, or the deprecated
// trace.NewNoopTracerProvider). With Config.Tracer nil, the engine takes
// the tracer of the global provider: when New runs after the provider was
// installed (otel.SetTracerProvider, telemetry.Setup) that tracer is
// classified the same way once; when New runs before, the engine looks at
// the global provider again on each block (one atomic load) until one is
// installed, and then takes its tracer for good. telemetry.Setup installs a
// no-op provider when nothing is exported, so tracing then costs nothing.
type blockTracing struct {
	// resolved holds the tracer once the global provider is known; nil
	// while the global provider is still the default one.
	resolved atomic.Pointer[resolvedTracer]
}

// resolvedTracer is a tracer and whether its spans can record.
type resolvedTracer struct {
	tracer trace.Tracer
	on     bool
}

// otelGlobalPkg is the package of the global provider's default
// implementation, which records nothing until a provider is installed.
var otelGlobalPkg = reflect.TypeOf(otel.GetTracerProvider()).Elem().PkgPath()

func newBlockTracing(t trace.Tracer) *blockTracing {
	bt := &blockTracing{}
	if t != nil {
		bt.resolved.Store(&resolvedTracer{tracer: t, on: recordingTracer(t)})
		return bt
	}
	bt.resolveGlobal()
	return bt
}

// resolveGlobal takes the global provider's tracer once a provider is
// installed.
func (bt *blockTracing) resolveGlobal() *resolvedTracer {
	p := otel.GetTracerProvider()
	if isDefaultGlobal(p) {
		return nil
	}
	t := p.Tracer(TracerName)
	rt := &resolvedTracer{tracer: t, on: !noopProvider(p) && recordingTracer(t)}
	bt.resolved.CompareAndSwap(nil, rt)
	return bt.resolved.Load()
}

// tracer returns the tracer of the next block, or nil when tracing is off.
func (bt *blockTracing) tracer() trace.Tracer {
	rt := bt.resolved.Load()
	if rt == nil {
		if rt = bt.resolveGlobal(); rt == nil {
			return nil
		}
	}
	if !rt.on {
		return nil
	}
	return rt.tracer
}

// isDefaultGlobal reports whether p is the global provider's default,
// installed before any provider was set.
func isDefaultGlobal(p trace.TracerProvider) bool {
	t := reflect.TypeOf(p)
	return t.Kind() == reflect.Pointer && t.Elem().PkgPath() == otelGlobalPkg
}

// noopProvider reports whether p is a no-op provider of the API.
func noopProvider(p trace.TracerProvider) bool {
	switch p.(type) {
	case noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return typePkg(p) == traceAPIPkg
}

// recordingTracer reports whether t may record spans: false for the no-op
// implementations of the API.
func recordingTracer(t trace.Tracer) bool {
	switch t.(type) {
	case noop.Tracer, *noop.Tracer:
		return false
	}
	return typePkg(t) != traceAPIPkg
}

// traceAPIPkg is the package of the API itself, whose only implementations
// are no-ops.
var traceAPIPkg = reflect.TypeOf((*trace.Tracer)(nil)).Elem().PkgPath()

func typePkg(v any) string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath()
}

// startBlockSpan starts the span of one block with tracer (non-nil) and
// returns the context carrying it.
func startBlockSpan(ctx context.Context, tracer trace.Tracer, mode, receiver string, b transport.Batch) (context.Context, trace.Span) {
	return telemetry.StartBlock(ctx, tracer, BlockSpanName, b.Records, trace.WithAttributes(
		AttrMode.String(mode),
		AttrReceiver.String(receiver),
		AttrRecords.Int(len(b.Records)),
		AttrBytes.Int64(b.PayloadBytes()),
		AttrTokens.Int(len(b.Tokens)),
	))
}

// endBlockSpan records the block's outcome on its span and ends it.
func endBlockSpan(span trace.Span, err error) {
	if err != nil {
		var se *StageError
		if errors.As(err, &se) {
			span.SetAttributes(AttrStage.String(string(se.Stage)))
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// subBlockEvent adds one sub-block's event to the block span; span is nil
// when tracing is off.
func subBlockEvent(span trace.Span, index, records int, bytes int64) {
	if span == nil {
		return
	}
	span.AddEvent(SubBlockEventName, trace.WithAttributes(
		AttrSubBlock.Int(index), AttrRecords.Int(records), AttrBytes.Int64(bytes)))
}
