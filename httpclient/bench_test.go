package httpclient_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/keel-go/keel/httpclient"
)

const benchBody = `{"id":"o-1","qty":3,"tags":["a","b"],"price":9.5}`

func benchServer(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchBody)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGet compares a GET through the client with the same GET through a
// bare http.Client (the baseline), against one local server, in one run.
func BenchmarkGet(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	run := func(b *testing.B, do func(*http.Request) (*http.Response, error)) {
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		reportRate(b)
	}
	b.Run("baseline=http.Client", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		b.Cleanup(hc.CloseIdleConnections)
		run(b, hc.Do)
	})
	b.Run("keel", func(b *testing.B) {
		c, err := httpclient.New(httpclient.Config{}, httpclient.WithMetrics(testRegistry()),
			httpclient.WithTracerProvider(noop.NewTracerProvider()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.CloseIdleConnections)
		run(b, c.Do)
	})
	b.Run("keel_traced", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		c, err := httpclient.New(httpclient.Config{}, httpclient.WithMetrics(testRegistry()), httpclient.WithTracerProvider(tp))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.CloseIdleConnections)
		run(b, c.Do)
	})
}

// BenchmarkGetPaired interleaves a bare http.Client GET and a client GET in
// each iteration and reports both latencies and their ratio, which the load
// of a shared machine moves far less than two separate runs.
func BenchmarkGetPaired(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.Cleanup(hc.CloseIdleConnections)
	c, err := httpclient.New(httpclient.Config{}, httpclient.WithMetrics(testRegistry()),
		httpclient.WithTracerProvider(noop.NewTracerProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	one := func(do func(*http.Request) (*http.Response, error)) time.Duration {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return time.Since(start)
	}
	var bare, keel time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate the order so neither side always goes first
			bare += one(hc.Do)
			keel += one(c.Do)
		} else {
			keel += one(c.Do)
			bare += one(hc.Do)
		}
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(keel.Nanoseconds())/float64(b.N), "keel-ns/op")
	b.ReportMetric(float64(keel)/float64(bare), "keel/bare")
}

// BenchmarkGetJSON compares DoJSON with a bare http.Client plus
// encoding/json decoding of the same response.
func BenchmarkGetJSON(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	b.Run("baseline=http.Client+json", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		b.Cleanup(hc.CloseIdleConnections)
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var out order
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
		}
		reportRate(b)
	})
	b.Run("keel=DoJSON", func(b *testing.B) {
		c, err := httpclient.New(httpclient.Config{}, httpclient.WithMetrics(testRegistry()),
			httpclient.WithTracerProvider(noop.NewTracerProvider()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.CloseIdleConnections)
		b.ReportAllocs()
		for b.Loop() {
			var out order
			if err := c.DoJSON(ctx, http.MethodGet, srv.URL, nil, &out); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}
