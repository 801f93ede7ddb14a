// Package telemetry exports a service's traces, and optionally its metrics,
// to an OpenTelemetry collector over OTLP, and carries trace context through
// records and HTTP headers.
//
// # Start
//
// Decode the telemetry section and call Setup once at start-up; register
// Shutdown with the lifecycle so buffered spans are flushed on exit:
//
//	var cfg telemetry.Config                  // zero value = defaults
//	if err := conf.Section(telemetry.Section, &cfg); err != nil { return err }
//	tel, err := telemetry.Setup(ctx, cfg, telemetry.Options{ServiceName: "orders", ServiceVersion: "1.4.2"})
//	if err != nil { return err }              // names the bad key or OTEL_* variable
//	_ = shutdown.OnShutdown("telemetry", tel.Shutdown)
//
// It works out of the box: with no endpoint configured nothing is exported,
// the providers are no-ops (no goroutine, no connection, no error) and only
// the W3C TraceContext and Baggage propagators are installed, so a trace that
// arrives in a record passes through to what the service sends and into its
// log lines. Configuring an endpoint (telemetry.endpoint or
// OTEL_EXPORTER_OTLP_ENDPOINT) turns trace export on; OTLP metrics are
// opt-in (telemetry.metrics.enabled or OTEL_METRICS_EXPORTER=otlp).
// OTEL_SDK_DISABLED=true turns everything off whatever the config says.
//
// # Configuration
//
// The section (see Config) and the standard variables: OTEL_EXPORTER_OTLP_
// ENDPOINT, PROTOCOL (grpc, http/protobuf, http/json for traces), HEADERS,
// TIMEOUT, COMPRESSION, CERTIFICATE, CLIENT_CERTIFICATE and CLIENT_KEY, each
// also per signal (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ...); OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS, OTEL_TRACES_EXPORTER,
// OTEL_METRICS_EXPORTER, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG,
// OTEL_BSP_* and OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT. A setting is taken from
// the first of: the signal's own config key, the signal's own variable, the
// general config key, the general variable, the default. Endpoints are URLs:
// http:// means plaintext, https:// TLS (system roots or the CA file); the
// scheme decides, so OTEL_EXPORTER_OTLP_INSECURE is not read, and an
// endpoint without a scheme is an error.
// A malformed value is an error naming the key or variable; header values
// never appear in an error, a log line or a config dump (they are
// secret.String).
//
// The resource names the service (service.name, service.version), the
// deployment environment, and on Kubernetes the pod, namespace and node
// (k8s.pod.name, k8s.namespace.name, k8s.node.name, from the downward API
// variables POD_NAME, POD_NAMESPACE and NODE_NAME), the container id, the
// host and the process (never its command line, which may hold secrets).
//
// # Metrics
//
// keel's metrics live in the Prometheus registry and are served on
// /metrics. With OTLP metrics on, the same registry is read through the
// Prometheus bridge at each export and sent over OTLP under the same names,
// next to the instruments made from MeterProvider (OpenTelemetry-native
// libraries). Each metric is defined once; nothing is counted twice.
//
// # Context through the data plane
//
// Inject writes the span context of ctx into a transport.Record's headers
// (traceparent, tracestate, baggage) and Extract reads it back; InjectHTTP and
// ExtractHTTP do the same for HTTP headers. StartBlock starts the consumer
// span of a block of records, linked to the records' remote contexts and a
// child of their trace when they share one. The logging package adds
// trace_id and span_id to every line logged with a context that holds a span.
//
// # Metrics of the package
//
// keel_telemetry_enabled{signal}, keel_telemetry_exports_total{signal,result},
// keel_telemetry_spans_exported_total, keel_telemetry_spans_failed_total and
// keel_telemetry_sdk_errors_total. Export failures are logged at most every
// 30 seconds and always counted: an unreachable collector is never silent.
package telemetry
