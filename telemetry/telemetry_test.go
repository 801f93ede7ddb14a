package telemetry

import (
	"context"
	"errors"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
	"github.com/keel-go/keel/secret"
)

const testToken = "Bearer s3cr3t-collector-token"

// podEnv is the environment of a pod as the downward API fills it.
var podEnv = map[string]string{
	"KUBERNETES_SERVICE_HOST":   "10.0.0.1",
	"POD_NAME":                  "orders-7d9f-abcde",
	"POD_NAMESPACE":             "shop",
	"NODE_NAME":                 "node-3",
	"APP_ENV":                   "staging",
	EnvResourceAttributes:       "region=eu-west-1,cost.center=team%20data",
	"OTEL_SOME_UNRELATED_THING": "x",
}

type setupOpts struct {
	protocol string
	env      map[string]string
	mutate   func(*Config)
	reg      *metrics.Registry
}

// setupTo starts a private (non-global) pipeline exporting to c.
func setupTo(t *testing.T, c *collector, o setupOpts) (*Telemetry, *metrics.Registry, *syncBuffer) {
	t.Helper()
	cfg := Config{
		Endpoint:           c.endpoint,
		Protocol:           o.protocol,
		Headers:            map[string]secret.String{"Authorization": secret.New(testToken)},
		ServiceName:        "orders",
		ServiceVersion:     "1.4.2",
		ResourceAttributes: map[string]string{"team": "data"},
	}
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	e := map[string]string{}
	for k, v := range podEnv {
		e[k] = v
	}
	for k, v := range o.env {
		e[k] = v
	}
	reg := o.reg
	if reg == nil {
		reg = testRegistry()
	}
	log, buf := testLogger()
	tel, err := Setup(context.Background(), cfg, Options{
		Metrics: reg, Logger: log, Getenv: env(e), NoGlobal: true,
		Platform: platform.Detector{Root: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, reg, buf
}

// Spans arrive at a real OTLP receiver over each protocol, with the resource
// attributes and the parent/child links.
func TestSpansArriveWithResourceAndParentage(t *testing.T) {
	for _, tc := range []struct {
		name, protocol string
		newCollector   func(testing.TB) *collector
		wantPath       string
	}{
		{"grpc", ProtocolGRPC, newGRPCCollector, ""},
		{"http-protobuf", ProtocolHTTPProtobuf, newHTTPCollector, "/v1/traces"},
		{"http-json", ProtocolHTTPJSON, newHTTPCollector, "/v1/traces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.newCollector(t)
			tel, _, logs := setupTo(t, c, setupOpts{protocol: tc.protocol})
			if !tel.TracesEnabled() || tel.MetricsEnabled() {
				t.Fatalf("traces %v metrics %v, want traces only", tel.TracesEnabled(), tel.MetricsEnabled())
			}
			tr := tel.TracerProvider().Tracer("test")
			ctx, parent := tr.Start(context.Background(), "parent")
			_, child := tr.Start(ctx, "child")
			child.End()
			parent.End()
			if err := tel.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}

			p, ch := c.span(t, "parent"), c.span(t, "child")
			if p.parentID() != "" {
				t.Errorf("parent has parent span %q", p.parentID())
			}
			if ch.traceID() != p.traceID() || ch.parentID() != p.spanID() {
				t.Errorf("child trace %s parent %s; want trace %s parent %s", ch.traceID(), ch.parentID(), p.traceID(), p.spanID())
			}
			if p.traceID() != parent.SpanContext().TraceID().String() {
				t.Errorf("exported trace id %s, local %s", p.traceID(), parent.SpanContext().TraceID())
			}
			want := map[string]string{
				"service.name": "orders", "service.version": "1.4.2",
				"k8s.pod.name": "orders-7d9f-abcde", "k8s.namespace.name": "shop", "k8s.node.name": "node-3",
				"service.instance.id": "orders-7d9f-abcde", "deployment.environment.name": "staging",
				"team": "data", "region": "eu-west-1", "cost.center": "team data",
				"telemetry.sdk.language": "go",
			}
			for k, v := range want {
				if got := p.resource[k]; got != v {
					t.Errorf("resource %s = %q, want %q", k, got, v)
				}
			}
			if _, ok := p.resource["process.command_args"]; ok {
				t.Error("the resource holds the command line, which may carry secrets")
			}
			if got := c.lastHeaders()["authorization"]; got != testToken {
				t.Errorf("collector got authorization %q", got)
			}
			if tc.wantPath != "" {
				if paths := c.requestPaths(); len(paths) == 0 || paths[0] != tc.wantPath {
					t.Errorf("paths %v, want %s", paths, tc.wantPath)
				}
			}
			if got := testutil.ToFloat64(tel.in.spansOK); got != 2 {
				t.Errorf("spans_exported_total = %v, want 2", got)
			}
			if got := testutil.ToFloat64(tel.in.exports.With(signalTraces, "success")); got != 1 {
				t.Errorf("exports_total{traces,success} = %v, want 1", got)
			}
			if got := testutil.ToFloat64(tel.in.enabled.With(signalTraces)); got != 1 {
				t.Errorf("enabled{traces} = %v", got)
			}
			if !strings.Contains(logs.String(), "telemetry export on") {
				t.Errorf("no start-up line: %s", logs)
			}
			if strings.Contains(logs.String(), "s3cr3t") {
				t.Errorf("the header value reached the log: %s", logs)
			}
		})
	}
}

// A per-signal endpoint is used as is, a base endpoint gets /v1/traces, and
// gzip compression is decoded by the receiver.
func TestHTTPEndpointPathsAndCompression(t *testing.T) {
	c := newHTTPCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{protocol: "http", mutate: func(cfg *Config) {
		cfg.Endpoint = "http://unused.invalid:4318"
		cfg.Traces.Endpoint = c.endpoint + "/custom/traces"
		cfg.Compression = "gzip"
	}})
	_, s := tel.Tracer().Start(context.Background(), "one")
	s.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.span(t, "one"); got.scope != ScopeName {
		t.Errorf("scope %q, want %q", got.scope, ScopeName)
	}
	if paths := c.requestPaths(); len(paths) != 1 || paths[0] != "/custom/traces" {
		t.Errorf("paths %v", paths)
	}
	if enc := c.lastHeaders()["content-encoding"]; enc != "gzip" {
		t.Errorf("content-encoding %q, want gzip", enc)
	}
}

// The sampler from OTEL_TRACES_SAMPLER/ARG is applied: ratio 0 exports
// nothing, and a parent-based sampler follows a sampled remote parent.
func TestSamplerIsApplied(t *testing.T) {
	c := newGRPCCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{env: map[string]string{
		EnvTracesSampler: "parentbased_traceidratio", EnvTracesSamplerArg: "0",
	}})
	tr := tel.TracerProvider().Tracer("test")
	_, root := tr.Start(context.Background(), "root-dropped")
	root.End()
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	_, child := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), remote), "child-kept")
	child.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if names := c.spanNames(); len(names) != 1 || names[0] != "child-kept" {
		t.Fatalf("exported %v, want only child-kept", names)
	}
	if got := c.span(t, "child-kept"); got.traceID() != remote.TraceID().String() || got.parentID() != remote.SpanID().String() {
		t.Errorf("child trace %s parent %s", got.traceID(), got.parentID())
	}
}

// Shutdown flushes spans still waiting in the batch.
func TestShutdownFlushes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		newCol func(testing.TB) *collector
		proto  string
	}{{"grpc", newGRPCCollector, ProtocolGRPC}, {"http", newHTTPCollector, ProtocolHTTPProtobuf}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.newCol(t)
			tel, _, _ := setupTo(t, c, setupOpts{protocol: tc.proto, mutate: func(cfg *Config) {
				cfg.Traces.Batch.ScheduleDelay = time.Hour // only Shutdown sends
			}})
			_, s := tel.Tracer().Start(context.Background(), "pending")
			s.End()
			if n := len(c.spans()); n != 0 {
				t.Fatalf("%d spans exported before Shutdown", n)
			}
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.span(t, "pending")
			// Shutdown is idempotent, and the provider is stopped.
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, late := tel.Tracer().Start(context.Background(), "late")
			if late.IsRecording() {
				t.Error("a span started after Shutdown records")
			}
			if got := testutil.ToFloat64(tel.in.enabled.With(signalTraces)); got != 0 {
				t.Errorf("enabled{traces} = %v after Shutdown", got)
			}
		})
	}
}

// An unreachable collector: Shutdown returns by its deadline, the lost spans
// are counted and logged (without the header), and no goroutine is left.
func TestUnreachableCollectorIsCountedAndBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + lis.Addr().String()
	_ = lis.Close()
	for _, proto := range []string{ProtocolHTTPProtobuf, ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			c := &collector{endpoint: dead}
			tel, _, logs := setupTo(t, c, setupOpts{protocol: proto, mutate: func(cfg *Config) {
				cfg.ShutdownTimeout = 300 * time.Millisecond
				cfg.Traces.Batch.ScheduleDelay = time.Hour
			}})
			_, s := tel.Tracer().Start(context.Background(), "lost")
			s.End()
			err := tel.Shutdown(context.Background())
			if err == nil {
				t.Fatal("Shutdown against an unreachable collector returned nil")
			}
			if !strings.Contains(err.Error(), "trace exporter") || !strings.Contains(err.Error(), lis.Addr().String()) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q", err)
			}
			if got := testutil.ToFloat64(tel.in.spansFailed); got != 1 {
				t.Errorf("spans_failed_total = %v, want 1", got)
			}
			if got := testutil.ToFloat64(tel.in.exports.With(signalTraces, "failure")); got != 1 {
				t.Errorf("exports_total{traces,failure} = %v, want 1", got)
			}
			out := logs.String()
			if !strings.Contains(out, "telemetry export failed") || !strings.Contains(out, lis.Addr().String()) {
				t.Errorf("failure not logged with the endpoint: %s", out)
			}
			if strings.Contains(out, "s3cr3t") {
				t.Errorf("the header value reached the log: %s", out)
			}
		})
	}
}

// A collector that refuses the credentials: the failure is counted and
// logged, and the header value is in neither the log nor the error.
func TestRejectedExportNeverPrintsTheHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		newCol func(testing.TB) *collector
		proto  string
	}{{"grpc", newGRPCCollector, ProtocolGRPC}, {"http", newHTTPCollector, ProtocolHTTPProtobuf}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.newCol(t)
			c.setReject(401)
			tel, _, logs := setupTo(t, c, setupOpts{protocol: tc.proto})
			_, s := tel.Tracer().Start(context.Background(), "refused")
			s.End()
			err := tel.ForceFlush(context.Background())
			if err == nil {
				t.Fatal("ForceFlush to a refusing collector returned nil")
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(logs.String(), "s3cr3t") {
				t.Errorf("header value leaked: err %q log %s", err, logs)
			}
			if got := testutil.ToFloat64(tel.in.spansFailed); got != 1 {
				t.Errorf("spans_failed_total = %v", got)
			}
			if c.lastHeaders()["authorization"] != testToken {
				t.Error("the collector did not get the header")
			}
		})
	}
}

// With nothing configured: no exporter, no goroutine, no error; the
// propagators are still installed.
func TestDisabledIsNoopWithoutGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	restore := saveGlobals()
	defer restore()
	log, logs := testLogger()
	reg := testRegistry()
	tel, err := Setup(context.Background(), Config{}, Options{Getenv: env(nil), Logger: log, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracesEnabled() || tel.MetricsEnabled() {
		t.Fatal("telemetry on with nothing configured")
	}
	// Running, and still no goroutine of its own.
	goleak.VerifyNone(t, before)
	ctx, s := otel.Tracer("x").Start(context.Background(), "noop")
	if s.IsRecording() || s.SpanContext().IsValid() {
		t.Error("the global tracer records without an exporter")
	}
	s.End()
	_ = ctx
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("an SDK tracer provider was installed")
	}
	fields := otel.GetTextMapPropagator().Fields()
	sort.Strings(fields)
	if strings.Join(fields, ",") != "baggage,traceparent,tracestate" {
		t.Errorf("global propagator fields %v", fields)
	}
	if !strings.Contains(logs.String(), "no OTLP endpoint is configured") {
		t.Errorf("start-up line: %s", logs)
	}
	if got := testutil.ToFloat64(tel.in.enabled.With(signalTraces)); got != 0 {
		t.Errorf("enabled{traces} = %v", got)
	}
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// OTEL_SDK_DISABLED wins over a configured endpoint and enabled: true.
func TestSDKDisabledWins(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tel, err := Setup(context.Background(), Config{Enabled: ptr(true), Endpoint: "http://collector:4317"}, Options{
		Getenv: env(map[string]string{EnvSDKDisabled: "true", EnvTracesSamplerArg: "not-checked-when-disabled"}),
		Logger: quiet(), Metrics: testRegistry(), NoGlobal: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tel.TracesEnabled() || tel.MetricsEnabled() {
		t.Fatal("OTEL_SDK_DISABLED=true did not disable")
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Setup installs the pipeline as the OpenTelemetry global and Shutdown
// replaces it by a no-op, keeping the propagator.
func TestGlobalInstallAndShutdown(t *testing.T) {
	restore := saveGlobals()
	defer restore()
	c := newGRPCCollector(t)
	tel, err := Setup(context.Background(), Config{Endpoint: c.endpoint, ServiceName: "global"}, Options{
		Getenv: env(nil), Logger: quiet(), Metrics: testRegistry(), Platform: platform.Detector{Root: t.TempDir(), Getenv: env(nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if otel.GetTracerProvider() != trace.TracerProvider(tel.sdkTP) {
		t.Fatal("the SDK provider is not the global one")
	}
	_, s := otel.Tracer("global-test").Start(context.Background(), "via-global")
	s.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.span(t, "via-global"); got.resource["service.name"] != "global" {
		t.Errorf("service.name %q", got.resource["service.name"])
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("the stopped SDK provider is still global")
	}
	if len(otel.GetTextMapPropagator().Fields()) == 0 {
		t.Error("Shutdown removed the propagator")
	}
}

// A bad config fails Setup with a *ConfigError naming the key or variable,
// and installs nothing.
func TestSetupRejectsBadConfig(t *testing.T) {
	restore := saveGlobals()
	defer restore()
	before := otel.GetTracerProvider()
	_, err := Setup(context.Background(), Config{Protocol: "thrift"}, Options{Getenv: env(nil), Logger: quiet(), Metrics: testRegistry()})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "telemetry.protocol" || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	_, err = Setup(context.Background(), Config{}, Options{Getenv: env(map[string]string{EnvTracesSamplerArg: "half"}), Logger: quiet(), Metrics: testRegistry()})
	if !errors.As(err, &ce) || ce.Key != EnvTracesSamplerArg || !strings.Contains(err.Error(), `"half"`) {
		t.Fatalf("err = %v", err)
	}
	if otel.GetTracerProvider() != before {
		t.Error("a failed Setup changed the global tracer provider")
	}
	// A CA file that does not exist fails at Setup, naming the key.
	_, err = Setup(context.Background(), Config{Endpoint: "https://collector:4317", TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}},
		Options{Getenv: env(nil), Logger: quiet(), Metrics: testRegistry(), NoGlobal: true, Platform: platform.Detector{Root: t.TempDir()}})
	if !errors.As(err, &ce) || ce.Key != "telemetry.tls.ca_file" {
		t.Fatalf("err = %v", err)
	}
}

// saveGlobals returns a func that puts the OpenTelemetry globals back.
func saveGlobals() func() {
	tp, mp, prop, eh := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator(), otel.GetErrorHandler()
	return func() {
		if otel.GetTracerProvider() != tp {
			otel.SetTracerProvider(tp)
		}
		if otel.GetMeterProvider() != mp {
			otel.SetMeterProvider(mp)
		}
		if otel.GetTextMapPropagator() != prop {
			otel.SetTextMapPropagator(prop)
		}
		if otel.GetErrorHandler() != eh {
			otel.SetErrorHandler(eh)
		}
	}
}

// installPropagator installs the default propagator globally for a test.
func installPropagator(t *testing.T) {
	t.Helper()
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(Propagator())
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })
}

// Registered as a lifecycle hook, Shutdown flushes the spans still in the
// batch when the service stops.
func TestLifecycleShutdownFlushes(t *testing.T) {
	c := newGRPCCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{mutate: func(cfg *Config) { cfg.Traces.Batch.ScheduleDelay = time.Hour }})
	m, err := lifecycle.New(lifecycle.Config{PreStopDelay: -1, Signals: make(chan os.Signal), Metrics: testRegistry(), Logger: quiet()},
		health.New(health.Config{Logger: quiet()}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.OnShutdown("telemetry", tel.Shutdown); err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	_, s := tel.Tracer().Start(m.Context(), "before-exit")
	s.End()
	m.Shutdown("test")
	if err := m.Wait(); err != nil {
		t.Fatal(err)
	}
	c.span(t, "before-exit")
}
