package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
)

type env struct {
	srv     *Server
	health  *health.Registry
	metrics *metrics.Registry
	base    string
	client  *http.Client
}

// start runs a server on 127.0.0.1:0 with fresh registries; cleanup shuts
// it down and closes the client's connections.
func start(t *testing.T, cfg Config, deps Deps) *env {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if deps.Health == nil {
		deps.Health = health.New(health.Config{Logger: slog.New(slog.DiscardHandler)})
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, health: deps.Health, metrics: deps.Metrics, base: "http://" + srv.Addr(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		e.client.CloseIdleConnections()
	})
	return e
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (e *env) get(t *testing.T, path string) response {
	t.Helper()
	return e.do(t, http.MethodGet, path)
}

// jsonBody decodes a JSON response body into a map, failing the test when
// the body is not JSON.
func jsonBody(t *testing.T, r response) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, body %s", ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	return m
}

// value returns the value of a counter, gauge or the sample count of a
// histogram with the given label pairs, or -1 when absent.
func value(t *testing.T, reg *metrics.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func mustURL(t *testing.T, p string) *url.URL {
	t.Helper()
	u, err := url.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
