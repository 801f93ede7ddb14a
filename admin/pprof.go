package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"time"
)

// pprofRoutes mounts the profiling endpoints (see the package doc).
func (s *Server) pprofRoutes(mount func(string, http.Handler)) {
	mount("/debug/pprof/{$}", readOnly(http.HandlerFunc(s.pprofIndex)))
	mount("/debug/pprof/profile", readOnly(http.HandlerFunc(s.pprofCPU)))
	mount("/debug/pprof/trace", readOnly(http.HandlerFunc(s.pprofTrace)))
	mount("/debug/pprof/{name}", readOnly(http.HandlerFunc(s.pprofNamed)))
}

type profileEntry struct {
	Name  string `json:"name"`
	Count int    `json:"count,omitempty"`
	Href  string `json:"href"`
}

func (s *Server) pprofIndex(w http.ResponseWriter, _ *http.Request) {
	var list []profileEntry
	for _, p := range pprof.Profiles() {
		list = append(list, profileEntry{Name: p.Name(), Count: p.Count(), Href: "/debug/pprof/" + p.Name()})
	}
	list = append(list,
		profileEntry{Name: "profile", Href: "/debug/pprof/profile?seconds=30"},
		profileEntry{Name: "trace", Href: "/debug/pprof/trace?seconds=1"})
	slices.SortFunc(list, func(a, b profileEntry) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "profiles": list})
}

// seconds reads ?seconds= (fractions allowed) with a default, and refuses
// values that are not positive or that would outlast the write timeout.
func (s *Server) seconds(r *http.Request, def float64) (time.Duration, error) {
	v := r.URL.Query().Get("seconds")
	sec := def
	if v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) {
			return 0, fmt.Errorf("seconds=%q: want a positive number", v)
		}
		sec = f
	}
	d := time.Duration(sec * float64(time.Second))
	if limit := s.cfg.WriteTimeout - time.Second; d > limit {
		return 0, fmt.Errorf("seconds=%v exceeds the server's write timeout (%s); raise admin.write_timeout", sec, s.cfg.WriteTimeout)
	}
	return d, nil
}

// sleep waits d or until the client goes away; it reports whether the
// whole d passed.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func attachment(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

func (s *Server) pprofCPU(w http.ResponseWriter, r *http.Request) {
	d, err := s.seconds(r, 30)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"error", err.Error()})
		return
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{"error", "cannot start CPU profile (another one is running?): " + err.Error()})
		return
	}
	ok := sleep(r, d)
	pprof.StopCPUProfile()
	if !ok {
		return
	}
	attachment(w, "profile")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pprofTrace(w http.ResponseWriter, r *http.Request) {
	d, err := s.seconds(r, 1)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"error", err.Error()})
		return
	}
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		writeJSON(w, http.StatusConflict, errorBody{"error", "cannot start trace (another one is running?): " + err.Error()})
		return
	}
	ok := sleep(r, d)
	trace.Stop()
	if !ok {
		return
	}
	attachment(w, "trace")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pprofNamed(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := pprof.Lookup(name)
	if p == nil {
		writeJSON(w, http.StatusNotFound, errorBody{"error", fmt.Sprintf("unknown profile %q; see /debug/pprof/", name)})
		return
	}
	q := r.URL.Query()
	debug := 0
	if v := q.Get("debug"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 2 {
			writeJSON(w, http.StatusBadRequest, errorBody{"error", fmt.Sprintf("debug=%q: want 0, 1 or 2", v)})
			return
		}
		debug = n
	}
	if name == "heap" && q.Get("gc") != "" && q.Get("gc") != "0" {
		runtime.GC()
	}
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, debug); err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"error", "profile " + name + ": " + err.Error()})
		return
	}
	if debug > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
	} else {
		attachment(w, name)
	}
	_, _ = w.Write(buf.Bytes())
}
