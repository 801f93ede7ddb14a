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
	// attempts counts the calls that refused this record by itself with a
	// permanent error: a per-record error of a call that delivered other
	// records, or a permanent error of a call that held it alone.
	attempts int
	// lastErr is the error of the last call that refused it alone.
	lastErr error
	done    bool
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
	// split to find the record the downstream refuses, or the record after
	// a refused one is tried).
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
	// passed holds the indices in pend, in order, of the records refused
	// alone in this round that had already been refused alone
	// tiered.max_attempts times: the next call sends the record after
	// the last of them alone. If the downstream accepts it, they are
	// dead-lettered; a wait ends the round and empties passed, and the
	// next round starts again from the first unresolved record.
	passed []int
}

// drain replays the spool into the downstream until ctx ends.
func (s *Sink) drain(ctx context.Context) {
	defer close(s.drainDone)
	d := &drainer{s: s}
	d.run(ctx)
}

func (d *drainer) run(ctx context.Context) {
	s := d.s
	wait := func() bool {
		d.fails++
		// A wait ends the round.
		d.passed = d.passed[:0]
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

		// Records already known undeliverable go to the dead-letter queue;
		// the resolved records before them are acknowledged either way.
		d.ackPrefix()
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
			// Every unresolved record was passed in this round: nothing
			// follows them (pass checked it), so end the round.
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
// unresolved records in order, at most the window (or tiered.drain_batch);
// while records were passed in this round, the one record after the last
// of them.
func (d *drainer) pick() ([]transport.Record, []int) {
	limit := d.s.cfg.DrainBatch
	if d.window > 0 {
		limit = min(limit, d.window)
	}
	from := 0
	if n := len(d.passed); n > 0 {
		limit, from = 1, d.passed[n-1]+1
	}
	recs := make([]transport.Record, 0, min(limit, len(d.pend)))
	idx := make([]int, 0, cap(recs))
	for i := from; i < len(d.pend); i++ {
		if len(idx) == limit {
			break
		}
		if it := &d.pend[i]; it.unresolved() {
			recs = append(recs, it.rec)
			idx = append(idx, i)
		}
	}
	return recs, idx
}

func (it *item) unresolved() bool { return !it.done && it.dead == "" }

// hasNext reports whether an unresolved record follows pend[i], reading one
// more from the spool into pend when pend holds none.
func (d *drainer) hasNext(i int) bool {
	for k := i + 1; k < len(d.pend); k++ {
		if d.pend[k].unresolved() {
			return true
		}
	}
	entries, err := d.s.sp.TryPeek(1, 0)
	if err != nil || len(entries) == 0 {
		return false
	}
	d.pend = decodeEntries(d.pend, entries)
	// An undecodable record is resolved (dead-lettered) at once and tells
	// nothing about the downstream.
	return d.hasNext(i)
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

// failure is what a failed send says, for one record or a whole call.
type failure uint8

const (
	// failBusy: backpressure; the downstream is up but full.
	failBusy failure = iota
	// failOutage: the downstream's trouble (a timeout, a connection,
	// configuration or closed-sender error, an expired or cancelled
	// context): never the record's fault.
	failOutage
	// failFiltered: the downstream dead-lettered the record on purpose
	// (transport.ErrDeadLettered).
	failFiltered
	// failRefused: a permanent refusal (see permanent) that may be the
	// record's fault or the downstream's.
	failRefused
)

// classify sorts the error of a send.
func classify(err error) failure {
	switch {
	case errors.Is(err, transport.ErrBackpressure):
		return failBusy
	case permanent(err):
		return failRefused
	case transport.Classify(err) == transport.DeadLettered:
		return failFiltered
	default:
		return failOutage
	}
}

// permanent reports an error that the records may have caused: one
// transport.Classify calls fatal that is not a connection, configuration
// or closed-sender error (those are the downstream's) nor a cancelled or
// expired context. An HTTP downstream answering 400 to the batch is one,
// and so is one answering 500 or 403, which is why a permanent error alone
// never proves a record at fault (see refused).
func permanent(err error) bool {
	if transport.Classify(err) != transport.Fatal {
		return false
	}
	for _, kind := range []error{transport.ErrConnection, transport.ErrConfig, transport.ErrClosed, transport.ErrTimeout, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, kind) {
			return false
		}
	}
	return true
}

// settle applies the result of one drain call to the pending items.
func (d *drainer) settle(t breaker.Ticket, err error, timedOut, cancelled bool, idx []int) roundResult {
	s, pend := d.s, d.pend
	if err == nil {
		t.Success()
		for _, i := range idx {
			pend[i].done = true
		}
		s.cDrained.Add(float64(len(idx)))
		d.condemnPassed()
		d.grow()
		return roundOK
	}
	if cancelled {
		t.Ignore()
		return roundFailed
	}
	failed, ok := failedIndices(err, len(idx))
	if !ok {
		// The whole call failed. Trouble of the downstream counts against
		// the breaker, never against the records, so an outage never
		// dead-letters data; a permanent error may be a record's, which
		// refused finds out.
		kind := classify(err)
		if timedOut {
			kind = failOutage
		}
		switch kind {
		case failBusy:
			t.Ignore()
		case failFiltered:
			t.Success()
			for _, i := range idx {
				pend[i].attempts++
				pend[i].dead, pend[i].deadTag = "dead-lettered by the downstream: "+err.Error(), "filtered"
			}
			return roundOK
		case failRefused:
			return d.refused(t, err, idx)
		default:
			t.Failure()
			s.noteDownErr(err)
		}
		return roundFailed
	}
	isFailed := make(map[int]error, len(failed))
	for _, f := range failed {
		isFailed[f.Index] = f.Err
	}
	accepted := 0
	for k, i := range idx {
		if _, bad := isFailed[k]; !bad {
			pend[i].done = true
			accepted++
		}
	}
	s.cDrained.Add(float64(accepted))
	// Records the downstream dead-lettered on purpose go to the queue
	// whatever else happened.
	var refusedIdx []int
	var refusedErrs []error
	var firstErr error
	busy, outage := false, false
	for k, i := range idx {
		ferr, bad := isFailed[k]
		if !bad {
			continue
		}
		switch classify(ferr) {
		case failFiltered:
			pend[i].attempts++
			pend[i].dead, pend[i].deadTag = "dead-lettered by the downstream: "+ferr.Error(), "filtered"
		case failRefused:
			refusedIdx = append(refusedIdx, i)
			refusedErrs = append(refusedErrs, ferr)
		case failBusy:
			busy = true
		default:
			if !outage {
				firstErr = ferr
			}
			outage = true
		}
	}
	if accepted > 0 {
		// The downstream is up: it took records of this call. A record it
		// refused by itself, permanently, is at fault; one it failed with
		// an outage error or backpressure is tried again, never charged.
		t.Success()
		for k, i := range refusedIdx {
			it := &pend[i]
			it.attempts++
			it.dead, it.deadTag = "rejected by the downstream (other records of the call were accepted): "+refusedErrs[k].Error(), "fatal"
		}
		d.condemnPassed()
		d.grow()
		if busy || outage {
			return roundFailed
		}
		return roundOK
	}
	switch {
	case outage:
		// Nothing accepted and a record failed with an outage error: the
		// downstream's failure, charged to no record.
		t.Failure()
		s.noteDownErr(firstErr)
		return roundFailed
	case len(refusedIdx) > 0 && !busy:
		// Nothing accepted, every record refused permanently: as a call
		// refused as a whole.
		return d.refused(t, refusedErrs[0], refusedIdx)
	case len(refusedIdx) == 0 && !busy:
		// Only dead-lettered records: go on with the rest.
		t.Success()
		return roundOK
	default:
		t.Ignore()
		return roundFailed
	}
}

// condemnPassed dead-letters the records passed in this round: the call
// just accepted the record after them, which proves the downstream up and
// each of them refused alone at least tiered.max_attempts times.
func (d *drainer) condemnPassed() {
	for _, i := range d.passed {
		it := &d.pend[i]
		it.dead = fmt.Sprintf("still failing after %d attempts (refused alone each time, with backoff between, "+
			"while the downstream accepted the record after it): %s", it.attempts, it.lastErr.Error())
		it.deadTag = "attempts"
	}
	d.passed = d.passed[:0]
}

// refused handles a call the downstream refused with a permanent error and
// no record accepted: as a whole, or every record by itself.
//
// A call of several records is split: its first half goes alone next, and
// so on, until the record at fault is alone (the records before it are
// accepted on the way). The breaker learns nothing from these calls.
//
// A record refused alone is charged an attempt, and no more than that: a
// permanent error is also what a failing downstream answers (an HTTP
// endpoint answering 500), so only an accepted record after it proves the
// record at fault. The drainer waits with backoff and tries the record
// alone again, so that a downstream refusing a few calls in a row (a blip)
// never condemns a record; once the record has been refused alone
// tiered.max_attempts times, a refusal goes on at once with the record
// after it, alone (see pick), and if the downstream accepts that one, the
// record is dead-lettered (see condemnPassed). A record passed this way
// that is refused alone tiered.max_attempts times too is passed in turn.
//
// The round ends with a wait when the record refused has been refused alone
// fewer than tiered.max_attempts times, or when no record follows it. That
// counts one breaker failure when the round tried a record after a passed
// one (it was refused too: the downstream more likely refuses everything)
// or when no record follows (nothing can tell the record's fault from the
// downstream's); it counts nothing for the first record of a round with
// records after it, which the next rounds decide. A downstream that
// refuses everything thus opens the breaker and dead-letters nothing.
func (d *drainer) refused(t breaker.Ticket, err error, idx []int) roundResult {
	if len(idx) > 1 {
		// Nothing known yet about the downstream's health.
		t.Ignore()
		d.window = len(idx) / 2
		return roundAgain
	}
	d.window = 1
	i := idx[0]
	it := &d.pend[i]
	it.attempts++
	it.lastErr = err
	next := d.hasNext(i)
	if next && it.attempts >= d.s.cfg.MaxAttempts {
		t.Ignore()
		d.passed = append(d.passed, i)
		return roundAgain
	}
	if next && len(d.passed) == 0 {
		t.Ignore()
	} else {
		t.Failure()
		d.s.noteDownErr(err)
	}
	return roundFailed
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
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, ErrNoDeadLetterQueue):
			s.held.Store(&errBox{err: err})
		default:
			s.lastErr.Store(&errBox{err: err})
		}
		return false
	}
	s.held.Store(nil)
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
	for k := range d.passed {
		// Passed records are unresolved, so they lie after the prefix.
		d.passed[k] -= n
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
