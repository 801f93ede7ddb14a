package httpclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/keel-go/keel/logging"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrExhausted is matched by an *ExhaustedError: every allowed attempt
	// failed with a retryable outcome.
	ErrExhausted = errors.New("httpclient: attempts exhausted")
	// ErrStatus is matched by a *StatusError: DoJSON got a response
	// outside 2xx that is not retried.
	ErrStatus = errors.New("httpclient: unexpected status")
	// ErrEncode reports a request value that cannot be encoded as JSON
	// (a channel, a function, NaN, a failing MarshalJSON). Nothing was
	// sent.
	ErrEncode = errors.New("httpclient: cannot encode the request body")
	// ErrDecode reports a 2xx response body that is not JSON, or not JSON
	// that fits the output value.
	ErrDecode = errors.New("httpclient: cannot decode the response body")
	// ErrResponseTooLarge reports a response body longer than
	// max_response_bytes (DoJSON only).
	ErrResponseTooLarge = errors.New("httpclient: response body too large")
	// ErrBodyNotReplayable reports a request whose body could not be sent
	// again on a retry: it has no GetBody. Build it with
	// http.NewRequestWithContext and a *bytes.Reader, *bytes.Buffer or
	// *strings.Reader (which set GetBody), set GetBody, or set
	// max_attempts to 1. Nothing was sent.
	ErrBodyNotReplayable = errors.New("httpclient: request body cannot be replayed for a retry")
	// ErrInvalidRequest reports a request that cannot be sent at all:
	// no URL, no host, an unsupported scheme, an invalid method or URL.
	ErrInvalidRequest = errors.New("httpclient: invalid request")
	// ErrTooManyRedirects reports a request that was redirected more than
	// ten times in one attempt. It is not retried.
	ErrTooManyRedirects = errors.New("httpclient: too many redirects")
	// ErrInvalidConfig is matched by every Config.Validate error.
	ErrInvalidConfig = errors.New("httpclient: invalid config")
)

// ExhaustedError reports a request that failed on each of its attempts with
// a retryable outcome (a connection error, a timeout, 408, 429 or a 5xx)
// until max_attempts ran out. It matches ErrExhausted and, when the last
// attempt got no response, its cause. Its text never holds a user name,
// password or sensitive query value of the URL.
type ExhaustedError struct {
	// Method is the request method.
	Method string
	// URL is the request URL without user info, fragment and sensitive
	// query values (see RedactURL).
	URL string
	// Attempts is the number of attempts made.
	Attempts int
	// StatusCode is the status of the last attempt's response, or 0 when
	// it got none (see Err).
	StatusCode int
	// Err is the cause of the last attempt's failure when that was not its
	// status: no response, or (DoJSON) a body that broke off while being
	// read. Nil when the status alone failed it.
	Err error
}

// Error implements error.
func (e *ExhaustedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "httpclient: %s %s: gave up after %d attempt(s)", e.Method, e.URL, e.Attempts)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ", last status %s", statusText(e.StatusCode))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ", last error: %s", logging.MaskString(e.Err.Error()))
	}
	b.WriteString("; the server or the network kept failing: check it, or raise http_client.max_attempts")
	return b.String()
}

// Unwrap returns ErrExhausted and the last cause, if any.
func (e *ExhaustedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrExhausted}
	}
	return []error{ErrExhausted, e.Err}
}

// RequestError reports a request that failed for a reason that is not
// retried: the context ended, the next wait would pass the context's
// deadline, a transport error that cannot heal (a bad certificate, too many
// redirects), a body that cannot be encoded or replayed, or a response body
// that cannot be read or decoded. It unwraps to the cause; its text never
// holds a user name, password or sensitive query value of the URL.
type RequestError struct {
	// Method is the request method.
	Method string
	// URL is the request URL, redacted as in ExhaustedError.
	URL string
	// Attempts is the number of attempts sent (0 when nothing was sent).
	Attempts int
	// StatusCode is the status of the last response seen, or 0.
	StatusCode int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *RequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "httpclient: %s %s", e.Method, e.URL)
	if e.Attempts > 0 {
		fmt.Fprintf(&b, " (attempt %d", e.Attempts)
		if e.StatusCode != 0 {
			fmt.Fprintf(&b, ", last status %s", statusText(e.StatusCode))
		}
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(logging.MaskString(e.Err.Error()))
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// StatusError reports a response outside 2xx that DoJSON does not retry
// (400, 401, 404, ...). It matches ErrStatus.
type StatusError struct {
	// Method is the request method.
	Method string
	// URL is the request URL, redacted as in ExhaustedError.
	URL string
	// Attempts is the number of attempts made.
	Attempts int
	// StatusCode is the response status.
	StatusCode int
	// Body holds up to the first 4 KiB of the response body, for the
	// caller to inspect. It is never part of Error().
	Body []byte
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("httpclient: %s %s: status %s after %d attempt(s)", e.Method, e.URL, statusText(e.StatusCode), e.Attempts)
}

// Is matches ErrStatus.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// ConfigError is one invalid key: its full name and what to do.
type ConfigError struct {
	// Key is the dotted key, e.g. "http_client.max_attempts".
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Key + " " + e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// statusText renders "503 Service Unavailable", or the bare code.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}
