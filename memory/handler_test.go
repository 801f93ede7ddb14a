package memory

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/health"
)

func get(t *testing.T, h http.Handler, method string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, PressurePath, nil))
	return rec
}

func TestHandlerJSON(t *testing.T) {
	g := limited(t, 1000)
	g.Add(850)
	g.TryReserve(500) // refused
	rec := get(t, g.Handler(), http.MethodGet)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	want := map[string]any{
		"ratio":                      0.85,
		"current_bytes":              850.0,
		"limit_bytes":                1000.0,
		"under_pressure":             true,
		"level":                      "high",
		"source":                     "accounted",
		"accounted_bytes":            850.0,
		"threshold":                  0.8,
		"limit_source":               "config",
		"go_memory_limit_bytes":      0.0,
		"reservations_refused_total": 1.0,
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %#v, want %#v", k, body[k], v)
		}
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	if len(body) != len(want) {
		t.Errorf("body keys %v, want exactly those of %v (heap_bytes only with use_heap)", keys, want)
	}
}

func TestHandlerJSONHeapSource(t *testing.T) {
	g := newGuard(t, Config{LimitBytes: 1000, UseHeap: true, HeapSampleInterval: time.Nanosecond}, nil,
		WithHeapSource(func() int64 { return 400 }))
	g.Add(100)
	var s struct {
		Ratio         float64 `json:"ratio"`
		CurrentBytes  int64   `json:"current_bytes"`
		UnderPressure bool    `json:"under_pressure"`
		Level         string  `json:"level"`
		Source        string  `json:"source"`
		HeapBytes     *int64  `json:"heap_bytes"`
		Accounted     int64   `json:"accounted_bytes"`
	}
	rec := get(t, g.Handler(), http.MethodGet)
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Ratio != 0.4 || s.CurrentBytes != 400 || s.UnderPressure || s.Level != "normal" || s.Source != "heap" ||
		s.HeapBytes == nil || *s.HeapBytes != 400 || s.Accounted != 100 {
		t.Fatalf("body %s", rec.Body.String())
	}
}

func TestHandlerMethods(t *testing.T) {
	g := limited(t, 1000)
	if rec := get(t, g.Handler(), http.MethodHead); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d, body %q", rec.Code, rec.Body.String())
	}
	rec := get(t, g.Handler(), http.MethodPost)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("POST: %d, Allow %q, body %q", rec.Code, rec.Header().Get("Allow"), rec.Body.String())
	}
}

func TestMountOnTheAdminServer(t *testing.T) {
	g := limited(t, 1000)
	g.Add(300)
	srv, err := admin.New(admin.Config{}, admin.Deps{Metrics: testRegistry(), Health: health.New(health.Config{}), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Mount(srv); err != nil {
		t.Fatalf("Mount: %v", err)
	}
	rec := get(t, srv.Handler(), http.MethodGet)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"current_bytes":300`) {
		t.Fatalf("GET %s through the admin server: %d %q", PressurePath, rec.Code, rec.Body.String())
	}
	// Mounting twice is a conflict the admin server reports.
	if err := g.Mount(srv); err == nil {
		t.Fatal("second Mount on the same server succeeded")
	}
}
