package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/transport"
)

// Admin manages topics, topic configs and consumer group offsets.
// It is safe for concurrent use.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	// Name is the topic name.
	Name string
	// Partitions is the partition count; 0 or less means the broker
	// default.
	Partitions int32
	// ReplicationFactor is the replica count; 0 or less means the broker
	// default.
	ReplicationFactor int16
	// Configs are topic configs (retention.ms, cleanup.policy, ...).
	Configs map[string]string
}

// TopicInfo describes an existing topic.
type TopicInfo struct {
	// Name is the topic name.
	Name string
	// Partitions is the partition count.
	Partitions int
	// ReplicationFactor is the replica count of partition 0.
	ReplicationFactor int
	// Internal reports an internal topic.
	Internal bool
}

// ResetTo says where ResetOffsets moves a group: the start of each
// partition, its end, or the first offset at or after a time.
type ResetTo struct {
	kind int
	at   time.Time
}

// ResetEarliest moves the group to the start of each partition.
func ResetEarliest() ResetTo { return ResetTo{kind: 1} }

// ResetLatest moves the group to the end of each partition.
func ResetLatest() ResetTo { return ResetTo{kind: 2} }

// ResetToTime moves the group to the first offset whose timestamp is at
// or after t (the end when there is none).
func ResetToTime(t time.Time) ResetTo { return ResetTo{kind: 3, at: t} }

// String returns earliest, latest or the RFC 3339 time.
func (r ResetTo) String() string {
	switch r.kind {
	case 1:
		return "earliest"
	case 2:
		return "latest"
	case 3:
		return r.at.UTC().Format(time.RFC3339Nano)
	}
	return "unset"
}

// ErrGroupActive is returned by ResetOffsets for a group that has
// members: Kafka refuses offsets written over a live group.
var ErrGroupActive = errors.New("kafka: consumer group has active members")

// NewAdmin validates the connection settings of cfg (brokers, security)
// and connects an admin client. The group, topics and role are not
// needed. ctx bounds the broker check.
func NewAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts, err := s.commonOpts(logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, cfg.ClientOptions...)
	cl, err := newClient("admin", opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.dialTimeout+5*time.Second)
	defer cancel()
	if err := ping(pctx, cl, s.brokers); err != nil {
		cl.Close()
		return nil, transport.NewError(transport.ErrConnection, name, "connect", err)
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close releases the client.
func (a *Admin) Close() { a.cl.Close() }

// CreateTopics creates topics. A topic that already exists is not an
// error.
func (a *Admin) CreateTopics(ctx context.Context, topics ...TopicSpec) error {
	var errs []error
	for _, t := range topics {
		p, rf := t.Partitions, t.ReplicationFactor
		if p <= 0 {
			p = -1
		}
		if rf <= 0 {
			rf = -1
		}
		var cfgs map[string]*string
		if len(t.Configs) > 0 {
			cfgs = make(map[string]*string, len(t.Configs))
			for k, v := range t.Configs {
				cfgs[k] = &v
			}
		}
		resp, err := a.adm.CreateTopic(ctx, p, rf, cfgs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %q: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// DeleteTopics deletes topics.
func (a *Admin) DeleteTopics(ctx context.Context, topics ...string) error {
	resps, err := a.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("deleting topics %v: %w", topics, err)
	}
	var errs []error
	for _, t := range topics {
		if r, ok := resps[t]; ok && r.Err != nil {
			errs = append(errs, fmt.Errorf("deleting topic %q: %w", t, r.Err))
		}
	}
	return errors.Join(errs...)
}

// AddPartitions raises topic's partition count to total. Kafka cannot
// lower it.
func (a *Admin) AddPartitions(ctx context.Context, topic string, total int) error {
	resps, err := a.adm.UpdatePartitions(ctx, total, topic)
	if err == nil {
		var r kadm.CreatePartitionsResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("setting the partitions of topic %q to %d: %w", topic, total, err)
	}
	return nil
}

// ListTopics returns the names of the topics that are not internal,
// sorted.
func (a *Admin) ListTopics(ctx context.Context) ([]string, error) {
	td, err := a.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	out := make([]string, 0, len(td))
	for name, d := range td {
		if d.Err == nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// DescribeTopic returns a topic's partition count and replication factor.
func (a *Admin) DescribeTopic(ctx context.Context, topic string) (TopicInfo, error) {
	td, err := a.adm.ListTopicsWithInternal(ctx, topic)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describing topic %q: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok {
		return TopicInfo{}, fmt.Errorf("describing topic %q: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if d.Err != nil {
		return TopicInfo{}, fmt.Errorf("describing topic %q: %w", topic, d.Err)
	}
	info := TopicInfo{Name: topic, Partitions: len(d.Partitions), Internal: d.IsInternal}
	if p, ok := d.Partitions[0]; ok {
		info.ReplicationFactor = len(p.Replicas)
	}
	return info, nil
}

// TopicConfig returns a topic's configs that have a value.
func (a *Admin) TopicConfig(ctx context.Context, topic string) (map[string]string, error) {
	rcs, err := a.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describing the configs of topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return nil, fmt.Errorf("describing the configs of topic %q: %w", topic, err)
	}
	out := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		if c.Value != nil {
			out[c.Key] = *c.Value
		}
	}
	return out, nil
}

// SetTopicConfig sets topic configs (retention.ms, ...), leaving the
// others as they are.
func (a *Admin) SetTopicConfig(ctx context.Context, topic string, configs map[string]string) error {
	alters := make([]kadm.AlterConfig, 0, len(configs))
	for k, v := range configs {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	resps, err := a.adm.AlterTopicConfigs(ctx, alters, topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return fmt.Errorf("setting configs of topic %q: %w", topic, err)
	}
	return nil
}

// ConsumerLag returns group's lag per partition over topics: the end
// offset minus the committed offset (minus the start offset where nothing
// is committed).
func (a *Admin) ConsumerLag(ctx context.Context, group string, topics ...string) (map[string]map[int32]int64, error) {
	l, err := groupLag(ctx, a.adm, group, topics)
	if err != nil {
		return nil, err
	}
	return l.ByPartition, nil
}

// Committed returns group's committed offsets over topics (the next offset
// to read), per partition that has one.
func (a *Admin) Committed(ctx context.Context, group string, topics ...string) (map[string]map[int32]int64, error) {
	resps, err := a.adm.FetchOffsetsForTopics(ctx, group, topics...)
	if err != nil {
		return nil, fmt.Errorf("fetching the offsets of group %q: %w", group, err)
	}
	out := make(map[string]map[int32]int64)
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 {
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// ResetOffsets commits, for group, the offset to on every partition of
// topics, and returns what it committed. The group must have no member
// (stop its consumers first): otherwise it returns ErrGroupActive.
func (a *Admin) ResetOffsets(ctx context.Context, group string, to ResetTo, topics ...string) (map[string]map[int32]int64, error) {
	if len(topics) == 0 {
		return nil, errors.New("kafka: ResetOffsets needs at least one topic")
	}
	groups, err := a.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describing group %q: %w", group, err)
	}
	if g, ok := groups[group]; ok && len(g.Members) > 0 {
		return nil, fmt.Errorf("%w: group %q has %d member(s); stop them before resetting its offsets", ErrGroupActive, group, len(g.Members))
	}
	var listed kadm.ListedOffsets
	switch to.kind {
	case 1:
		listed, err = a.adm.ListStartOffsets(ctx, topics...)
	case 2:
		listed, err = a.adm.ListEndOffsets(ctx, topics...)
	case 3:
		listed, err = a.adm.ListOffsetsAfterMilli(ctx, to.at.UnixMilli(), topics...)
	default:
		return nil, errors.New("kafka: ResetOffsets needs ResetEarliest, ResetLatest or ResetToTime")
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets of %v: %w", topics, err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("listing offsets of %v: %w", topics, err)
	}
	offsets := listed.Offsets()
	if err := a.adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		return nil, fmt.Errorf("committing offsets %s for group %q: %w", to, group, err)
	}
	out := make(map[string]map[int32]int64)
	offsets.Each(func(o kadm.Offset) {
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// ListGroups returns the consumer groups of the cluster, sorted.
func (a *Admin) ListGroups(ctx context.Context) ([]string, error) {
	lg, err := a.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing groups: %w", err)
	}
	return lg.Groups(), nil
}
