package kafka

import (
	"context"
	"sort"
	"time"
)

// matchTopic applies the include and exclude patterns: a topic is taken
// when it matches an include pattern (or there is none) and no exclude
// pattern.
func (s *settings) matchTopic(topic string) bool {
	for _, re := range s.exclude {
		if re.MatchString(topic) {
			return false
		}
	}
	if len(s.include) == 0 {
		return true
	}
	for _, re := range s.include {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

// discover lists the cluster's topics and subscribes to the matching ones
// not yet subscribed. It returns how many topics match in total.
func (c *Consumer) discover(ctx context.Context) (int, error) {
	td, err := c.adm.ListTopics(ctx)
	if err != nil {
		return 0, err
	}
	var matched, added []string
	c.mu.Lock()
	for topic, d := range td {
		if d.Err != nil || !c.s.matchTopic(topic) {
			continue
		}
		matched = append(matched, topic)
		if _, ok := c.topics[topic]; !ok {
			c.topics[topic] = struct{}{}
			added = append(added, topic)
		}
	}
	c.mu.Unlock()
	if len(added) > 0 {
		sort.Strings(added)
		c.cl.AddConsumeTopics(added...)
		c.m.topics.Add(float64(len(added)))
		c.log.Info("kafka auto-discovery subscribed to new topics", "topics", added)
	}
	return len(matched), nil
}

// discoverLoop refreshes the subscription every topic_refresh.
func (c *Consumer) discoverLoop(ctx context.Context) {
	defer c.bg.Done()
	t := time.NewTicker(c.s.topicRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.s.topicRefresh+c.s.requestTimeout)
		_, err := c.discover(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if ok, skipped := c.pollLog.Allow(); ok {
				c.log.Warn("kafka topic auto-discovery failed; retrying at the next refresh", "error", err, "suppressed", skipped)
			}
		}
	}
}
