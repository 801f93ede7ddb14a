package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxChunk bounds the frames one append adds to the write buffer at once
// (a larger record is a chunk of its own).
const maxChunk = 1 << 20

// Append writes one record and returns its sequence number. Under sync
// "always" it returns once the record is written to the operating system
// and fsynced (it then survives a crash of the machine); under "interval"
// and "never" once it is in the spool's write buffer, which is written out
// within one tick of the spool's loop. See the package documentation for
// what survives a crash under each policy.
//
// When the record does not fit, the full policy applies: block waits
// (honouring ctx), drop_newest returns ErrDropped, drop_oldest discards
// the oldest records, error returns a *FullError. A record over
// spool.max_record_bytes is ErrTooLarge.
func (s *Spool) Append(ctx context.Context, payload []byte) (uint64, error) {
	one := [1][]byte{payload}
	seq, n, err := s.AppendBatch(ctx, one[:])
	if n == 0 {
		return 0, err
	}
	return seq, err
}

// AppendBatch writes the payloads in order, with as few write calls (and,
// under sync "always", one fsync), as their size allows. The records
// appended get consecutive sequence numbers first, first+1, ...; n says
// how many were appended. n < len(payloads) only with an error: the rest
// were not appended (or, with ErrDropped, were discarded and counted).
// Under sync "always" an fsync failure returns n > 0 with an error
// matching ErrBroken: those records are in the spool, but their
// durability is unknown.
func (s *Spool) AppendBatch(ctx context.Context, payloads [][]byte) (first uint64, n int, err error) {
	if len(payloads) == 0 {
		return 0, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	for i, p := range payloads {
		if int64(len(p)) > s.cfg.MaxRecordBytes {
			return 0, 0, fmt.Errorf("spool %q: record %d is %d bytes, over spool.max_record_bytes (%d): %w", s.name, i, len(p), s.cfg.MaxRecordBytes, ErrTooLarge)
		}
	}
	stored := payloads
	if s.codec == codecZstd {
		enc, err := s.encoder()
		if err != nil {
			return 0, 0, fmt.Errorf("spool %q: zstd encoder: %w", s.name, err)
		}
		stored = make([][]byte, len(payloads))
		for i, p := range payloads {
			stored[i] = enc.EncodeAll(p, make([]byte, 0, len(p)/2+64))
		}
	}
	for i, p := range stored {
		if int64(frameHeaderSize+len(p)) > s.cfg.MaxBytes {
			return 0, 0, fmt.Errorf("spool %q: record %d needs %d bytes on disk, over spool.max_bytes (%d): %w", s.name, i, frameHeaderSize+len(p), s.cfg.MaxBytes, ErrTooLarge)
		}
	}
	select {
	case s.wsem <- struct{}{}:
	default:
		select {
		case s.wsem <- struct{}{}:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-s.closing:
			return 0, 0, s.closedErr()
		}
	}
	if s.isClosing.Load() {
		<-s.wsem
		return 0, 0, s.closedErr()
	}
	first, n, gen, err := s.appendLocked(ctx, payloads, stored)
	<-s.wsem
	if n > 0 && s.cfg.Sync == SyncAlways {
		if serr := s.syncThrough(gen); serr != nil && err == nil {
			err = serr
		}
	}
	return first, n, err
}

// appendLocked runs with the writer slot held.
func (s *Spool) appendLocked(ctx context.Context, payloads, stored [][]byte) (first uint64, n int, gen uint64, err error) {
	ts := s.now().UnixNano()
	reclaimed := false
	for n < len(stored) {
		if b := s.broken.Load(); b != nil {
			return first, n, gen, *b
		}
		fsz := int64(frameHeaderSize + len(stored[n]))
		if s.active == nil || (s.active.wend > segHeaderSize && s.active.wend+fsz > s.cfg.SegmentBytes) {
			if err := s.roll(); err != nil {
				return first, n, gen, err
			}
		}
		seg := s.active
		s.mu.Lock()
		records, bytes, seq, freedGen := s.records, s.bytes, s.nextSeq, s.freedGen
		s.mu.Unlock()

		// Frames are encoded straight into the write buffer, under bmu so
		// that no reader writes the buffer out half-encoded.
		s.bmu.Lock()
		mark := len(s.wbuf)
		buf := s.wbuf
		var (
			k      int
			cb     int64
			raw    int64
			reason string
		)
		for n+k < len(stored) {
			f := int64(frameHeaderSize + len(stored[n+k]))
			if k > 0 && (seg.wend+cb+f > s.cfg.SegmentBytes || cb+f > maxChunk) {
				break
			}
			if reason = s.fullReason(records+int64(k)+1, bytes+cb+f, cb+f); reason != "" {
				break
			}
			buf = appendFrame(buf, seq+uint64(k), ts, stored[n+k])
			raw += int64(len(payloads[n+k]))
			cb += f
			k++
		}
		s.wbuf = buf
		if k > 0 {
			err := s.commitLocked(seg, mark, k, cb, raw)
			s.bmu.Unlock()
			if err != nil {
				return first, n, gen, err
			}
			if n == 0 {
				first = seq
			}
			n += k
			gen = s.wgen.Load()
			continue
		}
		s.bmu.Unlock()

		// The next record does not fit.
		if reason == ReasonMinFreeBytes && !reclaimed {
			// Acknowledged records in the segment being written hold
			// disk space that only sealing it can return.
			ok, err := s.reclaimActive()
			if err != nil {
				return first, n, gen, err
			}
			if ok {
				reclaimed = true
				continue
			}
		}
		s.fullEvents.Add(1)
		s.ins.full[reason].Inc()
		switch s.cfg.FullPolicy {
		case Error:
			return first, n, gen, s.fullError(reason, nil)
		case DropNewest:
			dropped := len(stored) - n
			s.droppedNewest.Add(uint64(dropped))
			s.ins.drops[DropNewest].Add(float64(dropped))
			if ok, suppressed := s.dropLog.Allow(); ok {
				s.log.Warn("spool: full, dropping new records (full_policy drop_newest)", "reason", reason, "dropped", dropped, "suppressed", suppressed)
			}
			return first, n, gen, fmt.Errorf("spool %q: %d record(s) dropped, %s reached: %w", s.name, dropped, reason, ErrDropped)
		case DropOldest:
			if err := s.dropOldest(fsz); err != nil {
				return first, n, gen, err
			}
		default: // Block
			if err := s.waitSpace(ctx, reason, freedGen); err != nil {
				return first, n, gen, err
			}
		}
	}
	return first, n, gen, nil
}

// reclaimActive seals the segment being written when every record is
// acknowledged, so that its file is deleted and its disk space returned.
// It reports whether it did.
func (s *Spool) reclaimActive() (bool, error) {
	s.mu.Lock()
	empty := s.records == 0
	s.mu.Unlock()
	if !empty || s.active == nil || s.active.wend <= segHeaderSize {
		return false, nil
	}
	if err := s.roll(); err != nil {
		return false, err
	}
	// Move the reader off the sealed segment, which deletes it.
	s.rmu.Lock()
	_, _, _, err := s.peekFrame()
	s.rmu.Unlock()
	return true, err
}

// fullReason returns the bound that records and bytes (the totals with the
// new record) or add more bytes on disk would break, or "".
func (s *Spool) fullReason(records, bytes, add int64) string {
	if s.cfg.MaxRecords > 0 && records > s.cfg.MaxRecords {
		return ReasonMaxRecords
	}
	if bytes > s.cfg.MaxBytes {
		return ReasonMaxBytes
	}
	if s.cfg.MinFreeBytes > 0 && s.freeKnown.Load() && s.freeEstimate()-add < s.cfg.MinFreeBytes {
		// The estimate only goes down between polls: look again before
		// refusing, at most every 50 ms.
		if time.Now().UnixNano()-s.freePolled.Load() >= int64(50*time.Millisecond) {
			s.pollFree()
		}
		if s.freeKnown.Load() && s.freeEstimate()-add < s.cfg.MinFreeBytes {
			return ReasonMinFreeBytes
		}
	}
	return ""
}

// fullError builds the *FullError for reason.
func (s *Spool) fullError(reason string, err error) error {
	limit := int64(0)
	switch reason {
	case ReasonMaxBytes:
		limit = s.cfg.MaxBytes
	case ReasonMaxRecords:
		limit = s.cfg.MaxRecords
	case ReasonMinFreeBytes:
		limit = s.cfg.MinFreeBytes
	}
	return &FullError{Spool: s.name, Dir: s.dir, Reason: reason, Limit: limit, Policy: s.cfg.FullPolicy, Err: err}
}

// waitSpace waits until room may have been made since freedGen.
func (s *Spool) waitSpace(ctx context.Context, reason string, freedGen uint64) error {
	s.mu.Lock()
	if s.freedGen != freedGen {
		s.mu.Unlock()
		return nil
	}
	if s.spaceCh == nil {
		s.spaceCh = make(chan struct{})
	}
	ch := s.spaceCh
	s.mu.Unlock()
	if s.hookFull != nil {
		s.hookFull(reason)
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return s.fullError(reason, ctx.Err())
	case <-s.closing:
		return s.closedErr()
	}
}

// dropOldest discards the oldest records until a frame of fsz bytes fits.
func (s *Spool) dropOldest(fsz int64) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	dropped := 0
	defer func() {
		if dropped == 0 {
			return
		}
		s.droppedOldest.Add(uint64(dropped))
		s.ins.drops[DropOldest].Add(float64(dropped))
		s.mu.Lock()
		s.updateGaugesLocked()
		s.mu.Unlock()
		if err := s.writeLedger(false); err != nil {
			s.log.Error("spool: ledger write failed", "error", err)
		}
		if ok, suppressed := s.dropLog.Allow(); ok {
			s.log.Warn("spool: full, dropping the oldest records (full_policy drop_oldest)", "dropped", dropped, "suppressed", suppressed)
		}
	}()
	for {
		s.mu.Lock()
		records, bytes := s.records, s.bytes
		s.mu.Unlock()
		reason := s.fullReason(records+1, bytes+fsz, fsz)
		if reason == "" {
			return nil
		}
		seg, err := s.oldestSegment()
		if err != nil {
			return err
		}
		if seg == nil || (reason == ReasonMinFreeBytes && seg == s.active) {
			// Nothing left whose removal frees what is short.
			return s.fullError(reason, nil)
		}
		ok, err := s.dropOne()
		if err != nil {
			return err
		}
		if !ok {
			return s.fullError(reason, nil)
		}
		dropped++
		s.mu.Lock()
		done := s.collectDoneLocked()
		s.mu.Unlock()
		s.removeSegments(done)
	}
}

// Write buffer. Under sync "interval" and "never" an append leaves its
// frames in the write buffer and writes out only whole pages, once the
// buffer holds bufferFlushBytes: small appends then cost one write call
// per 64 KiB instead of one each, and the page cache is filled with
// page-aligned writes, which the kernel serves with large folios (an
// unaligned write of a 16 KiB record touches five pages, each added to the
// page cache on its own, where an aligned one adds one 16 KiB folio). The
// remainder, less than a page, is written at the next tick of the loop,
// when a reader reaches it, on Sync, at a segment roll and on Close. The
// space reserve (see reserve.go) guarantees that writing out what was
// accepted cannot fail for lack of space; without it every append is
// written through, as under "always".
const (
	// bufferFlushBytes is the fill at which the buffer's whole pages are
	// written out. It bounds what a crash of the process can lose.
	bufferFlushBytes = 64 << 10
	// pageSize is the alignment of the buffer's writes.
	pageSize = 4096
)

// isNoSpace reports an out-of-space or out-of-quota error.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// commitLocked makes the k frames (cb bytes) just encoded at wbuf[mark:]
// part of the spool: it keeps them in the buffer (writing out its whole
// pages once it is full enough) or writes them through, and publishes the
// records. On error the frames are taken out of the buffer again and
// nothing is published. Called with the writer slot and bmu held.
func (s *Spool) commitLocked(seg *segment, mark, k int, cb, raw int64) error {
	s.bounds = append(s.bounds, seg.wend+cb)
	if !s.bufferOn || len(s.wbuf) >= bufferFlushBytes {
		if err := s.writeOutLocked(seg, !s.bufferOn); err != nil {
			s.wbuf = s.wbuf[:mark]
			s.bounds = s.bounds[:len(s.bounds)-1]
			if s.bufferOn && isNoSpace(err) {
				// These frames are refused; the ones accepted before
				// them must still reach the file.
				if rerr := s.rescueLocked(seg); rerr != nil {
					s.log.Error("spool: disk full and the buffered records could not be written; retrying at the next tick",
						"error", rerr)
				}
			}
			return err
		}
	}
	seg.wend += cb
	s.mu.Lock()
	seg.end = seg.wend
	seg.flushed = seg.fframe
	seg.records += int64(k)
	seg.bytes += cb
	s.records += int64(k)
	s.bytes += cb
	s.diskBytes += cb
	s.nextSeq += uint64(k)
	s.notifyDataLocked()
	s.updateGaugesLocked()
	s.mu.Unlock()
	s.freeWritten.Add(cb)
	s.writes.Add(uint64(k))
	s.ins.writes.Add(float64(k))
	s.ins.writeBytes.Add(float64(raw))
	return nil
}

// writeOutLocked writes the buffer to seg's file: all of it, or (all
// false) its whole pages. A failed write is cut from the file again so
// that the file ends where it did, and nothing leaves the buffer; out of
// space is a *FullError with ReasonDiskFull. Called with bmu held.
func (s *Spool) writeOutLocked(seg *segment, all bool) error {
	data := s.wbuf
	if !all {
		end := (seg.fend + int64(len(data))) &^ (pageSize - 1)
		if end <= seg.fend {
			return nil
		}
		data = data[:end-seg.fend]
	}
	if len(data) == 0 {
		return nil
	}
	off := seg.fend
	if _, err := seg.wf.WriteAt(data, off); err != nil {
		// Cut a partial write so that the file ends on a frame.
		if terr := seg.wf.Truncate(off); terr != nil {
			s.setBroken(fmt.Errorf("write %s: %w; truncate after the failed write: %w", seg.path, err, terr))
		}
		if isNoSpace(err) {
			s.fullEvents.Add(1)
			s.ins.full[ReasonDiskFull].Inc()
			return s.fullError(ReasonDiskFull, err)
		}
		return fmt.Errorf("spool %q: write %s: %w", s.name, seg.path, err)
	}
	end := off + int64(len(data))
	seg.fend = end
	rest := copy(s.wbuf, s.wbuf[len(data):])
	s.wbuf = s.wbuf[:rest]
	if cap(s.wbuf) > 4*maxChunk {
		// Do not keep the buffer of a large record.
		s.wbuf = append(make([]byte, 0, 2*bufferFlushBytes), s.wbuf...)
	}
	i := 0
	for i < len(s.bounds) && s.bounds[i] <= end {
		seg.fframe = s.bounds[i]
		i++
	}
	s.bounds = s.bounds[:copy(s.bounds, s.bounds[i:])]
	s.wgen.Add(1)
	return nil
}

// flushBuffer writes the whole write buffer to the active segment's file
// and lets readers see it.
func (s *Spool) flushBuffer() error {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	return s.flushBufferLocked()
}

func (s *Spool) flushBufferLocked() error {
	seg := s.bseg
	if seg == nil || len(s.wbuf) == 0 {
		return nil
	}
	if b := s.broken.Load(); b != nil {
		return *b
	}
	if err := s.writeOutLocked(seg, true); err != nil {
		if !isNoSpace(err) || !s.bufferOn {
			return err
		}
		return s.rescueLocked(seg)
	}
	s.mu.Lock()
	seg.flushed = seg.fframe
	s.mu.Unlock()
	return nil
}

// flushFor writes the buffer out when it holds frames of seg, for a reader
// that reached the end of what seg's file holds. It reports whether it did.
func (s *Spool) flushFor(seg *segment) bool {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	if s.bseg != seg || len(s.wbuf) == 0 {
		return false
	}
	if err := s.flushBufferLocked(); err != nil {
		if ok, suppressed := s.flushLog.Allow(); ok {
			s.log.Error("spool: writing the write buffer for a reader failed", "error", err, "suppressed", suppressed)
		}
		return false
	}
	return true
}

// sealBuffer writes out the buffer of the segment being sealed. Called
// with the writer slot held.
func (s *Spool) sealBuffer() error {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	if err := s.flushBufferLocked(); err != nil {
		return err
	}
	s.bseg = nil
	s.bounds = s.bounds[:0]
	return nil
}

// Sealed segments awaiting their fsync keep their file open. Beyond
// syncPendingSeals of them a roll asks the background loop to fsync them
// now; beyond maxPendingSeals the roll fsyncs them itself, so that open
// files stay bounded and an append waits for the disk only when it falls
// that far behind.
const (
	syncPendingSeals = 16
	maxPendingSeals  = 64
)

// roll seals the active segment and creates the next one. The sealed
// segment and the directory entry of the new one are fsynced by the next
// syncThrough (before Append returns under "always", within sync_interval
// under "interval", on Sync and Close).
func (s *Spool) roll() error {
	if old := s.active; old != nil {
		// Readers leave a sealed segment at what its file holds: write
		// out the buffer before sealing.
		if err := s.sealBuffer(); err != nil {
			return err
		}
		s.smu.Lock()
		s.pending = append(s.pending, old.wf)
		s.syncSeg = nil
		overflow := len(s.pending) > maxPendingSeals
		if !overflow && len(s.pending) > syncPendingSeals {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		s.smu.Unlock()
		old.wf = nil
		s.mu.Lock()
		old.sealed = true
		old.last = s.nextSeq - 1
		s.notifyDataLocked()
		s.mu.Unlock()
		s.active = nil
		if overflow {
			if err := s.syncThrough(s.wgen.Load()); err != nil {
				return err
			}
		}
	}
	s.mu.Lock()
	first := s.nextSeq
	s.mu.Unlock()
	id := s.nextSegID
	s.nextSegID++
	path := filepath.Join(s.dir, segName(id))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if isNoSpace(err) {
			s.fullEvents.Add(1)
			s.ins.full[ReasonDiskFull].Inc()
			return s.fullError(ReasonDiskFull, err)
		}
		return fmt.Errorf("spool %q: create segment %s: %w", s.name, path, err)
	}
	h := segHeader{version: formatVersion, codec: s.codec, id: id, first: first, created: s.now().UnixNano()}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		if isNoSpace(err) {
			s.fullEvents.Add(1)
			s.ins.full[ReasonDiskFull].Inc()
			return s.fullError(ReasonDiskFull, err)
		}
		return fmt.Errorf("spool %q: create segment %s: %w", s.name, path, err)
	}
	seg := &segment{id: id, path: path, codec: s.codec, first: first, created: h.created,
		end: segHeaderSize, flushed: segHeaderSize, wend: segHeaderSize, wf: f, scanned: segHeaderSize,
		fend: segHeaderSize, fframe: segHeaderSize}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.diskBytes += segHeaderSize
	s.updateGaugesLocked()
	s.mu.Unlock()
	s.smu.Lock()
	s.syncSeg = seg
	s.dirDirty = true
	s.smu.Unlock()
	s.active = seg
	s.freeWritten.Add(segHeaderSize)
	s.bmu.Lock()
	s.bseg = seg
	s.bmu.Unlock()
	return nil
}

// setBroken makes every later append fail with an error matching
// ErrBroken.
func (s *Spool) setBroken(cause error) {
	err := fmt.Errorf("spool %q: %w: %w", s.name, ErrBroken, cause)
	if s.broken.CompareAndSwap(nil, &err) {
		s.log.Error("spool: refusing appends until reopened", "error", cause)
	}
}

// syncThrough makes every write up to generation gen durable, sharing one
// fsync among concurrent callers. Callers are serialised by syncMu, which
// is held across the fsyncs; smu, which a segment roll needs, is held only
// to take and record the work.
func (s *Spool) syncThrough(gen uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.smu.Lock()
	if b := s.broken.Load(); b != nil {
		s.smu.Unlock()
		// After a failed fsync the kernel may have dropped the dirty
		// pages: a later fsync that succeeds proves nothing.
		return *b
	}
	if s.syncedGen >= gen && len(s.pending) == 0 && !s.dirDirty {
		s.smu.Unlock()
		return nil
	}
	target := s.wgen.Load()
	pending := s.pending
	s.pending = nil
	var active *os.File
	if s.syncSeg != nil {
		active = s.syncSeg.wf
	}
	dir := s.dirDirty
	s.dirDirty = false
	s.smu.Unlock()

	fail := func(what string, err error) error {
		s.setBroken(fmt.Errorf("fsync %s: %w", what, err))
		return *s.broken.Load()
	}
	for i, f := range pending {
		start := time.Now()
		err := s.fsyncFile(f)
		s.ins.fsync.Observe(time.Since(start).Seconds())
		if err != nil {
			for _, g := range pending[i:] {
				_ = g.Close()
			}
			return fail(f.Name(), err)
		}
		_ = f.Close()
	}
	if active != nil {
		start := time.Now()
		err := s.fsyncFile(active)
		s.ins.fsync.Observe(time.Since(start).Seconds())
		if err != nil {
			return fail(active.Name(), err)
		}
	}
	if dir {
		if err := s.fsyncDir(); err != nil {
			return fail(s.dir, err)
		}
	}
	s.smu.Lock()
	s.syncedGen = max(s.syncedGen, target)
	s.smu.Unlock()
	return nil
}

// Flush writes the write buffer out to the operating system, without an
// fsync: every record appended before the call then survives a crash of
// the process, whatever the sync policy (a crash of the machine is the
// policy's business). It is a no-op under "always", whose appends are
// written through, and cheap when the buffer is empty. A caller that
// reports records as safe once appended (the tiered sink does, so that
// its source may commit) calls Flush first.
func (s *Spool) Flush() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return s.closedErr()
	}
	return s.flushBuffer()
}

// Sync writes out the write buffer and fsyncs the segments written since
// the last fsync, the spool directory (when segments were created) and the
// ledger, whatever the sync policy: every record appended and every
// acknowledgement made before the call is then on stable storage.
func (s *Spool) Sync() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return s.closedErr()
	}
	if err := s.flushBuffer(); err != nil {
		return err
	}
	if err := s.syncThrough(s.wgen.Load()); err != nil {
		return err
	}
	return s.writeLedger(true)
}
