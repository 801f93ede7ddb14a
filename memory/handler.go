package memory

import (
	"encoding/json"
	"net/http"
)

// PressurePath is the admin endpoint the guard's Handler is meant for.
const PressurePath = "/memory/pressure"

// Mux is what Mount needs from an HTTP server: the admin server's Handle.
type Mux interface {
	Handle(pattern string, h http.Handler) error
}

// Mount serves Handler at PressurePath on m (the admin server).
func (g *Guard) Mount(m Mux) error { return m.Handle(PressurePath, g.Handler()) }

// Handler serves the guard's Snapshot as JSON on GET and HEAD:
//
//	{"ratio":0.41,"current_bytes":352321536,"limit_bytes":858993459,
//	 "under_pressure":false,"level":"normal","source":"accounted",
//	 "accounted_bytes":352321536,"threshold":0.8,"limit_source":"cgroup_v2",
//	 "go_memory_limit_bytes":966367641,"reservations_refused_total":0}
//
// heap_bytes is added with use_heap. Other methods get 405 with a JSON
// error. The answer is always 200 otherwise: this is a reading, not a
// probe.
func (g *Guard) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = w.Write([]byte(`{"status":"error","error":"method not allowed: use GET"}` + "\n"))
			return
		}
		b, err := json.Marshal(g.Snapshot())
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"status":"error","error":"cannot encode the memory snapshot"}` + "\n"))
			return
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(append(b, '\n'))
	})
}
