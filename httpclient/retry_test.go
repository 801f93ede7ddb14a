package httpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel/httpclient"
)

func TestRetryOnlyOnRetryableStatuses(t *testing.T) {
	cases := []struct {
		status int
		retry  bool
	}{
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{599, true},
		{http.StatusNotImplemented, true},
		{http.StatusHTTPVersionNotSupported, true},
		{http.StatusNetworkAuthenticationRequired, true},
		{http.StatusOK, false},
		{http.StatusNoContent, false},
		{http.StatusNotModified, false},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
		{http.StatusUnprocessableEntity, false},
		{499, false},
		{600, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			if got := httpclient.Retryable(tc.status); got != tc.retry {
				t.Fatalf("Retryable(%d) = %v, want %v", tc.status, got, tc.retry)
			}
			srv := newServer(t, reply{Status: tc.status}, reply{Status: http.StatusOK})
			c, _, sl := newClient(t, httpclient.Config{})
			resp, err := get(t, c, srv.URL)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			n := len(srv.requests())
			if tc.retry {
				if n != 2 || resp.StatusCode != http.StatusOK || len(sl.all()) != 1 {
					t.Fatalf("retryable %d: %d requests, final status %d, %d waits; want 2, 200, 1", tc.status, n, resp.StatusCode, len(sl.all()))
				}
				return
			}
			if n != 1 || resp.StatusCode != tc.status || len(sl.all()) != 0 {
				t.Fatalf("final %d: %d requests, status %d, %d waits; want 1, %d, 0", tc.status, n, resp.StatusCode, len(sl.all()), tc.status)
			}
		})
	}
}

func TestAttemptsBounded(t *testing.T) {
	for _, max := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			srv := newServer(t, reply{Status: http.StatusServiceUnavailable})
			c, reg, sl := newClient(t, httpclient.Config{MaxAttempts: max})
			_, err := get(t, c, srv.URL+"/v1/items")
			var ex *httpclient.ExhaustedError
			if !errors.As(err, &ex) || !errors.Is(err, httpclient.ErrExhausted) {
				t.Fatalf("err = %v, want *ExhaustedError", err)
			}
			if ex.Attempts != max || ex.StatusCode != http.StatusServiceUnavailable || ex.Method != http.MethodGet || ex.URL != srv.URL+"/v1/items" {
				t.Fatalf("ExhaustedError = %+v", ex)
			}
			for _, want := range []string{"GET", srv.URL + "/v1/items", fmt.Sprintf("%d attempt(s)", max), "503 Service Unavailable"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if n := len(srv.requests()); n != max {
				t.Fatalf("%d requests, want %d", n, max)
			}
			if n := len(sl.all()); n != max-1 {
				t.Fatalf("%d waits, want %d", n, max-1)
			}
			if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "5xx"}); got != float64(max-1) {
				t.Fatalf("retries_total{5xx} = %v, want %d", got, max-1)
			}
		})
	}
}

func TestBackoffExponentialJitteredAndCapped(t *testing.T) {
	cases := []struct {
		random float64
		want   []time.Duration
	}{
		{1, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}},
		{0, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond}},
		{0.5, []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond, 225 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.random), func(t *testing.T) {
			srv := newServer(t, reply{Status: http.StatusBadGateway})
			c, _, sl := newClient(t, httpclient.Config{
				MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
			}, httpclient.WithRandom(func() float64 { return tc.random }))
			if _, err := get(t, c, srv.URL); !errors.Is(err, httpclient.ErrExhausted) {
				t.Fatalf("err = %v", err)
			}
			if got := sl.all(); !slices.Equal(got, tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRetryAfterHonouredAndCapped(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cases := []struct {
		name   string
		status int
		value  string
		want   time.Duration
	}{
		{"seconds", http.StatusServiceUnavailable, "3", 3 * time.Second},
		{"seconds on 429", http.StatusTooManyRequests, "2", 2 * time.Second},
		{"seconds capped", http.StatusServiceUnavailable, "3600", 10 * time.Second},
		{"huge seconds capped", http.StatusTooManyRequests, "99999999999999999999999", 10 * time.Second},
		{"date", http.StatusServiceUnavailable, now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{"date capped", http.StatusTooManyRequests, now.Add(time.Hour).Format(http.TimeFormat), 10 * time.Second},
		{"date in the past", http.StatusServiceUnavailable, now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"malformed: backoff", http.StatusServiceUnavailable, "soon", 100 * time.Millisecond},
		{"negative: backoff", http.StatusServiceUnavailable, "-5", 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, reply{Status: tc.status, Header: map[string]string{"Retry-After": tc.value}}, reply{Status: http.StatusOK})
			c, _, sl := newClient(t, httpclient.Config{MaxRetryAfter: 10 * time.Second},
				httpclient.WithClock(func() time.Time { return now }))
			resp, err := get(t, c, srv.URL)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("Do: %v", err)
			}
			if got := sl.all(); !slices.Equal(got, []time.Duration{tc.want}) {
				t.Fatalf("waits %v, want [%v]", got, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"Wed, 04 Mar 2026 05:07:07 GMT", time.Minute, true}, // weekday is not checked
		{"Wednesday, 04-Mar-26 05:06:17 GMT", 10 * time.Second, true},
		{"Wed Mar  4 05:06:37 2026", 30 * time.Second, true},
		{"Wed, 04 Mar 2026 05:00:00 GMT", 0, true},
		{"", 0, false},
		{"1.5", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"tomorrow", 0, false},
		{"1e3", 0, false},
	}
	for _, tc := range cases {
		got, ok := httpclient.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got, ok := httpclient.ParseRetryAfter("99999999999999999999", now); !ok || got <= 0 {
		t.Errorf("overflowing seconds = %v, %v; want the largest duration", got, ok)
	}
}

func TestConnectionRefusedRetried(t *testing.T) {
	c, reg, sl := newClient(t, httpclient.Config{MaxAttempts: 3})
	_, err := get(t, c, "http://"+refusedAddr(t)+"/x")
	var ex *httpclient.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 3 || ex.StatusCode != 0 {
		t.Fatalf("err = %#v, want ExhaustedError after 3 attempts without status", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want it to match ECONNREFUSED", err)
	}
	if len(sl.all()) != 2 {
		t.Fatalf("waits %v, want 2", sl.all())
	}
	if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "connection"}); got != 2 {
		t.Fatalf("retries_total{connection} = %v, want 2", got)
	}
	if got := metricValue(t, reg, "keel_http_client_requests_total", map[string]string{"method": "GET", "code": "error"}); got != 3 {
		t.Fatalf("requests_total{GET,error} = %v, want 3", got)
	}
}

func TestConnectionClosedMidResponseRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Le") // cut inside the headers
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c, reg, _ := newClient(t, httpclient.Config{})
	resp, err := get(t, c, srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK || n.Load() != 2 {
		t.Fatalf("Do = %v, %d requests; want 200 after 2", err, n.Load())
	}
	if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "connection"}); got != 1 {
		t.Fatalf("retries_total{connection} = %v, want 1", got)
	}
}

func TestAttemptTimeoutRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-r.Context().Done() // hang until the client gives up on this attempt
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	c, reg, _ := newClient(t, httpclient.Config{Timeout: 50 * time.Millisecond})
	resp, err := get(t, c, srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK || n.Load() != 2 {
		t.Fatalf("Do = %v, %d requests; want 200 after 2", err, n.Load())
	}
	if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "timeout"}); got != 1 {
		t.Fatalf("retries_total{timeout} = %v, want 1", got)
	}
}

func TestAttemptTimeoutExhausted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(srv.Close)
	c, _, _ := newClient(t, httpclient.Config{Timeout: 20 * time.Millisecond, MaxAttempts: 2})
	_, err := get(t, c, srv.URL)
	var ex *httpclient.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 2 || ex.Err == nil {
		t.Fatalf("err = %v, want ExhaustedError with the timeout as cause", err)
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("cause %v is not a timeout", ex.Err)
	}
}

// signalHandler is a slog handler that closes its channel at the first
// record: the client logs a retry just before it starts to wait.
type signalHandler struct {
	once *sync.Once
	ch   chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(context.Context, slog.Record) error {
	h.once.Do(func() { close(h.ch) })
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

func TestContextCancelStopsRetryWait(t *testing.T) {
	srv := newServer(t, reply{Status: http.StatusServiceUnavailable})
	waiting := make(chan struct{})
	// The real wait: an hour, which only the cancellation can cut short.
	c, err := httpclient.New(httpclient.Config{InitialBackoff: time.Hour, MaxBackoff: time.Hour},
		httpclient.WithMetrics(testRegistry()),
		httpclient.WithLogger(slog.New(signalHandler{once: &sync.Once{}, ch: waiting})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-waiting
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err = c.Do(req)
	var re *httpclient.RequestError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RequestError matching context.Canceled", err)
	}
	if re.Attempts != 1 || re.StatusCode != http.StatusServiceUnavailable || len(srv.requests()) != 1 {
		t.Fatalf("attempts %d, status %d, requests %d; want 1, 503, 1", re.Attempts, re.StatusCode, len(srv.requests()))
	}
}

func TestContextCancelDuringAttempt(t *testing.T) {
	started := make(chan struct{})
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			close(started)
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c, reg, sl := newClient(t, httpclient.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err := c.Do(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n.Load() != 1 || len(sl.all()) != 0 {
		t.Fatalf("%d requests, %d waits after cancel; want 1, 0", n.Load(), len(sl.all()))
	}
	if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "timeout"}) +
		metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "connection"}); got != 0 {
		t.Fatalf("retries counted after cancel: %v", got)
	}
}

func TestContextDoneBeforeStart(t *testing.T) {
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := &trackedBody{Reader: strings.NewReader("x")}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, body)
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if len(srv.requests()) != 0 || !body.closed.Load() {
		t.Fatalf("requests %d, body closed %v; want 0, true", len(srv.requests()), body.closed.Load())
	}
}

func TestGiveUpWhenWaitPassesDeadline(t *testing.T) {
	srv := newServer(t, reply{Status: http.StatusServiceUnavailable, Header: map[string]string{"Retry-After": "7200"}})
	c, _, sl := newClient(t, httpclient.Config{MaxRetryAfter: 3 * time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err := c.Do(req)
	var re *httpclient.RequestError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable || re.Attempts != 1 {
		t.Fatalf("err = %v, want RequestError matching DeadlineExceeded with status 503 after 1 attempt", err)
	}
	if len(sl.all()) != 0 || len(srv.requests()) != 1 {
		t.Fatalf("waits %v, requests %d; want none, 1", sl.all(), len(srv.requests()))
	}
}

func TestCertificateErrorNotRetried(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c, reg, sl := newClient(t, httpclient.Config{}) // does not trust the test CA
	_, err := get(t, c, srv.URL)
	var re *httpclient.RequestError
	if !errors.As(err, &re) || re.Attempts != 1 {
		t.Fatalf("err = %v, want a RequestError after 1 attempt", err)
	}
	if len(sl.all()) != 0 {
		t.Fatalf("certificate error retried: waits %v", sl.all())
	}
	if got := metricValue(t, reg, "keel_http_client_requests_total", map[string]string{"method": "GET", "code": "error"}); got != 1 {
		t.Fatalf("requests_total{GET,error} = %v, want 1", got)
	}
}

func TestTooManyRedirectsNotRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, "/again", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c, _, sl := newClient(t, httpclient.Config{})
	_, err := get(t, c, srv.URL)
	if !errors.Is(err, httpclient.ErrTooManyRedirects) {
		t.Fatalf("err = %v, want ErrTooManyRedirects", err)
	}
	if len(sl.all()) != 0 || n.Load() != 10 {
		t.Fatalf("waits %v, requests %d; want none, 10 (one attempt)", sl.all(), n.Load())
	}
}

func TestInvalidRequests(t *testing.T) {
	c, _, _ := newClient(t, httpclient.Config{})
	if _, err := c.Do(nil); !errors.Is(err, httpclient.ErrInvalidRequest) {
		t.Fatalf("nil request: %v", err)
	}
	for _, u := range []string{"ftp://example.com/x", "http:///nohost"} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(req); !errors.Is(err, httpclient.ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", u, err)
		}
	}
}

// trackedBody records whether it was closed.
type trackedBody struct {
	*strings.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error {
	b.closed.Store(true)
	return nil
}

func TestExhaustedReportsLastAttempt(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close() // no response at all
		}
	}))
	t.Cleanup(srv.Close)
	c, _, _ := newClient(t, httpclient.Config{MaxAttempts: 2})
	_, err := get(t, c, srv.URL)
	var ex *httpclient.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 2 || ex.StatusCode != 0 || ex.Err == nil {
		t.Fatalf("err = %#v, want the second attempt's failure without a status", err)
	}
	if strings.Contains(err.Error(), "502") {
		t.Fatalf("error reports an earlier attempt's status: %v", err)
	}
}
