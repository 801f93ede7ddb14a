package httptransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/transport"
)

// Token is the commit token of a record received over HTTP: its sequence
// number among the records this receiver accepted, from 1. The records of
// one request have consecutive numbers.
type Token struct {
	// Seq is the record's sequence number, from 1.
	Seq uint64
}

// String returns "http:<seq>".
func (t Token) String() string { return "http:" + strconv.FormatUint(t.Seq, 10) }

// request is a commit-mode request waiting for its records to be
// committed. Its fields are guarded by Receiver.mu; done is closed once
// code is set.
type request struct {
	first  uint64 // Seq of its first record
	n      int    // records
	left   int    // records not yet committed
	code   int    // the answer: 200, or 503 with reason; 0 when the client left
	reason string
	done   chan struct{}
}

// chunk is the not yet taken rest of one request's records in the queue.
type chunk struct {
	recs  []transport.Record
	first uint64 // Seq of recs[0]
}

// Receiver is an HTTP server that turns POST requests into records. It is
// a transport.Receiver and a governor.Actuator, and is safe for
// concurrent use.
//
// Each request to Config.Path is read whole (at most
// Config.MaxBodyBytes), split into records by Config.Framing, and put in
// a bounded in-memory queue that Recv takes from. When the client is
// answered depends on Config.AckMode: see AckCommit and AckEnqueue. Every
// record carries the request's trace headers (traceparent, tracestate,
// baggage), so the span of the block that processes it joins the sender's
// trace.
//
// Answers: 200 when accepted (and, in commit mode, committed); 400 for an
// empty or malformed body, with the reason; 405 for a method other than
// POST; 413 for a body over MaxBodyBytes; 503 with Retry-After while
// paused, when the queue is full, when a commit-mode request was not
// committed within AckTimeout, and once the receiver is closing.
type Receiver struct {
	cfg        Config
	log        *slog.Logger
	m          *httpMetrics
	ln         net.Listener
	srv        *http.Server
	served     chan struct{} // closed when Serve returns
	stop       chan struct{} // closed by Close
	wake       chan struct{} // signalled when records are queued
	retryAfter string
	paused     atomic.Bool
	closeOnce  sync.Once

	mu       sync.Mutex
	closed   bool
	serveErr error // why Serve stopped, if not Close
	queue    []chunk
	queued   int
	seq      uint64
	pending  map[uint64]*request // commit mode: Seq of each uncommitted record → its request

	onWait func() // test hook: a commit-mode handler starts waiting for its commit
}

var (
	_ transport.Receiver               = (*Receiver)(nil)
	_ governor.Actuator                = (*Receiver)(nil)
	_ interface{ QueueFill() float64 } = (*Receiver)(nil)
)

// NewReceiver validates cfg, listens on Config.Listen and starts serving.
// A listen failure is a transport.ErrConnection error.
func NewReceiver(cfg Config) (*Receiver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, transport.NewError(transport.ErrConnection, name, "listen",
			fmt.Errorf("listen on %s: %w (check %s.listen)", cfg.Listen, err, Section))
	}
	r := &Receiver{
		cfg:        cfg,
		log:        cfg.Logger.With("transport", name, "addr", ln.Addr().String()),
		m:          newHTTPMetrics(cfg.Metrics),
		ln:         ln,
		served:     make(chan struct{}),
		stop:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		retryAfter: strconv.Itoa(retryAfterSeconds(cfg.RetryAfter)),
		pending:    make(map[uint64]*request),
	}
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.Path, r.handle)
	r.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	go r.serve()
	return r, nil
}

func (r *Receiver) serve() {
	defer close(r.served)
	err := r.srv.Serve(r.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return
	}
	r.mu.Lock()
	r.serveErr = err
	r.mu.Unlock()
	r.log.Error("http receiver stopped serving", "error", err)
}

// Name returns "http".
func (r *Receiver) Name() string { return name }

// Addr returns the address the receiver listens on, with the port chosen
// when Config.Listen asked for port 0.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// handle serves one ingest request.
func (r *Receiver) handle(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.answer(w, http.StatusMethodNotAllowed, "", "use POST")
		return
	}
	if r.isClosed() {
		r.answer(w, http.StatusServiceUnavailable, reasonClosed, "receiver is shutting down; retry")
		return
	}
	if r.paused.Load() {
		r.answer(w, http.StatusServiceUnavailable, reasonPaused, "receiver is paused; retry after Retry-After")
		return
	}
	body, status, msg := r.readBody(w, req)
	if status != 0 {
		r.answer(w, status, reasonFor(status), msg)
		return
	}
	recs, err := frame(r.cfg.Framing, body, req.Header.Get("Content-Type"))
	if err != nil {
		r.answer(w, http.StatusBadRequest, reasonBadBody, err.Error())
		return
	}
	r.stamp(recs, req.Header)
	rq, reason := r.enqueue(recs)
	switch reason {
	case "":
	case reasonQueueFull:
		r.answer(w, http.StatusServiceUnavailable, reason, "queue is full; retry after Retry-After")
		return
	default:
		r.answer(w, http.StatusServiceUnavailable, reason, "receiver is shutting down; retry")
		return
	}
	r.m.receivedRecords.Add(float64(len(recs)))
	r.m.receivedBytes.Add(float64(len(body)))
	if rq == nil {
		r.answer(w, http.StatusOK, "", "accepted "+strconv.Itoa(len(recs))+" records")
		return
	}
	t := time.NewTimer(r.cfg.AckTimeout)
	defer t.Stop()
	if r.onWait != nil {
		r.onWait()
	}
	select {
	case <-rq.done:
	case <-t.C:
		r.finish(rq, http.StatusServiceUnavailable, reasonAckTimeout)
	case <-req.Context().Done():
		r.finish(rq, 0, "") // the client left; it retries if it wants to
	}
	<-rq.done
	switch rq.code {
	case 0:
	case http.StatusOK:
		r.answer(w, http.StatusOK, "", "committed "+strconv.Itoa(rq.n)+" records")
	case http.StatusServiceUnavailable:
		if rq.reason == reasonAckTimeout {
			r.answer(w, rq.code, rq.reason, "records not committed within "+Section+".ack_timeout; retry (they may be delivered twice)")
		} else {
			r.answer(w, rq.code, rq.reason, "receiver closed before the records were committed; retry (they may be delivered twice)")
		}
	}
}

func reasonFor(status int) string {
	if status == http.StatusRequestEntityTooLarge {
		return reasonTooLarge
	}
	return reasonBadBody
}

// answer writes a plain-text reply, with Retry-After on 503, and counts it.
func (r *Receiver) answer(w http.ResponseWriter, status int, reason, msg string) {
	if reason != "" {
		r.m.rejected.With(reason).Inc()
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", r.retryAfter)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
	r.m.requests.With(strconv.Itoa(status)).Inc()
}

// readBody reads the whole body within MaxBodyBytes. On failure it
// returns the status to answer and why.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, int, string) {
	limit := r.cfg.MaxBodyBytes
	tooLarge := fmt.Sprintf("request body over %s.max_body_bytes (%d bytes); send smaller requests", Section, limit)
	if req.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	buf := make([]byte, 0, max(512, min(req.ContentLength+1, limit+1)))
	src := http.MaxBytesReader(w, req.Body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, http.StatusRequestEntityTooLarge, tooLarge
			}
			return nil, http.StatusBadRequest, "read body: " + err.Error()
		}
	}
	if len(buf) == 0 {
		return nil, http.StatusBadRequest, "empty body: send at least one record"
	}
	return buf, 0, ""
}

// frame splits body into records. The records alias body.
func frame(f Framing, body []byte, ctype string) ([]transport.Record, error) {
	var recs []transport.Record
	switch f {
	case JSONArray:
		els, err := transport.SplitJSONArray(body)
		if err != nil {
			return nil, fmt.Errorf("body is not a JSON array of records: %w", err)
		}
		recs = make([]transport.Record, len(els))
		for i, e := range els {
			recs[i] = transport.Record{Payload: e, Format: codec.JSON}
		}
	case Single:
		if strings.TrimSpace(string(body)) == "" {
			break
		}
		recs = []transport.Record{{Payload: body, Format: formatOf(ctype)}}
	default:
		lines := transport.SplitNDJSON(body)
		recs = make([]transport.Record, len(lines))
		for i, l := range lines {
			recs[i] = transport.Record{Payload: l[:len(l):len(l)], Format: codec.JSON}
		}
	}
	if len(recs) == 0 {
		return nil, errors.New("body holds no records")
	}
	return recs, nil
}

// formatOf maps a request Content-Type to the payload format of a single
// record.
func formatOf(ctype string) codec.Format {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return codec.Auto
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return codec.JSON
	case mt == "application/msgpack" || mt == "application/x-msgpack" || mt == "application/vnd.msgpack":
		return codec.MsgPack
	default:
		return codec.Auto
	}
}

// stamp sets the receive time, the key, the copied headers and the trace
// headers of the records of one request. They share the key and header
// slices, capped so that appending to one record's copy cannot change
// another's.
func (r *Receiver) stamp(recs []transport.Record, h http.Header) {
	var key []byte
	if r.cfg.KeyHeader != "" {
		if v := h.Get(r.cfg.KeyHeader); v != "" {
			key = []byte(v)
		}
	}
	var hs []transport.Header
	for _, n := range r.cfg.CopyHeaders {
		for _, v := range h.Values(n) {
			hs = append(hs, transport.Header{Key: n, Value: []byte(v)})
		}
	}
	hs = append(hs, traceRecordHeaders(h, r.cfg.CopyHeaders)...)
	hs = hs[:len(hs):len(hs)]
	now := time.Now()
	for i := range recs {
		recs[i].Key, recs[i].Headers, recs[i].Timestamp = key, hs, now
	}
}

func (r *Receiver) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// enqueue queues the records of one request. It returns the request to
// wait for in commit mode (nil in enqueue mode), or the reason it was
// refused.
func (r *Receiver) enqueue(recs []transport.Record) (*request, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, reasonClosed
	}
	if r.queued > 0 && r.queued+len(recs) > r.cfg.QueueRecords {
		return nil, reasonQueueFull
	}
	first := r.seq + 1
	r.seq += uint64(len(recs))
	r.queue = append(r.queue, chunk{recs: recs, first: first})
	r.queued += len(recs)
	r.m.queued.Add(float64(len(recs)))
	var rq *request
	if r.cfg.AckMode == AckCommit {
		rq = &request{first: first, n: len(recs), left: len(recs), done: make(chan struct{})}
		for i := range uint64(len(recs)) {
			r.pending[first+i] = rq
		}
	}
	r.signal()
	return rq, ""
}

// signal wakes one waiting Recv.
func (r *Receiver) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// finish settles a commit-mode request once: it forgets its uncommitted
// records and wakes its handler.
func (r *Receiver) finish(rq *request, code int, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finishLocked(rq, code, reason)
}

func (r *Receiver) finishLocked(rq *request, code int, reason string) {
	select {
	case <-rq.done:
		return
	default:
	}
	if rq.left > 0 {
		for s := rq.first; s < rq.first+uint64(rq.n); s++ {
			delete(r.pending, s)
		}
	}
	rq.code, rq.reason = code, reason
	close(rq.done)
}

// Recv returns the next queued records under limits, each with its Token.
// It waits for the first record until one is queued, ctx is done
// (ctx.Err()), Config.RecvTimeout passes (an empty batch and nil) or the
// receiver is closed (transport.ErrClosed); it then takes only what is
// already queued, so a cancelled ctx never loses a record.
func (r *Receiver) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	var timeout <-chan time.Time
	if r.cfg.RecvTimeout > 0 {
		t := time.NewTimer(r.cfg.RecvTimeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return transport.Batch{}, errClosed("recv")
		}
		if r.queued > 0 {
			b := r.takeLocked(limits.Normalize())
			r.mu.Unlock()
			return b, nil
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-ctx.Done():
			return transport.Batch{}, ctx.Err()
		case <-timeout:
			return transport.Batch{}, nil
		case <-r.stop:
			return transport.Batch{}, errClosed("recv")
		}
	}
}

// takeLocked moves records from the queue into a batch under limits.
func (r *Receiver) takeLocked(limits transport.Limits) transport.Batch {
	n := min(limits.MaxRecords, r.queued)
	recs := make([]transport.Record, 0, n)
	toks := make([]transport.Token, 0, n)
	var bytes int64
	for len(r.queue) > 0 && !limits.Full(len(recs), bytes) {
		c := &r.queue[0]
		recs = append(recs, c.recs[0])
		toks = append(toks, Token{Seq: c.first})
		bytes += int64(len(c.recs[0].Payload))
		c.recs, c.first = c.recs[1:], c.first+1
		if len(c.recs) == 0 {
			r.queue[0] = chunk{}
			r.queue = r.queue[1:]
		}
	}
	r.queued -= len(recs)
	r.m.queued.Sub(float64(len(recs)))
	if r.queued > 0 {
		r.signal() // for another Recv
	}
	return transport.NewBatch(recs, toks)
}

// QueueFill returns how full the inbound queue is, in [0, 1]: the records
// accepted and not yet taken by Recv over Config.QueueRecords, counted in
// records, not bytes. It is 1 when the queue holds QueueRecords or more
// (an empty queue takes a larger request) and 0 after Close. It is the
// queue component of the scaling signal.
func (r *Receiver) QueueFill() float64 {
	r.mu.Lock()
	queued := r.queued
	r.mu.Unlock()
	return min(1, float64(queued)/float64(r.cfg.QueueRecords))
}

// Commit acknowledges records. In commit mode, a request is answered 200
// once every one of its records was committed; tokens of requests already
// answered (or of other receivers) are ignored. In enqueue mode it does
// nothing. It returns transport.ErrClosed after Close.
func (r *Receiver) Commit(_ context.Context, tokens []transport.Token) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed("commit")
	}
	for _, t := range tokens {
		tk, ok := t.(Token)
		if !ok {
			continue
		}
		rq, ok := r.pending[tk.Seq]
		if !ok {
			continue
		}
		delete(r.pending, tk.Seq)
		if rq.left--; rq.left == 0 {
			r.finishLocked(rq, http.StatusOK, "")
		}
	}
	return nil
}

// Pause is the inbound gate's rising edge: until Resume, new requests are
// answered 503 with Retry-After before their body is read. Requests
// already queued still complete. Pausing twice is a no-op.
func (r *Receiver) Pause(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed("pause")
	}
	if !r.paused.Swap(true) {
		r.m.paused.Inc()
		r.log.Info("http receiver paused by the inbound gate")
	}
	return nil
}

// Resume is the gate's falling edge: requests are accepted again.
// Resuming when not paused is a no-op.
func (r *Receiver) Resume(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed("resume")
	}
	if r.paused.Swap(false) {
		r.m.paused.Dec()
		r.log.Info("http receiver resumed by the inbound gate")
	}
	return nil
}

// Paused reports whether the gate holds.
func (r *Receiver) Paused() bool { return r.paused.Load() }

// Health returns transport.ErrClosed after Close, a
// transport.ErrConnection error when the server stopped serving (the
// listener failed), and nil otherwise.
func (r *Receiver) Health(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed("health")
	}
	if r.serveErr != nil {
		return transport.NewError(transport.ErrConnection, name, "health", fmt.Errorf("server on %s stopped: %w", r.Addr(), r.serveErr))
	}
	return nil
}

// Close stops accepting: from now on requests are answered 503 with
// Retry-After, waiting commit-mode requests are answered 503 (their
// records may then be delivered twice, never lost), queued records that
// Recv has not taken are dropped (in enqueue mode they are lost), and a
// waiting Recv returns transport.ErrClosed. It then shuts the server down
// gracefully within ctx (closing the remaining connections when ctx ends
// first, which is then returned as an error). Later calls return nil.
func (r *Receiver) Close(ctx context.Context) error {
	var err error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		for _, rq := range r.pending {
			r.finishLocked(rq, http.StatusServiceUnavailable, reasonClosed)
		}
		r.m.queued.Sub(float64(r.queued))
		r.queue, r.queued = nil, 0
		if r.paused.Swap(false) {
			r.m.paused.Dec()
		}
		close(r.stop)
		r.mu.Unlock()
		if err := r.srv.Shutdown(ctx); err != nil {
			_ = r.srv.Close()
			err = transport.NewError(transport.ErrRecv, name, "close", fmt.Errorf("graceful shutdown of %s: %w", r.Addr(), err))
		}
		<-r.served
	})
	return err
}

func errClosed(op string) error {
	return transport.NewError(transport.ErrClosed, name, op, nil)
}
