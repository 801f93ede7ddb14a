package admin

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/keel-go/keel/health"
)

type errorBody struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

type statusBody struct {
	Status string `json:"status"`
}

// readyBody is the readiness answer: "ok" or "not_ready" with the reason
// ("starting", "draining" or "unhealthy") and, once started and not
// draining, the check report.
type readyBody struct {
	Status   string          `json:"status"`
	Reason   string          `json:"reason,omitempty"`
	Started  bool            `json:"started"`
	Draining bool            `json:"draining"`
	Health   string          `json:"health,omitempty"`
	Checks   []health.Result `json:"checks,omitempty"`
}

// writeJSON writes v as a JSON body with status code; probes are never
// cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"status":"error","error":"cannot encode response"}`)
	}
	writeRawJSON(w, code, b)
}

func writeRawJSON(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

func (s *Server) startup(w http.ResponseWriter, _ *http.Request) {
	if !s.health.Started() {
		writeJSON(w, http.StatusServiceUnavailable, statusBody{"starting"})
		return
	}
	writeJSON(w, http.StatusOK, statusBody{"ok"})
}

// live never consults checks: a broken dependency must make the pod
// unready, not restarted.
func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, statusBody{"ok"})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	body := readyBody{Status: "not_ready", Started: s.health.Started(), Draining: s.health.Draining()}
	switch {
	case !body.Started:
		body.Reason = "starting"
	case body.Draining:
		body.Reason = "draining"
	default:
		rep := s.health.Report(r.Context())
		body.Health, body.Checks = rep.Status.String(), rep.Checks
		// Draining may have begun while the checks ran.
		body.Draining = rep.Draining || s.health.Draining()
		switch {
		case body.Draining:
			body.Reason = "draining"
		case rep.Status == health.Unhealthy:
			body.Reason = "unhealthy"
		default:
			body.Status = "ok"
			writeJSON(w, http.StatusOK, body)
			return
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, body)
}

// configDump serves Deps.ConfigJSON. A failure is logged; the response
// says only that the dump failed, since the error could quote the config.
func (s *Server) configDump(w http.ResponseWriter, _ *http.Request) {
	b, err := s.config()
	if err != nil {
		s.log.Error("admin: config dump failed", "error", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Status: "error", Error: "config dump failed; see the service log"})
		return
	}
	if !json.Valid(b) {
		s.log.Error("admin: config dump is not valid JSON", "bytes", len(b))
		writeJSON(w, http.StatusInternalServerError, errorBody{Status: "error", Error: "config dump is not valid JSON; see the service log"})
		return
	}
	writeRawJSON(w, http.StatusOK, bytes.TrimSpace(b))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody{Status: "error", Error: "no admin endpoint at this path"})
}
