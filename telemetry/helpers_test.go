package telemetry

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// collector is an in-process OTLP receiver: an HTTP handler decoding the
// protobuf (or JSON) export requests, or a gRPC server implementing the
// collector's trace and metrics services. It records every request and the
// headers it came with.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer

	mu       sync.Mutex
	traces   []*coltracepb.ExportTraceServiceRequest
	metrics  []*colmetricpb.ExportMetricsServiceRequest
	headers  []map[string]string // lower-case names, first value
	paths    []string
	reject   int // HTTP status to answer instead of 200; on gRPC: Unauthenticated
	endpoint string
}

// newHTTPCollector starts an OTLP/HTTP receiver on the loopback interface.
func newHTTPCollector(t testing.TB) *collector {
	c := &collector{}
	srv := httptest.NewServer(http.HandlerFunc(c.serveHTTP))
	t.Cleanup(srv.Close)
	c.endpoint = srv.URL
	return c
}

func (c *collector) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := map[string]string{}
	for k, v := range r.Header {
		h[strings.ToLower(k)] = v[0]
	}
	c.mu.Lock()
	c.headers = append(c.headers, h)
	c.paths = append(c.paths, r.URL.Path)
	reject := c.reject
	c.mu.Unlock()
	if reject != 0 {
		http.Error(w, "rejected by the test collector", reject)
		return
	}
	unmarshal := proto.Unmarshal
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		unmarshal = unmarshalOTLPJSON
	}
	var resp proto.Message
	switch {
	case strings.HasSuffix(r.URL.Path, "/v1/traces") || strings.HasSuffix(r.URL.Path, "/custom/traces"):
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := unmarshal(raw, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.traces = append(c.traces, req)
		c.mu.Unlock()
		resp = &coltracepb.ExportTraceServiceResponse{}
	case strings.HasSuffix(r.URL.Path, "/v1/metrics"):
		req := &colmetricpb.ExportMetricsServiceRequest{}
		if err := unmarshal(raw, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.metrics = append(c.metrics, req)
		c.mu.Unlock()
		resp = &colmetricpb.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// unmarshalOTLPJSON decodes OTLP/JSON, whose trace and span ids are hex
// strings where protojson expects base64.
func unmarshalOTLPJSON(raw []byte, m proto.Message) error {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	var fix func(v any) error
	fix = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					b, err := hex.DecodeString(s)
					if err != nil {
						return fmt.Errorf("%s %q is not hex: %w", k, s, err)
					}
					x[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
				if err := fix(val); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := fix(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := fix(doc); err != nil {
		return err
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(fixed, m)
}

// newGRPCCollector starts an OTLP/gRPC receiver on the loopback interface.
func newGRPCCollector(t testing.TB) *collector {
	c := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{c: c})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	c.endpoint = "http://" + lis.Addr().String()
	return c
}

func (c *collector) record(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	h := map[string]string{}
	for k, v := range md {
		h[strings.ToLower(k)] = v[0]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, h)
	if c.reject != 0 {
		return status.Error(codes.Unauthenticated, "rejected by the test collector")
	}
	return nil
}

// Export implements the collector's trace service.
func (c *collector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := c.record(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.traces = append(c.traces, req)
	c.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// metricsService adapts the collector to the metrics service, whose method
// has the same name as the trace service's.
type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	c *collector
}

// Export implements the collector's metrics service.
func (m metricsService) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	if err := m.c.record(ctx); err != nil {
		return nil, err
	}
	m.c.mu.Lock()
	m.c.metrics = append(m.c.metrics, req)
	m.c.mu.Unlock()
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

func (c *collector) setReject(code int) {
	c.mu.Lock()
	c.reject = code
	c.mu.Unlock()
}

// gotSpan is one received span with its resource attributes.
type gotSpan struct {
	span     *tracepb.Span
	resource map[string]string
	scope    string
}

func (g gotSpan) traceID() string  { return hex.EncodeToString(g.span.TraceId) }
func (g gotSpan) spanID() string   { return hex.EncodeToString(g.span.SpanId) }
func (g gotSpan) parentID() string { return hex.EncodeToString(g.span.ParentSpanId) }

// spans returns every span received so far.
func (c *collector) spans() []gotSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []gotSpan
	for _, req := range c.traces {
		for _, rs := range req.ResourceSpans {
			res := attrs(rs.GetResource().GetAttributes())
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, gotSpan{span: s, resource: res, scope: ss.GetScope().GetName()})
				}
			}
		}
	}
	return out
}

// span returns the received span called name, failing the test when there
// is not exactly one.
func (c *collector) span(t *testing.T, name string) gotSpan {
	t.Helper()
	var found []gotSpan
	for _, s := range c.spans() {
		if s.span.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("collector has %d spans named %q, want 1 (all: %v)", len(found), name, c.spanNames())
	}
	return found[0]
}

func (c *collector) spanNames() []string {
	var names []string
	for _, s := range c.spans() {
		names = append(names, s.span.Name)
	}
	return names
}

// gotMetric is one received metric with its resource attributes.
type gotMetric struct {
	metric   *metricpb.Metric
	resource map[string]string
	scope    string
}

// metricsByName returns the metrics of the last export request holding
// each name.
func (c *collector) metricsByName() map[string]gotMetric {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]gotMetric{}
	for _, req := range c.metrics {
		for _, rm := range req.ResourceMetrics {
			res := attrs(rm.GetResource().GetAttributes())
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					out[m.Name] = gotMetric{metric: m, resource: res, scope: sm.GetScope().GetName()}
				}
			}
		}
	}
	return out
}

func (c *collector) lastHeaders() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.headers) == 0 {
		return nil
	}
	return c.headers[len(c.headers)-1]
}

func (c *collector) requestPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

// attrs flattens OTLP attributes to strings.
func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = fmt.Sprint(x.IntValue)
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = fmt.Sprint(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			out[kv.Key] = fmt.Sprint(x.DoubleValue)
		default:
			out[kv.Key] = v.String()
		}
	}
	return out
}

// env returns a Getenv over m only: tests never read the real environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// testLogger returns a keel JSON logger writing to a buffer.
func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return logging.New(logging.Options{Output: buf, Format: logging.FormatJSON, Level: slog.LevelDebug, Metrics: testRegistry()}), buf
}

func ptr[T any](v T) *T { return &v }

// quiet is a logger that discards everything.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
