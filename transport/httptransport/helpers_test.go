package httptransport

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// testConfig returns a receiver config on a free loopback port, with a
// private registry and a silent logger.
func testConfig() Config {
	return Config{
		Listen:  "127.0.0.1:0",
		Metrics: metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	}
}

func newReceiver(t testing.TB, cfg Config) *Receiver {
	t.Helper()
	r, err := NewReceiver(cfg)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// url returns the ingest URL of r.
func (r *Receiver) url() string { return "http://" + r.Addr() + r.cfg.Path }

// testClient returns an HTTP client whose idle connections are closed at
// the end of the test.
func testClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// reply is an HTTP answer.
type reply struct {
	code   int
	header http.Header
	body   string
	err    error
}

// post sends body to url and returns the answer.
func post(c *http.Client, url, ctype, body string, header http.Header) reply {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// postAsync posts in the background; the answer arrives on the channel.
func postAsync(c *http.Client, url, ctype, body string) <-chan reply {
	ch := make(chan reply, 1)
	go func() { ch <- post(c, url, ctype, body, nil) }()
	return ch
}

func mustStatus(t testing.TB, got reply, want int) {
	t.Helper()
	if got.err != nil {
		t.Fatalf("post: %v", got.err)
	}
	if got.code != want {
		t.Fatalf("status %d (%q), want %d", got.code, got.body, want)
	}
}

func recv(t testing.TB, r *Receiver, l transport.Limits) transport.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := r.Recv(ctx, l)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return b
}

func payloads(b transport.Batch) []string {
	out := make([]string, len(b.Records))
	for i, r := range b.Records {
		out[i] = string(r.Payload)
	}
	return out
}

func tokens(b transport.Batch) []string {
	out := make([]string, len(b.Tokens))
	for i, t := range b.Tokens {
		out[i] = t.String()
	}
	return out
}
