package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"
)

// tlsConfig builds the client TLS configuration of an https target: the
// system roots or the CA file, and the client certificate when set.
func (t *target) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, configErr(t.caKey, "%s: read the CA file: %v: fix the path or the file's permissions", t.caKey, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configErr(t.caKey, "%s: %s holds no PEM certificate: give a PEM bundle of the collector's CA", t.caKey, t.caFile)
		}
		cfg.RootCAs = pool
	}
	if t.certFile != "" {
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, configErr(t.certKey, "%s and %s: load the client certificate: %v: give a PEM certificate and its key",
				t.certKey, t.keyKey, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// newHTTPClient returns a client of its own for one HTTP exporter, so that
// Shutdown can close its idle connections: the exporters' shared default
// transport would keep them (and their goroutines) for 90 seconds.
func newHTTPClient(tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// newSpanExporter builds the OTLP span exporter of t. Every option is set
// explicitly, so the exporter never falls back to variables that resolve did
// not check. No connection is made here: gRPC connects lazily and HTTP per
// request. The returned func closes the idle connections of an HTTP
// exporter; call it after the exporter is shut down.
func newSpanExporter(ctx context.Context, t *target) (sdktrace.SpanExporter, func(), error) {
	var tlsCfg *tls.Config
	if !t.endpoint.insecure {
		var err error
		if tlsCfg, err = t.tlsConfig(); err != nil {
			return nil, nil, err
		}
	}
	var (
		exp     sdktrace.SpanExporter
		err     error
		cleanup = func() {}
	)
	switch t.protocol {
	case ProtocolGRPC:
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(t.endpoint.host),
			otlptracegrpc.WithHeaders(t.headers),
			otlptracegrpc.WithTimeout(t.timeout),
		}
		if tlsCfg == nil {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if t.compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		client := newHTTPClient(tlsCfg, t.timeout)
		cleanup = client.CloseIdleConnections
		opts := []otlptracehttp.Option{
			otlptracehttp.WithHTTPClient(client),
			otlptracehttp.WithEndpoint(t.endpoint.host),
			otlptracehttp.WithURLPath(t.endpoint.path),
			otlptracehttp.WithHeaders(t.headers),
			otlptracehttp.WithTimeout(t.timeout),
		}
		if tlsCfg == nil {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if t.compression == "gzip" {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		} else {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		}
		if t.protocol == ProtocolHTTPJSON {
			opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("telemetry: create the %s trace exporter for %s: %w", t.protocol, t.url, err)
	}
	return exp, cleanup, nil
}

// newMetricExporter builds the OTLP metric exporter of t.
func newMetricExporter(ctx context.Context, t *target) (sdkmetric.Exporter, func(), error) {
	var tlsCfg *tls.Config
	if !t.endpoint.insecure {
		var err error
		if tlsCfg, err = t.tlsConfig(); err != nil {
			return nil, nil, err
		}
	}
	var (
		exp     sdkmetric.Exporter
		err     error
		cleanup = func() {}
	)
	switch t.protocol {
	case ProtocolGRPC:
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpoint(t.endpoint.host),
			otlpmetricgrpc.WithHeaders(t.headers),
			otlpmetricgrpc.WithTimeout(t.timeout),
		}
		if tlsCfg == nil {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		} else {
			opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		if t.compression == "gzip" {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		exp, err = otlpmetricgrpc.New(ctx, opts...)
	default:
		client := newHTTPClient(tlsCfg, t.timeout)
		cleanup = client.CloseIdleConnections
		opts := []otlpmetrichttp.Option{
			otlpmetrichttp.WithHTTPClient(client),
			otlpmetrichttp.WithEndpoint(t.endpoint.host),
			otlpmetrichttp.WithURLPath(t.endpoint.path),
			otlpmetrichttp.WithHeaders(t.headers),
			otlpmetrichttp.WithTimeout(t.timeout),
		}
		if tlsCfg == nil {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		if t.compression == "gzip" {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		} else {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression))
		}
		exp, err = otlpmetrichttp.New(ctx, opts...)
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("telemetry: create the %s metric exporter for %s: %w", t.protocol, t.url, err)
	}
	return exp, cleanup, nil
}
