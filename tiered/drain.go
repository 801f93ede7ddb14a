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
	seq      uint64
	rec      transport.Record
	attempts int
	done     bool
	// dead, when set, is why the record goes to the dead-letter queue
	// (waiting for the queue to take it).
	dead    string
	deadTag string
}

// drain replays the spool into the downstream until ctx ends.
func (s *Sink) drain(ctx context.Context) {
	defer close(s.drainDone)
	var (
		pend  []item
		fails int // consecutive failed rounds, for the backoff
		acked uint64
	)
	wait := func() bool {
		fails++
		s.cRetries.Add(1)
		return sleep(ctx, s.backoff(fails))
	}
	for {
		if len(pend) == 0 {
			s.checkEmpty()
			entries, err := s.sp.Peek(ctx, s.cfg.DrainBatch, s.cfg.DrainBytes)
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
			pend = decodeEntries(pend[:0], entries)
		}

		// Records already known undeliverable go to the dead-letter queue.
		if !s.flushDead(ctx, pend) {
			if !wait() {
				return
			}
			continue
		}
		if acked, pend = s.ackPrefix(pend, acked); len(pend) == 0 {
			fails = 0
			continue
		}

		t, err := s.br.Allow()
		if err != nil {
			if !wait() {
				return
			}
			continue
		}
		recs := make([]transport.Record, 0, len(pend))
		idx := make([]int, 0, len(pend))
		for i := range pend {
			if !pend[i].done && pend[i].dead == "" {
				recs = append(recs, pend[i].rec)
				idx = append(idx, i)
			}
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
		if !s.settle(t, err, timedOut, ctx.Err() != nil, pend, idx) {
			if ctx.Err() != nil {
				return
			}
			if !wait() {
				return
			}
			continue
		}
		fails = 0
	}
}

// settle applies the result of one drain call to the pending items. It
// reports whether the round went well (no wait needed before the next).
func (s *Sink) settle(t breaker.Ticket, err error, timedOut, cancelled bool, pend []item, idx []int) bool {
	if err == nil {
		t.Success()
		for _, i := range idx {
			pend[i].done = true
		}
		s.cDrained.Add(float64(len(idx)))
		return true
	}
	failed, ok := failedIndices(err, len(idx))
	if !ok {
		// The whole call failed: the downstream's trouble, not the
		// records'. It counts against the breaker, never against the
		// records, so an outage never dead-letters data.
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
			return true
		case transport.Classify(err) == transport.Backpressure:
			t.Ignore()
		default:
			t.Failure()
			s.noteDownErr(err)
		}
		return false
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
	return !retry
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

// ackPrefix acknowledges the longest resolved prefix of pend and returns
// what is left.
func (s *Sink) ackPrefix(pend []item, acked uint64) (uint64, []item) {
	n := 0
	for n < len(pend) && pend[n].done {
		n++
	}
	if n == 0 {
		return acked, pend
	}
	seq := pend[n-1].seq
	if seq > acked {
		if err := s.sp.Ack(seq); err != nil {
			// Not acknowledged: keep them; a later round acknowledges
			// cumulatively, a restart delivers them again.
			s.lastErr.Store(&errBox{err: fmt.Errorf("acknowledging spool %s up to %d: %w", s.sp.Dir(), seq, err)})
			return acked, pend
		}
		acked = seq
		s.lastErr.Store(nil)
	}
	rest := copy(pend, pend[n:])
	clear(pend[rest:])
	return acked, pend[:rest]
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
