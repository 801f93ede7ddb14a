package httpclient_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/httpclient"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
)

// seen is one request as the test server received it.
type seen struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// reply is one scripted answer of the test server.
type reply struct {
	Status int
	Header map[string]string
	Body   string
}

// server is an httptest server that answers with a script of replies (the
// last one repeats) and records every request.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	script []reply
	reqs   []seen
}

func newServer(t *testing.T, script ...reply) *server {
	t.Helper()
	s := &server{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	rep := reply{Status: http.StatusOK}
	if len(s.script) > 0 {
		rep = s.script[min(n, len(s.script)-1)]
	}
	s.mu.Unlock()
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

// sleeps records the waits a client asks for without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testRegistry is a private registry without runtime collectors.
func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// newClient builds a client with a private registry, recorded sleeps and
// the jitter fixed at its top (so each wait is the full backoff).
func newClient(t *testing.T, cfg httpclient.Config, opts ...httpclient.Option) (*httpclient.Client, *metrics.Registry, *sleeps) {
	t.Helper()
	reg := testRegistry()
	sl := &sleeps{}
	base := []httpclient.Option{
		httpclient.WithMetrics(reg),
		httpclient.WithSleep(sl.sleep),
		httpclient.WithRandom(func() float64 { return 1 }),
		httpclient.WithLogger(discardLogger()),
	}
	c, err := httpclient.New(cfg, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, reg, sl
}

// get sends a GET through c and returns the response with its body read.
func get(t *testing.T, c *httpclient.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return resp, err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// metricValue returns the value of the series of name with labels (a
// counter's value, or a histogram's sample count), 0 when absent.
func metricValue(t *testing.T, reg *metrics.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return keeltest.MetricValue(t, reg.Gatherer(), name, labels)
}
