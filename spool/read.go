package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultPeekRecords is the record limit of a Peek with maxRecords <= 0.
const DefaultPeekRecords = 1000

// Peek returns the next records after those already handed out, oldest
// first, waiting until there is at least one, ctx ends (ctx.Err()) or the
// spool closes (ErrClosed). It returns at most maxRecords records
// (DefaultPeekRecords if <= 0) and stops before the payloads would exceed
// maxBytes (<= 0: no byte limit), but always returns at least one record.
//
// Records stay in the spool until acknowledged with Ack; Rewind hands the
// unacknowledged ones out again, and so does the next Open. Damaged
// records met on the way are skipped and counted.
//
// Peek, TryPeek, Ack and Rewind are meant for one consumer: the records
// are handed out in sequence order and Ack is cumulative.
func (s *Spool) Peek(ctx context.Context, maxRecords int, maxBytes int64) ([]Entry, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, gen, err := s.read(maxRecords, maxBytes)
		if err != nil || len(out) > 0 {
			return out, err
		}
		s.mu.Lock()
		ch := closedCh
		if s.appendGen == gen {
			if s.dataCh == nil {
				s.dataCh = make(chan struct{})
			}
			ch = s.dataCh
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closing:
			return nil, s.closedErr()
		}
	}
}

// TryPeek is Peek without waiting: it returns no records (and a nil error)
// when none is available now.
func (s *Spool) TryPeek(maxRecords int, maxBytes int64) ([]Entry, error) {
	out, _, err := s.read(maxRecords, maxBytes)
	return out, err
}

func (s *Spool) closedErr() error {
	return fmt.Errorf("spool %q: %w", s.name, ErrClosed)
}

// read hands out the next records. gen is the append generation seen
// before reading: a waiter compares it to notice appends made meanwhile.
func (s *Spool) read(maxRecords int, maxBytes int64) ([]Entry, uint64, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultPeekRecords
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	gen, closed := s.appendGen, s.closed
	s.mu.Unlock()
	if closed {
		return nil, gen, s.closedErr()
	}
	var (
		out   []Entry
		total int64
		rerr  error
	)
	for len(out) < maxRecords {
		it, seg, ok, err := s.peekFrame()
		if err != nil {
			rerr = err
			break
		}
		if !ok {
			break
		}
		payload, err := s.decode(seg.codec, it.payload)
		if err != nil {
			if it.off >= seg.decoded {
				s.corrupt(KindDecode, "spool: skipping a record whose payload cannot be decoded", "segment", seg.path, "offset", it.off, "seq", it.seq, "codec", seg.codec.String(), "error", err)
				s.addLost(1)
				s.mu.Lock()
				s.releaseLocked(seg, it.size)
				s.updateGaugesLocked()
				s.mu.Unlock()
			}
			s.cur.consume(it)
			seg.decoded = max(seg.decoded, s.cur.off)
			continue
		}
		seg.decoded = max(seg.decoded, it.off+it.size)
		if len(out) > 0 && maxBytes > 0 && total+int64(len(payload)) > maxBytes {
			break
		}
		total += int64(len(payload))
		out = append(out, Entry{Seq: it.seq, Payload: payload, AppendedAt: time.Unix(0, it.ts)})
		s.inflight = append(s.inflight, flight{seq: it.seq, seg: seg, off: it.off, size: it.size, ts: it.ts})
		s.cur.consume(it)
	}
	if n := len(out); n > 0 {
		s.mu.Lock()
		s.readHigh = max(s.readHigh, out[n-1].Seq)
		s.mu.Unlock()
		s.reads.Add(uint64(n))
		s.ins.reads.Add(float64(n))
		// An error after some records surfaces on the next call.
		return out, gen, nil
	}
	return nil, gen, rerr
}

// decode returns a copy of the stored payload, decompressed.
func (s *Spool) decode(c codec, stored []byte) ([]byte, error) {
	switch c {
	case codecNone:
		return bytes.Clone(stored), nil
	case codecZstd:
		d, err := s.decoder()
		if err != nil {
			return nil, err
		}
		return d.DecodeAll(stored, nil)
	}
	return nil, fmt.Errorf("unknown codec %d", c)
}

// Ack acknowledges every record with a sequence number up to upTo,
// whether handed out or not: they leave the spool, and each segment whose
// records are all acknowledged is deleted. Acknowledging at or below an
// earlier acknowledgement is a no-op; a sequence number that was never
// assigned is ErrAckAhead and changes nothing.
//
// The acknowledgement is written to the ledger before anything else
// changes, so it survives a crash of the process once Ack returns; it
// reaches stable storage within spool.sync_interval (policies always and
// interval) or at Sync/Close. When the ledger cannot be written, Ack
// returns the error and changes nothing: the records stay unacknowledged
// and a later Ack (cumulative) can acknowledge them. A lost
// acknowledgement means the records are delivered again, never that
// records are lost.
func (s *Spool) Ack(upTo uint64) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return s.closedErr()
	case upTo >= s.nextSeq:
		next := s.nextSeq
		s.mu.Unlock()
		return fmt.Errorf("spool %q: ack %d, but the last sequence number assigned is %d: %w", s.name, upTo, next-1, ErrAckAhead)
	case upTo <= s.acked:
		s.mu.Unlock()
		return nil
	}
	// The ledger first: if it cannot be written, nothing changes and the
	// records stay unacknowledged (in flight, counted, on disk). The
	// positions are then put back until the records are released below
	// (peekFrame skips, without releasing, what acked covers).
	prevAcked, prevRead := s.acked, s.readHigh
	s.acked, s.readHigh = upTo, max(prevRead, upTo)
	s.mu.Unlock()
	err := s.writeLedger(false)
	s.mu.Lock()
	s.acked, s.readHigh = prevAcked, prevRead
	s.mu.Unlock()
	if err != nil {
		return err
	}

	var n int
	s.mu.Lock()
	for len(s.inflight) > 0 && s.inflight[0].seq <= upTo {
		f := s.inflight[0]
		s.inflight = s.inflight[1:]
		s.releaseLocked(f.seg, f.size)
		n++
	}
	s.mu.Unlock()
	var rerr error
	if len(s.inflight) == 0 {
		// Records not handed out yet.
		for {
			it, seg, ok, err := s.peekFrame()
			if err != nil {
				rerr = err
				break
			}
			if !ok || it.seq > upTo {
				break
			}
			s.mu.Lock()
			s.releaseLocked(seg, it.size)
			s.mu.Unlock()
			s.cur.consume(it)
			n++
		}
	}
	if len(s.inflight) == 0 && cap(s.inflight) > 1024 {
		s.inflight = nil
	}
	s.mu.Lock()
	s.acked = max(s.acked, upTo)
	s.readHigh = max(s.readHigh, upTo)
	done := s.collectDoneLocked()
	s.signalSpaceLocked()
	s.updateGaugesLocked()
	s.mu.Unlock()
	s.removeSegments(done)
	s.acks.Add(uint64(n))
	s.ins.acks.Add(float64(n))
	// A periodic ledger write since the one above may have recorded the
	// positions from before this acknowledgement: write them again (a
	// no-op when the ledger holds them). Should that fail, the records
	// are acknowledged here and at worst delivered again after a crash.
	if err := s.writeLedger(false); err != nil {
		s.log.Warn("spool: rewriting the ledger after an acknowledgement failed; the records may be delivered again after a crash",
			"spool", s.name, "acked_seq", upTo, "error", err)
	}
	return rerr
}

// Rewind makes the records handed out and not acknowledged available to
// Peek again, from the oldest. Use it when a consumer gives up on records
// it holds (for example after its downstream failed) and wants them again.
func (s *Spool) Rewind() {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if len(s.inflight) == 0 {
		return
	}
	f := s.inflight[0]
	s.inflight = s.inflight[:0]
	c := &s.cur
	c.seg, c.off, c.next = f.seg, f.off, f.seq
	s.mu.Lock()
	s.notifyDataLocked()
	s.mu.Unlock()
}

// releaseLocked removes one record of size bytes of seg from the counts.
func (s *Spool) releaseLocked(seg *segment, size int64) {
	seg.records--
	seg.bytes -= size
	s.records--
	s.bytes -= size
}

// peekFrame returns the next intact, unacknowledged frame at the cursor,
// without consuming it, after skipping damaged spans, missing records and
// acknowledged frames (accounting for each the first time it is passed).
// ok is false when there is nothing more to read now. Called with rmu held.
func (s *Spool) peekFrame() (item, *segment, bool, error) {
	c := &s.cur
	for {
		s.mu.Lock()
		if c.seg == nil {
			if len(s.segs) == 0 {
				s.mu.Unlock()
				return item{}, nil, false, nil
			}
			c.seg, c.off, c.next = s.segs[0], segHeaderSize, max(c.next, s.segs[0].first)
		}
		seg := c.seg
		end, logical, sealed, maxSeq := seg.flushed, seg.end, seg.sealed, seg.last
		if !sealed {
			maxSeq = s.nextSeq - 1
		}
		acked := s.acked
		s.mu.Unlock()

		if c.off >= end {
			if !sealed {
				// Records still in the write buffer: write it out. A
				// writer may have written it out since flushed was
				// read above (flushFor then finds it empty), so look
				// again whenever the file has grown: missing that would
				// leave Peek waiting for an append that may never come.
				if end < logical {
					if s.hookReadFlush != nil {
						s.hookReadFlush()
					}
					s.flushFor(seg)
					s.mu.Lock()
					grown := seg.flushed > end
					s.mu.Unlock()
					if grown {
						continue
					}
				}
				return item{}, nil, false, nil
			}
			if !s.leaveSegment() {
				return item{}, nil, false, nil
			}
			continue
		}
		if err := c.open(seg, end); err != nil {
			return item{}, nil, false, fmt.Errorf("spool %q: open segment %s: %w", s.name, seg.path, err)
		}
		it, err := c.sc.next(c.off, c.next, maxSeq)
		if err != nil {
			return item{}, nil, false, fmt.Errorf("spool %q: read segment %s: %w", s.name, seg.path, err)
		}
		switch it.kind {
		case itemEnd:
			// The file is shorter than recorded: treat the rest as a
			// damaged tail.
			s.skipDamage(seg, c.off, end-c.off, true)
			c.off = end
		case itemGarbage:
			s.skipDamage(seg, it.off, it.size, it.tail)
			c.off += it.size
		case itemFrame:
			if it.seq > c.next && it.off >= seg.scanned {
				s.loseLocked(seg, c.next, it.seq-1)
			}
			if it.seq <= acked {
				// Acknowledged before the last stop, not yet deleted.
				if it.off >= seg.scanned {
					s.mu.Lock()
					seg.bytes -= it.size
					s.bytes -= it.size
					s.mu.Unlock()
				}
				c.consume(it)
				continue
			}
			return it, seg, true, nil
		}
	}
}

// skipDamage accounts (the first time) for a damaged span of seg.
func (s *Spool) skipDamage(seg *segment, off, size int64, tail bool) {
	if off < seg.scanned {
		return
	}
	kind, msg := KindChecksum, "spool: skipping a damaged span in a segment"
	if tail {
		kind, msg = KindTornTail, "spool: skipping a damaged or incomplete segment tail"
	}
	s.corrupt(kind, msg, "segment", seg.path, "offset", off, "bytes", size)
	s.mu.Lock()
	seg.bytes -= size
	s.bytes -= size
	s.updateGaugesLocked()
	s.mu.Unlock()
	seg.scanned = max(seg.scanned, off+size)
}

// loseLocked accounts for the missing sequence numbers [from, to] of seg.
// Called with rmu held.
func (s *Spool) loseLocked(seg *segment, from, to uint64) {
	s.mu.Lock()
	n := countSeqs(max(from, s.floor+1), to)
	n = min(n, seg.records)
	seg.records -= n
	s.records -= n
	s.updateGaugesLocked()
	s.mu.Unlock()
	if n > 0 {
		s.addLost(n)
		if ok, suppressed := s.corruptLog.Allow(); ok {
			s.log.Warn("spool: records missing from a segment were lost to damage", "segment", seg.path, "from_seq", from, "to_seq", to, "suppressed", suppressed)
		}
	}
}

// leaveSegment moves the cursor from a sealed segment it has read to the
// next one, accounting for a missing tail of records, and deletes the
// segments nobody needs any more. It returns false when there is no next
// segment yet.
func (s *Spool) leaveSegment() bool {
	c := &s.cur
	seg := c.seg
	if !seg.finished {
		seg.finished = true
		if c.next <= seg.last {
			s.loseLocked(seg, c.next, seg.last)
		}
	}
	s.mu.Lock()
	var next *segment
	for i, x := range s.segs {
		if x == seg && i+1 < len(s.segs) {
			next = s.segs[i+1]
			break
		}
	}
	if next == nil {
		s.mu.Unlock()
		return false
	}
	c.next = max(c.next, seg.last+1, next.first)
	c.seg, c.off = next, segHeaderSize
	done := s.collectDoneLocked()
	s.updateGaugesLocked()
	s.mu.Unlock()
	c.closeFile()
	s.removeSegments(done)
	return true
}

// collectDoneLocked removes from the list the sealed segments before the
// oldest one still needed (the first in-flight record's, else the
// cursor's) and returns them for deletion. Called with rmu and mu held.
func (s *Spool) collectDoneLocked() []*segment {
	need := s.cur.seg
	if len(s.inflight) > 0 {
		need = s.inflight[0].seg
	}
	if need == nil {
		return nil
	}
	var done []*segment
	for len(s.segs) > 0 && s.segs[0] != need && s.segs[0].sealed {
		seg := s.segs[0]
		s.segs = s.segs[1:]
		// Anything left is an estimate that did not materialise.
		s.records -= seg.records
		s.bytes -= seg.bytes
		s.diskBytes -= seg.end
		seg.records, seg.bytes = 0, 0
		done = append(done, seg)
	}
	if len(done) > 0 {
		s.signalSpaceLocked()
	}
	return done
}

// removeSegments deletes segment files whose records are all acknowledged.
func (s *Spool) removeSegments(done []*segment) {
	for _, seg := range done {
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			// The next Open deletes it: its records are acknowledged.
			s.log.Warn("spool: cannot delete an acknowledged segment", "segment", seg.path, "error", err)
			continue
		}
		s.freeAtPoll.Add(seg.end)
	}
}

// dropOne discards the oldest unacknowledged record (in flight or not).
// It returns false when there is none. Called with rmu held.
func (s *Spool) dropOne() (bool, error) {
	if len(s.inflight) > 0 {
		f := s.inflight[0]
		s.inflight = s.inflight[1:]
		s.mu.Lock()
		s.releaseLocked(f.seg, f.size)
		s.acked = max(s.acked, f.seq)
		s.mu.Unlock()
		return true, nil
	}
	it, seg, ok, err := s.peekFrame()
	if err != nil || !ok {
		return false, err
	}
	s.mu.Lock()
	s.releaseLocked(seg, it.size)
	s.acked = max(s.acked, it.seq)
	s.readHigh = max(s.readHigh, it.seq)
	s.mu.Unlock()
	s.cur.consume(it)
	return true, nil
}

// oldestSegment returns the segment of the oldest unacknowledged record,
// or nil. Called with rmu held.
func (s *Spool) oldestSegment() (*segment, error) {
	if len(s.inflight) > 0 {
		return s.inflight[0].seg, nil
	}
	_, seg, ok, err := s.peekFrame()
	if err != nil || !ok {
		return nil, err
	}
	return seg, nil
}

// consume moves the cursor past the frame it.
func (c *cursor) consume(it item) {
	c.off = it.off + it.size
	c.next = it.seq + 1
	c.seg.scanned = max(c.seg.scanned, c.off)
}

// open makes the cursor's file and scanner read seg up to end.
func (c *cursor) open(seg *segment, end int64) error {
	if c.fseg != seg || c.f == nil {
		c.closeFile()
		f, err := os.Open(seg.path)
		if err != nil {
			return err
		}
		c.f, c.fseg = f, seg
		c.sc.reset(f, end)
		return nil
	}
	if !c.sc.shrunk {
		c.sc.end = end
	}
	return nil
}

func (c *cursor) closeFile() {
	if c.f != nil {
		_ = c.f.Close()
	}
	c.f, c.fseg = nil, nil
}
