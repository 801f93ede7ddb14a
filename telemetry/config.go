package telemetry

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// Section is the config section Setup reads: telemetry.
const Section = "telemetry"

// Protocols accepted by Config.Protocol and OTEL_EXPORTER_OTLP_PROTOCOL.
const (
	// ProtocolGRPC is OTLP over gRPC, port 4317 by default.
	ProtocolGRPC = "grpc"
	// ProtocolHTTPProtobuf is OTLP over HTTP with protobuf bodies, port
	// 4318 by default. "http" is accepted as an alias.
	ProtocolHTTPProtobuf = "http/protobuf"
	// ProtocolHTTPJSON is OTLP over HTTP with JSON bodies. The Go metric
	// exporter does not speak it, so it is accepted for traces only.
	ProtocolHTTPJSON = "http/json"
)

// Samplers accepted by TracesConfig.Sampler and OTEL_TRACES_SAMPLER.
const (
	// SamplerAlwaysOn records every span.
	SamplerAlwaysOn = "always_on"
	// SamplerAlwaysOff records no span.
	SamplerAlwaysOff = "always_off"
	// SamplerTraceIDRatio records the share SamplerArg of traces, decided
	// on the trace id, ignoring the parent's decision.
	SamplerTraceIDRatio = "traceidratio"
	// SamplerParentBasedAlwaysOn follows the parent's decision and records
	// every root span (the default).
	SamplerParentBasedAlwaysOn = "parentbased_always_on"
	// SamplerParentBasedAlwaysOff follows the parent's decision and records
	// no root span.
	SamplerParentBasedAlwaysOff = "parentbased_always_off"
	// SamplerParentBasedTraceIDRatio follows the parent's decision and
	// records the share SamplerArg of root spans.
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Propagator names accepted by Config.Propagators and OTEL_PROPAGATORS.
const (
	// PropagatorTraceContext is the W3C traceparent and tracestate headers.
	PropagatorTraceContext = "tracecontext"
	// PropagatorBaggage is the W3C baggage header.
	PropagatorBaggage = "baggage"
	// PropagatorNone installs no propagator.
	PropagatorNone = "none"
)

// Defaults of the fields whose zero value means "use the default".
const (
	// DefaultGRPCEndpoint is the collector address used with gRPC when
	// telemetry is enabled but no endpoint is configured.
	DefaultGRPCEndpoint = "http://localhost:4317"
	// DefaultHTTPEndpoint is the collector address used with HTTP when
	// telemetry is enabled but no endpoint is configured.
	DefaultHTTPEndpoint = "http://localhost:4318"
	// DefaultTimeout bounds one export request.
	DefaultTimeout = 10 * time.Second
	// DefaultShutdownTimeout bounds the final flush in Shutdown.
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultSampler samples every root span and follows the parent's
	// decision otherwise.
	DefaultSampler = SamplerParentBasedAlwaysOn
	// DefaultScheduleDelay is the longest a finished span waits in the
	// batch before it is exported.
	DefaultScheduleDelay = 5 * time.Second
	// DefaultMaxQueueSize is the number of finished spans the batch
	// processor holds; spans beyond it are dropped, never blocking the
	// caller.
	DefaultMaxQueueSize = 2048
	// DefaultMaxExportBatchSize is the most spans sent in one request.
	DefaultMaxExportBatchSize = 512
	// DefaultBatchExportTimeout bounds one batch export.
	DefaultBatchExportTimeout = 30 * time.Second
	// DefaultMetricInterval is the time between two metric exports.
	DefaultMetricInterval = 60 * time.Second
	// DefaultMetricTimeout bounds one metric export.
	DefaultMetricTimeout = 30 * time.Second
)

// Config is the telemetry section. The zero value is valid and means:
// telemetry is off unless an OTLP endpoint is configured (here or in
// OTEL_EXPORTER_OTLP_ENDPOINT and its per-signal forms); once on, traces go
// over gRPC with the parent-based always-on sampler and a batch processor,
// OTLP metrics stay off (opt-in), and the W3C TraceContext and Baggage
// propagators are installed either way.
//
//	telemetry:
//	  enabled: null                 # null = on when an endpoint is configured
//	  endpoint: http://otel-collector:4317
//	  protocol: grpc                # grpc | http/protobuf (http) | http/json (traces only)
//	  headers:                      # secret values, never printed
//	    authorization: "Bearer ..."
//	  timeout: 10s
//	  compression: none             # none | gzip
//	  tls: {ca_file: "", cert_file: "", key_file: ""}
//	  service_name: ""              # default: OTEL_SERVICE_NAME, else the app name
//	  service_version: ""
//	  resource_attributes: {team: data}
//	  propagators: [tracecontext, baggage]
//	  shutdown_timeout: 5s
//	  traces:
//	    enabled: null               # null = on when telemetry is on
//	    endpoint: ""                # full URL, overrides endpoint for traces
//	    sampler: parentbased_always_on
//	    sampler_arg: 1.0
//	    batch: {schedule_delay: 5s, max_queue_size: 2048, max_export_batch_size: 512, export_timeout: 30s}
//	  metrics:
//	    enabled: false              # OTLP metrics are opt-in
//	    endpoint: ""                # full URL, overrides endpoint for metrics
//	    interval: 60s
//	    timeout: 30s
//	    prometheus_bridge: true     # export the Prometheus registry's metrics too
//
// Each setting is taken from the first of: the signal's own config key
// (traces.endpoint, metrics.endpoint), the signal's own OTEL_* variable
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), the general config key (endpoint),
// the general OTEL_* variable (OTEL_EXPORTER_OTLP_ENDPOINT), the default.
// OTEL_SDK_DISABLED=true turns everything off whatever the config says.
type Config struct {
	// Enabled switches exporting on or off. Nil means on when an endpoint
	// is configured in this section or in OTEL_EXPORTER_OTLP_ENDPOINT,
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
	// true without an endpoint means the local collector's default address.
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Endpoint is the collector's base URL, http:// for plaintext or
	// https:// for TLS. With HTTP the signal path (/v1/traces,
	// /v1/metrics) is appended to it. "" means OTEL_EXPORTER_OTLP_ENDPOINT,
	// else DefaultGRPCEndpoint or DefaultHTTPEndpoint.
	Endpoint string `koanf:"endpoint" json:"endpoint" yaml:"endpoint"`
	// Protocol is grpc, http/protobuf (alias http) or http/json (traces
	// only). "" means OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.
	Protocol string `koanf:"protocol" json:"protocol" yaml:"protocol"`
	// Headers are sent with every export request, typically an
	// authorization header for the collector. They are merged over
	// OTEL_EXPORTER_OTLP_HEADERS. Values never appear in logs, errors or
	// config dumps.
	Headers map[string]secret.String `koanf:"headers" json:"headers" yaml:"headers"`
	// Timeout bounds one export request. 0 means OTEL_EXPORTER_OTLP_TIMEOUT
	// (milliseconds), else DefaultTimeout (10s).
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
	// Compression is "none" or "gzip". "" means
	// OTEL_EXPORTER_OTLP_COMPRESSION, else none.
	Compression string `koanf:"compression" json:"compression" yaml:"compression"`
	// TLS holds the CA and client certificate files for an https endpoint.
	TLS TLSConfig `koanf:"tls" json:"tls" yaml:"tls"`
	// ServiceName is the service.name resource attribute. "" means
	// OTEL_SERVICE_NAME, else service.name in the resource attributes,
	// else Options.ServiceName, else SERVICE_NAME, else
	// "unknown_service:<executable>".
	ServiceName string `koanf:"service_name" json:"service_name" yaml:"service_name"`
	// ServiceVersion is the service.version resource attribute. "" means
	// service.version in the resource attributes, else
	// Options.ServiceVersion, else SERVICE_VERSION, else the main module's
	// version when the binary records one.
	ServiceVersion string `koanf:"service_version" json:"service_version" yaml:"service_version"`
	// ResourceAttributes are added to the resource, over
	// OTEL_RESOURCE_ATTRIBUTES and the detected host, process and
	// Kubernetes attributes.
	ResourceAttributes map[string]string `koanf:"resource_attributes" json:"resource_attributes" yaml:"resource_attributes"`
	// Propagators are installed as the global text-map propagator, in
	// order: tracecontext, baggage or none. Empty means OTEL_PROPAGATORS,
	// else [tracecontext, baggage].
	Propagators []string `koanf:"propagators" json:"propagators" yaml:"propagators"`
	// ShutdownTimeout bounds the final flush in Shutdown (the context's
	// deadline wins when it is earlier). 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout" json:"shutdown_timeout" yaml:"shutdown_timeout"`
	// Traces configures the trace signal.
	Traces TracesConfig `koanf:"traces" json:"traces" yaml:"traces"`
	// Metrics configures the OTLP metric signal.
	Metrics MetricsConfig `koanf:"metrics" json:"metrics" yaml:"metrics"`
}

// TLSConfig names the files for a TLS connection to the collector. They are
// read at Setup; an https endpoint without a CA file trusts the system roots.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the collector's
	// certificate. "" means OTEL_EXPORTER_OTLP_CERTIFICATE, else the
	// system roots.
	CAFile string `koanf:"ca_file" json:"ca_file" yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key for mutual
	// TLS; both or neither. "" means OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
	// and OTEL_EXPORTER_OTLP_CLIENT_KEY.
	CertFile string `koanf:"cert_file" json:"cert_file" yaml:"cert_file"`
	// KeyFile is the client key for CertFile.
	KeyFile string `koanf:"key_file" json:"key_file" yaml:"key_file"`
}

// TracesConfig is the traces subsection.
type TracesConfig struct {
	// Enabled switches trace export on or off while telemetry is on. Nil
	// means on, unless OTEL_TRACES_EXPORTER is "none".
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Endpoint is the full URL for traces, used as is (no path appended).
	// "" means OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else Config.Endpoint.
	Endpoint string `koanf:"endpoint" json:"endpoint" yaml:"endpoint"`
	// Sampler is one of always_on, always_off, traceidratio,
	// parentbased_always_on, parentbased_always_off and
	// parentbased_traceidratio. "" means OTEL_TRACES_SAMPLER, else
	// parentbased_always_on.
	Sampler string `koanf:"sampler" json:"sampler" yaml:"sampler"`
	// SamplerArg is the sampling ratio of the ratio samplers, in [0, 1].
	// Nil means OTEL_TRACES_SAMPLER_ARG, else 1.
	SamplerArg *float64 `koanf:"sampler_arg" json:"sampler_arg" yaml:"sampler_arg"`
	// Batch configures the batch span processor.
	Batch BatchConfig `koanf:"batch" json:"batch" yaml:"batch"`
}

// BatchConfig configures the batch span processor. Each zero field means its
// OTEL_BSP_* variable, else its default.
type BatchConfig struct {
	// ScheduleDelay is the longest a finished span waits before export
	// (OTEL_BSP_SCHEDULE_DELAY, milliseconds; default 5s).
	ScheduleDelay time.Duration `koanf:"schedule_delay" json:"schedule_delay" yaml:"schedule_delay"`
	// MaxQueueSize is the number of finished spans held; more are dropped
	// (OTEL_BSP_MAX_QUEUE_SIZE; default 2048).
	MaxQueueSize int `koanf:"max_queue_size" json:"max_queue_size" yaml:"max_queue_size"`
	// MaxExportBatchSize is the most spans in one request, at most
	// MaxQueueSize (OTEL_BSP_MAX_EXPORT_BATCH_SIZE; default 512).
	MaxExportBatchSize int `koanf:"max_export_batch_size" json:"max_export_batch_size" yaml:"max_export_batch_size"`
	// ExportTimeout bounds one batch export (OTEL_BSP_EXPORT_TIMEOUT,
	// milliseconds; default 30s).
	ExportTimeout time.Duration `koanf:"export_timeout" json:"export_timeout" yaml:"export_timeout"`
}

// MetricsConfig is the metrics subsection. OTLP metrics are opt-in: the
// Prometheus endpoint is the primary way keel's metrics are read.
type MetricsConfig struct {
	// Enabled switches OTLP metric export on while telemetry is on. Nil
	// means on only when OTEL_METRICS_EXPORTER is "otlp".
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Endpoint is the full URL for metrics, used as is. "" means
	// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else Config.Endpoint.
	Endpoint string `koanf:"endpoint" json:"endpoint" yaml:"endpoint"`
	// Interval is the time between two exports
	// (OTEL_METRIC_EXPORT_INTERVAL, milliseconds; default 60s).
	Interval time.Duration `koanf:"interval" json:"interval" yaml:"interval"`
	// Timeout bounds one export (OTEL_METRIC_EXPORT_TIMEOUT, milliseconds;
	// default 30s).
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
	// PrometheusBridge exports every metric of the Prometheus registry
	// (Options.Metrics) over OTLP as well, under the same names, so each
	// metric is defined once and read either way. Nil means true.
	PrometheusBridge *bool `koanf:"prometheus_bridge" json:"prometheus_bridge" yaml:"prometheus_bridge"`
}

// Validate reports every problem in the section, each as a *ConfigError that
// names the key, the value found (never a header value) and the fix, joined
// with errors.Join. It returns nil for the zero Config. The OTEL_* variables
// are checked by Setup.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	key := func(k string) string { return Section + "." + k }
	if c.Endpoint != "" {
		_, err := parseEndpoint(key("endpoint"), c.Endpoint)
		add(err)
	}
	if c.Traces.Endpoint != "" {
		_, err := parseEndpoint(key("traces.endpoint"), c.Traces.Endpoint)
		add(err)
	}
	if c.Metrics.Endpoint != "" {
		_, err := parseEndpoint(key("metrics.endpoint"), c.Metrics.Endpoint)
		add(err)
	}
	if c.Protocol != "" {
		p, err := parseProtocol(key("protocol"), c.Protocol)
		add(err)
		if err == nil && p == ProtocolHTTPJSON && c.Metrics.Enabled != nil && *c.Metrics.Enabled {
			add(configErr(key("protocol"), "%s is %q, which the metric exporter does not speak, and %s is true: use %s or %s",
				key("protocol"), c.Protocol, key("metrics.enabled"), ProtocolHTTPProtobuf, ProtocolGRPC))
		}
	}
	for _, name := range sortedKeys(c.Headers) {
		add(checkHeader(key("headers."+name), name, c.Headers[name].Expose()))
	}
	add(nonNegative(key("timeout"), c.Timeout))
	if c.Compression != "" {
		_, err := parseCompression(key("compression"), c.Compression)
		add(err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add(configErr(key("tls.cert_file"), "%s and %s must be set together for mutual TLS: set both, or neither",
			key("tls.cert_file"), key("tls.key_file")))
	}
	for _, k := range sortedKeys(c.ResourceAttributes) {
		if strings.TrimSpace(k) == "" {
			add(configErr(key("resource_attributes"), "%s has an empty attribute name: remove it or name it", key("resource_attributes")))
		}
	}
	if len(c.Propagators) > 0 {
		_, err := parsePropagators(key("propagators"), c.Propagators)
		add(err)
	}
	add(nonNegative(key("shutdown_timeout"), c.ShutdownTimeout))
	if c.Traces.Sampler != "" {
		_, err := parseSamplerName(key("traces.sampler"), c.Traces.Sampler)
		add(err)
	}
	if c.Traces.SamplerArg != nil {
		add(checkRatio(key("traces.sampler_arg"), *c.Traces.SamplerArg))
	}
	b := c.Traces.Batch
	add(nonNegative(key("traces.batch.schedule_delay"), b.ScheduleDelay))
	add(nonNegative(key("traces.batch.export_timeout"), b.ExportTimeout))
	add(nonNegativeInt(key("traces.batch.max_queue_size"), b.MaxQueueSize))
	add(nonNegativeInt(key("traces.batch.max_export_batch_size"), b.MaxExportBatchSize))
	if b.MaxQueueSize > 0 && b.MaxExportBatchSize > b.MaxQueueSize {
		add(configErr(key("traces.batch.max_export_batch_size"), "%s is %d, above %s %d: a batch cannot be larger than the queue; lower it",
			key("traces.batch.max_export_batch_size"), b.MaxExportBatchSize, key("traces.batch.max_queue_size"), b.MaxQueueSize))
	}
	add(nonNegative(key("metrics.interval"), c.Metrics.Interval))
	add(nonNegative(key("metrics.timeout"), c.Metrics.Timeout))
	return errors.Join(errs...)
}

// configErr builds a *ConfigError. Messages about a variable start with
// "telemetry: "; those about a key already do, through the key.
func configErr(key, format string, args ...any) *ConfigError {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasPrefix(msg, Section+".") {
		msg = "telemetry: " + msg
	}
	return &ConfigError{Key: key, Msg: msg}
}

func nonNegative(key string, d time.Duration) error {
	if d < 0 {
		return configErr(key, "%s is %s: it must be positive, or 0 for the default", key, d)
	}
	return nil
}

func nonNegativeInt(key string, n int) error {
	if n < 0 {
		return configErr(key, "%s is %d: it must be positive, or 0 for the default", key, n)
	}
	return nil
}

// endpoint is a parsed collector URL.
type endpoint struct {
	insecure bool   // http://
	host     string // host:port
	path     string // URL path, "" when none
}

// parseEndpoint checks a collector URL: http or https, a host, no
// credentials, no query.
func parseEndpoint(key, raw string) (endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := raw
		if err == nil && u.User != nil {
			shown = u.Redacted()
		}
		return endpoint{}, configErr(key, "%s %q is not a collector URL: write http://host:port for plaintext or https://host:port for TLS, e.g. http://otel-collector:4317",
			key, shown)
	}
	if u.User != nil {
		return endpoint{}, configErr(key, "%s %q holds credentials: put them in %s.headers (or OTEL_EXPORTER_OTLP_HEADERS) instead",
			key, u.Redacted(), Section)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, configErr(key, "%s %q has a query or fragment: remove it", key, u.Redacted())
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	return endpoint{insecure: u.Scheme == "http", host: host, path: u.Path}, nil
}

// parseProtocol normalises a protocol name.
func parseProtocol(key, v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case ProtocolGRPC:
		return ProtocolGRPC, nil
	case ProtocolHTTPProtobuf, "http":
		return ProtocolHTTPProtobuf, nil
	case ProtocolHTTPJSON:
		return ProtocolHTTPJSON, nil
	}
	return "", configErr(key, "%s %q is not an OTLP protocol: use %s, %s (or http) or %s", key, v, ProtocolGRPC, ProtocolHTTPProtobuf, ProtocolHTTPJSON)
}

// parseCompression normalises a compression name.
func parseCompression(key, v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "none", "":
		return "none", nil
	case "gzip":
		return "gzip", nil
	}
	return "", configErr(key, "%s %q is not supported: use none or gzip", key, v)
}

// parseSamplerName normalises a sampler name.
func parseSamplerName(key, v string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	switch s {
	case SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio,
		SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio:
		return s, nil
	}
	return "", configErr(key, "%s %q is not a sampler: use one of %s, %s, %s, %s, %s, %s", key, v,
		SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio,
		SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio)
}

// checkRatio checks a sampling ratio.
func checkRatio(key string, f float64) error {
	if math.IsNaN(f) || f < 0 || f > 1 {
		return configErr(key, "%s is %v: a sampling ratio must be between 0 and 1, e.g. 0.25 for one trace in four", key, f)
	}
	return nil
}

// parsePropagators normalises a propagator list; "none" alone means none.
func parsePropagators(key string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		p := strings.ToLower(strings.TrimSpace(n))
		switch p {
		case PropagatorTraceContext, PropagatorBaggage:
			if !seen[p] {
				out = append(out, p)
				seen[p] = true
			}
		case PropagatorNone:
			seen[p] = true
		default:
			return nil, configErr(key, "%s names %q, which is not supported: use %s, %s or %s", key, n,
				PropagatorTraceContext, PropagatorBaggage, PropagatorNone)
		}
	}
	if seen[PropagatorNone] && len(out) > 0 {
		return nil, configErr(key, "%s mixes %s with other propagators: use %s alone, or leave it out", key, PropagatorNone, PropagatorNone)
	}
	return out, nil
}

// checkHeader checks one header's name and value without ever quoting the
// value.
func checkHeader(key, name, value string) error {
	if !validHeaderName(name) {
		return configErr(key, "%s: %q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", key, name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' || c == 0 {
			return configErr(key, "%s holds a line break or NUL byte, which cannot be sent in a header (value not shown): fix the value", key)
		}
	}
	return nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
