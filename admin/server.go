package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrStarted is returned by Start on a server already started.
	ErrStarted = errors.New("admin: server already started")
	// ErrInvalidRoute is returned by Handle for a pattern the router
	// refuses (malformed, or in conflict with a route already mounted).
	ErrInvalidRoute = errors.New("admin: invalid route")
)

// Deps are what the server reads from. Every field is optional.
type Deps struct {
	// Health is the registry behind the probes. Nil means health.Default().
	Health *health.Registry
	// Metrics is served at /metrics and /metrics/manifest, and receives
	// the server's own metrics. Nil means metrics.Default().
	Metrics *metrics.Registry
	// ConfigJSON returns the redacted effective configuration for /config.
	// Required when Config.EnableConfig is true.
	ConfigJSON func() ([]byte, error)
	// Logger receives the server's log. Nil means slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP server. Create it with New.
type Server struct {
	cfg     Config
	health  *health.Registry
	metrics *metrics.Registry
	config  func() ([]byte, error)
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler

	requests *metrics.CounterVec
	duration *metrics.HistogramVec
	inflight prometheus.Gauge

	mu       sync.Mutex
	srv      *http.Server
	addr     string
	serveErr chan error
	stopped  bool
}

// New builds the server and mounts its routes; it does not listen yet.
// It fails on an invalid Config, or when EnableConfig is set without
// Deps.ConfigJSON.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.EnableConfig && deps.ConfigJSON == nil {
		return nil, errors.New("admin: admin.enable_config is true but no ConfigJSON source was given; pass Deps.ConfigJSON (the redacted config dump) or disable the endpoint")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := metrics.OrDefault(deps.Metrics)
	s := &Server{
		cfg:     cfg.withDefaults(),
		health:  health.OrDefault(deps.Health),
		metrics: reg,
		config:  deps.ConfigJSON,
		log:     log,
		mux:     http.NewServeMux(),
		requests: reg.CounterVec(metrics.Opts{Namespace: "keel", Subsystem: "admin", Name: "http_requests_total", Group: "admin",
			Help: "Requests served by the admin server, by route pattern and status class."}, "route", "code"),
		duration: reg.HistogramVec(metrics.Opts{Namespace: "keel", Subsystem: "admin", Name: "http_request_duration_seconds", Unit: "seconds", Group: "admin",
			Help: "Time to serve an admin request, by route pattern."}, nil, "route"),
		inflight: reg.Gauge(metrics.Opts{Namespace: "keel", Subsystem: "admin", Name: "http_requests_in_flight", Group: "admin",
			Help: "Admin requests being served."}),
	}
	s.handler = s.mux
	s.routes()
	return s, nil
}

// routes mounts the built-in endpoints.
func (s *Server) routes() {
	must := func(pattern string, h http.Handler) {
		if err := s.Handle(pattern, h); err != nil {
			// The built-in patterns are constants that cannot conflict.
			s.log.Error("admin: built-in route refused", "route", pattern, "error", err)
		}
	}
	startup, live, ready := http.HandlerFunc(s.startup), http.HandlerFunc(s.live), http.HandlerFunc(s.ready)
	must("/healthz/startup", readOnly(startup))
	must("/startupz", readOnly(startup))
	must("/healthz/live", readOnly(live))
	must("/healthz", readOnly(live))
	must("/healthz/ready", readOnly(ready))
	must("/readyz", readOnly(ready))
	must("/metrics", readOnly(s.metrics.Handler()))
	must("/metrics/manifest", readOnly(s.metrics.ManifestHandler()))
	if s.cfg.EnableConfig {
		must("/config", readOnly(http.HandlerFunc(s.configDump)))
	}
	if s.cfg.EnablePprof {
		s.pprofRoutes(must)
	}
	s.mux.Handle("/", s.instrument(unmatchedRoute, http.HandlerFunc(notFound)))
}

// unmatchedRoute is the route label of requests that match no route.
const unmatchedRoute = "unmatched"

// Handle mounts h at pattern (net/http.ServeMux syntax, with or without a
// method), counted in the admin metrics under the pattern. It returns an
// error wrapping ErrInvalidRoute when the pattern is malformed or conflicts
// with a mounted route. It may be called after Start.
func (s *Server) Handle(pattern string, h http.Handler) (err error) {
	if h == nil {
		return fmt.Errorf("%w: nil handler for %q", ErrInvalidRoute, pattern)
	}
	defer func() {
		// ServeMux reports bad and conflicting patterns by panicking.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %q: %v", ErrInvalidRoute, pattern, p)
		}
	}()
	s.mux.Handle(pattern, s.instrument(pattern, h))
	return nil
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) error {
	if f == nil {
		return fmt.Errorf("%w: nil handler for %q", ErrInvalidRoute, pattern)
	}
	return s.Handle(pattern, http.HandlerFunc(f))
}

// Handler returns the server's handler with every route mounted, for use
// in another server or in tests without a listener.
func (s *Server) Handler() http.Handler { return s.handler }

// Start binds Config.Addr and serves in the background. ctx bounds the
// bind only: the server runs until Shutdown. It fails when the address
// cannot be bound (the error names it; Start may then be retried) and with
// ErrStarted when the server was started or shut down before: a server
// does not restart.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.stopped {
		return ErrStarted
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("admin: listen on %s (admin.addr): %w; choose a free port or stop the process holding it", s.cfg.Addr, err)
	}
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.addr = ln.Addr().String()
	s.serveErr = make(chan error, 1)
	go func(srv *http.Server, done chan<- error) {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			s.log.Error("admin server stopped serving", "addr", ln.Addr().String(), "error", err)
			err = fmt.Errorf("admin: serve on %s: %w", ln.Addr(), err)
		}
		done <- err
	}(s.srv, s.serveErr)
	s.log.Info("admin server listening", "addr", s.addr, "config_endpoint", s.cfg.EnableConfig, "pprof", s.cfg.EnablePprof)
	return nil
}

// Addr returns the bound address (host:port, with the real port when
// Config.Addr asked for port 0), or "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits for requests in flight,
// until ctx ends or Config.ShutdownTimeout passes, whichever is first;
// then it closes the remaining connections and returns an error wrapping
// context.DeadlineExceeded (or ctx's error). It returns the serve error, if
// serving had failed. Its signature fits lifecycle.Hook. Calling it before
// Start, or again, returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, done := s.srv, s.serveErr
	s.srv, s.stopped = nil, true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("admin: graceful shutdown did not finish (requests still running were cut off): %w", err)
	}
	serveErr := <-done
	s.log.Info("admin server stopped", "duration", time.Since(start))
	return errors.Join(err, serveErr)
}
