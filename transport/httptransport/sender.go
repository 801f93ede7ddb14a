package httptransport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linebatch"
)

// ErrUnframable is matched by the error of a record the Sender refused
// because its payload cannot be framed in the request body: with
// "ndjson" framing it is blank or contains "\n"; with "json_array" it is
// not one JSON value; with "single" it is empty. Retrying will not help.
var ErrUnframable = errors.New("payload cannot be framed in the request body")

// errorBodyBytes is how much of an error response is quoted in the error.
const errorBodyBytes = 256

// drainBytes is how much of a response is read to reuse its connection.
const drainBytes = 64 << 10

// Sender posts records to Config.URL. It is a transport.Sender and is safe
// for concurrent use.
//
// SendBatch posts the batch as one request framed by Config.Framing
// (with "single", one request per record). The answer decides the error:
//
//   - 2xx: delivered.
//   - 429, 502, 503, 504: transport.ErrBackpressure (retry later).
//     Retry-After is not read: the caller's retry policy decides the wait.
//   - 408 and Config.Timeout passing: transport.ErrTimeout (retryable).
//   - any other status, 500 included: a fatal transport.ErrSend error
//     naming the status and quoting the start of the response body.
//   - no answer (connection refused or reset): transport.ErrBackpressure
//     wrapping transport.ErrConnection, retryable because a restarting
//     receiver looks like this; a TLS certificate failure is a fatal
//     transport.ErrConnection.
//
// Each request carries the trace context of ctx (traceparent, tracestate
// and baggage with the default propagators), written by the global
// propagator over any static header of the same name. When ctx holds no
// span and every record of the request carries the same trace headers
// (always true of a request of one record, so of every "single" request),
// those are sent instead, so a relay passes its records' traces on. Record
// keys, other record headers and timestamps are not sent.
type Sender struct {
	cfg    Config
	m      *httpMetrics
	tr     *http.Transport
	client *http.Client
	shown  string // the URL without its password, for errors
	closed atomic.Bool
}

var _ transport.Sender = (*Sender)(nil)

// NewSender validates cfg (URL is required) and returns a sender. It does
// not connect until the first send.
func NewSender(cfg Config) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.validateURL(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &Sender{
		cfg:    cfg,
		m:      newHTTPMetrics(cfg.Metrics),
		tr:     tr,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		shown:  u.Redacted(),
	}, nil
}

// Name returns "http".
func (s *Sender) Name() string { return name }

// Send posts one record. See SendBatch.
func (s *Sender) Send(ctx context.Context, rec transport.Record) error {
	return linebatch.SingleError(s.SendBatch(ctx, []transport.Record{rec}))
}

// SendBatch posts the records. Records that cannot be framed
// (ErrUnframable) are left out and listed in a *transport.BatchError,
// fatal; the others are posted. When the post fails as well, the
// BatchError lists every record, each with its own error; without
// unframable records the post's error is returned as it is. See Sender
// for how answers map to errors.
func (s *Sender) SendBatch(ctx context.Context, records []transport.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return errClosed("send")
	}
	if len(records) == 0 {
		return nil
	}
	if s.cfg.Framing == Single {
		return s.sendEach(ctx, records)
	}
	body, failed := s.encode(records)
	var postErr error
	if sent := len(records) - len(failed); sent > 0 {
		inBody := func(i int) bool {
			_, bad := failed[i]
			return !bad
		}
		postErr = s.post(ctx, body, s.contentType(records[0]), sent, records, inBody)
	}
	if len(failed) == 0 {
		return postErr
	}
	s.m.sendFailures.With(transport.Fatal.String()).Add(float64(len(failed)))
	be := &transport.BatchError{}
	for i := range records {
		if err, ok := failed[i]; ok {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: err})
		} else if postErr != nil {
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: postErr})
		}
	}
	return be
}

// sendEach posts one request per record ("single" framing), stopping at
// the first failed post: that record and the rest are listed with its
// error.
func (s *Sender) sendEach(ctx context.Context, records []transport.Record) error {
	var be transport.BatchError
	for i := range records {
		if err := s.check(records[i].Payload); err != nil {
			s.m.sendFailures.With(transport.Fatal.String()).Inc()
			be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: err})
			continue
		}
		if err := s.post(ctx, records[i].Payload, s.contentType(records[i]), 1, records[i:i+1], everyRecord); err != nil {
			for j := i; j < len(records); j++ {
				be.Failed = append(be.Failed, transport.FailedRecord{Index: j, Err: err})
			}
			s.m.sendFailures.With(transport.Classify(err).String()).Add(float64(len(records) - i - 1))
			break
		}
	}
	if len(be.Failed) == 0 {
		return nil
	}
	return &be
}

// encode frames the records that can be framed into one body and returns
// the errors of the others by index.
func (s *Sender) encode(records []transport.Record) ([]byte, map[int]error) {
	var failed map[int]error
	size := 2
	for i := range records {
		size += len(records[i].Payload) + 1
	}
	buf := make([]byte, 0, size)
	if s.cfg.Framing == JSONArray {
		buf = append(buf, '[')
	}
	n := 0
	for i := range records {
		p := records[i].Payload
		if err := s.check(p); err != nil {
			if failed == nil {
				failed = make(map[int]error)
			}
			failed[i] = err
			continue
		}
		if s.cfg.Framing == JSONArray {
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, p...)
		} else {
			buf = append(buf, p...)
			buf = append(buf, '\n')
		}
		n++
	}
	if s.cfg.Framing == JSONArray {
		buf = append(buf, ']')
	}
	return buf, failed
}

// check says why payload p cannot be framed, or returns nil.
func (s *Sender) check(p []byte) error {
	var why string
	switch s.cfg.Framing {
	case NDJSON:
		switch {
		case len(bytes.TrimSpace(p)) == 0:
			why = "it is empty or whitespace only, which the receiver skips"
		case bytes.IndexByte(p, '\n') >= 0:
			why = "it contains a newline; encode the record as single-line JSON or use " + Section + ".framing single"
		case p[len(p)-1] == '\r':
			why = "it ends with a carriage return, which the receiver strips; use " + Section + ".framing single"
		}
	case JSONArray:
		if !json.Valid(p) {
			why = "it is not one JSON value, so it cannot be an array element; use " + Section + ".framing single for other payloads"
		}
	case Single:
		if len(bytes.TrimSpace(p)) == 0 {
			why = "it is empty or whitespace only, which the receiver refuses"
		}
	}
	if why == "" {
		return nil
	}
	return transport.NewError(transport.ErrSend, name, "send", fmt.Errorf("%w: %s", ErrUnframable, why))
}

// contentType is the Content-Type of a body holding rec.
func (s *Sender) contentType(rec transport.Record) string {
	switch {
	case s.cfg.Framing == NDJSON:
		return "application/x-ndjson"
	case s.cfg.Framing == JSONArray || rec.Format == codec.JSON:
		return "application/json"
	case rec.Format == codec.MsgPack:
		return "application/msgpack"
	default:
		return "application/octet-stream"
	}
}

// everyRecord is the sent filter of a request holding all its records.
func everyRecord(int) bool { return true }

// post sends one request holding n records, those of records for which
// sent is true, and maps the outcome to an error.
func (s *Sender) post(ctx context.Context, body []byte, ctype string, n int, records []transport.Record, sent func(int) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return s.failed(n, transport.NewError(transport.ErrSend, name, "send", fmt.Errorf("build request to %s: %w", s.shown, err)))
	}
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	setTraceHeaders(ctx, req.Header, records, sent)
	req.Header.Set("Content-Type", ctype)
	if !s.cfg.BearerToken.IsZero() {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken.Expose())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.failed(n, s.connError(err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		s.m.sentRecords.Add(float64(n))
		s.m.sentBytes.Add(float64(len(body)))
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
	kind := transport.ErrSend
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		kind = transport.ErrBackpressure
	case http.StatusRequestTimeout:
		kind = transport.ErrTimeout
	}
	return s.failed(n, transport.NewError(kind, name, "send",
		fmt.Errorf("POST %s answered %s: %q", s.shown, resp.Status, strings.TrimSpace(string(head)))))
}

// connError maps a failure to get an answer to an error.
func (s *Sender) connError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the URL, possibly with a password
	}
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cve):
		return transport.NewError(transport.ErrConnection, name, "send", fmt.Errorf("POST %s: %w", s.shown, err))
	case errors.Is(err, context.DeadlineExceeded) || (ue != nil && ue.Timeout()):
		return transport.NewError(transport.ErrTimeout, name, "send",
			fmt.Errorf("POST %s: no answer within %s.timeout %s: %w", s.shown, Section, s.cfg.Timeout, err))
	default:
		return transport.NewError(transport.ErrBackpressure, name, "send",
			fmt.Errorf("%w: POST %s: %w", transport.ErrConnection, s.shown, err))
	}
}

// failed counts n records failed with err and returns err.
func (s *Sender) failed(n int, err error) error {
	s.m.sendFailures.With(transport.Classify(err).String()).Add(float64(n))
	return err
}

// Health returns transport.ErrClosed after Close, nil otherwise.
func (s *Sender) Health(context.Context) error {
	if s.closed.Load() {
		return errClosed("health")
	}
	return nil
}

// Close releases idle connections; sends after it return
// transport.ErrClosed. The sender buffers nothing, so nothing is flushed.
// Later calls return nil.
func (s *Sender) Close(context.Context) error {
	s.closed.Store(true)
	s.tr.CloseIdleConnections()
	return nil
}
