package scaling_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keel-go/keel/scaling"
)

func get(t *testing.T, h http.Handler, method string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, scaling.HandlerPath, nil))
	return rec
}

func TestHandlerJSON(t *testing.T) {
	p, e := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.5, scaling.Memory: 0.95, scaling.Lag: 20_000})
	p.SetCircuitOpen(true)
	rec := get(t, p.Handler(), http.MethodGet)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d headers %v", rec.Code, rec.Header())
	}
	// Decode into a generic map: the field names are the contract.
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	if body["value"] != 0.0 || body["gate"] != "circuit_open" || body["method"] != "gate" || body["circuit_open"] != true {
		t.Fatalf("body %s", rec.Body)
	}
	held, _ := body["gates_held"].([]any)
	if len(held) != 2 || held[0] != "circuit_open" || held[1] != "memory" {
		t.Fatalf("gates_held %v", body["gates_held"])
	}
	comps, _ := body["components"].([]any)
	if len(comps) != 5 {
		t.Fatalf("components %v", body["components"])
	}
	lag := comps[3].(map[string]any)
	if lag["name"] != "lag" || lag["raw"] != 20_000.0 || lag["value"] != 0.2 || lag["reported"] != true {
		t.Fatalf("lag component %v", lag)
	}
	pool := comps[4].(map[string]any)
	if pool["name"] != "pool" || pool["reported"] != false {
		t.Fatalf("pool component %v", pool)
	}
	at, err := time.Parse(time.RFC3339Nano, body["evaluated_at"].(string))
	if err != nil || !at.Equal(e.clock.Now()) {
		t.Fatalf("evaluated_at %v (%v)", body["evaluated_at"], err)
	}

	// A typed round trip gives the same as Last.
	var r scaling.Result
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	last, _ := p.Last()
	if r.Value != last.Value || r.Weighted != last.Weighted || len(r.Components) != len(last.Components) {
		t.Fatalf("decoded %+v, last %+v", r, last)
	}
}

// The handler serves the last evaluation while it is fresh, and evaluates
// itself once it is older than the interval (Run not running).
func TestHandlerFreshness(t *testing.T) {
	p, e := newPressure(t, scaling.Config{Weights: map[string]float64{scaling.CPU: 1}})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.1})
	decode := func() scaling.Result {
		var r scaling.Result
		rec := get(t, p.Handler(), http.MethodGet)
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := decode(); !near(r.Value, 10) {
		t.Fatalf("first request evaluates: %v", r.Value)
	}
	mustSet(t, p, map[string]float64{scaling.CPU: 0.7})
	if r := decode(); !near(r.Value, 10) {
		t.Fatalf("within the interval the last result is served: %v", r.Value)
	}
	e.clock.Advance(p.Interval())
	if r := decode(); !near(r.Value, 70) {
		t.Fatalf("a stale result is refreshed: %v", r.Value)
	}
}

func TestHandlerMethods(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	if rec := get(t, p.Handler(), http.MethodHead); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Fatalf("HEAD: %d %q", rec.Code, rec.Body)
	}
	rec := get(t, p.Handler(), http.MethodPost)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d %v", rec.Code, rec.Header())
	}
	var nilP *scaling.Pressure
	if rec := get(t, nilP.Handler(), http.MethodGet); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("nil pressure: %d", rec.Code)
	}
}
