package kafka

import (
	"context"
)

// Pause is the inbound gate's rising edge: it pauses fetching on every
// partition assigned to this member and keeps pausing partitions assigned
// later, until Resume. The member stays in the group and keeps
// heartbeating, so pausing causes no rebalance. While paused, Recv returns
// nothing (it waits for Resume or its ctx); records already fetched are
// kept and come first after Resume. Pausing twice is a no-op.
//
// Pause and Resume make a *Consumer the actuator of the governor's gate.
func (c *Consumer) Pause(context.Context) error {
	if c.closed.Load() {
		return errClosed("pause")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return nil
	}
	c.paused = true
	c.resumed = make(chan struct{})
	owned := c.ownedLocked()
	if len(owned) > 0 {
		c.cl.PauseFetchPartitions(owned)
	}
	c.m.paused.Add(float64(len(c.parts)))
	c.log.Info("kafka consumer paused by the inbound gate", "partitions", len(c.parts))
	return nil
}

// Resume is the gate's falling edge: fetching resumes on every partition
// from where it stopped. Resuming when not paused is a no-op.
func (c *Consumer) Resume(context.Context) error {
	if c.closed.Load() {
		return errClosed("resume")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paused {
		return nil
	}
	c.paused = false
	close(c.resumed)
	// Resume everything paused, including partitions revoked while the
	// gate held, so that a later assignment of them is not left paused.
	if all := c.cl.PauseFetchPartitions(nil); len(all) > 0 {
		c.cl.ResumeFetchPartitions(all)
	}
	c.m.paused.Sub(float64(len(c.parts)))
	c.log.Info("kafka consumer resumed by the inbound gate", "partitions", len(c.parts))
	return nil
}

// Paused reports whether the gate holds.
func (c *Consumer) Paused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused
}
