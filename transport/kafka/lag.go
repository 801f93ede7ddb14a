package kafka

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Lag is one reading of the consumer group's lag.
type Lag struct {
	// Members is the number of members in the group.
	Members int
	// Partitions is the number of partitions of the subscribed topics.
	Partitions int
	// Total is the sum of the per-partition lags.
	Total int64
	// ByPartition is the lag per topic and partition: the end offset minus
	// the committed offset (minus the start offset when nothing is
	// committed).
	ByPartition map[string]map[int32]int64
	// PartitionLimited is Partitions > 0 && Members >= Partitions &&
	// Total > 0: every partition has a member and the group still lags,
	// so more members (pods) would not consume faster.
	PartitionLimited bool
}

// partitionLimited is the verdict of Lag.PartitionLimited.
func partitionLimited(members, partitions int, lag int64) bool {
	return partitions > 0 && members >= partitions && lag > 0
}

// Lag reads the group's lag over the subscribed topics, updates the lag,
// group_members and partition_limited metrics and the partition-limited
// health flag, and returns the reading. The consumer calls it every
// lag_interval.
func (c *Consumer) Lag(ctx context.Context) (Lag, error) {
	if c.closed.Load() {
		return Lag{}, errClosed("lag")
	}
	topics := c.Topics()
	l, err := groupLag(ctx, c.adm, c.s.group, topics)
	if err != nil {
		return Lag{}, err
	}
	c.publishLag(l)
	return l, nil
}

// LastLag returns the total lag of the last reading (Lag, which the
// consumer calls every lag_interval) and true, or 0 and false before the
// first successful reading. It does not call the brokers: use it as the
// lag source of the scaling signal.
func (c *Consumer) LastLag() (total int64, ok bool) {
	v := c.lastLag.Load()
	if v < 0 {
		return 0, false
	}
	return v, true
}

// groupLag computes the lag of group over topics.
func groupLag(ctx context.Context, adm *kadm.Client, group string, topics []string) (Lag, error) {
	l := Lag{ByPartition: make(map[string]map[int32]int64)}
	if len(topics) == 0 {
		return l, nil
	}
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return l, fmt.Errorf("describing group %q: %w", group, err)
	}
	if g, ok := groups[group]; ok {
		if g.Err != nil {
			return l, fmt.Errorf("describing group %q: %w", group, g.Err)
		}
		l.Members = len(g.Members)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return l, fmt.Errorf("listing end offsets of %v: %w", topics, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return l, fmt.Errorf("listing start offsets of %v: %w", topics, err)
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
	if err != nil {
		return l, fmt.Errorf("fetching the offsets of group %q: %w", group, err)
	}
	var firstErr error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("end offset of %s/%d: %w", e.Topic, e.Partition, e.Err)
			}
			return
		}
		from := int64(-1)
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok && o.Err == nil && o.At >= 0 {
			from = o.At
		}
		if from < 0 {
			from = 0
			if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
				from = s.Offset
			}
		}
		lag := max(e.Offset-from, 0)
		if l.ByPartition[e.Topic] == nil {
			l.ByPartition[e.Topic] = make(map[int32]int64)
		}
		l.ByPartition[e.Topic][e.Partition] = lag
		l.Partitions++
		l.Total += lag
	})
	if firstErr != nil {
		return l, firstErr
	}
	l.PartitionLimited = partitionLimited(l.Members, l.Partitions, l.Total)
	return l, nil
}

// publishLag updates the metrics and the health flag from a reading.
func (c *Consumer) publishLag(l Lag) {
	c.lastLag.Store(l.Total)
	c.m.lagTotal.Set(float64(l.Total))
	c.m.members.Set(float64(l.Members))
	if l.PartitionLimited {
		c.m.limited.Set(1)
	} else {
		c.m.limited.Set(0)
	}
	was := c.limited.Swap(l.PartitionLimited)
	if l.PartitionLimited {
		if ok, skipped := c.limitedLog.Allow(); ok || !was {
			c.log.Warn("kafka group is partition-limited: members >= partitions and it still lags, so more pods will not help; add partitions",
				"members", l.Members, "partitions", l.Partitions, "lag", l.Total, "suppressed", skipped)
		}
	}
	// Per-partition series, capped: partitions get a series in sorted
	// order until the cap; the rest are only in the total.
	keys := make([]tp, 0, l.Partitions)
	for t, ps := range l.ByPartition {
		for p := range ps {
			keys = append(keys, tp{t, p})
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	c.lagMu.Lock()
	defer c.lagMu.Unlock()
	for _, k := range keys {
		if _, ok := c.lagSeries[k]; !ok {
			if len(c.lagSeries) >= c.s.lagMaxPartitions {
				continue
			}
			c.lagSeries[k] = struct{}{}
		}
		c.m.lag.With(k.topic, strconv.Itoa(int(k.partition))).Set(float64(l.ByPartition[k.topic][k.partition]))
	}
}

// lagLoop reads the lag every lag_interval.
func (c *Consumer) lagLoop(ctx context.Context) {
	defer c.bg.Done()
	t := time.NewTicker(c.s.lagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.s.lagInterval+c.s.requestTimeout)
		_, err := c.Lag(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if ok, skipped := c.pollLog.Allow(); ok {
				c.log.Warn("reading the kafka group lag failed; retrying at the next interval", "error", err, "suppressed", skipped)
			}
		}
	}
}
