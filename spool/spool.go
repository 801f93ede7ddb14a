package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/keel-go/keel/logging"
)

// Entry is one record handed out by Peek.
type Entry struct {
	// Seq is the record's sequence number: it increases by one per
	// appended record, also across restarts. Acknowledge with Ack(Seq).
	Seq uint64
	// Payload is the record as appended (decompressed). The caller owns it.
	Payload []byte
	// AppendedAt is when Append wrote the record.
	AppendedAt time.Time
}

// segment is one segment file. Fields are guarded as noted.
type segment struct {
	// Immutable after creation.
	id      uint64
	path    string
	codec   codec
	first   uint64
	created int64

	// Guarded by Spool.mu.
	end     int64  // bytes of published records: written to the file or still in the write buffer
	flushed int64  // end of the whole frames written to the file (<= end): how far a reader may read
	sealed  bool   // no more appends
	last    uint64 // when sealed: the highest sequence number it may hold
	records int64  // unacknowledged records expected in it
	bytes   int64  // unacknowledged bytes, damaged spans not yet skipped included

	// Reader-owned (Spool.rmu).
	scanned  int64 // offset up to which damage and losses were accounted
	decoded  int64 // offset up to which undecodable payloads were accounted
	finished bool  // its lost tail was accounted

	// Writer-owned (the writer slot).
	wf   *os.File
	wend int64 // end of the frames appended so far (buffered ones included)

	// Guarded by Spool.bmu.
	fend   int64 // bytes written to the file
	fframe int64 // end of the last whole frame written to the file
}

// flight is a record handed out and not yet acknowledged.
type flight struct {
	seq  uint64
	seg  *segment
	off  int64
	size int64
	ts   int64
}

// cursor is the reader's position.
type cursor struct {
	seg  *segment
	off  int64
	next uint64 // lowest sequence number the next frame may carry
	f    *os.File
	fseg *segment
	sc   scanner
}

// Spool is a durable FIFO of byte records on disk. It is safe for
// concurrent use: appends are serialised in sequence order, and one
// consumer at a time reads with Peek and acknowledges with Ack.
type Spool struct {
	cfg    Config
	name   string
	dir    string
	codec  codec
	log    *slog.Logger
	ins    *instruments
	now    func() time.Time
	statfs func(string) (uint64, bool, error)

	lockFile  *os.File
	closing   chan struct{}
	isClosing atomic.Bool // set just before closing is closed
	closeOnce sync.Once
	closeErr  error
	loopStop  chan struct{}
	loopDone  chan struct{}
	kick      chan struct{} // asks the loop to fsync sealed segments now

	// Writer slot: a one-token semaphore so that waiting honours ctx.
	wsem      chan struct{}
	active    *segment
	nextSegID uint64
	wgen      atomic.Uint64 // completed writes to segment files
	broken    atomic.Pointer[error]

	// Write buffer: frames of the active segment not yet written to its
	// file (see bufferFlushBytes). The writer encodes into it; readers,
	// the sync tick, Sync and Close write it out.
	bmu      sync.Mutex
	wbuf     []byte   // file bytes [bseg.fend, bseg.fend+len(wbuf)) of bseg
	bseg     *segment // the segment wbuf belongs to, or nil
	bounds   []int64  // frame boundaries in wbuf: where each buffered chunk of frames ends
	bufferOn bool     // frames may wait in wbuf: sync interval or never, with the space reserve
	resv     *os.File // the space reserve (reserve.go), or nil
	prealloc func(f *os.File, n int64) error
	resvLog  *logging.Sampler

	// Group commit.
	syncMu    sync.Mutex // serialises syncThrough
	smu       sync.Mutex // guards the fields below
	syncSeg   *segment
	syncedGen uint64
	pending   []*os.File // sealed segments awaiting their fsync
	dirDirty  bool       // segments were created since the last directory fsync

	// Ledger.
	lmu         sync.Mutex
	ledger      *os.File
	ledgerGen   uint64
	ledgerLast  ledgerState
	ledgerDirty bool

	// Shared state.
	mu        sync.Mutex
	segs      []*segment
	nextSeq   uint64
	acked     uint64
	floor     uint64 // acknowledged at open
	readHigh  uint64
	records   int64
	bytes     int64
	diskBytes int64
	appendGen uint64
	dataCh    chan struct{}
	freedGen  uint64
	spaceCh   chan struct{}
	closed    bool

	// Reader.
	rmu      sync.Mutex
	cur      cursor
	inflight []flight

	// Free disk estimate.
	freeKnown   atomic.Bool
	freeAtPoll  atomic.Int64
	freeWritten atomic.Int64
	freePolled  atomic.Int64 // unix nanos of the last statfs

	// Counters behind Stats.
	writes, reads, acks           atomic.Uint64
	droppedNewest, droppedOldest  atomic.Uint64
	fullEvents, corruptions, lost atomic.Uint64
	truncated                     atomic.Int64

	encOnce sync.Once
	enc     *zstd.Encoder
	encErr  error
	decOnce sync.Once
	dec     *zstd.Decoder
	decErr  error

	corruptLog *logging.Sampler
	dropLog    *logging.Sampler
	flushLog   *logging.Sampler

	// fsyncHook, set by tests, replaces fsync (fuzz targets skip it,
	// fault tests make it fail).
	fsyncHook func(*os.File) error

	// hookFull, when set by a test, runs when an append is about to wait
	// for room under the block policy.
	hookFull func(reason string)
	// hookReadFlush, when set by a test, runs when a reader has found the
	// records it wants still in the write buffer, before it writes the
	// buffer out.
	hookReadFlush func()
}

// closedCh is a closed channel, returned to waiters that must not wait.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Open opens (creating if needed) the spool in cfg.Dir and recovers what is
// on disk: it truncates a torn tail of the newest segment, sets aside
// segments with an unreadable header, and rebuilds a missing or damaged
// ledger from the segments (then every record on disk is unacknowledged).
// Damaged records inside segments are skipped and counted when the reader
// reaches them. ctx bounds the recovery scan.
//
// An invalid cfg is an error matching ErrInvalidConfig that names the key;
// a directory held by another spool is ErrLocked.
func Open(ctx context.Context, cfg Config) (*Spool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Spool{
		cfg:        cfg,
		name:       cfg.Name,
		dir:        cfg.Dir,
		codec:      codecOf(cfg.Compression),
		log:        logger.With("spool", cfg.Name, "dir", cfg.Dir),
		ins:        newInstruments(cfg.Metrics, cfg.Name),
		now:        cfg.now,
		statfs:     cfg.statfs,
		closing:    make(chan struct{}),
		loopStop:   make(chan struct{}),
		loopDone:   make(chan struct{}),
		kick:       make(chan struct{}, 1),
		wsem:       make(chan struct{}, 1),
		corruptLog: logging.Every(5 * time.Second),
		dropLog:    logging.Every(10 * time.Second),
		flushLog:   logging.Every(10 * time.Second),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.statfs == nil {
		s.statfs = freeDisk
	}
	s.fsyncHook = cfg.fsync
	s.prealloc = cfg.prealloc
	if s.prealloc == nil {
		s.prealloc = preallocate
	}
	s.resvLog = logging.Every(time.Minute)
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool %q: create spool.dir %s: %w; point spool.dir at a writable directory", s.name, s.dir, err)
	}
	lf, err := lockDir(filepath.Join(s.dir, lockName))
	if err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("spool %q: %s: %w; each spool needs its own spool.dir", s.name, s.dir, ErrLocked)
		}
		return nil, fmt.Errorf("spool %q: lock %s: %w", s.name, s.dir, err)
	}
	s.lockFile = lf
	if err := s.recover(ctx); err != nil {
		s.releaseFiles()
		return nil, err
	}
	if cfg.Sync != SyncAlways {
		s.bmu.Lock()
		s.bufferOn = s.ensureReserveLocked()
		s.bmu.Unlock()
	}
	s.pollFree()
	s.updateGauges()
	s.ins.oldestAge.Set(s.OldestAge().Seconds())
	go s.loop()
	return s, nil
}

// recover rebuilds the in-memory state from the directory.
func (s *Spool) recover(ctx context.Context) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool %q: read spool.dir %s: %w", s.name, s.dir, err)
	}
	var ids []uint64
	var maxID uint64
	for _, e := range entries {
		id, corrupt, ok := parseSegName(e.Name())
		if !ok {
			continue
		}
		maxID = max(maxID, id)
		if !corrupt && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	// ReadDir sorts by name and names are zero-padded ids.
	s.nextSegID = maxID + 1

	led, ledOK, err := s.openLedger()
	if err != nil {
		return err
	}

	dirChanged := false
	var segs []*segment
	for i, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(s.dir, segName(id))
		h, size, err := readSegHeader(path)
		if err != nil {
			var ue *unsupportedError
			if errors.As(err, &ue) {
				return fmt.Errorf("spool %q: segment %s has %s: %w; open it with a build that reads it, or move the file away", s.name, path, ue.what, ErrCorrupt)
			}
			var pe *os.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("spool %q: read segment %s: %w", s.name, path, err)
			}
			if i == len(ids)-1 && size < segHeaderSize {
				// The newest segment was being created when the
				// process stopped: nothing was acknowledged in it.
				s.log.Warn("spool: removing an incomplete segment", "segment", path, "size", size)
				if rerr := os.Remove(path); rerr != nil {
					return fmt.Errorf("spool %q: remove incomplete segment %s: %w", s.name, path, rerr)
				}
				dirChanged = true
				continue
			}
			s.setAside(path, err.Error())
			dirChanged = true
			continue
		}
		if h.id != id {
			s.setAside(path, fmt.Sprintf("header names segment %d", h.id))
			dirChanged = true
			continue
		}
		if h.first == 0 {
			s.setAside(path, "first sequence number is 0")
			dirChanged = true
			continue
		}
		if n := len(segs); n > 0 && h.first < segs[n-1].first {
			s.setAside(path, fmt.Sprintf("first sequence number %d is below the previous segment's %d", h.first, segs[n-1].first))
			dirChanged = true
			continue
		}
		segs = append(segs, &segment{id: id, path: path, codec: h.codec, first: h.first, created: h.created, end: size, flushed: size, sealed: true})
	}

	acked := uint64(0)
	if ledOK {
		acked = led.acked
	}
	if len(segs) > 0 && segs[0].first > 0 && acked < segs[0].first-1 {
		acked = segs[0].first - 1
	}

	// A sealed segment holds the sequence numbers up to the next one's
	// first; its damage is accounted when the reader reaches it.
	for i := 0; i+1 < len(segs); i++ {
		seg := segs[i]
		seg.last = segs[i+1].first - 1
		seg.bytes = seg.end - segHeaderSize
		seg.scanned = segHeaderSize
		seg.records = countSeqs(max(seg.first, acked+1), seg.last)
	}
	// The newest segment may end in a torn frame: scan it whole.
	lastOnDisk := uint64(0)
	if n := len(segs); n > 0 {
		tail := segs[n-1]
		if err := s.scanTail(ctx, tail, acked); err != nil {
			return err
		}
		lastOnDisk = tail.last
		if tail.last < tail.first {
			// No intact frame at all.
			if err := os.Remove(tail.path); err != nil {
				return fmt.Errorf("spool %q: remove empty segment %s: %w", s.name, tail.path, err)
			}
			dirChanged = true
			segs = segs[:n-1]
		}
	}
	// Segments whose every record is acknowledged were not yet deleted.
	for len(segs) > 0 && segs[0].last <= acked {
		if err := os.Remove(segs[0].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool %q: remove acknowledged segment %s: %w", s.name, segs[0].path, err)
		}
		dirChanged = true
		segs = segs[1:]
	}

	next := max(lastOnDisk+1, acked+1, 1)
	if ledOK && led.next > next {
		// Appends that never reached the disk: a crash of the machine
		// before their fsync, or of the process while they were in the
		// write buffer (sync interval and never).
		missing := led.next - next
		s.lost.Add(missing)
		s.ins.lost.Add(float64(missing))
		s.log.Warn("spool: records appended before the last stop are not on disk (crash before they were written or fsynced)",
			"missing_records", missing, "ledger_next_seq", led.next, "disk_next_seq", next, "sync", string(s.cfg.Sync))
		next = led.next
	}

	s.segs = segs
	s.nextSeq = next
	s.acked = acked
	s.floor = acked
	s.readHigh = acked
	for _, seg := range segs {
		s.records += seg.records
		s.bytes += seg.bytes
		s.diskBytes += seg.end
	}
	if ledOK && led.read > acked {
		s.log.Info("spool: records handed out but not acknowledged before the last stop will be delivered again",
			"records", led.read-acked)
	}
	if dirChanged && s.cfg.Sync != SyncNever {
		if err := s.fsyncDir(); err != nil {
			return fmt.Errorf("spool %q: fsync spool.dir %s: %w", s.name, s.dir, err)
		}
	}
	// Position the reader on the first unacknowledged record.
	if _, _, _, err := s.peekFrame(); err != nil {
		return err
	}
	if err := s.writeLedger(s.cfg.Sync != SyncNever); err != nil {
		return err
	}
	lvl := slog.LevelDebug
	if s.corruptions.Load() > 0 || s.lost.Load() > 0 || !ledOK && len(segs) > 0 {
		lvl = slog.LevelWarn
	}
	s.log.Log(ctx, lvl, "spool: opened", "records", s.records, "bytes", s.bytes, "segments", len(segs),
		"next_seq", s.nextSeq, "acked_seq", s.acked, "ledger_ok", ledOK,
		"corruptions", s.corruptions.Load(), "lost_records", s.lost.Load(), "truncated_bytes", s.truncated.Load())
	return nil
}

// countSeqs is the number of sequence numbers in [lo, hi].
func countSeqs(lo, hi uint64) int64 {
	if hi < lo {
		return 0
	}
	return int64(hi - lo + 1) //nolint:gosec // bounded by the records a disk can hold
}

// readSegHeader reads a segment file's header and size.
func readSegHeader(path string) (segHeader, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return segHeader{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return segHeader{}, 0, err
	}
	b := make([]byte, segHeaderSize)
	n, _ := f.ReadAt(b, 0)
	h, err := decodeSegHeader(b[:n])
	return h, st.Size(), err
}

// setAside renames an unreadable segment to <name>.corrupt and counts it.
func (s *Spool) setAside(path, why string) {
	s.corrupt(KindSegment, "spool: setting aside an unreadable segment; its records are lost", "segment", path, "reason", why)
	if err := os.Rename(path, path+corruptSuffix); err != nil {
		s.log.Error("spool: cannot set aside unreadable segment", "segment", path, "error", err)
	}
}

// scanTail reads the newest segment whole: it counts its records, accounts
// for damage inside it, and truncates a torn or damaged tail.
func (s *Spool) scanTail(ctx context.Context, seg *segment, acked uint64) error {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool %q: open segment %s: %w", s.name, seg.path, err)
	}
	defer f.Close()
	var sc scanner
	sc.reset(f, seg.end)
	off := int64(segHeaderSize)
	expect := seg.first
	validEnd := off
	seg.last = max(seg.first, 1) - 1
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		it, err := sc.next(off, expect, anySeq)
		if err != nil {
			return fmt.Errorf("spool %q: read segment %s: %w", s.name, seg.path, err)
		}
		if it.kind == itemEnd {
			break
		}
		if it.kind == itemGarbage {
			if it.tail {
				break
			}
			s.corrupt(KindChecksum, "spool: skipping a damaged span in a segment", "segment", seg.path, "offset", it.off, "bytes", it.size)
			off += it.size
			continue
		}
		if it.seq > expect {
			s.addLost(countSeqs(max(expect, acked+1), it.seq-1))
		}
		if it.seq > acked {
			seg.records++
			seg.bytes += it.size
		}
		seg.last = it.seq
		expect = it.seq + 1
		off += it.size
		validEnd = off
	}
	if validEnd < seg.end {
		cut := seg.end - validEnd
		s.corrupt(KindTornTail, "spool: truncating a torn tail of the newest segment", "segment", seg.path, "offset", validEnd, "bytes", cut)
		s.truncated.Add(cut)
		s.ins.truncated.Add(float64(cut))
		if err := f.Truncate(validEnd); err != nil {
			return fmt.Errorf("spool %q: truncate torn tail of %s: %w", s.name, seg.path, err)
		}
		if s.cfg.Sync != SyncNever {
			if err := s.fsyncFile(f); err != nil {
				return fmt.Errorf("spool %q: fsync %s: %w", s.name, seg.path, err)
			}
		}
		seg.end = validEnd
		seg.flushed = validEnd
	}
	seg.scanned = seg.end
	seg.finished = true
	return nil
}

// corrupt counts one corruption of kind and logs it (rate-limited).
func (s *Spool) corrupt(kind, msg string, args ...any) {
	s.corruptions.Add(1)
	s.ins.corruptions[kind].Inc()
	if ok, suppressed := s.corruptLog.Allow(); ok {
		s.log.Warn(msg, append(args, "kind", kind, "suppressed", suppressed)...)
	}
}

// addLost counts records known lost.
func (s *Spool) addLost(n int64) {
	if n <= 0 {
		return
	}
	s.lost.Add(uint64(n))
	s.ins.lost.Add(float64(n))
}

// openLedger opens (creating) the ledger file and reads it.
func (s *Spool) openLedger() (ledgerState, bool, error) {
	path := filepath.Join(s.dir, ledgerName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return ledgerState{}, false, fmt.Errorf("spool %q: open ledger %s: %w", s.name, path, err)
	}
	s.ledger = f
	b := make([]byte, 2*ledgerSlotSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && n < len(b) && !errors.Is(err, io.EOF) {
		return ledgerState{}, false, fmt.Errorf("spool %q: read ledger %s: %w", s.name, path, err)
	}
	led, ok := decodeLedger(b[:n])
	switch {
	case ok:
		s.ledgerGen = led.gen
	case n == 0:
		s.log.Debug("spool: no ledger; rebuilding it from the segments")
	default:
		s.log.Warn("spool: ledger damaged; rebuilding it from the segments (records on disk will be delivered again)", "ledger", path)
	}
	return led, ok, nil
}

// writeLedger records the positions in the ledger (if they changed) and,
// with sync, fsyncs it.
func (s *Spool) writeLedger(sync bool) error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.ledger == nil {
		return nil
	}
	s.mu.Lock()
	st := ledgerState{next: s.nextSeq, read: s.readHigh, acked: s.acked}
	s.mu.Unlock()
	st.gen = s.ledgerLast.gen
	if st != s.ledgerLast || s.ledgerGen == 0 {
		s.ledgerGen++
		st.gen = s.ledgerGen
		if _, err := s.ledger.WriteAt(st.encode(), int64(st.gen%2)*ledgerSlotSize); err != nil {
			return fmt.Errorf("spool %q: write ledger: %w", s.name, err)
		}
		s.ledgerLast = st
		s.ledgerDirty = true
	}
	if sync && s.ledgerDirty {
		start := time.Now()
		if err := s.fsyncFile(s.ledger); err != nil {
			return fmt.Errorf("spool %q: fsync ledger: %w", s.name, err)
		}
		s.ins.fsync.Observe(time.Since(start).Seconds())
		s.ledgerDirty = false
	}
	return nil
}

// loop runs the periodic work: interval fsyncs, ledger fsyncs, the
// free-disk poll and the oldest-age gauge.
func (s *Spool) loop() {
	defer close(s.loopDone)
	tick := time.Second
	if s.cfg.Sync != SyncNever {
		tick = min(tick, s.cfg.SyncInterval)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastPoll := time.Now()
	lastAge := time.Time{}
	for {
		select {
		case <-s.loopStop:
			return
		case <-s.kick:
			// Sealed segments pile up: fsync them (and the active one)
			// without waiting for the tick.
			if s.broken.Load() == nil {
				_ = s.syncThrough(s.wgen.Load())
			}
			continue
		case <-t.C:
		}
		if s.cfg.Sync != SyncAlways && s.broken.Load() == nil {
			s.bmu.Lock()
			if !s.bufferOn && s.roomForReserve() {
				// Buffer again once the space reserve is back.
				s.bufferOn = s.ensureReserveLocked()
			}
			s.bmu.Unlock()
			// The write buffer's remainder waits at most one tick.
			if err := s.flushBuffer(); err != nil {
				if ok, suppressed := s.flushLog.Allow(); ok {
					s.log.Error("spool: writing the write buffer failed; retrying at the next tick", "error", err, "suppressed", suppressed)
				}
			}
		}
		if s.cfg.Sync == SyncInterval && s.broken.Load() == nil {
			// A failure marks the spool broken and is logged once there.
			_ = s.syncThrough(s.wgen.Load())
		}
		if s.cfg.Sync != SyncNever {
			if err := s.writeLedger(true); err != nil {
				s.log.Error("spool: ledger write failed", "error", err)
			}
		}
		if now := time.Now(); now.Sub(lastPoll) >= time.Second {
			lastPoll = now
			s.pollFree()
		}
		if now := time.Now(); now.Sub(lastAge) >= time.Second {
			lastAge = now
			s.ins.oldestAge.Set(s.OldestAge().Seconds())
		}
	}
}

// pollFree reads the free space of the spool's volume. A failure turns the
// watermark off until the next poll (fail-open) and is logged.
func (s *Spool) pollFree() {
	free, ok, err := s.statfs(s.dir)
	s.freePolled.Store(time.Now().UnixNano())
	if err != nil || !ok {
		s.freeKnown.Store(false)
		s.ins.freeDisk.Set(-1)
		if err != nil {
			s.log.Warn("spool: cannot read free disk space; the min_free_bytes watermark is off until it can", "error", err)
		}
		return
	}
	before := s.freeEstimate()
	f := int64(min(free, uint64(1)<<62))
	s.freeAtPoll.Store(f)
	s.freeWritten.Store(0)
	s.freeKnown.Store(true)
	s.ins.freeDisk.Set(float64(f))
	if f > before {
		s.signalSpace()
	}
}

// freeEstimate is the free space at the last poll minus what was written
// since.
func (s *Spool) freeEstimate() int64 {
	return s.freeAtPoll.Load() - s.freeWritten.Load()
}

// signalSpace wakes appenders waiting for room.
func (s *Spool) signalSpace() {
	s.mu.Lock()
	s.signalSpaceLocked()
	s.mu.Unlock()
}

func (s *Spool) signalSpaceLocked() {
	s.freedGen++
	if s.spaceCh != nil {
		close(s.spaceCh)
		s.spaceCh = nil
	}
}

// notifyDataLocked wakes readers waiting for records.
func (s *Spool) notifyDataLocked() {
	s.appendGen++
	if s.dataCh != nil {
		close(s.dataCh)
		s.dataCh = nil
	}
}

// updateGauges sets the size gauges.
func (s *Spool) updateGauges() {
	s.mu.Lock()
	s.updateGaugesLocked()
	s.mu.Unlock()
}

func (s *Spool) updateGaugesLocked() {
	s.ins.bytes.Set(float64(s.bytes))
	s.ins.records.Set(float64(s.records))
	s.ins.diskBytes.Set(float64(s.diskBytes))
	s.ins.segments.Set(float64(len(s.segs)))
}

// Close stops the spool: it wakes blocked Append and Peek calls (they
// return ErrClosed), waits for the append in progress, fsyncs the newest
// segment and the ledger whatever the sync policy, and releases the
// directory. Unacknowledged records stay on disk for the next Open. It
// returns the first fsync or close error; later calls return the same.
func (s *Spool) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Spool) close() error {
	s.isClosing.Store(true)
	close(s.closing)
	close(s.loopStop)
	<-s.loopDone
	s.wsem <- struct{}{} // held for good: no append runs after this
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()

	var errs []error
	if err := s.flushBuffer(); err != nil {
		errs = append(errs, fmt.Errorf("spool %q: records appended last could not be written to %s and are lost: %w", s.name, s.dir, err))
	}
	if err := s.syncThrough(s.wgen.Load()); err != nil {
		errs = append(errs, err)
	}
	if err := s.writeLedger(true); err != nil {
		errs = append(errs, err)
	}
	s.releaseFiles()
	s.ins.oldestAge.Set(0)
	return errors.Join(errs...)
}

// releaseFiles closes every file the spool holds.
func (s *Spool) releaseFiles() {
	s.syncMu.Lock() // no fsync runs on a file being closed
	defer s.syncMu.Unlock()
	s.smu.Lock()
	s.syncSeg = nil
	for _, f := range s.pending {
		_ = f.Close()
	}
	s.pending = nil
	s.smu.Unlock()
	if s.active != nil && s.active.wf != nil {
		_ = s.active.wf.Close()
		s.active.wf = nil
	}
	s.cur.closeFile()
	s.lmu.Lock()
	if s.ledger != nil {
		_ = s.ledger.Close()
		s.ledger = nil
	}
	s.lmu.Unlock()
	if s.enc != nil {
		_ = s.enc.Close()
	}
	if s.dec != nil {
		s.dec.Close()
	}
	s.bmu.Lock()
	if s.resv != nil {
		_ = s.resv.Close()
		s.resv = nil
	}
	s.bmu.Unlock()
	if s.lockFile != nil {
		_ = s.lockFile.Close()
		s.lockFile = nil
	}
}

// fsyncFile flushes f to stable storage.
func (s *Spool) fsyncFile(f *os.File) error {
	if s.fsyncHook != nil {
		return s.fsyncHook(f)
	}
	return syncData(f)
}

// fsyncDir makes creations and removals in the spool directory durable.
func (s *Spool) fsyncDir() error {
	if s.fsyncHook != nil {
		return nil
	}
	return syncDir(s.dir)
}

// encoder returns the shared zstd encoder.
func (s *Spool) encoder() (*zstd.Encoder, error) {
	s.encOnce.Do(func() {
		s.enc, s.encErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	})
	return s.enc, s.encErr
}

// decoder returns the shared zstd decoder.
func (s *Spool) decoder() (*zstd.Decoder, error) {
	s.decOnce.Do(func() {
		s.dec, s.decErr = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(HardMaxRecordBytes), zstd.WithDecoderConcurrency(1))
	})
	return s.dec, s.decErr
}

// Name returns the spool's name (spool.name).
func (s *Spool) Name() string { return s.name }

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Config returns the effective configuration (defaults applied).
func (s *Spool) Config() Config { return s.cfg }

// Len returns the number of unacknowledged records (handed out or not).
// Records on disk that turn out to be damaged are subtracted when the
// reader reaches them.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Bytes returns the unacknowledged bytes: the frames of unacknowledged
// records, headers included (the quantity spool.max_bytes bounds).
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// PressureRatio returns how full the spool is, in [0, 1]: the larger of
// Bytes/max_bytes and, when max_records is set, Len/max_records. With Name
// it makes a Spool a governor pressure source.
func (s *Spool) PressureRatio() float64 {
	s.mu.Lock()
	r := float64(s.bytes) / float64(s.cfg.MaxBytes)
	if s.cfg.MaxRecords > 0 {
		r = max(r, float64(s.records)/float64(s.cfg.MaxRecords))
	}
	s.mu.Unlock()
	return min(max(r, 0), 1)
}

// OldestAge returns the age of the oldest unacknowledged record, or 0 when
// the spool is empty or closed.
func (s *Spool) OldestAge() time.Duration {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0
	}
	var ts int64
	if len(s.inflight) > 0 {
		ts = s.inflight[0].ts
	} else {
		it, _, ok, err := s.peekFrame()
		if err != nil || !ok {
			return 0
		}
		ts = it.ts
	}
	return max(s.now().Sub(time.Unix(0, ts)), 0)
}

// Stats is a snapshot of a spool's state and counters.
type Stats struct {
	// Records is Len: the unacknowledged records.
	Records int64
	// Bytes is Bytes: the unacknowledged bytes.
	Bytes int64
	// DiskBytes is the size of the segment files.
	DiskBytes int64
	// Segments is the number of segment files.
	Segments int
	// InFlight is the number of records handed out and not acknowledged.
	InFlight int
	// OldestAge is OldestAge.
	OldestAge time.Duration
	// NextSeq is the sequence number the next append gets.
	NextSeq uint64
	// AckedSeq: every record up to this sequence number is acknowledged
	// (or dropped, or lost).
	AckedSeq uint64
	// Writes, Reads and Acks count records appended, handed out and
	// acknowledged by this Spool.
	Writes, Reads, Acks uint64
	// DroppedNewest and DroppedOldest count records discarded by the full
	// policies.
	DroppedNewest, DroppedOldest uint64
	// FullEvents counts appends that found the spool full.
	FullEvents uint64
	// Corruptions counts damaged spans, torn tails, unreadable segments
	// and undecodable payloads found (at open and while reading).
	Corruptions uint64
	// LostRecords counts records known lost (missing sequence numbers).
	LostRecords uint64
	// TruncatedBytes counts bytes cut from a torn tail at open.
	TruncatedBytes int64
	// FreeDiskBytes is the estimated free space of the volume, -1 when
	// unknown.
	FreeDiskBytes int64
}

// Stats returns a snapshot.
func (s *Spool) Stats() Stats {
	age := s.OldestAge()
	s.rmu.Lock()
	inflight := len(s.inflight)
	s.rmu.Unlock()
	s.mu.Lock()
	st := Stats{
		Records: s.records, Bytes: s.bytes, DiskBytes: s.diskBytes, Segments: len(s.segs),
		InFlight: inflight, OldestAge: age, NextSeq: s.nextSeq, AckedSeq: s.acked,
	}
	s.mu.Unlock()
	st.Writes, st.Reads, st.Acks = s.writes.Load(), s.reads.Load(), s.acks.Load()
	st.DroppedNewest, st.DroppedOldest = s.droppedNewest.Load(), s.droppedOldest.Load()
	st.FullEvents, st.Corruptions, st.LostRecords = s.fullEvents.Load(), s.corruptions.Load(), s.lost.Load()
	st.TruncatedBytes = s.truncated.Load()
	st.FreeDiskBytes = -1
	if s.freeKnown.Load() {
		st.FreeDiskBytes = s.freeEstimate()
	}
	return st
}
