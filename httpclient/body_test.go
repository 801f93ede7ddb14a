package httpclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keel-go/keel/httpclient"
)

type order struct {
	ID    string   `json:"id"`
	Qty   int      `json:"qty"`
	Tags  []string `json:"tags"`
	Price float64  `json:"price"`
}

func TestPostBodyReplayedOnEveryAttempt(t *testing.T) {
	const payload = `{"event":"created","n":42}`
	bodies := map[string]func() io.Reader{
		"strings.Reader": func() io.Reader { return strings.NewReader(payload) },
		"bytes.Reader":   func() io.Reader { return bytes.NewReader([]byte(payload)) },
		"bytes.Buffer":   func() io.Reader { return bytes.NewBufferString(payload) },
		"own GetBody":    func() io.Reader { return &trackedBody{Reader: strings.NewReader(payload)} },
	}
	for name, mk := range bodies {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, reply{Status: 503}, reply{Status: 502}, reply{Status: 429}, reply{Status: 201})
			c, _, _ := newClient(t, httpclient.Config{})
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, mk())
			if req.GetBody == nil {
				// A single-use stream with a GetBody that opens it afresh.
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			reqs := srv.requests()
			if len(reqs) != 4 || resp.StatusCode != 201 {
				t.Fatalf("%d requests, status %d; want 4, 201", len(reqs), resp.StatusCode)
			}
			for i, r := range reqs {
				if string(r.Body) != payload || r.Method != http.MethodPost {
					t.Fatalf("attempt %d sent %s %q, want POST %q", i+1, r.Method, r.Body, payload)
				}
			}
		})
	}
}

func TestDoJSONBodyReplayedAndDecoded(t *testing.T) {
	in := order{ID: "o-1", Qty: 3, Tags: []string{"a", "b"}, Price: 9.5}
	want, _ := json.Marshal(in)
	srv := newServer(t, reply{Status: 500}, reply{Status: 200, Body: `{"id":"o-1","qty":4,"tags":["c"],"price":1}`})
	c, _, _ := newClient(t, httpclient.Config{})
	var out order
	if err := c.DoJSON(context.Background(), http.MethodPost, srv.URL+"/orders", in, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "o-1" || out.Qty != 4 || len(out.Tags) != 1 || out.Price != 1 {
		t.Fatalf("decoded %+v", out)
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("attempt %d body %q, want %q", i+1, r.Body, want)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
			t.Fatalf("attempt %d headers %v", i+1, r.Header)
		}
		if r.Header.Get("User-Agent") != httpclient.DefaultUserAgent {
			t.Fatalf("User-Agent %q", r.Header.Get("User-Agent"))
		}
	}
}

func TestUnreplayableBodyRefusedBeforeSending(t *testing.T) {
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{})
	body := &trackedBody{Reader: strings.NewReader("stream")}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, srv.URL, body) // no GetBody for this type
	if req.GetBody != nil {
		t.Fatal("test needs a body without GetBody")
	}
	_, err := c.Do(req)
	if !errors.Is(err, httpclient.ErrBodyNotReplayable) {
		t.Fatalf("err = %v, want ErrBodyNotReplayable", err)
	}
	if len(srv.requests()) != 0 || !body.closed.Load() {
		t.Fatalf("requests %d, body closed %v; want 0, true", len(srv.requests()), body.closed.Load())
	}

	// With retries off the same body is fine: it is sent once.
	one, _, _ := newClient(t, httpclient.Config{MaxAttempts: 1})
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodPut, srv.URL, &trackedBody{Reader: strings.NewReader("stream")})
	resp, err := one.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if reqs := srv.requests(); len(reqs) != 1 || string(reqs[0].Body) != "stream" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestGetBodyFailureNotRetried(t *testing.T) {
	srv := newServer(t, reply{Status: 503}, reply{Status: 200})
	c, _, _ := newClient(t, httpclient.Config{})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, strings.NewReader("x"))
	boom := errors.New("source gone")
	req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
	_, err := c.Do(req)
	var re *httpclient.RequestError
	if !errors.Is(err, boom) || !errors.As(err, &re) || re.Attempts != 1 || re.StatusCode != 503 {
		t.Fatalf("err = %v, want RequestError wrapping the GetBody error after 1 attempt", err)
	}
	if len(srv.requests()) != 1 {
		t.Fatalf("%d requests, want 1", len(srv.requests()))
	}
}

type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot marshal") }

func TestUnencodableBodyIsErrorAndNothingSent(t *testing.T) {
	cases := map[string]any{
		"channel":          make(chan int),
		"function":         func() {},
		"NaN":              math.NaN(),
		"+Inf in a struct": struct{ V float64 }{math.Inf(1)},
		"NaN in a map":     map[string]float64{"x": math.NaN()},
		"invalid raw JSON": json.RawMessage(`{"a":`),
		"failing marshal":  failingMarshaler{},
	}
	srv := newServer(t)
	c, reg, _ := newClient(t, httpclient.Config{})
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.DoJSON(context.Background(), http.MethodPost, srv.URL, in, nil)
			var re *httpclient.RequestError
			if !errors.Is(err, httpclient.ErrEncode) || !errors.As(err, &re) || re.Attempts != 0 {
				t.Fatalf("err = %v, want a RequestError matching ErrEncode with 0 attempts", err)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests sent for unencodable bodies", n)
	}
	if got := metricValue(t, reg, "keel_http_client_requests_total", map[string]string{"method": "POST", "code": "2xx"}); got != 0 {
		t.Fatalf("requests counted: %v", got)
	}
}

func TestDoJSONNilBodies(t *testing.T) {
	srv := newServer(t, reply{Status: 200, Body: ""})
	c, _, _ := newClient(t, httpclient.Config{})
	out := order{ID: "keep"}
	if err := c.DoJSON(context.Background(), http.MethodDelete, srv.URL, nil, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "keep" {
		t.Fatalf("empty body changed out: %+v", out)
	}
	r := srv.requests()[0]
	if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
		t.Fatalf("nil in sent body %q, Content-Type %q", r.Body, r.Header.Get("Content-Type"))
	}
	// A typed nil pointer is a value: it is sent as null.
	if err := c.DoJSON(context.Background(), http.MethodPut, srv.URL, (*order)(nil), nil); err != nil {
		t.Fatal(err)
	}
	if got := string(srv.requests()[1].Body); got != "null" {
		t.Fatalf("typed nil sent %q, want null", got)
	}
}

func TestDoJSONDecodeErrors(t *testing.T) {
	cases := map[string]string{
		"not JSON":      "<html>oops</html>",
		"wrong type":    `{"qty":"three"}`,
		"trailing data": `{"id":"a"} {"id":"b"}`,
		"truncated":     `{"id":`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, reply{Status: 200, Body: body})
			c, _, _ := newClient(t, httpclient.Config{})
			var out order
			err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, &out)
			var re *httpclient.RequestError
			if !errors.Is(err, httpclient.ErrDecode) || !errors.As(err, &re) || re.StatusCode != 200 || re.Attempts != 1 {
				t.Fatalf("err = %v, want a RequestError matching ErrDecode", err)
			}
		})
	}
}

func TestDoJSONStatusError(t *testing.T) {
	srv := newServer(t, reply{Status: 404, Body: `{"error":"no such order"}`})
	c, _, sl := newClient(t, httpclient.Config{})
	err := c.DoJSON(context.Background(), http.MethodGet, srv.URL+"/orders/9", nil, &order{})
	var se *httpclient.StatusError
	if !errors.As(err, &se) || !errors.Is(err, httpclient.ErrStatus) {
		t.Fatalf("err = %v, want *StatusError", err)
	}
	if se.StatusCode != 404 || se.Attempts != 1 || string(se.Body) != `{"error":"no such order"}` || se.URL != srv.URL+"/orders/9" {
		t.Fatalf("StatusError %+v", se)
	}
	if strings.Contains(err.Error(), "no such order") {
		t.Fatalf("error text quotes the body: %v", err)
	}
	if len(sl.all()) != 0 || len(srv.requests()) != 1 {
		t.Fatal("404 was retried")
	}
	// A long error body is cut to its start, even past max_response_bytes.
	big := newServer(t, reply{Status: 400, Body: strings.Repeat("x", 10000)})
	small, _, _ := newClient(t, httpclient.Config{MaxResponseBytes: 100})
	err = small.DoJSON(context.Background(), http.MethodGet, big.URL, nil, nil)
	if !errors.As(err, &se) || len(se.Body) != 4096 || se.StatusCode != 400 {
		t.Fatalf("err = %v, want a StatusError with the first 4096 bytes", err)
	}
}

func TestDoJSONResponseTooLarge(t *testing.T) {
	for name, chunked := range map[string]bool{"content-length": false, "chunked": true} {
		t.Run(name, func(t *testing.T) {
			body := `{"id":"` + strings.Repeat("x", 100) + `"}`
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if chunked {
					_, _ = io.WriteString(w, body[:10])
					http.NewResponseController(w).Flush()
					_, _ = io.WriteString(w, body[10:])
					return
				}
				_, _ = io.WriteString(w, body)
			}))
			t.Cleanup(srv.Close)
			c, _, sl := newClient(t, httpclient.Config{MaxResponseBytes: 64})
			err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, &order{})
			if !errors.Is(err, httpclient.ErrResponseTooLarge) {
				t.Fatalf("err = %v, want ErrResponseTooLarge", err)
			}
			if len(sl.all()) != 0 {
				t.Fatal("a too large response was retried")
			}
		})
	}
}

func TestDoJSONBodyCutRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
				_ = buf.Flush()
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, `{"id":"whole"}`)
	}))
	t.Cleanup(srv.Close)
	c, reg, _ := newClient(t, httpclient.Config{})
	var out order
	if err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != "whole" || n.Load() != 2 {
		t.Fatalf("out %+v after %d requests; want whole after 2", out, n.Load())
	}
	if got := metricValue(t, reg, "keel_http_client_retries_total", map[string]string{"reason": "connection"}); got != 1 {
		t.Fatalf("retries_total{connection} = %v, want 1", got)
	}
}

func TestDoJSONInvalidURLAndMethod(t *testing.T) {
	c, _, _ := newClient(t, httpclient.Config{})
	for _, tc := range []struct{ method, url string }{
		{http.MethodGet, "http://user:pw-s3cr3t@bad host/"},
		{http.MethodGet, "ftp://example.com/"},
		{"BAD METHOD", "http://example.com/"},
	} {
		err := c.DoJSON(context.Background(), tc.method, tc.url, nil, nil)
		if !errors.Is(err, httpclient.ErrInvalidRequest) {
			t.Errorf("%s %s: err = %v, want ErrInvalidRequest", tc.method, tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw-s3cr3t") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestRequestHeadersWinOverConfigured(t *testing.T) {
	srv := newServer(t)
	c, _, _ := newClient(t, httpclient.Config{UserAgent: "orders/1.0"})
	if err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, nil, httpclient.WithHeader("X-Request-Id", "r-1")); err != nil {
		t.Fatal(err)
	}
	if err := c.DoJSON(context.Background(), http.MethodGet, srv.URL, nil, nil, httpclient.WithHeader("User-Agent", "mine")); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if reqs[0].Header.Get("User-Agent") != "orders/1.0" || reqs[0].Header.Get("X-Request-Id") != "r-1" {
		t.Fatalf("first request headers %v", reqs[0].Header)
	}
	if reqs[1].Header.Get("User-Agent") != "mine" {
		t.Fatalf("request User-Agent lost: %v", reqs[1].Header)
	}
}
