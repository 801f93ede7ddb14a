package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/secret"
)

func TestZeroConfigIsValidAndOff(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := resolve(Config{}, env(nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.traces != nil || s.metrics != nil || s.reason == "" {
		t.Fatalf("zero config resolved to traces %v metrics %v reason %q", s.traces, s.metrics, s.reason)
	}
	if strings.Join(s.propagators, ",") != "tracecontext,baggage" || s.sampler != DefaultSampler || s.samplerArg != 1 {
		t.Errorf("defaults: %+v", s)
	}
	if s.batch != (BatchConfig{DefaultScheduleDelay, DefaultMaxQueueSize, DefaultMaxExportBatchSize, DefaultBatchExportTimeout}) {
		t.Errorf("batch defaults %+v", s.batch)
	}
	if s.metricInterval != DefaultMetricInterval || s.shutdownTimeout != DefaultShutdownTimeout || !s.bridge {
		t.Errorf("metric defaults %+v", s)
	}
}

// Every bad key is reported, each naming its key.
func TestValidateNamesEveryBadKey(t *testing.T) {
	cfg := Config{
		Endpoint:        "collector:4317",
		Protocol:        "thrift",
		Headers:         map[string]secret.String{"bad header": secret.New("v"), "x-ok": secret.New("line\nbreak-s3cr3t")},
		Timeout:         -time.Second,
		Compression:     "brotli",
		TLS:             TLSConfig{CertFile: "client.pem"},
		Propagators:     []string{"b3"},
		ShutdownTimeout: -1,
		Traces: TracesConfig{
			Endpoint: "ftp://collector", Sampler: "jaeger_remote", SamplerArg: ptr(1.5),
			Batch: BatchConfig{ScheduleDelay: -1, MaxQueueSize: 10, MaxExportBatchSize: 20, ExportTimeout: -1},
		},
		Metrics:            MetricsConfig{Endpoint: "http://user:pw@collector:4318", Interval: -1, Timeout: -1},
		ResourceAttributes: map[string]string{" ": "x"},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	wantKeys := []string{
		"telemetry.endpoint", "telemetry.protocol", "telemetry.headers.bad header", "telemetry.headers.x-ok",
		"telemetry.timeout", "telemetry.compression", "telemetry.tls.cert_file", "telemetry.propagators",
		"telemetry.shutdown_timeout", "telemetry.traces.endpoint", "telemetry.traces.sampler",
		"telemetry.traces.sampler_arg", "telemetry.traces.batch.schedule_delay", "telemetry.traces.batch.export_timeout",
		"telemetry.traces.batch.max_export_batch_size", "telemetry.metrics.endpoint", "telemetry.metrics.interval",
		"telemetry.metrics.timeout", "telemetry.resource_attributes",
	}
	got := map[string]bool{}
	for _, e := range flatten(err) {
		var ce *ConfigError
		if !errors.As(e, &ce) || !errors.Is(e, ErrInvalidConfig) {
			t.Fatalf("%v is not a *ConfigError", e)
		}
		if !strings.Contains(ce.Msg, ce.Key) {
			t.Errorf("message %q does not name its key %s", ce.Msg, ce.Key)
		}
		got[ce.Key] = true
	}
	for _, k := range wantKeys {
		if !got[k] {
			t.Errorf("no error for %s in:\n%v", k, err)
		}
	}
	msg := err.Error()
	for _, leak := range []string{"s3cr3t", "user:pw", ":pw@"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error leaks %q:\n%s", leak, msg)
		}
	}
	if !strings.Contains(msg, "http://otel-collector:4317") {
		t.Errorf("the endpoint error shows no example fix:\n%s", msg)
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Each malformed OTEL_* variable is an error naming the variable.
func TestBadEnvironmentNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		key, val string
		cfg      Config
	}{
		{EnvProtocol, "thrift", Config{}},
		{signalEnv(signalTraces, EnvProtocol), "udp", Config{}},
		{EnvEndpoint, "collector:4317", Config{}},
		{signalEnv(signalMetrics, EnvEndpoint), "grpc://collector:4317", Config{}},
		{EnvTracesSampler, "jaeger_remote", Config{}},
		{EnvTracesSamplerArg, "1.5", Config{}},
		{EnvTracesSamplerArg, "abc", Config{}},
		{EnvTracesSamplerArg, "NaN", Config{}},
		{EnvTimeout, "10s", Config{}},
		{signalEnv(signalTraces, EnvTimeout), "-5", Config{}},
		{EnvCompression, "br", Config{}},
		{EnvHeaders, "novalue", Config{}},
		{EnvHeaders, "bad name=v", Config{}},
		{signalEnv(signalTraces, EnvHeaders), "a=%zz", Config{}},
		{EnvResourceAttributes, "noequals", Config{}},
		{EnvResourceAttributes, "k=%G0", Config{}},
		{EnvPropagators, "b3", Config{}},
		{EnvPropagators, "none,tracecontext", Config{}},
		{EnvTracesExporter, "zipkin", Config{}},
		{EnvMetricsExporter, "console", Config{}},
		{EnvSDKDisabled, "maybe", Config{}},
		{EnvBSPScheduleDelay, "soon", Config{}},
		{EnvBSPMaxQueueSize, "-1", Config{}},
		{EnvBSPMaxExportBatch, "many", Config{}},
		{EnvMetricInterval, "1m", Config{}},
		{EnvMetricTimeout, "1.5", Config{}},
		{EnvClientCertificate, "/tmp/cert.pem", Config{}},
	} {
		t.Run(tc.key+"="+tc.val, func(t *testing.T) {
			_, err := resolve(tc.cfg, env(map[string]string{tc.key: tc.val}), Options{})
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
			if ce.Key != tc.key || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error names %q: %v", ce.Key, err)
			}
			if strings.Contains(tc.key, "HEADERS") && strings.Contains(err.Error(), "novalue") {
				t.Errorf("a header entry was quoted: %v", err)
			}
		})
	}
}

func TestHTTPJSONRefusedForMetrics(t *testing.T) {
	_, err := resolve(Config{Endpoint: "http://c:4318", Protocol: "http/json", Metrics: MetricsConfig{Enabled: ptr(true)}}, env(nil), Options{})
	if err == nil || !strings.Contains(err.Error(), "telemetry.protocol") {
		t.Fatalf("err = %v", err)
	}
	_, err = resolve(Config{Endpoint: "http://c:4318"}, env(map[string]string{EnvProtocol: "http/json", EnvMetricsExporter: "otlp"}), Options{})
	if err == nil || !strings.Contains(err.Error(), ProtocolHTTPJSON) {
		t.Fatalf("err = %v", err)
	}
	s, err := resolve(Config{Endpoint: "http://c:4318", Protocol: "http/json"}, env(nil), Options{})
	if err != nil || s.traces == nil || s.traces.protocol != ProtocolHTTPJSON {
		t.Fatalf("http/json for traces: %v %+v", err, s.traces)
	}
}

// The precedence: the signal's config key, the signal's variable, the
// general config key, the general variable, the default.
func TestEndpointPrecedence(t *testing.T) {
	all := map[string]string{
		EnvEndpoint:                           "http://env-general:4317",
		signalEnv(signalTraces, EnvEndpoint):  "http://env-traces:4317",
		signalEnv(signalMetrics, EnvEndpoint): "http://env-metrics:4317",
		EnvMetricsExporter:                    "otlp",
	}
	for _, tc := range []struct {
		name          string
		cfg           Config
		env           map[string]string
		traces, metrs string
	}{
		{"signal config wins", Config{Endpoint: "http://cfg:4317", Traces: TracesConfig{Endpoint: "http://cfg-traces:4317"}}, all,
			"http://cfg-traces:4317", "http://env-metrics:4317"},
		{"signal env over general config", Config{Endpoint: "http://cfg:4317"}, all, "http://env-traces:4317", "http://env-metrics:4317"},
		{"general config over general env", Config{Endpoint: "http://cfg:4317"}, map[string]string{EnvEndpoint: "http://env:4317", EnvMetricsExporter: "otlp"},
			"http://cfg:4317", "http://cfg:4317"},
		{"general env", Config{}, map[string]string{EnvEndpoint: "https://env:4317", EnvMetricsExporter: "otlp"}, "https://env:4317", "https://env:4317"},
		{"default when enabled", Config{Enabled: ptr(true)}, map[string]string{EnvMetricsExporter: "otlp"}, "http://localhost:4317", "http://localhost:4317"},
		{"default port by scheme", Config{Endpoint: "https://collector"}, map[string]string{EnvMetricsExporter: "otlp"}, "https://collector:443", "https://collector:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := resolve(tc.cfg, env(tc.env), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.traces == nil || s.metrics == nil {
				t.Fatalf("signals off: %+v", s)
			}
			if s.traces.url != tc.traces || s.metrics.url != tc.metrs {
				t.Errorf("traces %s metrics %s, want %s %s", s.traces.url, s.metrics.url, tc.traces, tc.metrs)
			}
		})
	}
}

func TestHTTPPaths(t *testing.T) {
	s, err := resolve(Config{Endpoint: "http://c:4318/otlp/", Protocol: "http", Metrics: MetricsConfig{Enabled: ptr(true)}},
		env(map[string]string{signalEnv(signalMetrics, EnvEndpoint): "https://m:9000"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.traces.url != "http://c:4318/otlp/v1/traces" {
		t.Errorf("traces url %s", s.traces.url)
	}
	if s.metrics.url != "https://m:9000/" || s.metrics.endpoint.insecure {
		t.Errorf("metrics url %s insecure %v", s.metrics.url, s.metrics.endpoint.insecure)
	}
	s, err = resolve(Config{Enabled: ptr(true)}, env(map[string]string{EnvProtocol: "http/protobuf"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.traces.url != "http://localhost:4318/v1/traces" {
		t.Errorf("default http url %s", s.traces.url)
	}
}

func TestEnabledRules(t *testing.T) {
	for _, tc := range []struct {
		name            string
		cfg             Config
		env             map[string]string
		traces, metrics bool
	}{
		{"nothing", Config{}, nil, false, false},
		{"env endpoint", Config{}, map[string]string{EnvEndpoint: "http://c:4317"}, true, false},
		{"signal env endpoint", Config{}, map[string]string{signalEnv(signalTraces, EnvEndpoint): "http://c:4317"}, true, false},
		{"config endpoint", Config{Endpoint: "http://c:4317"}, nil, true, false},
		{"enabled false wins", Config{Enabled: ptr(false), Endpoint: "http://c:4317"}, nil, false, false},
		{"metrics opt-in", Config{Endpoint: "http://c:4317", Metrics: MetricsConfig{Enabled: ptr(true)}}, nil, true, true},
		{"metrics env opt-in", Config{Endpoint: "http://c:4317"}, map[string]string{EnvMetricsExporter: "otlp"}, true, true},
		{"metrics config beats env", Config{Endpoint: "http://c:4317", Metrics: MetricsConfig{Enabled: ptr(false)}}, map[string]string{EnvMetricsExporter: "otlp"}, true, false},
		{"metrics prometheus", Config{Endpoint: "http://c:4317"}, map[string]string{EnvMetricsExporter: "prometheus"}, true, false},
		{"traces none", Config{Endpoint: "http://c:4317"}, map[string]string{EnvTracesExporter: "none"}, false, false},
		{"traces config beats env", Config{Endpoint: "http://c:4317", Traces: TracesConfig{Enabled: ptr(true)}}, map[string]string{EnvTracesExporter: "none"}, true, false},
		{"metrics alone on", Config{Enabled: ptr(true), Traces: TracesConfig{Enabled: ptr(false)}, Metrics: MetricsConfig{Enabled: ptr(true)}}, nil, false, true},
		{"sdk disabled", Config{Endpoint: "http://c:4317"}, map[string]string{EnvSDKDisabled: "TRUE"}, false, false},
		{"sdk not disabled", Config{Endpoint: "http://c:4317"}, map[string]string{EnvSDKDisabled: "false"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := resolve(tc.cfg, env(tc.env), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if (s.traces != nil) != tc.traces || (s.metrics != nil) != tc.metrics {
				t.Errorf("traces %v metrics %v, want %v %v", s.traces != nil, s.metrics != nil, tc.traces, tc.metrics)
			}
			if !tc.traces && !tc.metrics && s.reason == "" {
				t.Error("off without a reason")
			}
		})
	}
}

func TestHeadersMerge(t *testing.T) {
	e := map[string]string{
		EnvHeaders:                          "Authorization=Bearer%20env,x-tenant=a,x-env=1",
		signalEnv(signalTraces, EnvHeaders): "X-Tenant=traces",
		EnvProtocol:                         "http/protobuf",
	}
	cfg := Config{Endpoint: "http://c:4318", Headers: map[string]secret.String{"authorization": secret.New("Bearer cfg")}}
	s, err := resolve(cfg, env(e), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"authorization": "Bearer cfg", "X-Tenant": "traces", "x-env": "1"}
	if fmt.Sprint(s.traces.headers) != fmt.Sprint(want) {
		t.Errorf("http headers %v, want %v", s.traces.headers, want)
	}
	e[EnvProtocol] = "grpc"
	s, err = resolve(cfg, env(e), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"authorization": "Bearer cfg", "x-tenant": "traces", "x-env": "1"}
	if fmt.Sprint(s.traces.headers) != fmt.Sprint(want) {
		t.Errorf("grpc headers %v, want %v (lower case)", s.traces.headers, want)
	}
	// The environment's percent-encoding is decoded.
	s, err = resolve(Config{Endpoint: "http://c:4317"}, env(map[string]string{EnvHeaders: "authorization=Bearer%20env"}), Options{})
	if err != nil || s.traces.headers["authorization"] != "Bearer env" {
		t.Errorf("decoded header: %v %v", err, s.traces.headers)
	}
}

func TestServiceNameAndVersionPrecedence(t *testing.T) {
	name := func(cfg Config, e map[string]string, o Options) (string, string) {
		t.Helper()
		s, err := resolve(cfg, env(e), o)
		if err != nil {
			t.Fatal(err)
		}
		return s.serviceName, s.serviceVersion
	}
	all := map[string]string{EnvServiceName: "env-otel", EnvResourceAttributes: "service.name=env-res,service.version=9.9", "SERVICE_NAME": "env-svc", "SERVICE_VERSION": "8.8"}
	opts := Options{ServiceName: "opts", ServiceVersion: "7.7"}
	if n, v := name(Config{ServiceName: "cfg", ServiceVersion: "1.0"}, all, opts); n != "cfg" || v != "1.0" {
		t.Errorf("config: %s %s", n, v)
	}
	if n, v := name(Config{}, all, opts); n != "env-otel" || v != "9.9" {
		t.Errorf("OTEL_SERVICE_NAME: %s %s", n, v)
	}
	if n, _ := name(Config{ResourceAttributes: map[string]string{"service.name": "cfg-res"}}, map[string]string{EnvResourceAttributes: "service.name=env-res"}, opts); n != "cfg-res" {
		t.Errorf("config resource attribute: %s", n)
	}
	if n, _ := name(Config{}, map[string]string{EnvResourceAttributes: "service.name=env-res"}, opts); n != "env-res" {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES: %s", n)
	}
	if n, v := name(Config{}, map[string]string{"SERVICE_NAME": "env-svc"}, opts); n != "opts" || v != "7.7" {
		t.Errorf("options: %s %s", n, v)
	}
	if n, v := name(Config{}, map[string]string{"SERVICE_NAME": "env-svc", "SERVICE_VERSION": "8.8"}, Options{}); n != "env-svc" || v != "8.8" {
		t.Errorf("SERVICE_NAME: %s %s", n, v)
	}
	if n, _ := name(Config{}, nil, Options{}); !strings.HasPrefix(n, "unknown_service:") {
		t.Errorf("fallback: %s", n)
	}
	s, err := resolve(Config{}, env(all), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.resourceAttrs["service.name"]; ok {
		t.Error("service.name left in the plain attributes")
	}
}

func TestEnvSettingsAreRead(t *testing.T) {
	e := map[string]string{
		EnvEndpoint: "http://c:4317", EnvTimeout: "2500", signalEnv(signalTraces, EnvTimeout): "1500",
		EnvCompression: "gzip", EnvTracesSampler: "traceidratio", EnvTracesSamplerArg: "0.25",
		EnvBSPScheduleDelay: "100", EnvBSPMaxQueueSize: "100", EnvBSPMaxExportBatch: "10", EnvBSPExportTimeout: "700",
		EnvMetricInterval: "1000", EnvMetricTimeout: "900", EnvMetricsExporter: "otlp", EnvPropagators: "baggage",
	}
	s, err := resolve(Config{}, env(e), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.traces.timeout != 1500*time.Millisecond || s.metrics.timeout != 2500*time.Millisecond {
		t.Errorf("timeouts %v %v", s.traces.timeout, s.metrics.timeout)
	}
	if s.traces.compression != "gzip" || s.sampler != SamplerTraceIDRatio || s.samplerArg != 0.25 {
		t.Errorf("compression %s sampler %s %v", s.traces.compression, s.sampler, s.samplerArg)
	}
	if s.batch != (BatchConfig{100 * time.Millisecond, 100, 10, 700 * time.Millisecond}) {
		t.Errorf("batch %+v", s.batch)
	}
	if s.metricInterval != time.Second || s.metricTimeout != 900*time.Millisecond {
		t.Errorf("metric reader %v %v", s.metricInterval, s.metricTimeout)
	}
	if strings.Join(s.propagators, ",") != "baggage" {
		t.Errorf("propagators %v", s.propagators)
	}
	// The config wins over the variables.
	s, err = resolve(Config{Timeout: 3 * time.Second, Traces: TracesConfig{Sampler: "always_off", SamplerArg: ptr(0.5),
		Batch: BatchConfig{MaxQueueSize: 50, MaxExportBatchSize: 5}}, Propagators: []string{"none"}}, env(e), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.metrics.timeout != 3*time.Second || s.traces.timeout != 1500*time.Millisecond {
		t.Errorf("timeouts %v %v (the traces variable is more specific)", s.metrics.timeout, s.traces.timeout)
	}
	if s.sampler != SamplerAlwaysOff || s.samplerArg != 0.5 || s.batch.MaxQueueSize != 50 || s.batch.MaxExportBatchSize != 5 || len(s.propagators) != 0 {
		t.Errorf("config not preferred: %+v", s)
	}
	// A batch from the environment larger than the queue is refused.
	_, err = resolve(Config{}, env(map[string]string{EnvBSPMaxQueueSize: "10", EnvBSPMaxExportBatch: "20"}), Options{})
	if err == nil || !strings.Contains(err.Error(), EnvBSPMaxExportBatch) {
		t.Errorf("err = %v", err)
	}
}

// A header value never appears in fmt output, JSON, slog, a config dump or
// an error about it.
func TestHeadersNeverPrinted(t *testing.T) {
	cfg := Config{Headers: map[string]secret.String{"authorization": secret.New(testToken)}}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outs = append(outs, fmt.Sprintf(verb, cfg))
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	var buf strings.Builder
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "telemetry", cfg)
	outs = append(outs, buf.String())
	bad := Config{Headers: map[string]secret.String{"authorization": secret.New(testToken + "\r\n")}}
	outs = append(outs, bad.Validate().Error())
	_, err = resolve(Config{}, env(map[string]string{EnvHeaders: "authorization=" + strings.ReplaceAll(testToken, " ", "%20") + "%0A"}), Options{})
	if err == nil {
		t.Fatal("a header with a line break was accepted")
	}
	outs = append(outs, err.Error())
	for _, o := range outs {
		if strings.Contains(o, "s3cr3t") {
			t.Errorf("header value printed: %s", o)
		}
	}
}

// The section decodes through the config cascade (file and environment),
// and the dump redacts the header.
func TestConfigCascade(t *testing.T) {
	dir := t.TempDir()
	yaml := `
telemetry:
  endpoint: https://collector.example:4317
  protocol: grpc
  timeout: 5s
  service_name: orders
  resource_attributes:
    team: data
  traces:
    sampler: parentbased_traceidratio
    sampler_arg: 0.1
    batch:
      max_queue_size: 4096
  metrics:
    enabled: true
    interval: 15s
`
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TELTEST_TELEMETRY__HEADERS__AUTHORIZATION", testToken)
	c, err := config.Load(context.Background(), config.Options{
		EnvPrefix: "TELTEST", WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Strict: true, Logger: quiet(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := c.Section(Section, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoint != "https://collector.example:4317" || cfg.Timeout != 5*time.Second || cfg.Traces.SamplerArg == nil ||
		*cfg.Traces.SamplerArg != 0.1 || cfg.Traces.Batch.MaxQueueSize != 4096 || cfg.Metrics.Enabled == nil ||
		!*cfg.Metrics.Enabled || cfg.Metrics.Interval != 15*time.Second || cfg.ResourceAttributes["team"] != "data" {
		t.Fatalf("decoded %+v", cfg)
	}
	if got := cfg.Headers["authorization"].Expose(); got != testToken {
		t.Fatalf("header from the environment = %q", got)
	}
	dump, err := c.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dump), "s3cr3t") {
		t.Errorf("the dump shows the header: %s", dump)
	}
	if !strings.Contains(string(dump), "collector.example") {
		t.Errorf("the dump lacks the section: %s", dump)
	}
	// A wrongly typed value fails in the decoder, naming the key.
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte("telemetry:\n  traces:\n    sampler_arg: lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = config.Load(context.Background(), config.Options{
		EnvPrefix: "TELTEST", WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Logger: quiet(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var bad Config
	if err := c.Section(Section, &bad); err == nil || !strings.Contains(err.Error(), "telemetry.traces.sampler_arg") {
		t.Errorf("err = %v", err)
	}
}
