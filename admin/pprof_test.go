package admin

import (
	"net/http"
	"strings"
	"testing"
)

func TestPprofOptIn(t *testing.T) {
	e := start(t, Config{}, Deps{})
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile"} {
		if r := e.get(t, p); r.code != http.StatusNotFound {
			t.Fatalf("%s without EnablePprof: %d", p, r.code)
		}
	}
	// Nothing registered on the default mux as a side effect.
	if _, pattern := http.DefaultServeMux.Handler(&http.Request{Method: "GET", URL: mustURL(t, "/debug/pprof/")}); pattern != "" {
		t.Fatalf("http.DefaultServeMux serves %q", pattern)
	}
}

func TestPprofEndpoints(t *testing.T) {
	e := start(t, Config{EnablePprof: true}, Deps{})
	r := e.get(t, "/debug/pprof/")
	body := jsonBody(t, r)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), `"name":"heap"`) || body["status"] != "ok" {
		t.Fatalf("index: %d %s", r.code, r.body)
	}
	r = e.get(t, "/debug/pprof/heap?gc=1")
	if r.code != http.StatusOK || len(r.body) < 2 || r.body[0] != 0x1f || r.body[1] != 0x8b {
		t.Fatalf("heap profile is not gzipped protobuf: %d %q", r.code, r.body[:min(len(r.body), 40)])
	}
	r = e.get(t, "/debug/pprof/goroutine?debug=1")
	if r.code != http.StatusOK || !strings.HasPrefix(string(r.body), "goroutine profile:") {
		t.Fatalf("goroutine debug=1: %d %.80s", r.code, r.body)
	}
	r = e.get(t, "/debug/pprof/profile?seconds=0.05")
	if r.code != http.StatusOK || len(r.body) < 2 || r.body[0] != 0x1f || r.body[1] != 0x8b {
		t.Fatalf("cpu profile: %d %.80q", r.code, r.body)
	}
	r = e.get(t, "/debug/pprof/trace?seconds=0.05")
	if r.code != http.StatusOK || !strings.HasPrefix(string(r.body), "go 1.") {
		t.Fatalf("trace: %d %.40q", r.code, r.body)
	}
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/debug/pprof/nosuch", http.StatusNotFound},
		{"/debug/pprof/cmdline", http.StatusNotFound}, // may hold credentials
		{"/debug/pprof/heap?debug=9", http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=0", http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=abc", http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=NaN", http.StatusBadRequest},
		{"/debug/pprof/profile?seconds=3600", http.StatusBadRequest},
	} {
		r := e.get(t, tt.path)
		if r.code != tt.code || jsonBody(t, r)["status"] != "error" {
			t.Errorf("%s: %d %s, want %d", tt.path, r.code, r.body, tt.code)
		}
	}
	if v := value(t, e.metrics, "keel_admin_http_requests_total", "route", "/debug/pprof/{name}", "code", "2xx"); v != 2 {
		t.Errorf("profiles not folded into one route label: %v", v)
	}
}
