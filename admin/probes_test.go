package admin

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keel-go/keel/health"
)

func TestStartupFlipsAfterMarkStarted(t *testing.T) {
	e := start(t, Config{}, Deps{})
	for _, path := range []string{"/healthz/startup", "/startupz"} {
		r := e.get(t, path)
		if r.code != http.StatusServiceUnavailable || jsonBody(t, r)["status"] != "starting" {
			t.Fatalf("%s before start: %d %s", path, r.code, r.body)
		}
	}
	e.health.MarkStarted()
	for _, path := range []string{"/healthz/startup", "/startupz"} {
		r := e.get(t, path)
		if r.code != http.StatusOK || jsonBody(t, r)["status"] != "ok" {
			t.Fatalf("%s after start: %d %s", path, r.code, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("probe cacheable: %v", r.header)
		}
	}
}

func TestLivenessNeverChecksDependencies(t *testing.T) {
	e := start(t, Config{}, Deps{})
	var calls atomic.Int64
	_ = e.health.Register("db", func(context.Context) (health.Status, string) {
		calls.Add(1)
		return health.Unhealthy, "down"
	})
	check := func(when string) {
		for _, path := range []string{"/healthz/live", "/healthz"} {
			r := e.get(t, path)
			if r.code != http.StatusOK || jsonBody(t, r)["status"] != "ok" {
				t.Fatalf("%s %s: %d %s", path, when, r.code, r.body)
			}
		}
	}
	check("before start")
	e.health.MarkStarted()
	check("with an unhealthy check")
	e.health.SetDraining()
	check("while draining")
	if calls.Load() != 0 {
		t.Fatalf("liveness ran %d checks", calls.Load())
	}
}

func TestReadiness(t *testing.T) {
	e := start(t, Config{}, Deps{})
	var st atomic.Int64
	_ = e.health.Register("kafka", func(context.Context) (health.Status, string) {
		return health.Status(st.Load()), "brokers: " + health.Status(st.Load()).String()
	})
	expect := func(code int, status, reason string) map[string]any {
		t.Helper()
		var last map[string]any
		for _, path := range []string{"/healthz/ready", "/readyz"} {
			r := e.get(t, path)
			body := jsonBody(t, r)
			if r.code != code || body["status"] != status || (reason != "" && body["reason"] != reason) {
				t.Fatalf("%s: %d %s, want %d %s %s", path, r.code, r.body, code, status, reason)
			}
			last = body
		}
		return last
	}
	expect(http.StatusServiceUnavailable, "not_ready", "starting")
	e.health.MarkStarted()
	body := expect(http.StatusOK, "ok", "")
	if body["health"] != "healthy" {
		t.Fatalf("body = %v", body)
	}

	st.Store(int64(health.Degraded)) // degraded stays ready
	body = expect(http.StatusOK, "ok", "")
	checks := body["checks"].([]any)
	c := checks[0].(map[string]any)
	if body["health"] != "degraded" || c["name"] != "kafka" || c["status"] != "degraded" || c["message"] != "brokers: degraded" {
		t.Fatalf("degraded body = %v", body)
	}

	st.Store(int64(health.Unhealthy))
	body = expect(http.StatusServiceUnavailable, "not_ready", "unhealthy")
	if body["health"] != "unhealthy" || len(body["checks"].([]any)) != 1 {
		t.Fatalf("unhealthy body = %v", body)
	}

	st.Store(int64(health.Healthy))
	expect(http.StatusOK, "ok", "")
	e.health.SetDraining()
	expect(http.StatusServiceUnavailable, "not_ready", "draining")
}

func TestPanickingCheckMakesReadyFailAndServerKeepsServing(t *testing.T) {
	e := start(t, Config{}, Deps{})
	e.health.MarkStarted()
	_ = e.health.Register("buggy", func(context.Context) (health.Status, string) { panic("index out of range") })
	for range 3 {
		r := e.get(t, "/readyz")
		body := jsonBody(t, r)
		if r.code != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "panic: index out of range") {
			t.Fatalf("ready with panicking check: %d %v", r.code, body)
		}
	}
	if r := e.get(t, "/healthz"); r.code != http.StatusOK {
		t.Fatalf("server stopped serving after a check panicked: %d", r.code)
	}
	e.health.Unregister("buggy")
	if r := e.get(t, "/readyz"); r.code != http.StatusOK {
		t.Fatalf("ready after removing the check: %d %s", r.code, r.body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	e := start(t, Config{}, Deps{})
	r := e.do(t, http.MethodPost, "/readyz")
	if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" || jsonBody(t, r)["status"] != "error" {
		t.Fatalf("POST /readyz: %d %v %s", r.code, r.header, r.body)
	}
	if r := e.do(t, http.MethodHead, "/healthz"); r.code != http.StatusOK {
		t.Fatalf("HEAD /healthz: %d", r.code)
	}
}
