package httpclient_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/keel-go/keel/httpclient"
)

func TestMetricsValues(t *testing.T) {
	srv := newServer(t, reply{Status: 503}, reply{Status: 429}, reply{Status: 200}, reply{Status: 404}, reply{Status: 302})
	c, reg, _ := newClient(t, httpclient.Config{})
	if _, err := get(t, c, srv.URL); err != nil { // 503, 429, 200
		t.Fatal(err)
	}
	if err := c.DoJSON(context.Background(), http.MethodPost, srv.URL, map[string]int{"a": 1}, nil); err == nil { // 404
		t.Fatal("404 is not an error")
	}
	// 302 without Location is not followed: it is the answer.
	req, _ := http.NewRequestWithContext(context.Background(), "PURGE", srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()

	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"keel_http_client_requests_total", map[string]string{"method": "GET", "code": "5xx"}, 1},
		{"keel_http_client_requests_total", map[string]string{"method": "GET", "code": "4xx"}, 1},
		{"keel_http_client_requests_total", map[string]string{"method": "GET", "code": "2xx"}, 1},
		{"keel_http_client_requests_total", map[string]string{"method": "POST", "code": "4xx"}, 1},
		{"keel_http_client_requests_total", map[string]string{"method": "_OTHER", "code": "3xx"}, 1},
		{"keel_http_client_request_duration_seconds", map[string]string{"method": "GET"}, 3},
		{"keel_http_client_request_duration_seconds", map[string]string{"method": "POST"}, 1},
		{"keel_http_client_request_duration_seconds", map[string]string{"method": "_OTHER"}, 1},
		{"keel_http_client_retries_total", map[string]string{"reason": "5xx"}, 1},
		{"keel_http_client_retries_total", map[string]string{"reason": "429"}, 1},
		{"keel_http_client_retries_total", map[string]string{"reason": "408"}, 0},
	}
	for _, w := range want {
		if got := metricValue(t, reg, w.name, w.labels); got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	man := reg.Manifest()
	found := 0
	for _, d := range man.Metrics {
		switch d.Name {
		case "keel_http_client_requests_total", "keel_http_client_request_duration_seconds", "keel_http_client_retries_total":
			found++
			if d.Help == "" {
				t.Errorf("%s has no help", d.Name)
			}
		}
	}
	if found != 3 {
		t.Fatalf("manifest lists %d of the 3 client metrics", found)
	}
}

func TestMetricLabelsBounded(t *testing.T) {
	srv := newServer(t)
	c, reg, _ := newClient(t, httpclient.Config{})
	for i := range 50 {
		req, _ := http.NewRequestWithContext(context.Background(), fmt.Sprintf("CUSTOM%d", i), srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "keel_http_client_requests_total" && len(mf.GetMetric()) != 1 {
			t.Fatalf("50 custom methods made %d series, want 1 (_OTHER)", len(mf.GetMetric()))
		}
	}
	if got := metricValue(t, reg, "keel_http_client_requests_total", map[string]string{"method": "_OTHER", "code": "2xx"}); got != 50 {
		t.Fatalf("_OTHER count %v, want 50", got)
	}
}
