package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linebatch"
)

// ErrUnframable is a record whose payload cannot be written as one NDJSON
// line: it contains "\n", ends with "\r" (a reader would strip it), is
// empty or whitespace only (a reader would skip it), or is longer than
// Config.MaxLineBytes (a reader would dead-letter it). The sender refuses
// such a record rather than escape it, so that what is written reads back
// byte for byte.
var ErrUnframable = linebatch.ErrUnframable

// Sender appends records to an NDJSON file, one payload and "\n" per
// record. It is a transport.Sender and is safe for concurrent use.
//
// Every Send and SendBatch writes through a buffer. Under the default
// flush policy "batch" the buffer is flushed to the operating system
// before the call returns, so accepted records survive a crash of the
// process; "bytes" and "interval" flush later, trading that for fewer
// writes (see FlushPolicy). What survives a crash of the machine depends
// on Config.Sync: see SyncPolicy. Close flushes and fsyncs whatever the
// policies. Record keys, headers and timestamps are not written.
//
// One Sender per file: with several writers a line may interleave with
// another writer's write.
type Sender struct {
	cfg Config
	log *slog.Logger
	m   *fileMetrics

	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	dirty bool                  // written since the last fsync
	st    linebatch.SenderState // closed by Close; broken by a write, flush or fsync failure
	check func(payload []byte) error

	stop    chan struct{}
	done    chan struct{}
	onSync  func() // test hook: called with mu held after a background fsync
	onFlush func() // test hook: called with mu held after a background flush
}

var _ transport.Sender = (*Sender)(nil)

// NewSender validates cfg and opens Path for writing, creating it (and
// fsyncing its directory, unless Sync is "none") if needed; with Append
// false an existing file is truncated. With the "interval" sync or flush
// policy it starts a goroutine that Close stops.
func NewSender(cfg Config) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	_, statErr := os.Stat(cfg.Path)
	created := errors.Is(statErr, fs.ErrNotExist)
	flags := os.O_WRONLY | os.O_CREATE
	if cfg.appendMode() {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(cfg.Path, flags, 0o644)
	if err != nil {
		return nil, transport.NewError(transport.ErrConnection, name, "open",
			fmt.Errorf("open %s for writing: %w (check %s.path and that its directory exists and is writable)", cfg.Path, err, Section))
	}
	s := &Sender{
		cfg:   cfg,
		log:   cfg.Logger.With("transport", name, "path", cfg.Path),
		m:     newFileMetrics(cfg.Metrics),
		f:     f,
		check: linebatch.PayloadCheck(name, Section, cfg.MaxLineBytes),
		w:     bufio.NewWriterSize(f, cfg.WriteBufferBytes),
	}
	if created && cfg.Sync != SyncNone {
		if err := syncDir(filepath.Dir(cfg.Path)); err != nil {
			_ = f.Close()
			return nil, transport.NewError(transport.ErrConnection, name, "open", err)
		}
		s.m.fsyncs.Inc()
	}
	var flushEvery, syncEvery time.Duration
	if cfg.Flush == FlushOnInterval {
		flushEvery = cfg.FlushInterval
	}
	if cfg.Sync == SyncOnInterval {
		syncEvery = cfg.SyncInterval
	}
	if flushEvery > 0 || syncEvery > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.background(flushEvery, syncEvery)
	}
	return s, nil
}

// Name returns "file".
func (s *Sender) Name() string { return name }

// usable returns transport.ErrClosed after Close, the failure that broke
// the sender as a transport.ErrSend error, or nil. Call with mu held.
func (s *Sender) usable(op string) error { return s.st.Usable(name, op) }

// Send writes one record. See SendBatch.
func (s *Sender) Send(ctx context.Context, rec transport.Record) error {
	return linebatch.SingleError(s.SendBatch(ctx, []transport.Record{rec}))
}

// SendBatch writes the records in order into the buffer and flushes it as
// the flush policy says: before it returns under "batch" (then, with the
// "every_write" sync policy, it also fsyncs the file), once FlushBytes are
// buffered under "bytes", in the background under "interval". Records
// that cannot be framed (ErrUnframable) are skipped and listed in a
// *transport.BatchError (fatal: retrying will not help); the others are
// written. A write, flush or fsync failure, here or in the background, is
// a fatal transport.ErrSend error, and the sender refuses further sends.
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
		return s.fail("write", err)
	}
	if n.Lines > 0 {
		// A full buffer writes through on its own, so the file may hold
		// unsynced data whatever the flush policy says.
		s.dirty = true
		s.m.linesWritten.Add(float64(n.Lines))
		s.m.bytesWritten.Add(float64(n.Bytes))
		if s.cfg.Flush == FlushBatch || (s.cfg.Flush == FlushBytes && s.w.Buffered() >= s.cfg.FlushBytes) {
			if err := s.w.Flush(); err != nil {
				return s.fail("flush", err)
			}
		}
		if s.cfg.Sync == SyncEveryWrite {
			if err := s.sync(); err != nil {
				return s.fail("fsync", err)
			}
		}
	}
	if be != nil {
		s.m.rejected.Add(float64(len(be.Failed)))
		return be
	}
	return nil
}

// fail marks the sender broken after an I/O error and returns it.
func (s *Sender) fail(op string, err error) error {
	err = fmt.Errorf("%s %s: %w", op, s.cfg.Path, err)
	s.st.Broken = err
	s.log.Error("file sender failed; it refuses further sends", "error", err)
	return transport.NewError(transport.ErrSend, name, op, err)
}

// sync fsyncs the file if it has unsynced writes. Call with mu held.
func (s *Sender) sync() error {
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.dirty = false
	s.m.fsyncs.Inc()
	return nil
}

// background flushes every flushEvery while records are buffered and
// fsyncs every syncEvery while there are unsynced writes; a zero period
// turns that half off.
func (s *Sender) background(flushEvery, syncEvery time.Duration) {
	defer close(s.done)
	var flushC, syncC <-chan time.Time
	if flushEvery > 0 {
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		flushC = t.C
	}
	if syncEvery > 0 {
		t := time.NewTicker(syncEvery)
		defer t.Stop()
		syncC = t.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-flushC:
			s.mu.Lock()
			if s.st.Broken == nil && !s.st.Closed && s.w.Buffered() > 0 {
				if err := s.w.Flush(); err != nil {
					_ = s.fail("flush", err)
				} else {
					s.dirty = true
					if s.onFlush != nil {
						s.onFlush()
					}
				}
			}
			s.mu.Unlock()
		case <-syncC:
			s.mu.Lock()
			if s.st.Broken == nil && !s.st.Closed && s.dirty {
				if err := s.sync(); err != nil {
					_ = s.fail("fsync", err)
				} else if s.onSync != nil {
					s.onSync()
				}
			}
			s.mu.Unlock()
		}
	}
}

// Flush writes buffered data to the operating system and fsyncs the file,
// whatever the policy.
func (s *Sender) Flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable("flush"); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return s.fail("flush", err)
	}
	s.dirty = true
	if err := s.sync(); err != nil {
		return s.fail("fsync", err)
	}
	return nil
}

// Health returns nil while the sender can write; otherwise
// transport.ErrClosed after Close, or the write failure that broke it.
func (s *Sender) Health(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usable("health")
}

// Close stops the background flush and fsync, flushes, fsyncs and closes
// the file. Later calls return nil.
func (s *Sender) Close(context.Context) error {
	s.mu.Lock()
	if s.st.Closed {
		s.mu.Unlock()
		return nil
	}
	s.st.Closed = true
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.st.Broken == nil {
		if err := s.w.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", s.cfg.Path, err))
		} else {
			s.dirty = true
			if err := s.sync(); err != nil {
				errs = append(errs, fmt.Errorf("fsync %s: %w", s.cfg.Path, err))
			}
		}
	}
	if err := s.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s: %w", s.cfg.Path, err))
	}
	if err := errors.Join(errs...); err != nil {
		return transport.NewError(transport.ErrSend, name, "close", err)
	}
	return nil
}
