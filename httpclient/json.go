package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/keel-go/keel/secret"
)

// statusBodyLimit is how much of an unexpected response's body a
// StatusError keeps.
const statusBodyLimit = 4 << 10

// RequestOption changes a request DoJSON builds.
type RequestOption func(*http.Request)

// WithHeader sets a request header, replacing a configured one of the same
// name. For credentials use WithSecretHeader.
func WithHeader(name, value string) RequestOption {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// WithSecretHeader sets a request header whose value is a secret (an
// Authorization or API key value): it reaches only the wire, never a log
// line or an error.
func WithSecretHeader(name string, value secret.String) RequestOption {
	return func(r *http.Request) { r.Header.Set(name, value.Expose()) }
}

// DoJSON sends a JSON request and decodes a JSON response, with Do's
// timeouts and retries.
//
// A non-nil in is encoded with encoding/json before anything is sent and
// sent with Content-Type: application/json; each attempt sends the same
// bytes. A value that cannot be encoded (a channel, a function, NaN or
// ±Inf, a failing MarshalJSON) is a *RequestError matching ErrEncode and no
// request is made: never an empty body. Pass json.RawMessage to send
// bytes that are already JSON; an untyped nil sends no body (a typed nil
// pointer sends null).
//
// The request asks for application/json. A 2xx response's body, read up to
// max_response_bytes as part of the attempt (a connection lost or a timeout
// while reading it is retried), is decoded into out when out is non-nil and
// the body is not empty; an empty body leaves out as it is. Bad JSON, or
// JSON that does not fit out, is a *RequestError matching ErrDecode.
// Any other status that is not retried returns a *StatusError (ErrStatus)
// with the start of the body; retryable statuses that persist return an
// *ExhaustedError.
func (c *Client) DoJSON(ctx context.Context, method, url string, in, out any, opts ...RequestOption) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return &RequestError{Method: method, URL: redactRawURL(url), Err: fmt.Errorf("%w: %T: %w", ErrEncode, in, err)}
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return &RequestError{Method: method, URL: redactRawURL(url), Err: fmt.Errorf("%w: %w", ErrInvalidRequest, unwrapURLError(err))}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for _, opt := range opts {
		if opt != nil {
			opt(req)
		}
	}
	resp, attempts, err := c.do(req, c.cfg.MaxResponseBytes)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		start, _ := io.ReadAll(io.LimitReader(resp.Body, statusBodyLimit))
		discard(resp)
		return &StatusError{Method: req.Method, URL: RedactURL(req.URL), Attempts: attempts, StatusCode: resp.StatusCode, Body: start}
	}
	data, _ := io.ReadAll(resp.Body) // already in memory: do read it
	_ = resp.Body.Close()
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &RequestError{Method: req.Method, URL: RedactURL(req.URL), Attempts: attempts, StatusCode: resp.StatusCode, Err: fmt.Errorf("%w into %T: %w", ErrDecode, out, err)}
	}
	return nil
}
