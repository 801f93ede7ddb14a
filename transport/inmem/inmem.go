package inmem

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/transport"
)

// DefaultCapacity is the queue capacity of a zero Config.
const DefaultCapacity = 1000

// Config configures a Transport. The zero value is valid.
type Config struct {
	// Capacity is the number of records the queue holds (config key
	// buffer_size). Default 1000.
	Capacity int `koanf:"buffer_size"`
	// RecvTimeout bounds how long Recv waits for the first record before it
	// returns an empty batch. Zero waits until a record arrives, the input
	// is closed or ctx is done.
	RecvTimeout time.Duration `koanf:"recv_timeout"`
}

// Token is the commit token of an inmem record: its receive sequence,
// starting at 1.
type Token struct {
	Seq uint64
}

// String returns "inmem:<seq>".
func (t Token) String() string { return "inmem:" + strconv.FormatUint(t.Seq, 10) }

// Transport is an in-process bounded queue. It is safe for concurrent use.
type Transport struct {
	cfg Config
	ch  chan transport.Record

	mu          sync.RWMutex // guards inputClosed against sends on a closed channel
	inputClosed bool
	closed      atomic.Bool

	recvMu sync.Mutex // serialises receivers so sequences follow queue order
	seq    uint64

	commitMu   sync.Mutex
	committed  uint64
	commits    int
	commitErrs []error
	sent       atomic.Uint64
}

var (
	_ transport.Receiver = (*Transport)(nil)
	_ transport.Sender   = (*Transport)(nil)
)

// WithDefaults returns c with the default capacity (1000) in place of a
// zero or negative one; recv_timeout 0 waits for the first record.
func (c Config) WithDefaults() Config {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	return c
}

// New returns an empty transport.
func New(cfg Config) *Transport {
	cfg = cfg.WithDefaults()
	return &Transport{cfg: cfg, ch: make(chan transport.Record, cfg.Capacity)}
}

// Name returns "inmem".
func (t *Transport) Name() string { return "inmem" }

func (t *Transport) errClosed(op string) error {
	return transport.NewError(transport.ErrClosed, "inmem", op, nil)
}

// Send enqueues rec without waiting. A full queue is ErrBackpressure; a
// closed input is ErrClosed.
func (t *Transport) Send(_ context.Context, rec transport.Record) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.inputClosed {
		return t.errClosed("send")
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = time.Now()
	}
	select {
	case t.ch <- rec:
		t.sent.Add(1)
		return nil
	default:
		return transport.NewError(transport.ErrBackpressure, "inmem", "send", errors.New("queue full"))
	}
}

// SendBatch enqueues records in order without waiting. When the queue
// fills, it returns a *transport.BatchError listing every index not
// enqueued (each ErrBackpressure); the prefix stays enqueued.
func (t *Transport) SendBatch(ctx context.Context, records []transport.Record) error {
	for i := range records {
		if err := t.Send(ctx, records[i]); err != nil {
			be := &transport.BatchError{}
			for j := i; j < len(records); j++ {
				be.Failed = append(be.Failed, transport.FailedRecord{Index: j, Err: err})
			}
			return be
		}
	}
	return nil
}

// Inject enqueues records, waiting for space. It is the producer side for
// tests and demos.
func (t *Transport) Inject(ctx context.Context, records ...transport.Record) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.inputClosed {
		return t.errClosed("inject")
	}
	now := time.Now()
	for _, rec := range records {
		if rec.Timestamp.IsZero() {
			rec.Timestamp = now
		}
		select {
		case t.ch <- rec:
			t.sent.Add(1)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// InjectPayloads enqueues one record per payload, waiting for space.
func (t *Transport) InjectPayloads(ctx context.Context, payloads ...[]byte) error {
	recs := make([]transport.Record, len(payloads))
	for i, p := range payloads {
		recs[i] = transport.Record{Payload: p}
	}
	return t.Inject(ctx, recs...)
}

// CloseInput ends the stream: later sends fail with ErrClosed, and Recv
// returns ErrClosed once the queue is drained.
func (t *Transport) CloseInput() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.inputClosed {
		t.inputClosed = true
		close(t.ch)
	}
}

// Recv returns up to limits.MaxRecords queued records, stopping once the
// payload bytes reach limits.MaxBytes (floor one record). It waits for the
// first record; later ones are taken only if already queued. A record is
// taken off the queue only when it is added to the returned batch, so
// cancelling ctx loses nothing.
func (t *Transport) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if t.closed.Load() {
		return transport.Batch{}, t.errClosed("recv")
	}
	limits = limits.Normalize()
	t.recvMu.Lock()
	defer t.recvMu.Unlock()

	var timeout <-chan time.Time
	if t.cfg.RecvTimeout > 0 {
		timer := time.NewTimer(t.cfg.RecvTimeout)
		defer timer.Stop()
		timeout = timer.C
	}
	var first transport.Record
	select {
	case rec, ok := <-t.ch:
		if !ok {
			return transport.Batch{}, t.errClosed("recv")
		}
		first = rec
	case <-ctx.Done():
		return transport.Batch{}, ctx.Err()
	case <-timeout:
		return transport.Batch{}, nil
	}
	recs := make([]transport.Record, 0, min(limits.MaxRecords, len(t.ch)+1))
	recs = append(recs, first)
	bytes := int64(len(first.Payload))
drain:
	for !limits.Full(len(recs), bytes) {
		select {
		case rec, ok := <-t.ch:
			if !ok {
				break drain
			}
			recs = append(recs, rec)
			bytes += int64(len(rec.Payload))
		default:
			break drain
		}
	}
	tokens := make([]transport.Token, len(recs))
	for i := range recs {
		t.seq++
		tokens[i] = Token{Seq: t.seq}
	}
	return transport.NewBatch(recs, tokens), nil
}

// Commit acknowledges tokens cumulatively: the committed sequence becomes
// the highest inmem Token given, if higher. Other token types are ignored.
// An error queued by FailNextCommit is returned instead, committing
// nothing.
func (t *Transport) Commit(_ context.Context, tokens []transport.Token) error {
	if t.closed.Load() {
		return t.errClosed("commit")
	}
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	if len(t.commitErrs) > 0 {
		err := t.commitErrs[0]
		t.commitErrs = t.commitErrs[1:]
		return transport.NewError(transport.ErrCommit, "inmem", "commit", err)
	}
	t.commits++
	for _, tok := range tokens {
		if it, ok := tok.(Token); ok && it.Seq > t.committed {
			t.committed = it.Seq
		}
	}
	return nil
}

// FailNextCommit makes the next Commit return err (wrapped in
// ErrCommit) without committing. Calls queue up.
func (t *Transport) FailNextCommit(err error) {
	t.commitMu.Lock()
	t.commitErrs = append(t.commitErrs, err)
	t.commitMu.Unlock()
}

// Committed returns the highest committed sequence (0 before any commit).
func (t *Transport) Committed() uint64 {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.committed
}

// Commits returns how many Commit calls succeeded.
func (t *Transport) Commits() int {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	return t.commits
}

// Len returns the number of queued records.
func (t *Transport) Len() int { return len(t.ch) }

// QueueFill returns how full the queue is: queued records over the
// capacity, in [0,1]. After Close it is 0: the queued records are
// discarded with the transport. The runtime feeds it to the queue
// component of the scaling pressure.
func (t *Transport) QueueFill() float64 {
	if t.closed.Load() {
		return 0
	}
	return float64(len(t.ch)) / float64(cap(t.ch))
}

// Sent returns how many records were enqueued in total.
func (t *Transport) Sent() uint64 { return t.sent.Load() }

// Drain removes and returns every queued record without assigning
// tokens; a sink-side helper for tests.
func (t *Transport) Drain() []transport.Record {
	var out []transport.Record
	for {
		select {
		case rec, ok := <-t.ch:
			if !ok {
				return out
			}
			out = append(out, rec)
		default:
			return out
		}
	}
}

// Health returns ErrClosed after Close, nil otherwise.
func (t *Transport) Health(context.Context) error {
	if t.closed.Load() {
		return t.errClosed("health")
	}
	return nil
}

// Close closes the input and makes later calls fail with ErrClosed.
// Queued records are discarded with the transport.
func (t *Transport) Close(context.Context) error {
	t.CloseInput()
	t.closed.Store(true)
	return nil
}
