package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
)

func TestRequestMetrics(t *testing.T) {
	e := start(t, Config{}, Deps{})
	e.get(t, "/healthz")
	e.get(t, "/healthz")
	e.get(t, "/readyz") // 503: not started
	e.get(t, "/nope/1")
	e.get(t, "/nope/2?x=y")
	tests := []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/healthz", "code", "2xx"}, 2},
		{[]string{"route", "/readyz", "code", "5xx"}, 1},
		{[]string{"route", "unmatched", "code", "4xx"}, 2},
	}
	for _, tt := range tests {
		if v := value(t, e.metrics, "keel_admin_http_requests_total", tt.labels...); v != tt.want {
			t.Errorf("requests_total%v = %v, want %v", tt.labels, v, tt.want)
		}
	}
	if v := value(t, e.metrics, "keel_admin_http_request_duration_seconds", "route", "/healthz"); v != 2 {
		t.Errorf("duration sample count = %v", v)
	}
	if v := value(t, e.metrics, "keel_admin_http_requests_in_flight"); v != 0 {
		t.Errorf("in flight = %v after all requests finished", v)
	}
	// Raw paths never become label values.
	mfs, _ := e.metrics.Gatherer().Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "/nope") {
					t.Fatalf("raw path in label: %s=%s", lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func TestInFlightGaugeAndHandlerPanic(t *testing.T) {
	e := start(t, Config{}, Deps{})
	entered, release := make(chan struct{}), make(chan struct{})
	_ = e.srv.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	_ = e.srv.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("handler bug") })

	done := make(chan response, 1)
	go func() { done <- e.get(t, "/slow") }()
	<-entered
	if v := value(t, e.metrics, "keel_admin_http_requests_in_flight"); v != 1 {
		t.Fatalf("in flight during a request = %v", v)
	}
	close(release)
	if r := <-done; r.code != http.StatusAccepted {
		t.Fatalf("/slow: %d", r.code)
	}

	r := e.get(t, "/panic")
	if r.code != http.StatusInternalServerError || jsonBody(t, r)["status"] != "error" || strings.Contains(string(r.body), "handler bug") {
		t.Fatalf("/panic: %d %s", r.code, r.body)
	}
	if v := value(t, e.metrics, "keel_admin_http_requests_total", "route", "/panic", "code", "5xx"); v != 1 {
		t.Fatalf("panic not counted as 5xx: %v", v)
	}
	if v := value(t, e.metrics, "keel_admin_http_requests_in_flight"); v != 0 {
		t.Fatalf("in flight unbalanced after a panic: %v", v)
	}
	if r := e.get(t, "/healthz"); r.code != http.StatusOK {
		t.Fatal("server not serving after a handler panic")
	}
}

func TestStartReportsBoundAddressAndErrors(t *testing.T) {
	e := start(t, Config{}, Deps{})
	host, port, err := net.SplitHostPort(e.srv.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q", e.srv.Addr())
	}
	if err := e.srv.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v", err)
	}
	// The port is taken: the error names the address.
	other, err := New(Config{Addr: e.srv.Addr()}, Deps{Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err == nil || !strings.Contains(err.Error(), e.srv.Addr()) {
		t.Fatalf("Start on a taken port = %v", err)
	}
	if other.Addr() != "" {
		t.Fatalf("Addr after a failed Start = %q", other.Addr())
	}
	if err := other.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of a server never started = %v", err)
	}
}

func TestGracefulShutdownWaitsForRequests(t *testing.T) {
	e := start(t, Config{}, Deps{})
	entered, release := make(chan struct{}), make(chan struct{})
	_ = e.srv.HandleFunc("/work", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	done := make(chan response, 1)
	go func() { done <- e.get(t, "/work") }()
	<-entered

	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	case r := <-done:
		t.Fatalf("request ended early: %d", r.code)
	default:
	}
	close(release)
	if r := <-done; r.code != http.StatusOK || string(r.body) != "finished" {
		t.Fatalf("in-flight request cut: %d %s", r.code, r.body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if _, err := e.client.Get(e.base + "/healthz"); err == nil {
		t.Fatal("server still accepting after Shutdown")
	}
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if err := e.srv.Start(context.Background()); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after Shutdown = %v", err)
	}
}

func TestShutdownDeadlineCutsStuckRequests(t *testing.T) {
	e := start(t, Config{ShutdownTimeout: 20 * time.Millisecond}, Deps{})
	entered, release := make(chan struct{}), make(chan struct{})
	handlerDone := make(chan struct{})
	_ = e.srv.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		close(entered)
		<-release
	})
	reqErr := make(chan error, 1)
	go func() {
		resp, err := e.client.Get(e.base + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		reqErr <- err
	}()
	<-entered
	err := e.srv.Shutdown(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline = %v", err)
	}
	if err := <-reqErr; err == nil {
		t.Fatal("stuck request got a response although its connection was closed")
	}
	close(release)
	<-handlerDone
}
