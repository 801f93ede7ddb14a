package httptransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
)

// sink is an httptest server that records requests and answers status
// with body.
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []seen
	status int
	answer string
}

type seen struct {
	header http.Header
	body   string
}

func newSink(t *testing.T, status int, answer string) *sink {
	s := &sink{status: status, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{header: r.Header.Clone(), body: string(b)})
		s.mu.Unlock()
		w.WriteHeader(s.status)
		_, _ = io.WriteString(w, s.answer)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func newSender(t testing.TB, cfg Config) *Sender {
	t.Helper()
	if cfg.Metrics == nil {
		cfg.Metrics = testConfig().Metrics
	}
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func recs(payloads ...string) []transport.Record {
	out := make([]transport.Record, len(payloads))
	for i, p := range payloads {
		out[i] = transport.Record{Payload: []byte(p), Format: codec.JSON}
	}
	return out
}

func TestSenderBodyAndContentType(t *testing.T) {
	cases := []struct {
		framing Framing
		records []transport.Record
		bodies  []string
		ctypes  []string
	}{
		{"", recs(`{"a":1}`, `{"b":2}`), []string{"{\"a\":1}\n{\"b\":2}\n"}, []string{"application/x-ndjson"}},
		{JSONArray, recs(`{"a":1}`, ` 2 `), []string{`[{"a":1}, 2 ]`}, []string{"application/json"}},
		{Single, append(recs(`{"a":1}`), transport.Record{Payload: []byte("\x81\xa1a\x01"), Format: codec.MsgPack}, transport.Record{Payload: []byte("raw")}),
			[]string{`{"a":1}`, "\x81\xa1a\x01", "raw"}, []string{"application/json", "application/msgpack", "application/octet-stream"}},
	}
	for _, c := range cases {
		t.Run(string(c.framing), func(t *testing.T) {
			k := newSink(t, http.StatusAccepted, "")
			s := newSender(t, Config{URL: k.srv.URL + "/in", Framing: c.framing, Headers: map[string]string{"X-Source": "orders"}})
			if err := s.SendBatch(context.Background(), c.records); err != nil {
				t.Fatalf("SendBatch: %v", err)
			}
			got := k.requests()
			if len(got) != len(c.bodies) {
				t.Fatalf("%d requests, want %d", len(got), len(c.bodies))
			}
			for i, r := range got {
				if r.body != c.bodies[i] {
					t.Errorf("request %d body %q, want %q", i, r.body, c.bodies[i])
				}
				if ct := r.header.Get("Content-Type"); ct != c.ctypes[i] {
					t.Errorf("request %d Content-Type %q, want %q", i, ct, c.ctypes[i])
				}
				if r.header.Get("X-Source") != "orders" || r.header.Get("Authorization") != "" {
					t.Errorf("request %d headers %v", i, r.header)
				}
			}
			if v := testutil.ToFloat64(s.m.sentRecords); v != float64(len(c.records)) {
				t.Fatalf("sent records %v, want %d", v, len(c.records))
			}
		})
	}
}

func TestSenderStatusClassification(t *testing.T) {
	cases := []struct {
		status int
		want   transport.Outcome
		kind   error
	}{
		{200, transport.OK, nil},
		{204, transport.OK, nil},
		{429, transport.Backpressure, transport.ErrBackpressure},
		{503, transport.Backpressure, transport.ErrBackpressure},
		{502, transport.Backpressure, transport.ErrBackpressure},
		{504, transport.Backpressure, transport.ErrBackpressure},
		{408, transport.Backpressure, transport.ErrTimeout},
		{400, transport.Fatal, transport.ErrSend},
		{404, transport.Fatal, transport.ErrSend},
		{413, transport.Fatal, transport.ErrSend},
		{500, transport.Fatal, transport.ErrSend},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			k := newSink(t, c.status, "  reason: "+strings.Repeat("x", 1000))
			s := newSender(t, Config{URL: k.srv.URL})
			err := s.SendBatch(context.Background(), recs(`{"a":1}`, `{"b":2}`))
			if got := transport.Classify(err); got != c.want {
				t.Fatalf("status %d: outcome %v (%v), want %v", c.status, got, err, c.want)
			}
			if c.kind == nil {
				return
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("status %d: %v is not %v", c.status, err, c.kind)
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(c.status)) || !strings.Contains(msg, "reason: xxx") {
				t.Fatalf("error %q does not name the status and the start of the body", msg)
			}
			if len(msg) > 600 {
				t.Fatalf("error quotes %d bytes of body", len(msg))
			}
			if v := testutil.ToFloat64(s.m.sendFailures.With(c.want.String())); v != 2 {
				t.Fatalf("send failures %v, want 2", v)
			}
		})
	}
}

func TestSenderUnframable(t *testing.T) {
	k := newSink(t, http.StatusOK, "")
	s := newSender(t, Config{URL: k.srv.URL})
	err := s.SendBatch(context.Background(), recs(`{"a":1}`, "{\"b\":\n2}", `{"c":3}`, "  ", "{\"d\":4}\r"))
	var be *transport.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Indices(), []int{1, 3, 4}) {
		t.Fatalf("error %v, want a BatchError at 1, 3 and 4", err)
	}
	if !errors.Is(err, ErrUnframable) || transport.Classify(err) != transport.Fatal {
		t.Fatalf("error %v: want ErrUnframable, fatal", err)
	}
	if got := k.requests(); len(got) != 1 || got[0].body != "{\"a\":1}\n{\"c\":3}\n" {
		t.Fatalf("requests %+v: want the framable records posted", got)
	}

	// json_array: a payload that is not one JSON value.
	s = newSender(t, Config{URL: k.srv.URL, Framing: JSONArray})
	err = s.SendBatch(context.Background(), recs(`1,2`))
	if !errors.As(err, &be) || !slices.Equal(be.Indices(), []int{0}) || !errors.Is(err, ErrUnframable) {
		t.Fatalf("json_array: %v", err)
	}
	if len(k.requests()) != 1 {
		t.Fatal("a batch with nothing framable was posted")
	}
	if err := s.Send(context.Background(), recs(`x`)[0]); !errors.Is(err, ErrUnframable) || errors.As(err, &be) {
		t.Fatalf("Send of an unframable record: %v, want the record's own error", err)
	}

	// A failed post as well: every record is listed with its own error.
	bad := newSink(t, http.StatusServiceUnavailable, "")
	s = newSender(t, Config{URL: bad.srv.URL})
	err = s.SendBatch(context.Background(), recs(`1`, "a\nb", `3`))
	if !errors.As(err, &be) || !slices.Equal(be.Indices(), []int{0, 1, 2}) {
		t.Fatalf("error %v, want all indices", err)
	}
	if !errors.Is(be.Failed[0].Err, transport.ErrBackpressure) || !errors.Is(be.Failed[1].Err, ErrUnframable) {
		t.Fatalf("failures %+v", be.Failed)
	}
}

func TestSenderSingleStopsAtTheFirstFailedPost(t *testing.T) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 2 {
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	s := newSender(t, Config{URL: srv.URL, Framing: Single})
	err := s.SendBatch(context.Background(), recs(`1`, `2`, `3`))
	var be *transport.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Indices(), []int{1, 2}) || transport.Classify(err) != transport.Backpressure {
		t.Fatalf("error %v, want backpressure at 1 and 2", err)
	}
}

func TestSenderBearerTokenNeverShown(t *testing.T) {
	const token = "s3cr3t-t0ken"
	k := newSink(t, http.StatusUnauthorized, "bad credentials")
	var logs bytes.Buffer
	cfg := Config{
		URL:         strings.Replace(k.srv.URL, "http://", "http://user:pa55word@", 1),
		BearerToken: secret.New(token),
	}
	s := newSender(t, cfg)
	err := s.SendBatch(context.Background(), recs(`1`))
	if transport.Classify(err) != transport.Fatal || !strings.Contains(err.Error(), "401") {
		t.Fatalf("401: %v", err)
	}
	if got := k.requests()[0].header.Get("Authorization"); got != "Bearer "+token {
		t.Fatalf("Authorization %q", got)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "pa55word") {
		t.Fatalf("error shows a secret: %v", err)
	}
	slog.New(slog.NewTextHandler(&logs, nil)).Info("sender config", "config", s.cfg, "token", s.cfg.BearerToken)
	if text := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, logs.String()); strings.Contains(text, token) {
		t.Fatalf("printing or logging the config shows the token: %s", text)
	}

	// Without an answer the error names the URL, not its password.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	s = newSender(t, Config{URL: "http://user:pa55word@" + addr + "/in", BearerToken: secret.New(token)})
	err = s.SendBatch(context.Background(), recs(`1`))
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "pa55word") {
		t.Fatalf("connection error shows a secret: %v", err)
	}
}

func TestSenderConnectionErrorsAreRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := newSender(t, Config{URL: "http://" + addr + "/ingest"})
	err = s.SendBatch(context.Background(), recs(`1`))
	if !errors.Is(err, transport.ErrConnection) || transport.Classify(err) != transport.Backpressure {
		t.Fatalf("refused connection: %v (%v), want ErrConnection classified backpressure", err, transport.Classify(err))
	}
}

func TestSenderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSender(t, Config{URL: srv.URL, Timeout: 20 * time.Millisecond})
	err := s.SendBatch(context.Background(), recs(`1`))
	if !errors.Is(err, transport.ErrTimeout) || transport.Classify(err) != transport.Backpressure || !strings.Contains(err.Error(), Section+".timeout") {
		t.Fatalf("slow receiver: %v, want ErrTimeout naming %s.timeout", err, Section)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.SendBatch(ctx, recs(`1`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestSenderCloseAndHealth(t *testing.T) {
	k := newSink(t, http.StatusOK, "")
	s := newSender(t, Config{URL: k.srv.URL})
	ctx := context.Background()
	if err := s.Health(ctx); err != nil || s.Name() != "http" {
		t.Fatalf("Health %v, Name %q", err, s.Name())
	}
	if err := s.SendBatch(ctx, nil); err != nil || len(k.requests()) != 0 {
		t.Fatalf("empty batch: %v, %d requests", err, len(k.requests()))
	}
	if err := s.Send(ctx, recs(`1`)[0]); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(ctx); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	if err := s.Send(ctx, recs(`1`)[0]); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if err := s.Health(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Health after Close: %v", err)
	}
}

// TestSenderToReceiver sends through a real listener in each ack mode and
// framing: in commit mode SendBatch returns only after the commit.
func TestSenderToReceiver(t *testing.T) {
	for _, mode := range []AckMode{AckCommit, AckEnqueue} {
		for _, f := range []Framing{NDJSON, JSONArray} {
			t.Run(string(mode)+"/"+string(f), func(t *testing.T) {
				cfg := testConfig()
				cfg.AckMode, cfg.Framing = mode, f
				cfg.KeyHeader = "X-Key"
				r := newReceiver(t, cfg)
				waiting := waitingHook(r)
				s := newSender(t, Config{URL: r.url(), Framing: f, Headers: map[string]string{"X-Key": "k"}, Metrics: cfg.Metrics})
				want := []string{`{"n":1}`, `{"n":2,"s":"a\nb"}`, `[3]`}
				sent := make(chan error, 1)
				go func() { sent <- s.SendBatch(context.Background(), recs(want...)) }()
				if mode == AckCommit {
					select {
					case <-waiting:
					case err := <-sent:
						t.Fatalf("SendBatch returned %v before the commit", err)
					}
				}
				b := recv(t, r, transport.Limits{})
				if got := payloads(b); !slices.Equal(got, want) {
					t.Fatalf("received %q, want %q", got, want)
				}
				if string(b.Records[0].Key) != "k" {
					t.Fatalf("key %q", b.Records[0].Key)
				}
				if mode == AckCommit {
					select {
					case err := <-sent:
						t.Fatalf("SendBatch returned %v before the commit", err)
					default:
					}
				}
				if err := r.Commit(context.Background(), b.Tokens); err != nil {
					t.Fatal(err)
				}
				if err := <-sent; err != nil {
					t.Fatalf("SendBatch: %v", err)
				}

				// A paused receiver is backpressure to the sender.
				if err := r.Pause(context.Background()); err != nil {
					t.Fatal(err)
				}
				err := s.SendBatch(context.Background(), recs(`{}`))
				if transport.Classify(err) != transport.Backpressure || !strings.Contains(err.Error(), "503") {
					t.Fatalf("paused receiver: %v, want backpressure", err)
				}
			})
		}
	}
}
