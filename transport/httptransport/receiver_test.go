package httptransport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
)

func TestFramingRoundTrip(t *testing.T) {
	cases := []struct {
		name    string
		framing Framing
		ctype   string
		body    string
		want    []string
		format  codec.Format
	}{
		{"ndjson", "", "application/x-ndjson", "{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}, codec.JSON},
		{"json_array", JSONArray, "application/json", ` [ {"a":[1,2]} , "x,y" ,3 ] `, []string{`{"a":[1,2]}`, `"x,y"`, `3`}, codec.JSON},
		{"single json", Single, "application/json; charset=utf-8", "{\"a\":1}\n{\"b\":2}\n", []string{"{\"a\":1}\n{\"b\":2}\n"}, codec.JSON},
		{"single msgpack", Single, "application/msgpack", "\x81\xa1a\x01", []string{"\x81\xa1a\x01"}, codec.MsgPack},
		{"single unknown type", Single, "", "hello", []string{"hello"}, codec.Auto},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Framing = c.framing
			cfg.AckMode = AckEnqueue
			r := newReceiver(t, cfg)
			mustStatus(t, post(testClient(t), r.url(), c.ctype, c.body, nil), http.StatusOK)
			b := recv(t, r, transport.Limits{})
			if got := payloads(b); !slices.Equal(got, c.want) {
				t.Fatalf("payloads %q, want %q", got, c.want)
			}
			for i, rec := range b.Records {
				if rec.Format != c.format {
					t.Fatalf("record %d format %v, want %v", i, rec.Format, c.format)
				}
				if rec.Timestamp.IsZero() {
					t.Fatalf("record %d has no timestamp", i)
				}
			}
			want := []string{"http:1", "http:2", "http:3"}[:len(c.want)]
			if got := tokens(b); !slices.Equal(got, want) {
				t.Fatalf("tokens %v, want %v", got, want)
			}
		})
	}
}

func TestRecvHonoursLimits(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	r := newReceiver(t, cfg)
	c := testClient(t)
	mustStatus(t, post(c, r.url(), "", "1111\n2222\n3333\n", nil), http.StatusOK)
	mustStatus(t, post(c, r.url(), "", "4444\n5555\n6666\n7777\n", nil), http.StatusOK)

	steps := []struct {
		l    transport.Limits
		want []string
	}{
		{transport.Limits{MaxRecords: 2}, []string{"1111", "2222"}},
		{transport.Limits{MaxRecords: 10, MaxBytes: 8}, []string{"3333", "4444"}}, // across requests
		{transport.Limits{MaxBytes: 1}, []string{"5555"}},                         // floor of one record
		{transport.Limits{}, []string{"6666", "7777"}},
	}
	for i, s := range steps {
		b := recv(t, r, s.l)
		if got := payloads(b); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: payloads %v, want %v", i, got, s.want)
		}
		if len(b.Tokens) != len(b.Records) {
			t.Fatalf("step %d: %d tokens for %d records", i, len(b.Tokens), len(b.Records))
		}
	}
	if got := testutil.ToFloat64(r.m.queued); got != 0 {
		t.Fatalf("queued gauge %v, want 0", got)
	}
}

func TestRecvWaitsTimesOutAndStops(t *testing.T) {
	cfg := testConfig()
	cfg.RecvTimeout = 20 * time.Millisecond
	r := newReceiver(t, cfg)
	b, err := r.Recv(context.Background(), transport.Limits{})
	if err != nil || !b.IsEmpty() {
		t.Fatalf("Recv after RecvTimeout = %+v, %v; want an empty batch and nil", b, err)
	}

	cfg = testConfig()
	r = newReceiver(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Recv(ctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled ctx: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Recv(context.Background(), transport.Limits{})
		done <- err
	}()
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("waiting Recv after Close: %v, want ErrClosed", err)
	}
}

func TestRejectedRequests(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 64
	cfg.Framing = JSONArray
	r := newReceiver(t, cfg)
	c := testClient(t)
	big := "[" + strings.Repeat(`1,`, 40) + "1]"

	got := post(c, r.url(), "", big, nil)
	mustStatus(t, got, http.StatusRequestEntityTooLarge)
	if !strings.Contains(got.body, Section+".max_body_bytes") {
		t.Fatalf("413 body %q does not name the limit", got.body)
	}
	// Without Content-Length the limit applies while reading.
	req, _ := http.NewRequest(http.MethodPost, r.url(), struct{ *strings.Reader }{strings.NewReader(big)})
	req.ContentLength = -1
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversize body: status %d, want 413", resp.StatusCode)
	}

	mustStatus(t, post(c, r.url(), "", "", nil), http.StatusBadRequest)
	got = post(c, r.url(), "", `[1,,2]`, nil)
	mustStatus(t, got, http.StatusBadRequest)
	if !strings.Contains(got.body, "empty array element") {
		t.Fatalf("400 body %q does not say why", got.body)
	}
	mustStatus(t, post(c, r.url(), "", `[]`, nil), http.StatusBadRequest)

	resp, err = c.Get(r.url())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
		t.Fatalf("GET: status %d Allow %q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonTooLarge)); v != 2 {
		t.Fatalf("too_large rejections %v, want 2", v)
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonBadBody)); v != 3 {
		t.Fatalf("bad_body rejections %v, want 3", v)
	}
	if v := testutil.ToFloat64(r.m.requests.With("405")); v != 1 {
		t.Fatalf("405 answers %v, want 1", v)
	}
	if r.queued != 0 {
		t.Fatalf("%d records queued from rejected requests", r.queued)
	}

	cfg = testConfig()
	r = newReceiver(t, cfg)
	mustStatus(t, post(c, r.url(), "", "\n \r\n\n", nil), http.StatusBadRequest)
}

// waitingHook makes r report on the returned channel when a commit-mode
// handler starts waiting for its commit.
func waitingHook(r *Receiver) <-chan struct{} {
	ch := make(chan struct{}, 16)
	r.onWait = func() { ch <- struct{}{} }
	return ch
}

// mustWait fails unless the handler starts waiting for its commit before
// the client gets an answer.
func mustWait(t testing.TB, waiting <-chan struct{}, answer <-chan reply) {
	t.Helper()
	select {
	case <-waiting:
	case a := <-answer:
		t.Fatalf("answered %d (%v) before any commit", a.code, a.err)
	}
}

func TestCommitModeAnswersAfterCommit(t *testing.T) {
	r := newReceiver(t, testConfig())
	waiting := waitingHook(r)
	c := testClient(t)
	answer := postAsync(c, r.url(), "", "a\nb\nc\n")
	mustWait(t, waiting, answer)

	first := recv(t, r, transport.Limits{MaxRecords: 2})
	second := recv(t, r, transport.Limits{})
	if got := tokens(first); !slices.Equal(got, []string{"http:1", "http:2"}) {
		t.Fatalf("tokens %v", got)
	}
	select {
	case a := <-answer:
		t.Fatalf("answered %d (%v) before any commit", a.code, a.err)
	default:
	}
	if err := r.Commit(context.Background(), first.Tokens); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(context.Background(), first.Tokens); err != nil { // committing again changes nothing
		t.Fatal(err)
	}
	select {
	case a := <-answer:
		t.Fatalf("answered %d (%v) with one record uncommitted", a.code, a.err)
	default:
	}
	if err := r.Commit(context.Background(), []transport.Token{otherToken{}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(context.Background(), second.Tokens); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, <-answer, http.StatusOK)
	if len(r.pending) != 0 {
		t.Fatalf("%d records still pending", len(r.pending))
	}
}

type otherToken struct{}

func (otherToken) String() string { return "other:1" }

func TestCommitModeCloseAnswers503(t *testing.T) {
	r := newReceiver(t, testConfig())
	c := testClient(t)
	taken := postAsync(c, r.url(), "", "a\n")
	recv(t, r, transport.Limits{}) // taken by the engine, never committed
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a := <-taken
	mustStatus(t, a, http.StatusServiceUnavailable)
	if a.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", a.header.Get("Retry-After"))
	}
	if !strings.Contains(a.body, "retry") {
		t.Fatalf("503 body %q", a.body)
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonClosed)); v != 1 {
		t.Fatalf("closed rejections %v, want 1", v)
	}
	if err := r.Commit(context.Background(), []transport.Token{Token{Seq: 1}}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
}

func TestCommitModeQueuedButNotTakenAnswers503OnClose(t *testing.T) {
	r := newReceiver(t, testConfig())
	c := testClient(t)
	queued := postAsync(c, r.url(), "", "a\n")
	<-r.wake // signalled when the handler queued the record
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, <-queued, http.StatusServiceUnavailable)
}

func (r *Receiver) queuedRecords() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued
}

func TestCommitModeAckTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.AckTimeout = 10 * time.Millisecond
	r := newReceiver(t, cfg)
	a := post(testClient(t), r.url(), "", "a\n", nil)
	mustStatus(t, a, http.StatusServiceUnavailable)
	if !strings.Contains(a.body, Section+".ack_timeout") {
		t.Fatalf("503 body %q does not name ack_timeout", a.body)
	}
	// The record stays queued: it may be delivered, and its late commit is
	// ignored.
	b := recv(t, r, transport.Limits{})
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonAckTimeout)); v != 1 {
		t.Fatalf("ack_timeout rejections %v, want 1", v)
	}
}

func TestEnqueueModeAnswersAtOnce(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	r := newReceiver(t, cfg)
	// Nothing receives yet: the answer cannot depend on Recv or Commit.
	mustStatus(t, post(testClient(t), r.url(), "", "a\nb\n", nil), http.StatusOK)
	if got := payloads(recv(t, r, transport.Limits{})); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("payloads %v", got)
	}
	if v := testutil.ToFloat64(r.m.receivedRecords); v != 2 {
		t.Fatalf("received records %v, want 2", v)
	}
	if v := testutil.ToFloat64(r.m.receivedBytes); v != 4 {
		t.Fatalf("received bytes %v, want 4", v)
	}
}

func TestPauseAndResume(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	cfg.RetryAfter = 1500 * time.Millisecond
	r := newReceiver(t, cfg)
	c := testClient(t)
	ctx := context.Background()

	if err := r.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if !r.Paused() || testutil.ToFloat64(r.m.paused) != 1 {
		t.Fatalf("Paused %v, gauge %v", r.Paused(), testutil.ToFloat64(r.m.paused))
	}
	a := post(c, r.url(), "", "a\n", nil)
	mustStatus(t, a, http.StatusServiceUnavailable)
	if a.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q, want 2 (1.5 s rounded up)", a.header.Get("Retry-After"))
	}
	if r.queuedRecords() != 0 {
		t.Fatal("a paused receiver queued records")
	}
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Paused() || testutil.ToFloat64(r.m.paused) != 0 {
		t.Fatalf("after Resume: Paused %v, gauge %v", r.Paused(), testutil.ToFloat64(r.m.paused))
	}
	mustStatus(t, post(c, r.url(), "", "b\n", nil), http.StatusOK)
	if got := payloads(recv(t, r, transport.Limits{})); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("payloads %v", got)
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonPaused)); v != 1 {
		t.Fatalf("paused rejections %v, want 1", v)
	}
}

func TestPauseLetsQueuedCommitModeRequestsComplete(t *testing.T) {
	r := newReceiver(t, testConfig())
	c := testClient(t)
	answer := postAsync(c, r.url(), "", "a\n")
	b := recv(t, r, transport.Limits{})
	if err := r.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(context.Background(), b.Tokens); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, <-answer, http.StatusOK)
}

func TestQueueFull(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	cfg.QueueRecords = 3
	r := newReceiver(t, cfg)
	c := testClient(t)
	mustStatus(t, post(c, r.url(), "", "a\nb\n", nil), http.StatusOK)
	a := post(c, r.url(), "", "c\nd\n", nil)
	mustStatus(t, a, http.StatusServiceUnavailable)
	if a.header.Get("Retry-After") == "" {
		t.Fatal("queue-full 503 without Retry-After")
	}
	mustStatus(t, post(c, r.url(), "", "c\n", nil), http.StatusOK) // fits exactly
	if got := payloads(recv(t, r, transport.Limits{})); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("payloads %v", got)
	}
	// An empty queue takes a request larger than the bound.
	mustStatus(t, post(c, r.url(), "", "1\n2\n3\n4\n5\n", nil), http.StatusOK)
	if got := len(recv(t, r, transport.Limits{}).Records); got != 5 {
		t.Fatalf("%d records, want 5", got)
	}
	if v := testutil.ToFloat64(r.m.rejected.With(reasonQueueFull)); v != 1 {
		t.Fatalf("queue_full rejections %v, want 1", v)
	}
}

func TestKeyAndCopiedHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.AckMode = AckEnqueue
	cfg.KeyHeader = "x-record-key"
	cfg.CopyHeaders = []string{"X-Tenant", "X-Missing"}
	r := newReceiver(t, cfg)
	h := http.Header{"X-Record-Key": {"k1"}, "X-Tenant": {"acme", "beta"}, "X-Other": {"no"}}
	mustStatus(t, post(testClient(t), r.url(), "", "a\nb\n", h), http.StatusOK)
	b := recv(t, r, transport.Limits{})
	for i, rec := range b.Records {
		if string(rec.Key) != "k1" {
			t.Fatalf("record %d key %q", i, rec.Key)
		}
		if len(rec.Headers) != 2 || rec.Headers[0].Key != "X-Tenant" || string(rec.Headers[0].Value) != "acme" || string(rec.Headers[1].Value) != "beta" {
			t.Fatalf("record %d headers %+v", i, rec.Headers)
		}
	}
	// Appending to one record's headers leaves the other's alone.
	b.Records[0].Headers = append(b.Records[0].Headers, transport.Header{Key: "x"})
	if len(b.Records[1].Headers) != 2 {
		t.Fatal("records share a header slice with spare capacity")
	}

	// No key header: no key.
	r2 := newReceiver(t, func() Config { c := testConfig(); c.AckMode = AckEnqueue; return c }())
	mustStatus(t, post(testClient(t), r2.url(), "", "a\n", h), http.StatusOK)
	if rec := recv(t, r2, transport.Limits{}).Records[0]; rec.Key != nil || rec.Headers != nil {
		t.Fatalf("key %q headers %v without key_header and copy_headers", rec.Key, rec.Headers)
	}
}

func TestCloseIdempotentAndHealth(t *testing.T) {
	r := newReceiver(t, testConfig())
	ctx := context.Background()
	if err := r.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	if r.Name() != "http" {
		t.Fatalf("Name %q", r.Name())
	}
	for i := range 2 {
		if err := r.Close(ctx); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	for what, err := range map[string]error{
		"Health": r.Health(ctx),
		"Pause":  r.Pause(ctx),
		"Resume": r.Resume(ctx),
		"Recv":   func() error { _, err := r.Recv(ctx, transport.Limits{}); return err }(),
	} {
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	if a := post(testClient(t), r.url(), "", "a\n", nil); a.err == nil {
		t.Fatalf("a closed receiver answered %d", a.code)
	}
}

func TestHealthReportsAFailedListener(t *testing.T) {
	r := newReceiver(t, testConfig())
	_ = r.ln.Close() // the listener fails under the server
	<-r.served
	if err := r.Health(context.Background()); !errors.Is(err, transport.ErrConnection) {
		t.Fatalf("Health with a failed listener: %v, want ErrConnection", err)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := map[string]Config{
		"framing":        {Framing: "xml"},
		"path":           {Path: "ingest"},
		"max_body_bytes": {MaxBodyBytes: -1},
		"ack_mode":       {AckMode: "later"},
		"ack_timeout":    {AckTimeout: -1},
		"queue_records":  {QueueRecords: -1},
		"retry_after":    {RetryAfter: -1},
		"recv_timeout":   {RecvTimeout: -1},
		"key_header":     {KeyHeader: "bad header"},
		"copy_headers":   {CopyHeaders: []string{"ok", ""}},
		"timeout":        {Timeout: -1},
		"headers":        {Headers: map[string]string{"": "x"}},
	}
	for key, cfg := range cases {
		_, err := NewReceiver(cfg)
		if !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), Section+"."+key) {
			t.Errorf("%s: %v, want ErrConfig naming %s.%s", key, err, Section, key)
		}
	}
	for _, u := range []string{"", "ftp://x/y", "http://", "::"} {
		_, err := NewSender(Config{URL: u})
		if !errors.Is(err, transport.ErrConfig) || !strings.Contains(err.Error(), Section+".url") {
			t.Errorf("url %q: %v, want ErrConfig naming %s.url", u, err, Section)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
}

func TestListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	_, err = NewReceiver(cfg)
	if !errors.Is(err, transport.ErrConnection) || !strings.Contains(err.Error(), Section+".listen") {
		t.Fatalf("listening on a taken port: %v", err)
	}
}

func TestRegisterMetrics(t *testing.T) {
	reg := testConfig().Metrics
	RegisterMetrics(reg)
	r := newReceiver(t, Config{Listen: "127.0.0.1:0", Metrics: reg}) // shares the collectors
	mustStatus(t, post(testClient(t), r.url(), "", "", nil), http.StatusBadRequest)
	names := map[string]bool{}
	for _, d := range reg.Manifest().Metrics {
		names[d.Name] = true
	}
	for _, n := range []string{
		"keel_http_requests_total", "keel_http_received_records_total", "keel_http_received_bytes_total",
		"keel_http_rejected_requests_total", "keel_http_queued_records", "keel_http_paused",
		"keel_http_sent_records_total", "keel_http_sent_bytes_total", "keel_http_send_failures_total",
	} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	if v := testutil.ToFloat64(r.m.requests.With("400")); v != 1 {
		t.Fatalf("400 answers %v, want 1", v)
	}
}
