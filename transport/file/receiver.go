package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linebatch"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

// name is the backend name in errors, logs and Name.
const name = "file"

// Token is the commit token of a line read from a file: the byte offset
// just past the line's terminator. Committing it resumes the file after
// that line. Only tokens returned by a Receiver's Recv commit anything; a
// Token built by hand, or one from before the file was truncated or
// replaced, is ignored by Commit.
type Token struct {
	// Offset is the byte offset just past the line's "\n".
	Offset int64
	ep     *epoch
}

// String returns "file:<offset>".
func (t Token) String() string { return "file:" + strconv.FormatInt(t.Offset, 10) }

// epoch identifies one reading of one file by one Receiver. It changes
// when the file is truncated or replaced, so that tokens of the old
// content cannot commit positions in the new one.
type epoch struct{ n uint64 }

// Receiver reads an NDJSON file line by line from its committed position.
// It is a transport.Receiver and is safe for concurrent use (Recv calls
// are serialised).
//
// Each delivered line is a record with format JSON and the receive time as
// timestamp; its Token is the byte offset after the line. Commit persists
// the highest committed offset to the position file atomically, so a
// restarted receiver resumes exactly after the last commit: lines received
// but not committed are delivered again (at-least-once).
//
// Framing: a line ends at "\n"; a trailing "\r" is stripped; lines of
// ASCII whitespace only are skipped (the token of the next line covers
// them). A line longer than Config.MaxLineBytes is not delivered and never
// held in memory whole: it becomes a DeadLetter whose payload is the first
// 4 KiB (at most MaxLineBytes) of the line and whose reason gives its size
// and the limit; its token is in Batch.Tokens, so committing the batch
// moves past it. A dead letter counts as a record toward the Limits.
//
// Following (the default): a missing file is waited for, a partial last
// line is held back until its newline arrives, and Recv waits at the end
// of the file, polling every Config.PollInterval. When the file becomes
// shorter than the read position (truncated, e.g. copytruncate rotation)
// or the path names a different file (rename rotation, once the old file
// is read to its end), the receiver logs a warning, persists position 0
// and reads the new content from the start; tokens of the old content are
// then ignored by Commit. At start-up a file shorter than the committed
// offset is handled the same way. A file replaced while no receiver runs
// by one at least as long as the committed offset cannot be told apart
// from the old one and is resumed at that offset.
//
// With Config.StopAtEOF the file is finite: a missing file is an error,
// an unterminated last line is delivered at the end, and Recv then
// returns transport.ErrClosed.
type Receiver struct {
	cfg     Config
	log     *slog.Logger
	m       *fileMetrics
	closing chan struct{}
	once    sync.Once
	closed  atomic.Bool
	health  atomic.Pointer[healthState]

	recvMu  sync.Mutex // serialises Recv and Close; guards the fields below
	f       *os.File
	fr      *linesplit.Framer
	counted int64          // offset up to which read bytes were counted
	waiting bool           // the file was missing and that was logged
	last    linebatch.Hint // size of the previous batch, to size the next
	now     func() time.Time

	oversizeLog *logging.Sampler // rate-limits oversize-line warnings

	stateMu   sync.Mutex // guards ep and delivered
	ep        *epoch
	delivered int64 // highest token offset handed out in ep

	commitMu  sync.Mutex // serialises position writes; guards committed
	committed int64
}

type healthState struct{ err error }

var _ transport.Receiver = (*Receiver)(nil)

// NewReceiver validates cfg, removes temporary position files a crash
// left behind and reads the committed position. It does not open the data
// file: Recv does, so a follower may start before the file exists.
//
// A position file that is not a byte offset is an error wrapping
// ErrCorruptPosition that names the file; the receiver does not guess.
func NewReceiver(cfg Config) (*Receiver, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	removed, err := removeStaleTemps(cfg.PositionPath)
	if err != nil {
		return nil, transport.NewError(transport.ErrRecv, name, "open", err)
	}
	for _, p := range removed {
		cfg.Logger.Info("removed temporary position file left by an interrupted commit", "file", p, "position_file", cfg.PositionPath)
	}
	off, err := readPosition(cfg.PositionPath, cfg.Path)
	if err != nil {
		return nil, transport.NewError(transport.ErrRecv, name, "open", err)
	}
	return &Receiver{
		cfg:         cfg,
		log:         cfg.Logger.With("transport", name, "path", cfg.Path),
		m:           newFileMetrics(cfg.Metrics),
		closing:     make(chan struct{}),
		fr:          linesplit.New(cfg.MaxLineBytes),
		now:         time.Now,
		oversizeLog: logging.Every(linebatch.OversizeLogInterval),
		ep:          &epoch{},
		delivered:   off,
		committed:   off,
	}, nil
}

// Name returns "file".
func (r *Receiver) Name() string { return name }

// Committed returns the committed offset: where a restarted receiver
// would resume.
func (r *Receiver) Committed() int64 {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	return r.committed
}

func errClosed(op string) error {
	return transport.NewError(transport.ErrClosed, name, op, nil)
}

// Recv returns the next lines under limits. It waits (following) until at
// least one line or dead letter is available, ctx is done (ctx.Err() is
// returned and nothing is consumed), or the receiver is closed; after the
// first line it takes only what the file already holds. See Receiver for
// framing, oversize lines, truncation and StopAtEOF.
func (r *Receiver) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	if r.closed.Load() {
		return transport.Batch{}, errClosed("recv")
	}
	var (
		b     = linebatch.New(limits, r.last)
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	defer r.countRead()
	ep := r.ep
	for {
		if r.f == nil {
			waiting, err := r.open()
			if err != nil {
				return transport.Batch{}, err
			}
			if waiting {
				if err := r.wait(ctx, &timer); err != nil {
					return transport.Batch{}, err
				}
				continue
			}
			ep = r.ep
		}
		for !b.Full() {
			fr := r.fr.Next()
			if fr.Kind == linesplit.None {
				break
			}
			r.add(&b, fr, ep)
		}
		if b.Full() {
			break
		}
		n, err := r.f.Read(r.fr.Space())
		r.fr.Wrote(n)
		if n > 0 {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if b.Len() > 0 {
				break // deliver what we have; the next call meets the error again
			}
			err = fmt.Errorf("read %s at offset %d: %w", r.cfg.Path, r.fr.ReadOffset(), err)
			r.setHealth(err)
			return transport.Batch{}, transport.NewError(transport.ErrRecv, name, "recv", err)
		}
		// End of the file for now.
		if r.cfg.StopAtEOF {
			if fr := r.fr.Finish(); fr.Kind != linesplit.None {
				r.add(&b, fr, ep)
			}
			if b.Len() > 0 {
				break
			}
			return transport.Batch{}, errClosed("recv")
		}
		if b.Len() > 0 {
			break
		}
		changed, err := r.checkFile()
		if err != nil {
			return transport.Batch{}, err
		}
		if changed {
			ep = r.ep
			continue
		}
		if err := r.wait(ctx, &timer); err != nil {
			return transport.Batch{}, err
		}
	}
	return r.build(&b), nil
}

// add appends one framed line to the batch; a blank line is consumed
// without an entry (the token of the next line covers it).
func (r *Receiver) add(b *linebatch.Builder, fr linesplit.Frame, ep *epoch) {
	tok := Token{Offset: fr.End, ep: ep}
	switch fr.Kind {
	case linesplit.Line:
		b.AddLine(fr.Line, tok)
	case linesplit.Oversize:
		b.AddDeadLetter(fr.Line, linebatch.OversizeReason(fr, Section, r.cfg.MaxLineBytes), tok)
		r.m.oversize.Inc()
		if ok, suppressed := r.oversizeLog.Allow(); ok {
			r.log.Warn("line over the size limit sent to dead letters",
				"offset", fr.End, "line_bytes", fr.Size, "max_line_bytes", r.cfg.MaxLineBytes,
				"suppressed_since_last", suppressed)
		}
	}
}

// build turns the gathered lines into a batch and records the highest
// token handed out.
func (r *Receiver) build(b *linebatch.Builder) transport.Batch {
	batch, hint := b.Batch(r.now())
	r.m.linesRead.Add(float64(len(batch.Records)))
	r.last = hint
	if n := len(batch.Tokens); n > 0 {
		r.stateMu.Lock()
		if t := batch.Tokens[n-1].(Token); t.ep == r.ep {
			r.delivered = t.Offset
		}
		r.stateMu.Unlock()
	}
	return batch
}

// countRead adds the bytes consumed since the last call to the metric.
func (r *Receiver) countRead() {
	if off := r.fr.Offset(); off > r.counted {
		r.m.bytesRead.Add(float64(off - r.counted))
		r.counted = off
	}
}

// open opens the data file at the committed position. It reports waiting
// when a follower's file does not exist yet.
func (r *Receiver) open() (waiting bool, err error) {
	f, err := os.Open(r.cfg.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !r.cfg.StopAtEOF {
			if !r.waiting {
				r.waiting = true
				r.log.Info("waiting for the file to appear", "poll_interval", r.cfg.PollInterval)
			}
			r.setHealth(fmt.Errorf("%s does not exist yet: waiting for it", r.cfg.Path))
			return true, nil
		}
		err = fmt.Errorf("open %s: %w (check %s.path)", r.cfg.Path, err, Section)
		r.setHealth(err)
		return false, transport.NewError(transport.ErrRecv, name, "open", err)
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (mode %s): the file transport needs a seekable file; use the pipe transport for streams", r.cfg.Path, info.Mode())
	}
	if err != nil {
		_ = f.Close()
		r.setHealth(err)
		return false, transport.NewError(transport.ErrRecv, name, "open", err)
	}
	start := r.Committed()
	if info.Size() < start {
		r.log.Warn("file is shorter than the committed position: it was truncated or replaced; reading it from the start",
			"committed_offset", start, "size", info.Size())
		if err := r.resetPosition(); err != nil {
			_ = f.Close()
			return false, err
		}
		start = 0
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		_ = f.Close()
		err = fmt.Errorf("seek %s to %d: %w", r.cfg.Path, start, err)
		r.setHealth(err)
		return false, transport.NewError(transport.ErrRecv, name, "open", err)
	}
	r.f = f
	r.fr.Reset(start)
	r.counted = start
	r.waiting = false
	r.setHealth(nil)
	return false, nil
}

// checkFile looks for truncation and rotation at the end of the file. It
// reports changed when reading should go on (more data in the old file, or
// a restart from 0).
func (r *Receiver) checkFile() (changed bool, err error) {
	st, err := r.f.Stat()
	if err != nil {
		err = fmt.Errorf("stat %s: %w", r.cfg.Path, err)
		r.setHealth(err)
		return false, transport.NewError(transport.ErrRecv, name, "recv", err)
	}
	read := r.fr.ReadOffset()
	if st.Size() < read {
		r.log.Warn("file was truncated below the read position; reading it from the start",
			"read_offset", read, "size", st.Size(), "dropped_partial_bytes", r.fr.Pending())
		if _, err := r.f.Seek(0, io.SeekStart); err != nil {
			err = fmt.Errorf("seek %s to 0: %w", r.cfg.Path, err)
			r.setHealth(err)
			return false, transport.NewError(transport.ErrRecv, name, "recv", err)
		}
		if err := r.resetPosition(); err != nil {
			return false, err
		}
		r.countRead()
		r.fr.Reset(0)
		r.counted = 0
		return true, nil
	}
	cur, err := os.Stat(r.cfg.Path)
	if err != nil || os.SameFile(st, cur) {
		return false, nil // same file, or the path is gone for now: keep following
	}
	if st.Size() > read {
		return true, nil // the old file grew meanwhile: read it to its end first
	}
	r.log.Warn("file was replaced (rotated); reading the new file from the start",
		"read_offset", read, "dropped_partial_bytes", r.fr.Pending())
	_ = r.f.Close()
	r.f = nil
	r.countRead()
	if err := r.resetPosition(); err != nil {
		return false, err
	}
	return true, nil
}

// resetPosition starts a new epoch at offset 0 and persists 0, so that a
// restart reads the new content from the start.
func (r *Receiver) resetPosition() error {
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.stateMu.Lock()
	r.ep = &epoch{n: r.ep.n + 1}
	r.delivered = 0
	r.stateMu.Unlock()
	r.m.resets.Inc()
	if r.committed == 0 {
		return nil
	}
	if err := writePosition(r.cfg.PositionPath, 0, r.m.fsyncs.Inc); err != nil {
		r.setHealth(err)
		return transport.NewError(transport.ErrCommit, name, "reset", err)
	}
	r.committed = 0
	return nil
}

// wait sleeps one poll interval, or until ctx is done or the receiver is
// closed.
func (r *Receiver) wait(ctx context.Context, timer **time.Timer) error {
	if *timer == nil {
		*timer = time.NewTimer(r.cfg.PollInterval)
	} else {
		(*timer).Reset(r.cfg.PollInterval)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closing:
		return errClosed("recv")
	case <-(*timer).C:
		return nil
	}
}

// Commit persists the highest offset among tokens, if it is past the
// committed one: it writes a temporary file beside the position file,
// fsyncs it, renames it into place and fsyncs the directory, so a crash
// leaves the old or the new position, never a torn one. Tokens of other
// types, hand-built tokens and tokens of content read before a truncation
// or rotation are ignored. A token past the last line handed out is
// refused (transport.ErrCommit), so a commit can never skip undelivered
// lines. A failed write is returned and the committed offset stays.
func (r *Receiver) Commit(_ context.Context, tokens []transport.Token) error {
	if r.closed.Load() {
		return errClosed("commit")
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	r.stateMu.Lock()
	ep, delivered := r.ep, r.delivered
	r.stateMu.Unlock()
	hi := int64(-1)
	for _, t := range tokens {
		ft, ok := t.(Token)
		if !ok || ft.ep != ep {
			continue
		}
		if ft.Offset > delivered {
			return transport.NewError(transport.ErrCommit, name, "commit",
				fmt.Errorf("token %s is past the last line delivered (offset %d): commit only tokens returned by this receiver's Recv", ft, delivered))
		}
		hi = max(hi, ft.Offset)
	}
	if hi <= r.committed {
		return nil
	}
	if err := writePosition(r.cfg.PositionPath, hi, r.m.fsyncs.Inc); err != nil {
		r.setHealth(err)
		return transport.NewError(transport.ErrCommit, name, "commit", err)
	}
	r.committed = hi
	r.m.commits.Inc()
	return nil
}

// Health returns nil while the receiver can make progress; otherwise
// transport.ErrClosed after Close, or the last open, read or commit
// failure (including a follower's missing file). A later success clears
// it.
func (r *Receiver) Health(context.Context) error {
	if r.closed.Load() {
		return errClosed("health")
	}
	if h := r.health.Load(); h != nil && h.err != nil {
		return transport.NewError(transport.ErrRecv, name, "health", h.err)
	}
	return nil
}

func (r *Receiver) setHealth(err error) {
	if err == nil {
		if r.health.Load() != nil {
			r.health.Store(nil)
		}
		return
	}
	r.health.Store(&healthState{err: err})
}

// Close wakes a waiting Recv, which returns transport.ErrClosed, and
// closes the file. It commits nothing: lines received but not committed
// are delivered again by the next receiver.
func (r *Receiver) Close(context.Context) error {
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.closing)
	})
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	if err != nil {
		return transport.NewError(transport.ErrRecv, name, "close", fmt.Errorf("close %s: %w", r.cfg.Path, err))
	}
	return nil
}
