package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linebatch"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

// Token is the commit token of a line read from the pipe: its sequence
// number in the stream, from 1. A pipe cannot be re-read, so committing
// does nothing; the token exists so the engine can count and log.
type Token struct {
	// Seq is the line's position among the delivered lines and dead
	// letters of this receiver, from 1.
	Seq uint64
}

// String returns "pipe:<seq>".
func (t Token) String() string { return "pipe:" + strconv.FormatUint(t.Seq, 10) }

// Receiver reads NDJSON lines from an input stream (standard input by
// default) for shell pipelines. It is a transport.Receiver and is safe for
// concurrent use (Recv calls are serialised).
//
// A background goroutine, started by the first Recv, reads the input into
// a small pool of buffers (Config.ReadBufferBytes each, at most 4 ahead),
// so Recv can wait for the first line with a context and a timeout, yet
// never block for more once it has one. A chunk taken by Recv stays in the
// receiver until every line in it has been returned, so cancelling ctx
// never loses input.
//
// Framing is that of the file transport: a line ends at "\n", a trailing
// "\r" is stripped, whitespace-only lines are skipped, and a line over
// Config.MaxLineBytes becomes a dead letter (its first 4 KiB as payload)
// without being held whole in memory. An unterminated last line is
// delivered when the input ends. Each line's Token is its sequence number;
// Commit does nothing because a stream cannot be replayed: what was read
// but not delivered when the process stops is lost (at-most-once at this
// hop), so shells should feed a pipeline from a file when that matters.
//
// At the end of the input Recv returns transport.ErrClosed once every line
// was returned; a read error is returned (transport.ErrRecv) after the
// lines read before it.
//
// Close cannot interrupt a goroutine blocked in Read of os.Stdin (no
// portable way exists): Close returns at once, and the goroutine ends when
// that Read returns (input arrives, or the writer closes the pipe). A
// reader that can be closed, such as an io.Pipe, ends it as soon as the
// caller closes it.
type Receiver struct {
	cfg Config
	log *slog.Logger
	m   *pipeMetrics

	data   chan []byte   // filled chunks; closed after the last one
	free   chan []byte   // empty chunks
	stop   chan struct{} // closed by Close
	exited chan struct{} // closed when the reader goroutine returns
	once   sync.Once
	closed atomic.Bool

	gmu     sync.Mutex // guards started, stopped, inRead
	started bool
	stopped bool
	inRead  bool
	readErr error // set by the reader before it closes data

	recvMu   sync.Mutex // serialises Recv; guards the fields below
	fr       *linesplit.Framer
	chunk    []byte // unfed rest of the chunk taken from data
	chunkBuf []byte // the whole chunk, returned to free when fed
	eof      bool   // data was closed and drained
	seq      uint64
	last     linebatch.Hint // size of the previous batch, to size the next

	oversizeLog *logging.Sampler // rate-limits oversize-line warnings
}

var _ transport.Receiver = (*Receiver)(nil)

// NewReceiver validates cfg and returns a receiver of cfg.Input (os.Stdin
// when nil). Nothing is read before the first Recv.
func NewReceiver(cfg Config) (*Receiver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:         cfg,
		log:         cfg.Logger.With("transport", name),
		m:           newPipeMetrics(cfg.Metrics),
		data:        make(chan []byte, readQueueChunks),
		free:        make(chan []byte, readQueueChunks),
		stop:        make(chan struct{}),
		exited:      make(chan struct{}),
		fr:          linesplit.New(cfg.MaxLineBytes),
		oversizeLog: logging.Every(linebatch.OversizeLogInterval),
	}
	return r, nil
}

// Name returns "pipe".
func (r *Receiver) Name() string { return name }

// start launches the reader goroutine once.
func (r *Receiver) start() {
	r.gmu.Lock()
	defer r.gmu.Unlock()
	if r.started || r.stopped {
		return
	}
	r.started = true
	for range readQueueChunks {
		r.free <- make([]byte, 0, r.cfg.ReadBufferBytes)
	}
	go r.readLoop()
}

// readLoop reads the input into free chunks and queues them on data.
func (r *Receiver) readLoop() {
	defer close(r.exited)
	for {
		var buf []byte
		select {
		case buf = <-r.free:
		case <-r.stop:
			return
		}
		r.gmu.Lock()
		if r.stopped {
			r.gmu.Unlock()
			return
		}
		r.inRead = true
		r.gmu.Unlock()
		n, err := r.cfg.Input.Read(buf[:cap(buf)])
		r.gmu.Lock()
		r.inRead = false
		r.gmu.Unlock()
		if n > 0 {
			r.m.bytesRead.Add(float64(n))
			select {
			case r.data <- buf[:n]:
			case <-r.stop:
				return
			}
		} else {
			r.free <- buf[:0] // the slot it came from is free
		}
		if err != nil {
			r.readErr = err
			close(r.data)
			return
		}
	}
}

// Recv returns the next lines under limits. It waits for the first line
// until one arrives, ctx is done (ctx.Err(), nothing consumed),
// Config.RecvTimeout passes (an empty batch and nil), the input ends
// (transport.ErrClosed) or the receiver is closed; after the first line it
// takes only what is already buffered. A dead letter counts as a record
// toward limits.
func (r *Receiver) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	if r.closed.Load() {
		return transport.Batch{}, errClosed("recv")
	}
	r.start()
	var (
		b       = linebatch.New(limits, r.last)
		timeout <-chan time.Time
	)
	if r.cfg.RecvTimeout > 0 {
		t := time.NewTimer(r.cfg.RecvTimeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		for !b.Full() {
			fr := r.fr.Next()
			if fr.Kind == linesplit.None {
				break
			}
			r.add(&b, fr)
		}
		if b.Full() {
			break
		}
		if r.chunk != nil {
			r.feed()
			continue
		}
		if r.eof {
			if fr := r.fr.Finish(); fr.Kind != linesplit.None {
				r.add(&b, fr)
				continue
			}
			if b.Len() > 0 {
				break
			}
			if r.readErr != nil && !errors.Is(r.readErr, io.EOF) {
				return transport.Batch{}, transport.NewError(transport.ErrRecv, name, "recv", fmt.Errorf("read input: %w", r.readErr))
			}
			return transport.Batch{}, errClosed("recv")
		}
		if b.Len() > 0 {
			// Take more only if it is already there.
			select {
			case c, ok := <-r.data:
				r.take(c, ok)
				continue
			default:
			}
			break
		}
		select {
		case c, ok := <-r.data:
			r.take(c, ok)
		case <-ctx.Done():
			return transport.Batch{}, ctx.Err()
		case <-timeout:
			return transport.Batch{}, nil
		case <-r.stop:
			return transport.Batch{}, errClosed("recv")
		}
	}
	return r.build(&b), nil
}

// take installs a chunk received from data, or notes the end of input.
func (r *Receiver) take(c []byte, ok bool) {
	if !ok {
		r.eof = true
		return
	}
	r.chunk, r.chunkBuf = c, c
}

// feed copies as much of the current chunk as fits into the framer and
// returns the chunk to the pool once it is all in. Call it only after
// the framer's Next returned a None frame.
func (r *Receiver) feed() {
	n := copy(r.fr.Space(), r.chunk)
	r.fr.Wrote(n)
	r.chunk = r.chunk[n:]
	if len(r.chunk) == 0 {
		r.free <- r.chunkBuf[:0] // its slot is free: it came from the pool
		r.chunk, r.chunkBuf = nil, nil
	}
}

// add appends one framed line to the batch; a blank line is consumed
// without an entry and without a sequence number.
func (r *Receiver) add(b *linebatch.Builder, fr linesplit.Frame) {
	if fr.Kind != linesplit.Line && fr.Kind != linesplit.Oversize {
		return
	}
	r.seq++
	tok := Token{Seq: r.seq}
	if fr.Kind == linesplit.Line {
		b.AddLine(fr.Line, tok)
		return
	}
	b.AddDeadLetter(fr.Line, linebatch.OversizeReason(fr, Section, r.cfg.MaxLineBytes), tok)
	r.m.oversize.Inc()
	if ok, suppressed := r.oversizeLog.Allow(); ok {
		r.log.Warn("line over the size limit sent to dead letters",
			"seq", r.seq, "line_bytes", fr.Size, "max_line_bytes", r.cfg.MaxLineBytes,
			"suppressed_since_last", suppressed)
	}
}

// build turns the gathered lines into a batch stamped with the current
// time.
func (r *Receiver) build(b *linebatch.Builder) transport.Batch {
	batch, hint := b.Batch(time.Now())
	r.m.linesRead.Add(float64(len(batch.Records)))
	r.last = hint
	return batch
}

// Commit does nothing: a stream cannot be replayed. It returns
// transport.ErrClosed after Close.
func (r *Receiver) Commit(context.Context, []transport.Token) error {
	if r.closed.Load() {
		return errClosed("commit")
	}
	return nil
}

// Health returns transport.ErrClosed after Close, or the input's read
// error once the input failed; nil otherwise (including at a clean end of
// input).
func (r *Receiver) Health(context.Context) error {
	if r.closed.Load() {
		return errClosed("health")
	}
	select {
	case <-r.exited:
		if r.readErr != nil && !errors.Is(r.readErr, io.EOF) {
			return transport.NewError(transport.ErrRecv, name, "health", fmt.Errorf("read input: %w", r.readErr))
		}
	default:
	}
	return nil
}

// Close wakes a waiting Recv, which returns transport.ErrClosed, and stops
// the reader goroutine. It waits for the goroutine (until ctx is done)
// unless the goroutine is blocked in Read, which cannot be interrupted: it
// then ends when that Read returns. The input is not closed.
func (r *Receiver) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.closed.Store(true)
		r.gmu.Lock()
		r.stopped = true
		r.gmu.Unlock()
		close(r.stop)
	})
	r.gmu.Lock()
	started, reading := r.started, r.inRead
	r.gmu.Unlock()
	if !started || reading {
		return nil
	}
	select {
	case <-r.exited:
	case <-ctx.Done():
	}
	return nil
}
