package httpclient

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/keel-go/keel/secret"
)

// ConfigKey is the configuration section a Client reads: http_client.
const ConfigKey = "http_client"

// Defaults of Config.
const (
	// DefaultTimeout bounds one attempt: connecting, sending, waiting for
	// the response and reading its body.
	DefaultTimeout = 30 * time.Second
	// DefaultConnectTimeout bounds dialling and the TLS handshake.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxAttempts is how many times a request is sent at most:
	// the first attempt and three retries.
	DefaultMaxAttempts = 4
	// MaxMaxAttempts is the largest accepted max_attempts.
	MaxMaxAttempts = 100
	// DefaultInitialBackoff is the wait before the first retry; it doubles
	// for each further retry up to the max backoff.
	DefaultInitialBackoff = 100 * time.Millisecond
	// DefaultMaxBackoff caps the computed wait between two attempts.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxRetryAfter caps the wait a server asks for with
	// Retry-After.
	DefaultMaxRetryAfter = 60 * time.Second
	// DefaultMaxResponseBytes bounds the response body DoJSON reads.
	DefaultMaxResponseBytes = 32 << 20
	// DefaultMaxIdleConnsPerHost is the number of idle keep-alive
	// connections kept per host (net/http keeps only 2).
	DefaultMaxIdleConnsPerHost = 32
	// DefaultUserAgent is sent when a request names no User-Agent.
	DefaultUserAgent = "keel-httpclient"
)

// Config configures a Client; it is the http_client section. The zero value
// is valid and means the defaults above:
//
//	http_client:
//	  timeout: 30s                 # per attempt, body included
//	  connect_timeout: 10s         # dial and TLS handshake
//	  max_attempts: 4              # 1 disables retries
//	  initial_backoff: 100ms       # doubled per retry, with jitter
//	  max_backoff: 30s
//	  max_retry_after: 60s         # cap on a server's Retry-After
//	  max_response_bytes: 33554432 # bound on what DoJSON reads
//	  max_idle_conns_per_host: 32
//	  max_conns_per_host: 0        # 0: unlimited
//	  user_agent: keel-httpclient
//	  headers:                     # sent on every request, values secret
//	    Authorization: "Bearer ..."
//
// Durations take Go syntax ("1m30s") or a bare number of seconds.
type Config struct {
	// Timeout bounds one attempt, from dialling to the end of the
	// response body. The caller's context bounds the whole call, retries
	// and waits included. 0 means DefaultTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
	// ConnectTimeout bounds dialling and the TLS handshake of a new
	// connection. 0 means DefaultConnectTimeout. It has no effect with
	// WithTransport.
	ConnectTimeout time.Duration `koanf:"connect_timeout" json:"connect_timeout" yaml:"connect_timeout"`
	// MaxAttempts is how many times one request is sent at most, the
	// first attempt included (1 disables retries, up to MaxMaxAttempts).
	// 0 means DefaultMaxAttempts.
	MaxAttempts int `koanf:"max_attempts" json:"max_attempts" yaml:"max_attempts"`
	// InitialBackoff is the base wait before the first retry, doubled for
	// each further one up to MaxBackoff; the wait actually taken is drawn
	// between half and all of it. 0 means DefaultInitialBackoff.
	InitialBackoff time.Duration `koanf:"initial_backoff" json:"initial_backoff" yaml:"initial_backoff"`
	// MaxBackoff caps the computed wait. 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration `koanf:"max_backoff" json:"max_backoff" yaml:"max_backoff"`
	// MaxRetryAfter caps the wait a Retry-After header asks for; a longer
	// request waits MaxRetryAfter. 0 means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration `koanf:"max_retry_after" json:"max_retry_after" yaml:"max_retry_after"`
	// MaxResponseBytes bounds the body DoJSON reads and decodes; a longer
	// body fails with ErrResponseTooLarge. Do hands the body over
	// unbounded. 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64 `koanf:"max_response_bytes" json:"max_response_bytes" yaml:"max_response_bytes"`
	// MaxIdleConnsPerHost is the number of idle keep-alive connections
	// kept per host. 0 means DefaultMaxIdleConnsPerHost. It has no effect
	// with WithTransport.
	MaxIdleConnsPerHost int `koanf:"max_idle_conns_per_host" json:"max_idle_conns_per_host" yaml:"max_idle_conns_per_host"`
	// MaxConnsPerHost bounds the connections, busy or idle, to one host;
	// a request beyond it waits for a free connection. 0 means unlimited.
	// It has no effect with WithTransport.
	MaxConnsPerHost int `koanf:"max_conns_per_host" json:"max_conns_per_host" yaml:"max_conns_per_host"`
	// UserAgent is sent when a request sets no User-Agent. Empty means
	// DefaultUserAgent.
	UserAgent string `koanf:"user_agent" json:"user_agent" yaml:"user_agent"`
	// Headers are sent on every request that does not set the same header
	// itself. Every value is a secret: it prints as [REDACTED] in logs,
	// errors and config dumps, and reaches only the wire.
	Headers map[string]secret.String `koanf:"headers" json:"headers" yaml:"headers"`
}

// Validate reports every invalid key of the http_client section, each
// error naming the key (http_client.timeout, ...) and the fix. Every error
// matches ErrInvalidConfig. See ValidateAt.
func (c Config) Validate() error { return c.ValidateAt(ConfigKey) }

// ValidateAt is Validate with the keys under section instead of
// http_client, for owners that embed a Config in their own section
// (ValidateAt("vault.http") names vault.http.timeout). An empty section
// names the bare keys.
func (c Config) ValidateAt(section string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		if section != "" {
			key = section + "." + key
		}
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		def time.Duration
	}{
		{"timeout", c.Timeout, DefaultTimeout},
		{"connect_timeout", c.ConnectTimeout, DefaultConnectTimeout},
		{"initial_backoff", c.InitialBackoff, DefaultInitialBackoff},
		{"max_backoff", c.MaxBackoff, DefaultMaxBackoff},
		{"max_retry_after", c.MaxRetryAfter, DefaultMaxRetryAfter},
	} {
		if d.v < 0 {
			bad(d.key, "is %s; it must be positive (leave it unset for %s)", d.v, d.def)
		}
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > MaxMaxAttempts {
		bad("max_attempts", "is %d; use 1 to %d (1 disables retries; leave it unset for %d)", c.MaxAttempts, MaxMaxAttempts, DefaultMaxAttempts)
	}
	if c.InitialBackoff > 0 && c.MaxBackoff >= 0 {
		if mb := c.WithDefaults().MaxBackoff; c.InitialBackoff > mb {
			bad("initial_backoff", "is %s, more than max_backoff %s; lower it or raise max_backoff", c.InitialBackoff, mb)
		}
	}
	if c.MaxResponseBytes < 0 {
		bad("max_response_bytes", "is %d; it must be positive (leave it unset for %d)", c.MaxResponseBytes, DefaultMaxResponseBytes)
	}
	if c.MaxIdleConnsPerHost < 0 {
		bad("max_idle_conns_per_host", "is %d; it must be positive (leave it unset for %d)", c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	}
	if c.MaxConnsPerHost < 0 {
		bad("max_conns_per_host", "is %d; use a positive number, or 0 for no limit", c.MaxConnsPerHost)
	}
	if c.UserAgent != "" && !httpguts.ValidHeaderFieldValue(c.UserAgent) {
		bad("user_agent", "holds a control character (CR, LF, ...); use printable text")
	}
	seen := make(map[string]string, len(c.Headers))
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		if !httpguts.ValidHeaderFieldName(name) {
			bad("headers", "has the name %q, which is not a valid header name; use letters, digits and -", name)
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if prev, dup := seen[canon]; dup {
			bad("headers."+name, "names the same header as headers.%s (names ignore case); keep one", prev)
			continue
		}
		seen[canon] = name
		// The value is secret: say which header, never what it holds.
		if v := c.Headers[name]; !httpguts.ValidHeaderFieldValue(v.Expose()) {
			bad("headers."+name, "holds a control character (CR, LF, ...); remove it from the value")
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field replaced by its default, as
// a Client uses it. Headers is copied.
func (c Config) WithDefaults() Config {
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	dur(&c.Timeout, DefaultTimeout)
	dur(&c.ConnectTimeout, DefaultConnectTimeout)
	dur(&c.InitialBackoff, DefaultInitialBackoff)
	dur(&c.MaxBackoff, DefaultMaxBackoff)
	dur(&c.MaxRetryAfter, DefaultMaxRetryAfter)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if c.MaxConnsPerHost < 0 {
		c.MaxConnsPerHost = 0
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	c.Headers = maps.Clone(c.Headers)
	return c
}

// headerList returns the configured headers with canonical names, sorted,
// so that they are set in a stable order.
func (c Config) headerList() []header {
	out := make([]header, 0, len(c.Headers))
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		out = append(out, header{name: http.CanonicalHeaderKey(name), value: c.Headers[name]})
	}
	return out
}

// header is one default header; the value stays wrapped until it is set
// on an outgoing request.
type header struct {
	name  string
	value secret.String
}
