package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keel-go/keel/metrics"
)

func TestMetricsAndManifestAreDistinct(t *testing.T) {
	e := start(t, Config{}, Deps{})
	_ = e.get(t, "/healthz") // makes a request series exist

	r := e.get(t, "/metrics")
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(r.body), "# HELP keel_admin_http_requests_total") {
		t.Fatalf("/metrics: %d %q\n%s", r.code, r.header.Get("Content-Type"), r.body)
	}

	r = e.get(t, "/metrics/manifest")
	if r.code != http.StatusOK || strings.Contains(string(r.body), "# HELP") || strings.Contains(string(r.body), "# TYPE") {
		t.Fatalf("/metrics/manifest served the exposition format: %s", r.body)
	}
	var m metrics.Manifest
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("manifest is not JSON: %v: %s", err, r.body)
	}
	names := map[string]metrics.Descriptor{}
	for _, d := range m.Metrics {
		names[d.Name] = d
	}
	for _, want := range []string{"keel_admin_http_requests_total", "keel_admin_http_request_duration_seconds", "keel_admin_http_requests_in_flight"} {
		if d, ok := names[want]; !ok || d.Help == "" {
			t.Fatalf("manifest lacks %s (or its help): %s", want, r.body)
		}
	}
	if d := names["keel_admin_http_requests_total"]; strings.Join(d.Labels, ",") != "route,code" {
		t.Fatalf("labels = %v", d.Labels)
	}
}

func TestConfigEndpoint(t *testing.T) {
	// Off by default: 404, even with a source.
	e := start(t, Config{}, Deps{ConfigJSON: func() ([]byte, error) { return []byte(`{"a":1}`), nil }})
	r := e.get(t, "/config")
	if r.code != http.StatusNotFound || jsonBody(t, r)["status"] != "error" {
		t.Fatalf("/config disabled: %d %s", r.code, r.body)
	}

	dump := `{"kafka":{"brokers":["b1"],"password":"[REDACTED]"}}`
	e = start(t, Config{EnableConfig: true}, Deps{ConfigJSON: func() ([]byte, error) { return []byte(dump + "\n"), nil }})
	r = e.get(t, "/config")
	if r.code != http.StatusOK || strings.TrimSpace(string(r.body)) != dump || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("/config: %d %s", r.code, r.body)
	}

	e = start(t, Config{EnableConfig: true}, Deps{ConfigJSON: func() ([]byte, error) {
		return nil, errors.New("decode kafka.password=hunter2 failed")
	}})
	r = e.get(t, "/config")
	if r.code != http.StatusInternalServerError || strings.Contains(string(r.body), "hunter2") {
		t.Fatalf("/config error leaked or wrong code: %d %s", r.code, r.body)
	}

	e = start(t, Config{EnableConfig: true}, Deps{ConfigJSON: func() ([]byte, error) { return []byte(`{"a":`), nil }})
	if r = e.get(t, "/config"); r.code != http.StatusInternalServerError {
		t.Fatalf("/config with invalid JSON: %d %s", r.code, r.body)
	}

	if _, err := New(Config{EnableConfig: true}, Deps{}); err == nil || !strings.Contains(err.Error(), "enable_config") {
		t.Fatalf("EnableConfig without a source: %v", err)
	}
}

func TestUnknownPathsAreJSON404(t *testing.T) {
	e := start(t, Config{}, Deps{})
	for _, p := range []string{"/nope", "/metricsX", "/metrics/", "/debug/pprof/", "/readyz/extra"} {
		r := e.get(t, p)
		if r.code != http.StatusNotFound || jsonBody(t, r)["status"] != "error" {
			t.Fatalf("%s: %d %s", p, r.code, r.body)
		}
	}
}

func TestHandleMountsInstrumentedRoutes(t *testing.T) {
	e := start(t, Config{}, Deps{})
	if err := e.srv.HandleFunc("GET /scaling/pressure", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("0.42"))
	}); err != nil {
		t.Fatal(err)
	}
	r := e.get(t, "/scaling/pressure")
	if r.code != http.StatusOK || string(r.body) != "0.42" {
		t.Fatalf("mounted route: %d %s", r.code, r.body)
	}
	if v := value(t, e.metrics, "keel_admin_http_requests_total", "route", "GET /scaling/pressure", "code", "2xx"); v != 1 {
		t.Fatalf("mounted route not counted: %v", v)
	}
	// Conflicts and malformed patterns are errors, not panics.
	for _, p := range []string{"/healthz", "/metrics/manifest", "GET /{x", "/"} {
		if err := e.srv.Handle(p, http.NotFoundHandler()); !errors.Is(err, ErrInvalidRoute) {
			t.Fatalf("Handle(%q) = %v, want ErrInvalidRoute", p, err)
		}
	}
	if err := e.srv.Handle("/x", nil); !errors.Is(err, ErrInvalidRoute) {
		t.Fatalf("nil handler: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, {Addr: ":9090"}, {Addr: "127.0.0.1:0"}, {Addr: "[::1]:8080"}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, tt := range []struct {
		c    Config
		want string
	}{
		{Config{Addr: "9090"}, "admin.addr"},
		{Config{Addr: ":http-alt"}, "admin.addr"},
		{Config{Addr: ":70000"}, "admin.addr"},
		{Config{ReadTimeout: -1}, "admin.read_timeout"},
		{Config{ShutdownTimeout: -1}, "admin.shutdown_timeout"},
	} {
		err := tt.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %s", tt.c, err, tt.want)
		}
		if _, err := New(tt.c, Deps{}); err == nil {
			t.Errorf("New accepted %+v", tt.c)
		}
	}
	d := Config{}.withDefaults()
	if d.Addr != ":9090" || d.ShutdownTimeout != DefaultShutdownTimeout || d.WriteTimeout != DefaultWriteTimeout {
		t.Fatalf("defaults = %+v", d)
	}
}
