package httpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// maxRedirects is the number of redirects one attempt follows.
const maxRedirects = 10

// drainLimit is how much of a discarded response body is read so that its
// connection can be reused; a longer body closes the connection.
const drainLimit = 64 << 10

// retryLogInterval rate-limits the retry warnings of one Client.
const retryLogInterval = 5 * time.Second

// Client sends HTTP requests with per-attempt timeouts, bounded retries
// with backoff, tracing and metrics. It is safe for concurrent use; create
// one per service (or per upstream with its own settings) and reuse it, so
// that connections are reused.
type Client struct {
	cfg        Config
	headers    []header
	hc         *http.Client
	ownsRT     bool
	sleep      func(context.Context, time.Duration) error
	now        func() time.Time
	random     func() float64
	logger     *slog.Logger
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
	m          *clientMetrics
	retryLog   *logging.Sampler
}

// Option changes how a Client is built beyond its Config.
type Option func(*options)

type options struct {
	reg        *metrics.Registry
	logger     *slog.Logger
	transport  http.RoundTripper
	tp         trace.TracerProvider
	propagator propagation.TextMapPropagator
	sleep      func(context.Context, time.Duration) error
	now        func() time.Time
	random     func() float64
}

// WithMetrics records the client's metrics in reg instead of
// metrics.Default().
func WithMetrics(reg *metrics.Registry) Option { return func(o *options) { o.reg = reg } }

// WithLogger sends the client's log lines (rate-limited retry warnings) to
// l instead of slog.Default() at the time of each line.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTransport sends requests through rt instead of a transport built
// from the Config (whose connect_timeout, max_idle_conns_per_host and
// max_conns_per_host then do not apply). Use it for a custom TLS
// configuration or a proxy.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithTracerProvider creates the client spans with tp instead of the
// global tracer provider (otel.GetTracerProvider, read per request).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tp = tp }
}

// WithPropagator injects the trace context with p instead of the global
// propagator. See the package documentation for the default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { o.propagator = p }
}

// WithSleep replaces the wait between two attempts. The function must
// return ctx's error as soon as ctx ends, and nil after d. Tests use it to
// record the waits without waiting.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) { o.sleep = sleep }
}

// WithClock replaces the wall clock that Retry-After dates are measured
// against.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRandom replaces the source of jitter: a function returning numbers
// in [0, 1). It must be safe for concurrent use.
func WithRandom(random func() float64) Option { return func(o *options) { o.random = random } }

// New returns a Client for cfg, or the Config.Validate error.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	cfg = cfg.WithDefaults()
	c := &Client{
		cfg:        cfg,
		headers:    cfg.headerList(),
		sleep:      o.sleep,
		now:        o.now,
		random:     o.random,
		logger:     o.logger,
		tp:         o.tp,
		propagator: o.propagator,
		m:          newClientMetrics(metrics.OrDefault(o.reg)),
		retryLog:   logging.Every(retryLogInterval),
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.random == nil {
		c.random = rand.Float64
	}
	rt := o.transport
	if rt == nil {
		rt = newTransport(&cfg)
		c.ownsRT = true
	}
	c.hc = &http.Client{
		Transport:     rt,
		Timeout:       cfg.Timeout,
		CheckRedirect: checkRedirect,
	}
	return c, nil
}

// newTransport clones net/http's default transport (proxy from the
// environment, HTTP/2) with the Config's connection settings.
func newTransport(cfg *Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	t.DialContext = d.DialContext
	t.TLSHandshakeTimeout = cfg.ConnectTimeout
	t.MaxIdleConnsPerHost = cfg.MaxIdleConnsPerHost
	if t.MaxIdleConns < cfg.MaxIdleConnsPerHost {
		t.MaxIdleConns = cfg.MaxIdleConnsPerHost
	}
	t.MaxConnsPerHost = cfg.MaxConnsPerHost
	return t
}

func checkRedirect(_ *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, len(via))
	}
	return nil
}

// sleepContext waits d, or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Config returns the configuration the client runs with, defaults filled
// in. Header values stay secret.
func (c *Client) Config() Config {
	cfg := c.cfg
	return cfg.WithDefaults()
}

// CloseIdleConnections closes the idle keep-alive connections of the
// client's transport. Call it when the client is no longer needed.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Do sends req, whose context bounds the whole call, and retries it on a
// connection error, a timeout of the attempt, 408, 429 and every 5xx (see
// Retryable), waiting with exponential backoff and jitter, or as long as
// the response's Retry-After asks (capped by max_retry_after).
//
// It returns the response of the first attempt that is not retried,
// whatever its status (2xx, 3xx that was not followed, 4xx): the caller
// reads and closes its body. When every attempt failed it returns an
// *ExhaustedError with the last status or cause; when the context ends or
// the next wait would pass its deadline, a *RequestError that matches the
// context's error. On any error the request body is closed.
//
// A request with a body is sent again only from its GetBody (set by
// http.NewRequestWithContext for *bytes.Reader, *bytes.Buffer and
// *strings.Reader bodies), so every attempt sends the same bytes; a body
// without GetBody fails with ErrBodyNotReplayable before anything is sent,
// unless max_attempts is 1. Headers the request sets win over the
// configured ones.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	resp, _, err := c.do(req, 0)
	return resp, err
}

// do is Do that also reports the number of attempts made. With readLimit
// above 0 it reads a final 2xx response's body (up to readLimit bytes) as
// part of the attempt, so that a connection failure or timeout while
// reading is retried like one before the headers; the returned body is
// then in memory.
func (c *Client) do(req *http.Request, readLimit int64) (*http.Response, int, error) {
	if req == nil {
		return nil, 0, &RequestError{Err: fmt.Errorf("%w: nil request", ErrInvalidRequest)}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	fail := func(attempts, status int, err error) (*http.Response, int, error) {
		if hasBody && attempts == 0 {
			_ = req.Body.Close()
		}
		return nil, attempts, &RequestError{Method: req.Method, URL: RedactURL(req.URL), Attempts: attempts, StatusCode: status, Err: err}
	}
	if err := c.checkRequest(req); err != nil {
		return fail(0, 0, err)
	}
	if hasBody && req.GetBody == nil && c.cfg.MaxAttempts > 1 {
		return fail(0, 0, ErrBodyNotReplayable)
	}
	ctx := req.Context()
	status := 0
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return fail(attempt-1, status, context.Cause(ctx))
		}
		var body io.ReadCloser
		if hasBody {
			if attempt == 1 {
				body = req.Body
			} else {
				b, err := req.GetBody()
				if err != nil {
					return fail(attempt-1, status, fmt.Errorf("%w: %w", errGetBody, err))
				}
				body = b
			}
		}
		resp, err := c.attempt(ctx, req, body, attempt)
		attemptStatus := 0
		if err == nil {
			attemptStatus = resp.StatusCode
			status = attemptStatus
		}
		reason, retry := "", false
		if err == nil {
			if reason, retry = statusReason(resp.StatusCode); !retry {
				if readLimit <= 0 || resp.StatusCode/100 != 2 {
					return resp, attempt, nil
				}
				if err = readBody(resp, readLimit); err == nil {
					return resp, attempt, nil
				}
				resp = nil // its body failed part way: retry it like a lost connection
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				// The caller's context ended: no retry, whatever the error.
				return fail(attempt, status, context.Cause(ctx))
			}
			err = unwrapURLError(err)
			if reason, retry = errorReason(err); !retry {
				return fail(attempt, status, err)
			}
		}
		if attempt >= c.cfg.MaxAttempts {
			discard(resp)
			return nil, attempt, &ExhaustedError{Method: req.Method, URL: RedactURL(req.URL), Attempts: attempt, StatusCode: attemptStatus, Err: err}
		}
		wait, fromServer := c.wait(attempt, resp)
		discard(resp)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return fail(attempt, status, fmt.Errorf("%w: the next attempt would start in %s, after the context deadline", context.DeadlineExceeded, wait))
		}
		c.logRetry(ctx, req, attempt, reason, status, err, wait, fromServer)
		if err := c.sleep(ctx, wait); err != nil {
			return fail(attempt, status, err)
		}
		c.m.retries(reason).Inc()
	}
}

// readBody replaces resp's body by its content read into memory, at most
// limit bytes. It closes the original body.
func readBody(resp *http.Response, limit int64) error {
	defer resp.Body.Close()
	if resp.ContentLength > limit {
		return fmt.Errorf("%w: Content-Length %d is more than http_client.max_response_bytes %d", ErrResponseTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return err
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%w: more than http_client.max_response_bytes %d", ErrResponseTooLarge, limit)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return nil
}

// checkRequest refuses a request that cannot be sent at all.
func (c *Client) checkRequest(req *http.Request) error {
	if req.URL == nil {
		return fmt.Errorf("%w: no URL", ErrInvalidRequest)
	}
	if !c.ownsRT {
		return nil // a custom transport may speak other schemes
	}
	switch req.URL.Scheme {
	case "http", "https":
	default:
		return fmt.Errorf("%w: scheme %q: use http or https", ErrInvalidRequest, req.URL.Scheme)
	}
	if req.URL.Host == "" {
		return fmt.Errorf("%w: the URL has no host", ErrInvalidRequest)
	}
	return nil
}

// wait returns the pause before the next attempt: what Retry-After asks,
// capped, or the jittered backoff.
func (c *Client) wait(attempt int, resp *http.Response) (time.Duration, bool) {
	if resp != nil {
		if v := resp.Header.Get("Retry-After"); v != "" {
			if d, ok := ParseRetryAfter(v, c.now()); ok {
				return min(d, c.cfg.MaxRetryAfter), true
			}
		}
	}
	return backoff(&c.cfg, attempt, c.random()), false
}

// attempt sends one try of req with body, inside a client span whose
// context it injects into the headers, and records its metrics.
func (c *Client) attempt(ctx context.Context, req *http.Request, body io.ReadCloser, attempt int) (*http.Response, error) {
	ctx, span := c.startSpan(ctx, req, attempt)
	areq := req.Clone(ctx)
	if body != nil {
		areq.Body = body
	}
	if areq.Header == nil {
		areq.Header = make(http.Header, len(c.headers)+2)
	}
	for _, h := range c.headers {
		if _, set := areq.Header[h.name]; !set {
			areq.Header[h.name] = []string{h.value.Expose()}
		}
	}
	if _, set := areq.Header["User-Agent"]; !set {
		areq.Header["User-Agent"] = []string{c.cfg.UserAgent}
	}
	c.inject(ctx, areq.Header)
	start := time.Now()
	resp, err := c.hc.Do(areq)
	c.m.observe(req.Method, resp, time.Since(start))
	endSpan(span, resp, err)
	return resp, err
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text repeats
// the full URL, query and user name included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// discard reads a little of a response body that will not be used and
// closes it, so that its connection can be reused.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}

// logRetry writes a rate-limited warning about a retry. Only the redacted
// URL and error text reach the line; headers never do.
func (c *Client) logRetry(ctx context.Context, req *http.Request, attempt int, reason string, status int, err error, wait time.Duration, fromServer bool) {
	ok, suppressed := c.retryLog.Allow()
	if !ok {
		return
	}
	l := c.logger
	if l == nil {
		l = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("method", req.Method),
		slog.String("url", RedactURL(req.URL)),
		slog.Int("attempt", attempt),
		slog.Int("max_attempts", c.cfg.MaxAttempts),
		slog.String("reason", reason),
		slog.Duration("wait", wait),
		slog.Bool("retry_after", fromServer),
	}
	if status != 0 {
		attrs = append(attrs, slog.Int("status", status))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", logging.MaskString(err.Error())))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Uint64("suppressed", suppressed))
	}
	l.LogAttrs(ctx, slog.LevelWarn, "http request failed, retrying", attrs...)
}
