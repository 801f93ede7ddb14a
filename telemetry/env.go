package telemetry

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keel-go/keel/metrics"
)

// The standard OpenTelemetry environment variables Setup reads. The
// exporter settings also have per-signal forms with TRACES_ or METRICS_
// after OTEL_EXPORTER_OTLP_ (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ...).
const (
	// EnvSDKDisabled set to true turns all export off, whatever the config says.
	EnvSDKDisabled = "OTEL_SDK_DISABLED"
	// EnvEndpoint is the collector base URL (HTTP appends /v1/<signal>).
	EnvEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
	// EnvProtocol is grpc, http/protobuf or http/json.
	EnvProtocol = "OTEL_EXPORTER_OTLP_PROTOCOL"
	// EnvHeaders holds name=value pairs, comma-separated, values percent-encoded.
	EnvHeaders = "OTEL_EXPORTER_OTLP_HEADERS"
	// EnvTimeout bounds one export request, in milliseconds.
	EnvTimeout = "OTEL_EXPORTER_OTLP_TIMEOUT"
	// EnvCompression is none or gzip.
	EnvCompression = "OTEL_EXPORTER_OTLP_COMPRESSION"
	// EnvCertificate is the PEM file of the collector's CA.
	EnvCertificate = "OTEL_EXPORTER_OTLP_CERTIFICATE"
	// EnvClientCertificate is the PEM client certificate for mutual TLS.
	EnvClientCertificate = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
	// EnvClientKey is the PEM key of the client certificate.
	EnvClientKey = "OTEL_EXPORTER_OTLP_CLIENT_KEY"
	// EnvServiceName is the service.name resource attribute.
	EnvServiceName = "OTEL_SERVICE_NAME"
	// EnvResourceAttributes holds key=value resource attributes, comma-separated.
	EnvResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
	// EnvPropagators lists the propagators: tracecontext, baggage, none.
	EnvPropagators = "OTEL_PROPAGATORS"
	// EnvTracesExporter is otlp or none.
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	// EnvMetricsExporter is otlp (opt in), prometheus or none.
	EnvMetricsExporter = "OTEL_METRICS_EXPORTER"
	// EnvTracesSampler names the sampler (see the Sampler constants).
	EnvTracesSampler = "OTEL_TRACES_SAMPLER"
	// EnvTracesSamplerArg is the ratio of the ratio samplers, in [0, 1].
	EnvTracesSamplerArg = "OTEL_TRACES_SAMPLER_ARG"
	// EnvBSPScheduleDelay is the batch delay, in milliseconds.
	EnvBSPScheduleDelay = "OTEL_BSP_SCHEDULE_DELAY"
	// EnvBSPMaxQueueSize is the span queue size.
	EnvBSPMaxQueueSize = "OTEL_BSP_MAX_QUEUE_SIZE"
	// EnvBSPMaxExportBatch is the most spans per export request.
	EnvBSPMaxExportBatch = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
	// EnvBSPExportTimeout bounds one batch export, in milliseconds.
	EnvBSPExportTimeout = "OTEL_BSP_EXPORT_TIMEOUT"
	// EnvMetricInterval is the time between metric exports, in milliseconds.
	EnvMetricInterval = "OTEL_METRIC_EXPORT_INTERVAL"
	// EnvMetricTimeout bounds one metric export, in milliseconds.
	EnvMetricTimeout = "OTEL_METRIC_EXPORT_TIMEOUT"
)

// Signals, as used in metric labels and per-signal variable names.
const (
	signalTraces  = "traces"
	signalMetrics = "metrics"
)

// target is where and how one signal is exported.
type target struct {
	signal      string
	protocol    string
	endpoint    endpoint
	url         string // for logs: scheme://host/path
	headers     map[string]string
	timeout     time.Duration
	compression string
	caFile      string
	certFile    string
	keyFile     string
	caKey       string // the config key or variable each file came from
	certKey     string
	keyKey      string
}

// settings is a Config resolved against the environment: every value
// concrete and checked.
type settings struct {
	reason          string  // why nothing is exported, "" when something is
	traces          *target // nil: traces are not exported
	metrics         *target // nil: metrics are not exported
	sampler         string
	samplerArg      float64
	batch           BatchConfig
	metricInterval  time.Duration
	metricTimeout   time.Duration
	bridge          bool
	propagators     []string
	shutdownTimeout time.Duration
	serviceName     string
	serviceVersion  string
	resourceAttrs   map[string]string // OTEL_RESOURCE_ATTRIBUTES, then the config's, without service.*
}

// candidate is a value and the key or variable it came from.
type candidate struct{ key, val string }

// firstSet returns the first candidate whose value is not blank.
func firstSet(cands ...candidate) (candidate, bool) {
	for _, c := range cands {
		if strings.TrimSpace(c.val) != "" {
			c.val = strings.TrimSpace(c.val)
			return c, true
		}
	}
	return candidate{}, false
}

// signalEnv is the per-signal form of an OTEL_EXPORTER_OTLP_ variable.
func signalEnv(signal, generic string) string {
	return "OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_" + strings.TrimPrefix(generic, "OTEL_EXPORTER_OTLP_")
}

// resolve checks cfg and the environment and works out every setting.
func resolve(cfg Config, getenv func(string) string, opts Options) (settings, error) {
	if err := cfg.Validate(); err != nil {
		return settings{}, err
	}
	env := func(k string) candidate { return candidate{k, getenv(k)} }
	cfgKey := func(k string) string { return Section + "." + k }
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var s settings

	// Kill switch: checked first, and when set nothing else is read.
	if c, ok := firstSet(env(EnvSDKDisabled)); ok {
		off, err := strconv.ParseBool(c.val)
		if err != nil {
			return settings{}, configErr(EnvSDKDisabled, "%s is %q: use true or false", EnvSDKDisabled, c.val)
		}
		if off {
			s.reason = EnvSDKDisabled + " is true"
			s.propagators = []string{PropagatorTraceContext, PropagatorBaggage}
			if len(cfg.Propagators) > 0 {
				s.propagators, _ = parsePropagators(cfgKey("propagators"), cfg.Propagators)
			}
			return s, nil
		}
	}

	// Propagators.
	s.propagators = []string{PropagatorTraceContext, PropagatorBaggage}
	if len(cfg.Propagators) > 0 {
		s.propagators, _ = parsePropagators(cfgKey("propagators"), cfg.Propagators) // checked by Validate
	} else if c, ok := firstSet(env(EnvPropagators)); ok {
		p, err := parsePropagators(c.key, strings.Split(c.val, ","))
		add(err)
		if err == nil {
			s.propagators = p
		}
	}

	// Which signals.
	tracesOn, metricsOn := true, false
	if c, ok := firstSet(env(EnvTracesExporter)); ok {
		on, err := parseExporter(c.key, c.val, false)
		add(err)
		tracesOn = on
	}
	if c, ok := firstSet(env(EnvMetricsExporter)); ok {
		on, err := parseExporter(c.key, c.val, true)
		add(err)
		metricsOn = on
	}
	if cfg.Traces.Enabled != nil {
		tracesOn = *cfg.Traces.Enabled
	}
	if cfg.Metrics.Enabled != nil {
		metricsOn = *cfg.Metrics.Enabled
	}
	_, endpointSet := firstSet(candidate{"", cfg.Endpoint}, candidate{"", cfg.Traces.Endpoint}, candidate{"", cfg.Metrics.Endpoint},
		env(EnvEndpoint), env(signalEnv(signalTraces, EnvEndpoint)), env(signalEnv(signalMetrics, EnvEndpoint)))
	on := endpointSet
	switch {
	case cfg.Enabled != nil && !*cfg.Enabled:
		on, s.reason = false, cfgKey("enabled")+" is false"
	case cfg.Enabled != nil && *cfg.Enabled:
		on = true
	case !endpointSet:
		s.reason = "no OTLP endpoint is configured (set " + cfgKey("endpoint") + " or " + EnvEndpoint + ")"
	}

	// Exporter targets. They are resolved (and so checked) even when off,
	// so a bad value fails at start-up rather than when someone turns
	// telemetry on.
	tt, err := resolveTarget(signalTraces, cfg, cfg.Traces.Endpoint, getenv)
	add(err)
	mt, err := resolveTarget(signalMetrics, cfg, cfg.Metrics.Endpoint, getenv)
	add(err)
	if err == nil && metricsOn && mt.protocol == ProtocolHTTPJSON {
		add(configErr(cfgKey("protocol"), "the metrics protocol is %s, which the metric exporter does not speak, and metrics are enabled: use %s or %s (%s, %s or %s)",
			ProtocolHTTPJSON, ProtocolHTTPProtobuf, ProtocolGRPC, cfgKey("protocol"), EnvProtocol, signalEnv(signalMetrics, EnvProtocol)))
	}
	if on && tracesOn {
		s.traces = &tt
	}
	if on && metricsOn {
		s.metrics = &mt
	}
	if on && !tracesOn && !metricsOn {
		s.reason = "both traces and metrics are switched off"
	}

	// Sampler.
	s.sampler, s.samplerArg = DefaultSampler, 1
	if c, ok := firstSet(candidate{cfgKey("traces.sampler"), cfg.Traces.Sampler}, env(EnvTracesSampler)); ok {
		name, err := parseSamplerName(c.key, c.val)
		add(err)
		if err == nil {
			s.sampler = name
		}
	}
	if cfg.Traces.SamplerArg != nil {
		s.samplerArg = *cfg.Traces.SamplerArg
	} else if c, ok := firstSet(env(EnvTracesSamplerArg)); ok {
		f, err := strconv.ParseFloat(c.val, 64)
		switch {
		case err != nil || math.IsNaN(f):
			add(configErr(c.key, "%s is %q, not a number: give a sampling ratio between 0 and 1, e.g. 0.25", c.key, c.val))
		default:
			if err := checkRatio(c.key, f); err != nil {
				add(err)
			} else {
				s.samplerArg = f
			}
		}
	}

	// Batch span processor.
	b := cfg.Traces.Batch
	s.batch.ScheduleDelay = pickDuration(&errs, b.ScheduleDelay, getenv, EnvBSPScheduleDelay, DefaultScheduleDelay)
	s.batch.ExportTimeout = pickDuration(&errs, b.ExportTimeout, getenv, EnvBSPExportTimeout, DefaultBatchExportTimeout)
	s.batch.MaxQueueSize = pickInt(&errs, b.MaxQueueSize, getenv, EnvBSPMaxQueueSize, DefaultMaxQueueSize)
	s.batch.MaxExportBatchSize = pickInt(&errs, b.MaxExportBatchSize, getenv, EnvBSPMaxExportBatch, DefaultMaxExportBatchSize)
	if s.batch.MaxExportBatchSize > s.batch.MaxQueueSize {
		add(configErr(cfgKey("traces.batch.max_export_batch_size"), "the span batch size %d (%s or %s) is above the queue size %d (%s or %s): lower it",
			s.batch.MaxExportBatchSize, cfgKey("traces.batch.max_export_batch_size"), EnvBSPMaxExportBatch,
			s.batch.MaxQueueSize, cfgKey("traces.batch.max_queue_size"), EnvBSPMaxQueueSize))
	}

	// Metric reader.
	s.metricInterval = pickDuration(&errs, cfg.Metrics.Interval, getenv, EnvMetricInterval, DefaultMetricInterval)
	s.metricTimeout = pickDuration(&errs, cfg.Metrics.Timeout, getenv, EnvMetricTimeout, DefaultMetricTimeout)
	s.bridge = cfg.Metrics.PrometheusBridge == nil || *cfg.Metrics.PrometheusBridge

	s.shutdownTimeout = cfg.ShutdownTimeout
	if s.shutdownTimeout == 0 {
		s.shutdownTimeout = DefaultShutdownTimeout
	}

	// Resource: OTEL_RESOURCE_ATTRIBUTES, then the config's attributes.
	s.resourceAttrs = map[string]string{}
	if c, ok := firstSet(env(EnvResourceAttributes)); ok {
		kvs, err := parseKeyValues(c.key, c.val, false)
		add(err)
		for _, kv := range kvs {
			s.resourceAttrs[kv.key] = kv.val
		}
	}
	for k, v := range cfg.ResourceAttributes {
		s.resourceAttrs[strings.TrimSpace(k)] = v
	}
	name, _ := firstSet(candidate{"", cfg.ServiceName}, env(EnvServiceName), candidate{"", s.resourceAttrs["service.name"]},
		candidate{"", opts.ServiceName}, env("SERVICE_NAME"), candidate{"", defaultServiceName()})
	s.serviceName = name.val
	version, _ := firstSet(candidate{"", cfg.ServiceVersion}, candidate{"", s.resourceAttrs["service.version"]},
		candidate{"", opts.ServiceVersion}, env("SERVICE_VERSION"), candidate{"", moduleVersion()})
	s.serviceVersion = version.val
	delete(s.resourceAttrs, "service.name")
	delete(s.resourceAttrs, "service.version")

	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

// resolveTarget works out the exporter settings of one signal.
func resolveTarget(signal string, cfg Config, signalEndpoint string, getenv func(string) string) (target, error) {
	env := func(k string) candidate { return candidate{k, getenv(k)} }
	sig := func(k string) candidate { return env(signalEnv(signal, k)) }
	cfgKey := func(k string) string { return Section + "." + k }
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	t := target{signal: signal, protocol: ProtocolGRPC, timeout: DefaultTimeout, compression: "none"}

	if c, ok := firstSet(sig(EnvProtocol), candidate{cfgKey("protocol"), cfg.Protocol}, env(EnvProtocol)); ok {
		p, err := parseProtocol(c.key, c.val)
		add(err)
		if err == nil {
			t.protocol = p
		}
	}

	// Endpoint: a signal's own URL is used as is; a base URL gets the
	// signal's path appended for HTTP.
	defaultURL := DefaultGRPCEndpoint
	if t.protocol != ProtocolGRPC {
		defaultURL = DefaultHTTPEndpoint
	}
	c, _ := firstSet(candidate{cfgKey(signal + ".endpoint"), signalEndpoint}, sig(EnvEndpoint),
		candidate{cfgKey("endpoint"), cfg.Endpoint}, env(EnvEndpoint), candidate{"default", defaultURL})
	ep, err := parseEndpoint(c.key, c.val)
	add(err)
	perSignal := c.key == cfgKey(signal+".endpoint") || c.key == signalEnv(signal, EnvEndpoint)
	if err == nil && t.protocol != ProtocolGRPC {
		if perSignal {
			if ep.path == "" {
				ep.path = "/"
			}
		} else {
			ep.path = strings.TrimSuffix(ep.path, "/") + "/v1/" + signal
		}
	}
	t.endpoint = ep
	scheme := "https"
	if ep.insecure {
		scheme = "http"
	}
	t.url = scheme + "://" + ep.host
	if t.protocol != ProtocolGRPC {
		t.url += ep.path
	}

	// Headers: general variable, then config, then the signal's variable,
	// each later one winning per name (compared ignoring case).
	t.headers = map[string]string{}
	set := func(k, v string) {
		for old := range t.headers {
			if strings.EqualFold(old, k) {
				delete(t.headers, old)
			}
		}
		t.headers[k] = v
	}
	if c, ok := firstSet(env(EnvHeaders)); ok {
		kvs, err := parseKeyValues(c.key, c.val, true)
		add(err)
		for _, kv := range kvs {
			set(kv.key, kv.val)
		}
	}
	for _, k := range sortedKeys(cfg.Headers) {
		set(k, cfg.Headers[k].Expose())
	}
	if c, ok := firstSet(sig(EnvHeaders)); ok {
		kvs, err := parseKeyValues(c.key, c.val, true)
		add(err)
		for _, kv := range kvs {
			set(kv.key, kv.val)
		}
	}
	if t.protocol == ProtocolGRPC {
		// gRPC metadata keys are lower case.
		lower := make(map[string]string, len(t.headers))
		for k, v := range t.headers {
			lower[strings.ToLower(k)] = v
		}
		t.headers = lower
	}

	if c, ok := firstSet(sig(EnvTimeout)); ok {
		t.timeout = parseMillis(&errs, c.key, c.val, DefaultTimeout)
	} else if cfg.Timeout > 0 {
		t.timeout = cfg.Timeout
	} else if c, ok := firstSet(env(EnvTimeout)); ok {
		t.timeout = parseMillis(&errs, c.key, c.val, DefaultTimeout)
	}

	if c, ok := firstSet(sig(EnvCompression), candidate{cfgKey("compression"), cfg.Compression}, env(EnvCompression)); ok {
		comp, err := parseCompression(c.key, c.val)
		add(err)
		if err == nil {
			t.compression = comp
		}
	}

	if c, ok := firstSet(sig(EnvCertificate), candidate{cfgKey("tls.ca_file"), cfg.TLS.CAFile}, env(EnvCertificate)); ok {
		t.caFile, t.caKey = c.val, c.key
	}
	if c, ok := firstSet(sig(EnvClientCertificate), candidate{cfgKey("tls.cert_file"), cfg.TLS.CertFile}, env(EnvClientCertificate)); ok {
		t.certFile, t.certKey = c.val, c.key
	}
	if c, ok := firstSet(sig(EnvClientKey), candidate{cfgKey("tls.key_file"), cfg.TLS.KeyFile}, env(EnvClientKey)); ok {
		t.keyFile, t.keyKey = c.val, c.key
	}
	if (t.certFile == "") != (t.keyFile == "") {
		k := t.certKey
		if k == "" {
			k = t.keyKey
		}
		add(configErr(k, "a client certificate needs both a certificate and a key file (%s and %s, or %s and %s): set both, or neither",
			cfgKey("tls.cert_file"), cfgKey("tls.key_file"), EnvClientCertificate, EnvClientKey))
	}
	return t, errors.Join(errs...)
}

// parseExporter reads OTEL_TRACES_EXPORTER or OTEL_METRICS_EXPORTER:
// whether the signal is exported over OTLP.
func parseExporter(key, v string, isMetrics bool) (bool, error) {
	on, known := false, true
	for _, part := range strings.Split(v, ",") {
		switch strings.ToLower(strings.TrimSpace(part)) {
		case "otlp":
			on = true
		case "none", "":
		case "prometheus":
			// Pulled from the Prometheus endpoint, which is always served.
			known = isMetrics
		default:
			known = false
		}
		if !known {
			if isMetrics {
				return false, configErr(key, "%s is %q: use otlp, prometheus (the /metrics endpoint, always on) or none", key, v)
			}
			return false, configErr(key, "%s is %q: use otlp or none", key, v)
		}
	}
	return on, nil
}

// pickDuration returns the config value when set, else the variable (in
// milliseconds), else def.
func pickDuration(errs *[]error, v time.Duration, getenv func(string) string, envKey string, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	if raw := strings.TrimSpace(getenv(envKey)); raw != "" {
		return parseMillis(errs, envKey, raw, def)
	}
	return def
}

// parseMillis reads a whole number of milliseconds.
func parseMillis(errs *[]error, key, raw string, def time.Duration) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/int64(time.Millisecond) {
		*errs = append(*errs, configErr(key, "%s is %q: give a whole number of milliseconds, e.g. 5000", key, raw))
		return def
	}
	if n == 0 {
		return def
	}
	return time.Duration(n) * time.Millisecond
}

// pickInt returns v when set, else the variable, else def.
func pickInt(errs *[]error, v int, getenv func(string) string, envKey string, def int) int {
	if v > 0 {
		return v
	}
	raw := strings.TrimSpace(getenv(envKey))
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		*errs = append(*errs, configErr(envKey, "%s is %q: give a positive whole number", envKey, raw))
		return def
	}
	if n == 0 {
		return def
	}
	return n
}

// keyValue is one entry of a key=value list.
type keyValue struct{ key, val string }

// parseKeyValues parses the W3C-baggage-like list that OTEL_RESOURCE_ATTRIBUTES
// and OTEL_EXPORTER_OTLP_HEADERS hold: key=value pairs separated by commas,
// values percent-encoded. With secret set (headers), no error quotes a
// value, and names must be valid header names.
func parseKeyValues(key, s string, secret bool) ([]keyValue, error) {
	var out []keyValue
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k, v, ok := strings.Cut(entry, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			if secret {
				return nil, configErr(key, "%s entry %d is not key=value (not shown, it may hold a credential): write name=value pairs separated by commas", key, i+1)
			}
			return nil, configErr(key, "%s entry %d %q is not key=value: write name=value pairs separated by commas, e.g. team=data,region=eu", key, i+1, entry)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			if secret {
				return nil, configErr(key, "%s entry %q has a malformed %%-escape in its value (not shown): escape %% as %%25", key, k)
			}
			return nil, configErr(key, "%s entry %q has a malformed %%-escape in its value %q: escape %% as %%25", key, k, v)
		}
		if secret {
			if err := checkHeader(key, k, dv); err != nil {
				return nil, err
			}
		}
		out = append(out, keyValue{k, dv})
	}
	return out, nil
}

// defaultServiceName is the name the specification gives a service that has
// none: unknown_service:<executable>.
func defaultServiceName() string {
	exe, err := os.Executable()
	if err != nil || exe == "" {
		if len(os.Args) == 0 {
			return "unknown_service"
		}
		exe = os.Args[0]
	}
	return "unknown_service:" + filepath.Base(exe)
}

// moduleVersion is the main module's version, "" for a local build.
func moduleVersion() string {
	v := metrics.ReadBuildInfo().Version
	if v == "(devel)" {
		return ""
	}
	return v
}

// String describes a target for logs: never its headers.
func (t *target) String() string {
	return fmt.Sprintf("%s %s", t.protocol, t.url)
}
