package scaling

import (
	"context"
	"encoding/json"
	"net/http"
)

// HandlerPath is the path an admin server mounts Handler on.
const HandlerPath = "/scaling/pressure"

// Handler returns the http.Handler for /scaling/pressure: GET (or HEAD)
// answers 200 with the last Result as JSON, for example
//
//	{"value":59.5,"method":"weighted","gate":"none","gates_held":[],
//	 "weighted":59.5,"circuit_open":false,"memory_gate":0.9,
//	 "components":[{"name":"cpu","reported":true,"raw":0.5,"value":0.5,
//	   "weight":0.2,"share":0.2,"contribution":10}, ...],
//	 "evaluated_at":"2025-01-02T03:04:05Z"}
//
// When no evaluation ran yet, or the last is older than scaling.interval
// (Run is not running), the handler evaluates first. Other methods get 405.
// For KEDA's metrics-api trigger use valueLocation "value"; for its
// Prometheus trigger query keel_scaling_pressure instead.
func (p *Pressure) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		if p == nil {
			http.Error(w, ErrNilPressure.Error(), http.StatusServiceUnavailable)
			return
		}
		res, ok := p.Last()
		if !ok || p.clock().Sub(res.EvaluatedAt) >= p.interval {
			// Not the request's context: a client that goes away must
			// not count as a failed expression.
			res = p.evaluate(context.Background())
		}
		body, err := json.Marshal(res)
		if err != nil {
			http.Error(w, "scaling: encoding the pressure: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}
