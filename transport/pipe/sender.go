package pipe

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linebatch"
)

// ErrUnframable is a record whose payload cannot be written as one NDJSON
// line: it contains "\n", ends with "\r" (a reader would strip it), is
// empty or whitespace only (a reader would skip it), or is longer than
// Config.MaxLineBytes. The sender refuses it rather than escape it, so
// that the next program in the pipeline reads exactly one line per record.
var ErrUnframable = linebatch.ErrUnframable

// Sender writes records as NDJSON lines to an output stream (standard
// output by default), one payload and "\n" per record, for shell
// pipelines. It is a transport.Sender and is safe for concurrent use.
//
// Records of one call are coalesced in a buffer and flushed before the
// call returns. A write blocks while the reader downstream is slow; ctx
// cannot interrupt a blocked write. Record keys, headers and timestamps
// are not written. Close flushes but does not close the output.
type Sender struct {
	cfg Config
	log *slog.Logger
	m   *pipeMetrics

	mu    sync.Mutex
	w     *bufio.Writer
	st    linebatch.SenderState // closed by Close; broken by a write, flush or fsync failure
	check func(payload []byte) error
}

var _ transport.Sender = (*Sender)(nil)

// NewSender validates cfg and returns a sender to cfg.Output (os.Stdout
// when nil).
func NewSender(cfg Config) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sender{
		cfg:   cfg,
		log:   cfg.Logger.With("transport", name),
		m:     newPipeMetrics(cfg.Metrics),
		check: linebatch.PayloadCheck(name, Section, cfg.MaxLineBytes),
		w:     bufio.NewWriterSize(cfg.Output, cfg.WriteBufferBytes),
	}, nil
}

// Name returns "pipe".
func (s *Sender) Name() string { return name }

// usable returns transport.ErrClosed after Close, the failure that broke
// the sender as a transport.ErrSend error, or nil. Call with mu held.
func (s *Sender) usable(op string) error { return s.st.Usable(name, op) }

// Send writes one record. See SendBatch.
func (s *Sender) Send(ctx context.Context, rec transport.Record) error {
	return linebatch.SingleError(s.SendBatch(ctx, []transport.Record{rec}))
}

// SendBatch writes the records in order and flushes them. Records that
// cannot be framed (ErrUnframable) are skipped and listed in a
// *transport.BatchError (fatal: retrying will not help); the others are
// written. A write failure (for example the reader downstream went away)
// is a fatal transport.ErrSend error, and the sender refuses further
// sends.
func (s *Sender) SendBatch(ctx context.Context, records []transport.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable("send"); err != nil {
		return err
	}
	n, be, err := linebatch.WriteLines(s.w, records, s.check)
	if err != nil {
		return s.fail(err)
	}
	if n.Lines > 0 {
		if err := s.w.Flush(); err != nil {
			return s.fail(err)
		}
		s.m.linesWritten.Add(float64(n.Lines))
		s.m.bytesWritten.Add(float64(n.Bytes))
	}
	if be != nil {
		s.m.rejected.Add(float64(len(be.Failed)))
		return be
	}
	return nil
}

// fail marks the sender broken after a write error and returns it.
func (s *Sender) fail(err error) error {
	err = fmt.Errorf("write output: %w", err)
	s.st.Broken = err
	s.log.Error("pipe sender failed; it refuses further sends", "error", err)
	return transport.NewError(transport.ErrSend, name, "send", err)
}

// Health returns nil while the sender can write; otherwise
// transport.ErrClosed after Close, or the write failure that broke it.
func (s *Sender) Health(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usable("health")
}

// Close flushes anything buffered (nothing is, after a successful call)
// and refuses later sends. It does not close the output. Later calls
// return nil.
func (s *Sender) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Closed {
		return nil
	}
	s.st.Closed = true
	if s.st.Broken != nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return transport.NewError(transport.ErrSend, name, "close", fmt.Errorf("flush output: %w", err))
	}
	return nil
}
