package dlq

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/secret"
)

// HTTPOptions wires an HTTPBackend.
type HTTPOptions struct {
	// Client sends the requests. Nil means a client with the configured
	// timeout.
	Client *http.Client
}

// HTTPBackend POSTs each batch as one NDJSON body
// (Content-Type: application/x-ndjson), one entry per line. Any status
// other than 2xx is an error for the whole batch.
type HTTPBackend struct {
	endpoint string
	timeout  time.Duration
	headers  map[string]secret.String
	client   *http.Client
	buf      bytes.Buffer
}

// NewHTTPBackend returns the backend.
func NewHTTPBackend(cfg HTTPConfig, opts HTTPOptions) (*HTTPBackend, error) {
	cfg.Enabled = true
	if err := (Config{HTTP: cfg}).Validate(); err != nil {
		return nil, err
	}
	b := &HTTPBackend{endpoint: cfg.Endpoint, timeout: cfg.Timeout, headers: cfg.Headers, client: opts.Client}
	if b.timeout == 0 {
		b.timeout = DefaultHTTPTimeout
	}
	if b.client == nil {
		b.client = &http.Client{Timeout: b.timeout}
	}
	return b, nil
}

// Name returns "http".
func (b *HTTPBackend) Name() string { return BackendHTTP }

// Write POSTs the batch.
func (b *HTTPBackend) Write(ctx context.Context, entries []Encoded) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	b.buf.Reset()
	for i := range entries {
		b.buf.Write(entries[i].JSON)
		b.buf.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint, bytes.NewReader(b.buf.Bytes()))
	if err != nil {
		return &BackendError{Backend: BackendHTTP, Op: "write", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range b.headers {
		req.Header.Set(k, v.Expose())
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return &BackendError{Backend: BackendHTTP, Op: "write", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return &BackendError{Backend: BackendHTTP, Op: "write",
		Err: fmt.Errorf("POST %s: status %d: %s", logging.MaskString(b.endpoint), resp.StatusCode, logging.MaskString(string(bytes.TrimSpace(snippet))))}
}

// Close releases idle connections.
func (b *HTTPBackend) Close(context.Context) error {
	b.client.CloseIdleConnections()
	return nil
}
