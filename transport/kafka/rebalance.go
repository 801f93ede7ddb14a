package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Rebalances.
//
// Each assignment of a partition to this member is an *ownership; the
// tokens Recv hands out point to it. A revoke first waits, at most
// consumer.revoke_wait, until every record delivered from the revoked
// partitions is committed (the block in flight gets the chance to commit
// before the partition moves), then fences the ownership under the commit
// lock: a commit already running finishes first, and every later commit
// of its tokens is dropped. A lost partition (the member was expelled) is
// fenced at once. Records fetched but not yet returned by Recv are dropped
// with their ownership; the partition's next owner fetches them from the
// committed offset.
//
// Every callback first interrupts the poll in progress and waits until its
// records are sorted (pollBarrier), so a record fetched under one
// assignment is never stamped with the next one.
//
// The client is not blocked on poll (BlockRebalanceOnPoll is not used):
// rebalances that do not touch the partitions of the block in flight never
// wait for it, and a slow block cannot get the member expelled, because
// the wait is bounded below the rebalance timeout.

// onAssigned records new ownerships and pauses them while the gate holds.
// franz-go calls it before fetching the new partitions.
func (c *Consumer) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.pollBarrier()
	n := 0
	c.mu.Lock()
	var pause map[string][]int32
	for topic, ps := range assigned {
		for _, p := range ps {
			k := tp{topic, p}
			if old := c.parts[k]; old != nil {
				old.revoked = true
			} else {
				n++
			}
			c.parts[k] = &ownership{c: c, topic: topic, partition: p, delivered: -1, committed: -1}
		}
		if c.paused {
			if pause == nil {
				pause = make(map[string][]int32)
			}
			pause[topic] = ps
		}
	}
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
		c.m.paused.Add(float64(n))
	}
	paused := c.paused
	c.signalLocked()
	c.mu.Unlock()
	if len(assigned) == 0 {
		return
	}
	c.m.assigned.Add(float64(n))
	c.m.rebalances.With("assigned").Inc()
	c.log.Info("kafka partitions assigned", "partitions", assigned, "paused", paused)
}

// onRevoked lets the block in flight on the revoked partitions commit,
// within revoke_wait, then fences them.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	owns := c.lookup(revoked)
	c.awaitInFlight(ctx, owns)
	c.fence(owns)
	c.m.rebalances.With("revoked").Inc()
	c.log.Info("kafka partitions revoked", "partitions", revoked)
}

// onLost fences the lost partitions at once: the member was expelled, so
// its commits would be refused anyway and another member may own them.
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost) == 0 {
		return
	}
	c.fence(c.lookup(lost))
	c.m.rebalances.With("lost").Inc()
	c.log.Warn("kafka partitions lost (the member left or was expelled from the group); records not committed are re-delivered", "partitions", lost)
}

func (c *Consumer) lookup(m map[string][]int32) []*ownership {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*ownership
	for topic, ps := range m {
		for _, p := range ps {
			if own := c.parts[tp{topic, p}]; own != nil {
				out = append(out, own)
			}
		}
	}
	return out
}

// awaitInFlight waits until every record delivered from owns is committed,
// revoke_wait passes, ctx ends or the consumer closes.
func (c *Consumer) awaitInFlight(ctx context.Context, owns []*ownership) {
	if len(owns) == 0 || c.s.revokeWait <= 0 {
		return
	}
	var timer *time.Timer
	hooked := false
	for {
		c.mu.Lock()
		var busy *ownership
		for _, own := range owns {
			if !own.revoked && own.delivered > own.committed {
				busy = own
				break
			}
		}
		ch := c.progress
		c.mu.Unlock()
		if busy == nil {
			return
		}
		if timer == nil {
			timer = time.NewTimer(c.s.revokeWait)
			defer timer.Stop()
		}
		if !hooked && c.hookRevokeWait != nil {
			hooked = true
			c.hookRevokeWait()
		}
		select {
		case <-ch:
		case <-timer.C:
			c.log.Warn("the block in flight was not committed within the revoke wait; its offsets on the revoked partitions will not be committed and the new owner re-delivers them",
				"revoke_wait", c.s.revokeWait.String(), "topic", busy.topic, "partition", busy.partition)
			return
		case <-c.closing:
			return
		case <-ctx.Done():
			return
		}
	}
}

// fence ends ownerships: they leave the assignment, their pending records
// are dropped and later commits of their tokens are refused. It waits for
// a commit in progress.
func (c *Consumer) fence(owns []*ownership) {
	if len(owns) == 0 {
		return
	}
	c.pollBarrier()
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	n := 0
	for _, own := range owns {
		k := tp{own.topic, own.partition}
		if c.parts[k] == own {
			delete(c.parts, k)
			n++
		}
		own.revoked = true
	}
	if c.paused {
		c.m.paused.Sub(float64(n))
	}
	kept := c.pending[:0]
	c.pendSize = 0
	for _, p := range c.pending[c.pendHead:] {
		if !p.own.revoked {
			kept = append(kept, p)
			c.pendSize += int64(len(p.r.Value))
		}
	}
	clear(c.pending[len(kept):])
	c.pending, c.pendHead = kept, 0
	c.signalLocked()
	c.mu.Unlock()
	c.m.assigned.Sub(float64(n))
}
