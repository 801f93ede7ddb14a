package telemetry

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/keel-go/keel/metrics"
)

// sumValue returns the value of the single data point of a sum.
func sumValue(t *testing.T, m gotMetric) float64 {
	t.Helper()
	sum := m.metric.GetSum()
	if sum == nil || len(sum.DataPoints) != 1 {
		t.Fatalf("metric %s is not a single-point sum: %v", m.metric.Name, m.metric)
	}
	dp := sum.DataPoints[0]
	if _, ok := dp.Value.(*metricpb.NumberDataPoint_AsInt); ok {
		return float64(dp.GetAsInt())
	}
	return dp.GetAsDouble()
}

// keel's Prometheus metrics and OpenTelemetry-native instruments both
// arrive over OTLP, once each, under their own names and with the resource.
func TestMetricsArriveThroughTheBridge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		newCol func(testing.TB) *collector
		proto  string
	}{{"grpc", newGRPCCollector, ProtocolGRPC}, {"http", newHTTPCollector, ProtocolHTTPProtobuf}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.newCol(t)
			reg := testRegistry()
			orders := reg.Counter(metrics.Opts{Name: "orders_total", Help: "Orders."})
			orders.Add(3)
			tel, _, _ := setupTo(t, c, setupOpts{protocol: tc.proto, reg: reg, mutate: func(cfg *Config) {
				cfg.Metrics.Enabled = ptr(true)
			}})
			if !tel.MetricsEnabled() {
				t.Fatal("metrics not enabled")
			}
			native, err := tel.MeterProvider().Meter("test").Int64Counter("native_events")
			if err != nil {
				t.Fatal(err)
			}
			native.Add(context.Background(), 5)
			if err := tel.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := c.metricsByName()
			prom, ok := got["test_orders_total"]
			if !ok {
				t.Fatalf("the Prometheus counter did not arrive; got %v", keys(got))
			}
			if v := sumValue(t, prom); v != 3 {
				t.Errorf("test_orders_total = %v, want 3", v)
			}
			if !prom.metric.GetSum().IsMonotonic {
				t.Error("the counter arrived as a non-monotonic sum")
			}
			if prom.resource["service.name"] != "orders" || prom.resource["k8s.pod.name"] != "orders-7d9f-abcde" {
				t.Errorf("resource %v", prom.resource)
			}
			nat, ok := got["native_events"]
			if !ok {
				t.Fatalf("the native instrument did not arrive; got %v", keys(got))
			}
			if v := sumValue(t, nat); v != 5 {
				t.Errorf("native_events = %v, want 5", v)
			}
			if _, ok := got["keel_telemetry_enabled"]; !ok {
				t.Errorf("keel_telemetry_enabled (from the registry) missing; got %v", keys(got))
			}
			// Not duplicated: the bridged counter is in one scope only.
			n := 0
			c.mu.Lock()
			for _, req := range c.metrics {
				for _, rm := range req.ResourceMetrics {
					for _, sm := range rm.ScopeMetrics {
						for _, m := range sm.Metrics {
							if m.Name == "test_orders_total" {
								n++
							}
						}
					}
				}
			}
			exports := len(c.metrics)
			c.mu.Unlock()
			if n != exports {
				t.Errorf("test_orders_total appears %d times in %d exports", n, exports)
			}
			if got := testutil.ToFloat64(tel.in.exports.With(signalMetrics, "success")); got < 1 {
				t.Errorf("exports_total{metrics,success} = %v", got)
			}
		})
	}
}

// prometheus_bridge: false exports only the native instruments.
func TestMetricsWithoutTheBridge(t *testing.T) {
	c := newHTTPCollector(t)
	reg := testRegistry()
	reg.Counter(metrics.Opts{Name: "orders_total", Help: "Orders."}).Inc()
	tel, _, _ := setupTo(t, c, setupOpts{protocol: "http", reg: reg, mutate: func(cfg *Config) {
		cfg.Metrics.Enabled = ptr(true)
		cfg.Metrics.PrometheusBridge = ptr(false)
	}})
	up, err := tel.MeterProvider().Meter("test").Int64UpDownCounter("native_inflight")
	if err != nil {
		t.Fatal(err)
	}
	up.Add(context.Background(), 2)
	if err := tel.Shutdown(context.Background()); err != nil { // Shutdown exports a last collection
		t.Fatal(err)
	}
	got := c.metricsByName()
	if _, ok := got["test_orders_total"]; ok {
		t.Error("the Prometheus registry was bridged with prometheus_bridge: false")
	}
	if _, ok := got["native_inflight"]; !ok {
		t.Errorf("native instrument missing; got %v", keys(got))
	}
}

// OTEL_METRICS_EXPORTER=otlp opts in; traces can be switched off alone.
func TestMetricsOptInFromEnvAndTracesOff(t *testing.T) {
	c := newGRPCCollector(t)
	tel, _, _ := setupTo(t, c, setupOpts{env: map[string]string{EnvMetricsExporter: "otlp", EnvTracesExporter: "none"}})
	if tel.TracesEnabled() || !tel.MetricsEnabled() {
		t.Fatalf("traces %v metrics %v, want metrics only", tel.TracesEnabled(), tel.MetricsEnabled())
	}
	if got := testutil.ToFloat64(tel.in.enabled.With(signalMetrics)); got != 1 {
		t.Errorf("enabled{metrics} = %v", got)
	}
}

func keys[V any](m map[string]V) []string { return sortedKeys(m) }
