package admin

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// statusWriter records the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first status code and passes it on.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes the bytes on.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes through to the underlying writer when it can flush.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Hijack passes through, so handlers mounted with Handle may upgrade.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
		return h.Hijack()
	}
	return nil, nil, errors.New("admin: the response writer does not support hijacking")
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusClass(code int) string {
	switch {
	case code == 0 || (code >= 200 && code < 300):
		return "2xx"
	case code < 200:
		return "1xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}

// instrument counts, times and tracks in flight every request to route,
// and turns a handler panic into a JSON 500 (the gauge stays balanced).
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Inc()
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.log.Error("admin handler panicked", "route", route, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					writeJSON(sw, http.StatusInternalServerError, errorBody{Status: "error", Error: "internal error"})
				} else {
					sw.status = http.StatusInternalServerError
				}
			}
			s.inflight.Dec()
			s.requests.With(route, statusClass(sw.status)).Inc()
			s.duration.With(route).Observe(time.Since(start).Seconds())
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		h.ServeHTTP(sw, r)
	})
}

// readOnly answers methods other than GET and HEAD with a JSON 405.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Status: "error", Error: "method " + r.Method + " not allowed; use GET"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
