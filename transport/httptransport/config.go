package httptransport

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
)

// Section is the configuration section this package reads.
const Section = "transport.http"

// name is the backend name in errors, logs and Name.
const name = "http"

// Defaults of a zero Config.
const (
	// DefaultListen is the Receiver's listen address.
	DefaultListen = ":8080"
	// DefaultPath is the Receiver's ingest endpoint.
	DefaultPath = "/ingest"
	// DefaultMaxBodyBytes is the largest request body the Receiver
	// accepts: 16 MiB.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultQueueRecords is how many accepted records the Receiver holds
	// before Recv takes them.
	DefaultQueueRecords = 10000
	// DefaultRetryAfter is the Retry-After the Receiver sends with 503.
	DefaultRetryAfter = time.Second
	// DefaultAckTimeout is how long a commit-mode request waits for its
	// records to be committed.
	DefaultAckTimeout = 30 * time.Second
	// DefaultTimeout bounds one Sender request.
	DefaultTimeout = 30 * time.Second
	// readHeaderTimeout bounds reading request headers (slow clients).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes idle keep-alive connections.
	idleTimeout = 60 * time.Second
)

// Framing is how a request body holds records.
type Framing string

const (
	// NDJSON is one record per line that is not empty or whitespace only
	// ("\r\n" accepted: one trailing CR is stripped, nothing else is
	// trimmed); Content-Type application/x-ndjson. The default.
	NDJSON Framing = "ndjson"
	// JSONArray is a top-level JSON array, one record per element;
	// Content-Type application/json.
	JSONArray Framing = "json_array"
	// Single is the whole body as one record. A Sender posts one request
	// per record.
	Single Framing = "single"
)

// AckMode is when the Receiver answers a request.
type AckMode string

const (
	// AckCommit answers 200 only after every record of the request was
	// committed through Receiver.Commit, and 503 when that cannot happen
	// (the receiver closes, AckTimeout passes), so the client retries:
	// at-least-once end to end. The default.
	AckCommit AckMode = "commit"
	// AckEnqueue answers 200 as soon as the records are queued in memory:
	// records queued but not yet delivered are lost if the process stops
	// (at-most-once across a crash).
	AckEnqueue AckMode = "enqueue"
)

// Config configures a Receiver or a Sender (config section
// "transport.http"). The zero value is a valid Receiver configuration; a
// Sender needs URL.
type Config struct {
	// Framing is the body format of both sides: "ndjson" (default),
	// "json_array" or "single".
	Framing Framing `koanf:"framing"`

	// Listen is the Receiver's listen address, host:port. Default ":8080";
	// port 0 picks a free port (see Receiver.Addr).
	Listen string `koanf:"listen"`
	// Path is the Receiver's POST endpoint. Default "/ingest".
	Path string `koanf:"path"`
	// MaxBodyBytes caps a request body; a larger one is answered 413
	// before it is buffered. Default 16 MiB.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// AckMode is "commit" (default) or "enqueue"; see AckMode.
	AckMode AckMode `koanf:"ack_mode"`
	// AckTimeout is how long a commit-mode request waits for its records
	// to be committed before it is answered 503. Default 30 s.
	AckTimeout time.Duration `koanf:"ack_timeout"`
	// QueueRecords bounds the records accepted but not yet taken by Recv.
	// A request whose records do not fit is answered 503 with Retry-After,
	// except that an empty queue takes any request. Default 10 000.
	QueueRecords int `koanf:"queue_records"`
	// RetryAfter is sent as Retry-After (rounded up to whole seconds) with
	// every 503. Default 1 s.
	RetryAfter time.Duration `koanf:"retry_after"`
	// RecvTimeout bounds how long Recv waits for the first record before
	// it returns an empty batch and a nil error. Zero waits until a record
	// arrives, ctx is done or the receiver is closed.
	RecvTimeout time.Duration `koanf:"recv_timeout"`
	// KeyHeader names a request header whose value becomes the key of
	// every record of the request. Empty (default) sets no key.
	KeyHeader string `koanf:"key_header"`
	// CopyHeaders lists request headers copied to every record of the
	// request, under the name as written here, one record header per
	// value. The trace headers (traceparent, tracestate, baggage and those
	// of the global propagator) are copied whether listed or not.
	CopyHeaders []string `koanf:"copy_headers"`

	// URL is where the Sender posts. Required for a Sender.
	URL string `koanf:"url"`
	// Timeout bounds one Sender request, response included. Default 30 s.
	Timeout time.Duration `koanf:"timeout"`
	// Headers are static request headers the Sender adds. Content-Type is
	// set by Framing, Authorization by BearerToken and the trace headers
	// by the send's context, overriding these.
	Headers map[string]string `koanf:"headers"`
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	// It is never logged nor put in an error.
	BearerToken secret.String `koanf:"bearer_token"`

	// Metrics receives the keel_http_* metrics; nil means
	// metrics.Default().
	Metrics *metrics.Registry `koanf:"-"`
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger `koanf:"-"`
}

// Validate reports the first invalid setting as a transport.ErrConfig
// error that names the key and the fix. URL is checked by NewSender only.
func (c Config) Validate() error {
	var msg string
	switch {
	case c.Framing != "" && c.Framing != NDJSON && c.Framing != JSONArray && c.Framing != Single:
		msg = fmt.Sprintf("%s.framing is %q: use ndjson, json_array or single", Section, string(c.Framing))
	case c.Path != "" && !strings.HasPrefix(c.Path, "/"):
		msg = fmt.Sprintf("%s.path is %q: use an absolute path such as %s", Section, c.Path, DefaultPath)
	case c.MaxBodyBytes < 0:
		msg = fmt.Sprintf("%s.max_body_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.MaxBodyBytes, DefaultMaxBodyBytes)
	case c.AckMode != "" && c.AckMode != AckCommit && c.AckMode != AckEnqueue:
		msg = fmt.Sprintf("%s.ack_mode is %q: use commit or enqueue", Section, string(c.AckMode))
	case c.AckTimeout < 0:
		msg = fmt.Sprintf("%s.ack_timeout is %s: use a positive duration, or 0 for the default %s", Section, c.AckTimeout, DefaultAckTimeout)
	case c.QueueRecords < 0:
		msg = fmt.Sprintf("%s.queue_records is %d: use a positive count, or 0 for the default %d", Section, c.QueueRecords, DefaultQueueRecords)
	case c.RetryAfter < 0:
		msg = fmt.Sprintf("%s.retry_after is %s: use a positive duration, or 0 for the default %s", Section, c.RetryAfter, DefaultRetryAfter)
	case c.RecvTimeout < 0:
		msg = fmt.Sprintf("%s.recv_timeout is %s: use a positive duration, or 0 to wait for the first record", Section, c.RecvTimeout)
	case c.KeyHeader != "" && !validHeaderName(c.KeyHeader):
		msg = fmt.Sprintf("%s.key_header is %q: use an HTTP header name such as X-Record-Key", Section, c.KeyHeader)
	case c.Timeout < 0:
		msg = fmt.Sprintf("%s.timeout is %s: use a positive duration, or 0 for the default %s", Section, c.Timeout, DefaultTimeout)
	case badHeader(c.CopyHeaders) >= 0:
		msg = fmt.Sprintf("%s.copy_headers holds %q: list HTTP header names such as X-Tenant", Section, c.CopyHeaders[badHeader(c.CopyHeaders)])
	default:
		for h := range c.Headers {
			if !validHeaderName(h) {
				return configError(fmt.Sprintf("%s.headers has the key %q: use HTTP header names such as X-Source", Section, h))
			}
		}
		return nil
	}
	return configError(msg)
}

// validateURL checks the Sender's URL.
func (c Config) validateURL() error {
	if c.URL == "" {
		return configError(Section + ".url is empty: set it to the endpoint a sender posts to, such as http://collector:8080/ingest")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configError(Section + ".url is not an http:// or https:// URL with a host: set it to the endpoint a sender posts to")
	}
	return nil
}

func configError(msg string) error {
	return transport.NewError(transport.ErrConfig, name, "config", errors.New(msg))
}

// badHeader returns the index of the first entry of names that is not a
// header name, or -1.
func badHeader(names []string) int {
	for i, n := range names {
		if !validHeaderName(n) {
			return i
		}
	}
	return -1
}

// validHeaderName reports a token usable as an HTTP header name.
func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// WithDefaults returns c with every zero setting replaced by the default
// it stands for (framing ndjson, listen :8080, path /ingest, 16 MiB
// bodies, ack_mode commit, 30 s ack_timeout and timeout, 10 000 queued
// records, 1 s retry_after). It does not validate c and leaves Metrics
// and Logger as they are.
func (c Config) WithDefaults() Config {
	c.Framing = cmp.Or(c.Framing, NDJSON)
	c.Listen = cmp.Or(c.Listen, DefaultListen)
	c.Path = cmp.Or(c.Path, DefaultPath)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	c.AckMode = cmp.Or(c.AckMode, AckCommit)
	c.AckTimeout = cmp.Or(c.AckTimeout, DefaultAckTimeout)
	c.QueueRecords = cmp.Or(c.QueueRecords, DefaultQueueRecords)
	c.RetryAfter = cmp.Or(c.RetryAfter, DefaultRetryAfter)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	return c
}

// withDefaults returns the config with defaults applied, or a
// transport.ErrConfig error naming the bad key.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c = c.WithDefaults()
	if c.KeyHeader != "" {
		c.KeyHeader = textproto.CanonicalMIMEHeaderKey(c.KeyHeader)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Metrics = metrics.OrDefault(c.Metrics)
	return c, nil
}

// retryAfterSeconds is d rounded up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
