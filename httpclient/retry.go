package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Retry reasons: the values of the reason label of
// keel_http_client_retries_total.
const (
	// ReasonConnection: the attempt could not connect, or the connection
	// was refused, reset or closed before a complete response.
	ReasonConnection = "connection"
	// ReasonTimeout: the attempt ran out of time (timeout, connect_timeout).
	ReasonTimeout = "timeout"
	// Reason408: the server answered 408 Request Timeout.
	Reason408 = "408"
	// Reason429: the server answered 429 Too Many Requests.
	Reason429 = "429"
	// Reason5xx: the server answered a 5xx status.
	Reason5xx = "5xx"
)

// Retryable reports whether a response status is retried: 408 Request
// Timeout, 429 Too Many Requests and every 5xx, 501 Not Implemented and 505
// HTTP Version Not Supported included (a server error may come from a
// proxy or an instance being replaced, and max_attempts bounds the cost
// when it does not go away). Everything else (1xx-4xx) is final.
func Retryable(status int) bool {
	_, ok := statusReason(status)
	return ok
}

// statusReason returns the retry reason of a status, and whether it is
// retried at all.
func statusReason(status int) (string, bool) {
	switch {
	case status == http.StatusRequestTimeout:
		return Reason408, true
	case status == http.StatusTooManyRequests:
		return Reason429, true
	case status >= 500 && status <= 599:
		return Reason5xx, true
	}
	return "", false
}

// errorReason classifies an attempt that got no (complete) response. The
// caller has already ruled out its own context ending. Certificate and TLS
// protocol failures, too many redirects, a body that could not be produced
// and a response body over the size limit are permanent; every other error
// is a timeout or a connection failure (refused, reset, closed early, DNS)
// and is retried.
func errorReason(err error) (string, bool) {
	var (
		certVerify  *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalidCert x509.CertificateInvalidError
		recordHdr   tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, ErrTooManyRedirects), errors.Is(err, errGetBody), errors.Is(err, ErrResponseTooLarge):
		return "", false
	case errors.As(err, &certVerify), errors.As(err, &unknownAuth),
		errors.As(err, &hostname), errors.As(err, &invalidCert), errors.As(err, &recordHdr):
		return "", false
	case isTimeout(err):
		return ReasonTimeout, true
	}
	return ReasonConnection, true
}

// isTimeout reports an attempt that ran out of time (the per-attempt
// timeout, a dial or TLS handshake timeout).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errGetBody marks a failure of the request's GetBody, which is not
// retried.
var errGetBody = errors.New("GetBody failed")

// ParseRetryAfter reads a Retry-After header value: a number of seconds
// ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", and the two
// obsolete date forms), which is taken relative to now. A date in the past
// means no wait. It reports false for an empty or malformed value, and
// never returns a negative duration; a number of seconds too large to
// represent returns the largest duration.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// backoff returns the wait before retry number n (1 for the first retry):
// InitialBackoff·2^(n-1) capped at MaxBackoff, then drawn between half
// and all of it with r in [0, 1) ("equal jitter"), so that clients that
// failed together spread out but never retry at once.
func backoff(cfg *Config, n int, r float64) time.Duration {
	d := cfg.InitialBackoff
	for i := 1; i < n && d < cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > cfg.MaxBackoff || d <= 0 {
		d = cfg.MaxBackoff
	}
	if r < 0 {
		r = 0
	} else if r > 1 {
		r = 1
	}
	half := d / 2
	return half + time.Duration(r*float64(d-half))
}
