package httpclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/httpclient"
)

func ExampleClient_DoJSON() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": in.ID, "status": "accepted"})
	}))
	defer srv.Close()

	client, err := httpclient.New(httpclient.Config{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	var out struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	err = client.DoJSON(context.Background(), http.MethodPost, srv.URL+"/orders", map[string]string{"id": "o-1"}, &out)
	fmt.Println(out.ID, out.Status, err)
	// Output: o-1 accepted <nil>
}

func ExampleClient_Do() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0") // busy: try again now
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready")
	}))
	defer srv.Close()

	client, err := httpclient.New(httpclient.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", calls.Load(), "requests")
	// Output: 200 ready after 2 requests
}

func ExampleConfig_Validate() {
	cfg := httpclient.Config{MaxAttempts: -1, InitialBackoff: time.Minute, MaxBackoff: time.Second}
	fmt.Println(cfg.Validate())
	// Output:
	// http_client.max_attempts is -1; use 1 to 100 (1 disables retries; leave it unset for 4)
	// http_client.initial_backoff is 1m0s, more than max_backoff 1s; lower it or raise max_backoff
}

func ExampleRedactURL() {
	u, _ := url.Parse("https://svc:hunter2@api.example.com/v1/items?api_key=abc123&page=2")
	fmt.Println(httpclient.RedactURL(u))
	// Output: https://api.example.com/v1/items?api_key=[REDACTED]&page=2
}

func ExampleParseRetryAfter() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	d1, _ := httpclient.ParseRetryAfter("120", now)
	d2, _ := httpclient.ParseRetryAfter("Thu, 01 Jan 2026 12:00:30 GMT", now)
	_, ok := httpclient.ParseRetryAfter("later", now)
	fmt.Println(d1, d2, ok)
	// Output: 2m0s 30s false
}
