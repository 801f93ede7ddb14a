package tiered

import (
	"context"
	"errors"
	"fmt"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
)

// item is one spooled record held by the drainer until it is resolved:
// accepted by the downstream, or dead-lettered.
type item struct {
	seq uint64
	rec transport.Record
	// attempts counts the calls that refused this record by itself: a
	// per-record error, or a permanent whole-call error of a call that
	// held this record alone.
	attempts int
	done     bool
	// dead, when set, is why the record goes to the dead-letter queue
	// (waiting for the queue to take it).
	dead    string
	deadTag string
}

// roundResult is what the result of one drain call asks of the loop.
type roundResult uint8

const (
	// roundOK: go on at once and reset the backoff.
	roundOK roundResult = iota
	// roundAgain: go on at once, keeping the backoff (a batch is being
	// split to find the record the downstream refuses).
	roundAgain
	// roundFailed: wait with backoff before the next call.
	roundFailed
)

// drainer is the state of the drain loop.
type drainer struct {
	s     *Sink
	pend  []item
	fails int // consecutive failed rounds, for the backoff
	acked uint64
	// window, when > 0, caps the records of one call while a batch the
	// downstream refused as a whole is split to find the record at fault;
	// it doubles after each accepted call and 0 means tiered.drain_batch.
	window int
	// suspect is the index in pend of the record that failed alone, with
	// a permanent error, in the call just made; -1 when there is none.
	// The next call sends the record after it alone (the control): if the
	// downstream accepts that one, the suspect is dead-lettered.
	suspect    int
	suspectErr error
}

// drain replays the spool into the downstream until ctx ends.
func (s *Sink) drain(ctx context.Context) {
	defer close(s.drainDone)
	d := &drainer{s: s, suspect: -1}
	d.run(ctx)
}

func (d *drainer) run(ctx context.Context) {
	s := d.s
	wait := func() bool {
		d.fails++
		// A wait breaks the link between a suspect and its control.
		d.suspect = -1
		s.cRetries.Add(1)
		return sleep(ctx, s.backoff(d.fails))
	}
	for {
		if len(d.pend) == 0 {
			s.checkEmpty()
			s.idle.Store(true)
			entries, err := s.sp.Peek(ctx, s.cfg.DrainBatch, s.cfg.DrainBytes)
			// A backlog starts (or goes on) now: the stall clock counts
			// from here, not from when the spool last emptied.
			s.markProgress()
			s.idle.Store(false)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, spool.ErrClosed) {
					return
				}
				s.lastErr.Store(&errBox{err: fmt.Errorf("reading spool %s: %w", s.sp.Dir(), err)})
				if !wait() {
					return
				}
				continue
			}
			d.pend = decodeEntries(d.pend[:0], entries)
		}

		// Records already known undeliverable go to the dead-letter queue.
		if !s.flushDead(ctx, d.pend) {
			if !wait() {
				return
			}
			continue
		}
		if d.ackPrefix(); len(d.pend) == 0 {
			d.fails = 0
			continue
		}

		recs, idx := d.pick()
		if len(idx) == 0 {
			// Only the suspect is unresolved: read the record after it
			// from the spool to serve as the control.
			if d.extend() {
				continue
			}
			// Nothing follows it, so nothing tells the record's fault
			// from the downstream's: try it alone again after a wait
			// (its attempts are bounded by tiered.max_attempts).
			if !wait() {
				return
			}
			continue
		}

		t, err := s.br.Allow()
		if err != nil {
			if !wait() {
				return
			}
			continue
		}
		if s.lim != nil {
			if err := s.lim.WaitN(ctx, len(recs)); err != nil {
				t.Ignore()
				return
			}
		}
		sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
		err = s.down.SendBatch(sctx, recs)
		timedOut := sctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch d.settle(t, err, timedOut, ctx.Err() != nil, idx) {
		case roundOK:
			d.fails = 0
		case roundAgain:
		case roundFailed:
			if ctx.Err() != nil || !wait() {
				return
			}
		}
	}
}

// pick returns the records of the next call and their indices in pend: the
// unresolved records in order, the suspect left out, at most the window
// (or tiered.drain_batch).
func (d *drainer) pick() ([]transport.Record, []int) {
	limit := d.s.cfg.DrainBatch
	if d.window > 0 {
		limit = min(limit, d.window)
	}
	if d.suspect >= 0 {
		limit = 1
	}
	recs := make([]transport.Record, 0, min(limit, len(d.pend)))
	idx := make([]int, 0, cap(recs))
	for i := range d.pend {
		if len(idx) == limit {
			break
		}
		if it := &d.pend[i]; !it.done && it.dead == "" && i != d.suspect {
			recs = append(recs, it.rec)
			idx = append(idx, i)
		}
	}
	return recs, idx
}

// extend reads one more record from the spool into pend; it reports
// whether there was one.
func (d *drainer) extend() bool {
	entries, err := d.s.sp.TryPeek(1, 0)
	if err != nil || len(entries) == 0 {
		return false
	}
	d.pend = decodeEntries(d.pend, entries)
	return true
}

// grow doubles the window after an accepted call, back to no window once
// it reaches tiered.drain_batch.
func (d *drainer) grow() {
	if d.window == 0 {
		return
	}
	if d.window *= 2; d.window >= d.s.cfg.DrainBatch {
		d.window = 0
	}
}

// permanent reports a whole-call error that the records may have caused:
// one transport.Classify calls fatal that is not a connection, configuration
// or closed-sender error (those are the downstream's) nor a cancelled or
// expired context. An HTTP downstream answering 400 to the batch is one.
func permanent(err error) bool {
	if transport.Classify(err) != transport.Fatal {
		return false
	}
	for _, kind := range []error{transport.ErrConnection, transport.ErrConfig, transport.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, kind) {
			return false
		}
	}
	return true
}

// settle applies the result of one drain call to the pending items.
func (d *drainer) settle(t breaker.Ticket, err error, timedOut, cancelled bool, idx []int) roundResult {
	s, pend := d.s, d.pend
	// This call was the control of the suspect, if there is one: it is
	// decided here either way.
	suspect := d.suspect
	d.suspect = -1
	if err == nil {
		t.Success()
		for _, i := range idx {
			pend[i].done = true
		}
		s.cDrained.Add(float64(len(idx)))
		if suspect >= 0 {
			// The downstream takes the next record alone but not this
			// one: the record is at fault.
			it := &pend[suspect]
			it.dead, it.deadTag = "rejected by the downstream (the batch failed as a whole; the record failed alone "+
				"while the record after it was accepted): "+d.suspectErr.Error(), "fatal"
		}
		d.grow()
		return roundOK
	}
	failed, ok := failedIndices(err, len(idx))
	if !ok {
		// The whole call failed. Trouble of the downstream counts against
		// the breaker, never against the records, so an outage never
		// dead-letters data; a permanent error may be a record's, which
		// refused finds out.
		switch {
		case cancelled:
			t.Ignore()
		case timedOut || errors.Is(err, transport.ErrTimeout):
			t.Failure()
		case transport.Classify(err) == transport.DeadLettered:
			t.Success()
			for _, i := range idx {
				pend[i].attempts++
				pend[i].dead, pend[i].deadTag = "dead-lettered by the downstream: "+err.Error(), "filtered"
			}
			return roundOK
		case transport.Classify(err) == transport.Backpressure:
			t.Ignore()
		case permanent(err):
			return d.refused(t, err, suspect >= 0, idx)
		default:
			t.Failure()
			s.noteDownErr(err)
		}
		return roundFailed
	}
	isFailed := make(map[int]error, len(failed))
	allBP := true
	for _, f := range failed {
		isFailed[f.Index] = f.Err
		if !errors.Is(f.Err, transport.ErrBackpressure) {
			allBP = false
		}
	}
	accepted := 0
	retry := false
	for k, i := range idx {
		ferr, bad := isFailed[k]
		if !bad {
			pend[i].done = true
			accepted++
			continue
		}
		it := &pend[i]
		if errors.Is(ferr, transport.ErrBackpressure) {
			retry = true
			continue
		}
		it.attempts++
		switch transport.Classify(ferr) {
		case transport.Fatal:
			it.dead, it.deadTag = "rejected by the downstream: "+ferr.Error(), "fatal"
		case transport.DeadLettered:
			it.dead, it.deadTag = "dead-lettered by the downstream: "+ferr.Error(), "filtered"
		default:
			if it.attempts >= s.cfg.MaxAttempts {
				it.dead, it.deadTag = fmt.Sprintf("still failing after %d attempts: %s", it.attempts, ferr.Error()), "attempts"
			} else {
				retry = true
			}
		}
	}
	s.cDrained.Add(float64(accepted))
	if accepted > 0 {
		d.grow()
	}
	switch {
	case allBP:
		t.Ignore()
	case accepted == 0 && len(failed) == len(idx):
		// Every record failed, none by a definite rejection: treat it
		// as the downstream's failure.
		definite := false
		for _, f := range failed {
			if o := transport.Classify(f.Err); o == transport.Fatal || o == transport.DeadLettered {
				definite = true
			}
		}
		if definite {
			t.Success()
		} else {
			t.Failure()
		}
	default:
		t.Success()
	}
	if retry {
		return roundFailed
	}
	return roundOK
}

// refused handles a call the downstream refused as a whole with a permanent
// error. A call of several records is split: its first half goes alone next,
// and so on, until the record at fault is alone (the records before it are
// accepted on the way). A record refused alone is charged an attempt and
// becomes the suspect; the next call, the record after it alone, decides
// (see settle). When the previous call had a suspect, two records in a row
// are refused alone: the downstream more likely refuses everything, so the
// round counts as a breaker failure, the second record is not charged, and
// the drainer waits.
func (d *drainer) refused(t breaker.Ticket, err error, hadSuspect bool, idx []int) roundResult {
	if len(idx) > 1 {
		// Nothing known yet about the downstream's health.
		t.Ignore()
		d.window = len(idx) / 2
		return roundAgain
	}
	d.window = 1
	if hadSuspect {
		t.Failure()
		d.s.noteDownErr(err)
		return roundFailed
	}
	t.Ignore()
	it := &d.pend[idx[0]]
	if it.attempts++; it.attempts >= d.s.cfg.MaxAttempts {
		it.dead, it.deadTag = fmt.Sprintf("still failing alone after %d attempts: %s", it.attempts, err.Error()), "attempts"
		return roundAgain
	}
	d.suspect, d.suspectErr = idx[0], err
	return roundAgain
}

// flushDead sends the items marked dead to the dead-letter queue and marks
// them done. It reports false when the queue refused them.
func (s *Sink) flushDead(ctx context.Context, pend []item) bool {
	var dead []deadItem
	var at []int
	for i := range pend {
		if !pend[i].done && pend[i].dead != "" {
			dead = append(dead, deadItem{rec: pend[i].rec, seq: pend[i].seq, reason: pend[i].dead, tag: pend[i].deadTag, attempts: pend[i].attempts})
			at = append(at, i)
		}
	}
	if len(dead) == 0 {
		return true
	}
	if err := s.deadLetter(ctx, dead); err != nil {
		if ctx.Err() == nil {
			s.lastErr.Store(&errBox{err: fmt.Errorf("dead-letter queue refused %d records: %w", len(dead), err)})
		}
		return false
	}
	for _, i := range at {
		pend[i].done = true
	}
	return true
}

// ackPrefix acknowledges the longest resolved prefix of pend and drops it
// from pend.
func (d *drainer) ackPrefix() {
	s := d.s
	n := 0
	for n < len(d.pend) && d.pend[n].done {
		n++
	}
	if n == 0 {
		return
	}
	seq := d.pend[n-1].seq
	if seq > d.acked {
		if err := s.sp.Ack(seq); err != nil {
			// Not acknowledged: keep them; a later round acknowledges
			// cumulatively, a restart delivers them again.
			s.lastErr.Store(&errBox{err: fmt.Errorf("acknowledging spool %s up to %d: %w", s.sp.Dir(), seq, err)})
			return
		}
		d.acked = seq
		s.lastErr.Store(nil)
	}
	s.markProgress()
	rest := copy(d.pend, d.pend[n:])
	clear(d.pend[rest:])
	d.pend = d.pend[:rest]
	if d.suspect >= 0 {
		// The suspect is unresolved, so it lies after the prefix.
		d.suspect -= n
	}
}

// checkEmpty runs when the drainer holds nothing: with the spool empty,
// strict ordering lets new records go directly again, and a waiting Close
// is told.
func (s *Sink) checkEmpty() {
	if s.sp.Len() != 0 {
		return
	}
	if s.cfg.Ordering == OrderingStrict {
		s.mu.Lock()
		if s.sp.Len() == 0 {
			s.spooling = false
		}
		s.mu.Unlock()
	}
	// closing is read before Len is looked at again: Close sets it only
	// once no send can append any more, so a zero Len read after seeing it
	// stays zero. The Len read at the top may predate appends made before
	// Close and must not release a waiting Close.
	if s.closing.Load() && s.sp.Len() == 0 {
		s.emptiedOnce.Do(func() { close(s.emptied) })
	}
	if s.onIdle != nil {
		s.onIdle()
	}
}

func decodeEntries(dst []item, entries []spool.Entry) []item {
	for _, e := range entries {
		rec, err := DecodeRecord(e.Payload)
		it := item{seq: e.Seq, rec: rec}
		if err != nil {
			it.rec = transport.Record{Payload: e.Payload}
			it.dead, it.deadTag = err.Error(), "undecodable"
		}
		dst = append(dst, it)
	}
	return dst
}
