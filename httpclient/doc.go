// Package httpclient is keel's outbound HTTP client: per-attempt timeouts,
// bounded retries with exponential backoff and jitter that honour
// Retry-After, request bodies that are encoded up front and replayed
// byte for byte, a client span per attempt with W3C trace context
// propagation, bounded Prometheus metrics and errors that never carry a
// secret.
//
// # Start
//
//	var cfg httpclient.Config // zero value: the defaults
//	if err := conf.Section(httpclient.ConfigKey, &cfg); err != nil {
//		return err
//	}
//	client, err := httpclient.New(cfg) // Validate errors name the key
//	if err != nil {
//		return err
//	}
//	defer client.CloseIdleConnections()
//
//	var out Order
//	err = client.DoJSON(ctx, http.MethodPost, "https://orders.internal/v1/orders", Order{ID: "o-1"}, &out)
//
// Do sends any *http.Request with the same policy and returns the
// *http.Response like net/http's Client.Do.
//
// # Retries
//
// An attempt is retried when it fails to connect, is reset or closed early,
// runs out of its timeout, or gets 408 Request Timeout, 429 Too Many
// Requests or any 5xx status, 501 and 505 included. Every other status (1xx
// to 4xx) is the answer and is returned at once, as are certificate errors
// and too many redirects. Every method is retried, POST included: make
// non-idempotent calls safe to repeat, with an idempotency key for example,
// or set max_attempts to 1.
//
// The wait before retry n is initial_backoff·2^(n-1), capped at
// max_backoff, drawn between half and all of that value. A retried response
// with a Retry-After header (a number of seconds or an HTTP-date) sets the
// wait instead, capped at max_retry_after. At most max_attempts attempts are
// made; then Do returns an *ExhaustedError naming the method, the URL, the
// attempt count and the last status or error.
//
// The caller's context bounds the whole call: when it ends, the attempt in
// flight or the wait is cut short and no further attempt is made; when the
// next wait would end after the context's deadline, Do gives up at once with
// an error matching context.DeadlineExceeded.
//
// # Bodies
//
// A request body must be replayable, so that a retry sends exactly what the
// first attempt sent: DoJSON encodes the value to bytes before anything is
// sent (a value that cannot be encoded is ErrEncode and no request is made,
// never an empty body), and Do sends later attempts from the request's
// GetBody, refusing a body without one with ErrBodyNotReplayable unless
// retries are off.
//
// # Timeouts
//
// timeout bounds each attempt from dialling to the end of the response body
// (for Do, while the caller reads it); connect_timeout bounds dialling and
// the TLS handshake. DoJSON reads the body inside the attempt, so a
// connection lost or a timeout while reading a body is retried too.
//
// # Tracing
//
// Each attempt is a client span, as the OpenTelemetry HTTP conventions ask
// for resends. It is created with the global tracer provider as a child of
// the span in the request's context, named after the method, and carries
// http.request.method, url.full (redacted), server.address, server.port,
// http.request.resend_count on retries, http.response.status_code and
// error.type; it ends when the response headers arrive, and a status from
// 400 or a failure marks it as an error. Its context is injected into the
// request headers through the global propagator; when that writes no
// traceparent (none installed yet, or one of another format) the W3C
// TraceContext propagator adds it, so traceparent is sent whenever the
// context holds a span. WithTracerProvider and WithPropagator replace the
// globals (an explicit propagator is used as it is).
//
// # Metrics
//
// Per attempt, with bounded labels (method: the nine standard methods or
// _OTHER; code: 1xx to 5xx, or error when no response arrived):
//
//	keel_http_client_requests_total{method,code}
//	keel_http_client_request_duration_seconds{method}   time to response headers
//	keel_http_client_retries_total{reason}              connection, timeout, 408, 429, 5xx
//
// # Secrets
//
// Configured header values are secret.String, set only on the wire;
// WithSecretHeader does the same per request. Headers are never logged.
// URLs in errors, log lines and spans go through RedactURL: no user name or
// password, no fragment, and sensitive query values (token, key, sig,
// password, ...) replaced by [REDACTED]; error texts go through
// logging.MaskString. Retry warnings are rate-limited to one per five
// seconds per Client.
package httpclient
