// Package admin serves a service's operational endpoints on one HTTP
// listener (":9090" by default), apart from its data traffic:
//
//	/healthz/startup, /startupz   503 {"status":"starting"} until health.MarkStarted
//	/healthz/live, /healthz       always 200 {"status":"ok"}: never checks dependencies
//	/healthz/ready, /readyz       200 when started, not draining and no check unhealthy;
//	                              503 with the reason and the check report otherwise
//	/metrics                      Prometheus exposition
//	/metrics/manifest             the JSON manifest of every metric
//	/config                       the redacted effective config (opt-in, else 404)
//	/debug/pprof/                 profiles (opt-in, else 404)
//
// Every body the package writes is JSON, errors included. A service mounts
// its own endpoints with Handle. Start with:
//
//	srv, err := admin.New(admin.Config{}, admin.Deps{})
//	if err != nil { return err }
//	if err := srv.Start(ctx); err != nil { return err }   // binds, then serves in the background
//	_ = manager.OnShutdown("admin", srv.Shutdown)          // register first: runs last
//
// Start binds before it returns and Addr reports the bound address, so
// tests can listen on 127.0.0.1:0. The server keeps running when ctx ends:
// it must answer probes (503 on readiness) and serve the last scrapes while
// the rest of the service drains, so stop it with Shutdown, last.
//
// # Metrics
//
// keel_admin_http_requests_total{route,code}, keel_admin_http_request_duration_seconds{route}
// and keel_admin_http_requests_in_flight. The route label is the pattern
// the request matched ("/readyz", "/debug/pprof/{name}", a pattern given to
// Handle); requests that match nothing share the route "unmatched". The code
// label is the status class: "2xx", "3xx", "4xx" or "5xx".
//
// # Profiling
//
// With EnablePprof the server offers /debug/pprof/ (a JSON index),
// /debug/pprof/{name} (any runtime/pprof profile: heap, goroutine, allocs,
// block, mutex, threadcreate; ?debug=N for text, ?gc=1 to collect before a
// heap profile), /debug/pprof/profile?seconds=N (CPU) and
// /debug/pprof/trace?seconds=N (execution trace). These are compatible with
// "go tool pprof" and "go tool trace". The package does not import
// net/http/pprof, so nothing is registered on http.DefaultServeMux, and it
// does not serve /debug/pprof/cmdline, whose command line may hold
// credentials.
//
// # Config
//
// The YAML section is "admin": addr, enable_config, enable_pprof,
// read_header_timeout, read_timeout, write_timeout, idle_timeout,
// shutdown_timeout. The /config endpoint serves what Deps.ConfigJSON
// returns; that function must return the redacted view.
package admin
