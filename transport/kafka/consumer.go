package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Health check names registered on Config.Health.
const (
	// HealthCheckTransport is the check that follows Health.
	HealthCheckTransport = "transport:kafka"
	// HealthCheckPartitionLimited is degraded while the group has at
	// least as many members as partitions and still lags.
	HealthCheckPartitionLimited = "kafka:partition_limited"
)

// healthErrorWindow is how long a fetch error keeps Health failing when
// no record arrives after it.
const healthErrorWindow = time.Minute

// Consumer is a consumer group member: a transport.Receiver with
// synchronous, ownership-checked commits and a pause gate. It is safe for
// concurrent use; Recv calls are serialised.
//
// See the package documentation for the commit and rebalance guarantees.
type Consumer struct {
	s      *settings
	cl     *kgo.Client
	adm    *kadm.Client
	log    *slog.Logger
	m      *consumerMetrics
	health *health.Registry

	recvMu sync.Mutex // serialises Recv

	commitMu sync.Mutex // serialises commits and fencing; taken before mu

	mu       sync.Mutex // guards the fields below
	parts    map[tp]*ownership
	poll     *pollState   // the poll in progress, if any
	pending  []pendingRec // records polled but not yet returned, in order
	pendHead int
	pendSize int64         // payload bytes of pending[pendHead:]
	progress chan struct{} // closed and replaced when commits or ownership change
	paused   bool
	resumed  chan struct{} // closed while not paused
	topics   map[string]struct{}

	closing  chan struct{}
	closed   atomic.Bool
	bgCancel context.CancelFunc
	bg       sync.WaitGroup

	lastErr    atomic.Pointer[timedErr]
	limited    atomic.Bool
	lastLag    atomic.Int64 // Total of the last lag reading; -1 before the first
	pollLog    *logging.Sampler
	fenceLog   *logging.Sampler
	limitedLog *logging.Sampler
	lagMu      sync.Mutex
	lagSeries  map[tp]struct{}

	// hookRevokeWait, when set (tests), is called each time a revoke
	// starts waiting for the block in flight.
	hookRevokeWait func()
}

// pollState lets a rebalance callback interrupt the poll in progress and
// wait until its records are sorted into the pending buffer, so that no
// record fetched under one assignment is stamped with a later one.
type pollState struct {
	cancel context.CancelFunc
	done   chan struct{}
}

type pendingRec struct {
	r   *kgo.Record
	own *ownership
}

type timedErr struct {
	err error
	at  time.Time
}

var _ transport.Receiver = (*Consumer)(nil)

// NewConsumer validates cfg, connects, joins the consumer group
// (cooperative-sticky, manual commits) and subscribes to cfg.Topics and,
// with AutoDiscover, to the matching topics. ctx bounds the start-up
// (broker check and first discovery). Config errors name the key.
func NewConsumer(ctx context.Context, cfg Config) (*Consumer, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if !s.role.consumes() {
		return nil, wrongRole("NewConsumer", s.role, "consumer or both")
	}
	if err := s.checkConsumer(); err != nil {
		return nil, err
	}
	return newConsumer(ctx, cfg, s)
}

func newConsumer(ctx context.Context, cfg Config, s *settings) (*Consumer, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Consumer{
		s:          s,
		log:        logger.With("transport", name, "group", s.group),
		m:          newConsumerMetrics(metrics.OrDefault(cfg.Metrics)),
		health:     cfg.Health,
		parts:      make(map[tp]*ownership),
		progress:   make(chan struct{}),
		resumed:    make(chan struct{}),
		topics:     make(map[string]struct{}),
		closing:    make(chan struct{}),
		pollLog:    logging.Every(10 * time.Second),
		fenceLog:   logging.Every(10 * time.Second),
		limitedLog: logging.Every(5 * time.Minute),
		lagSeries:  make(map[tp]struct{}),
	}
	c.lastLag.Store(-1)
	close(c.resumed)
	opts, err := s.commonOpts(logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, s.fetchOpts()...)
	opts = append(opts, s.groupOpts()...)
	opts = append(opts,
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	)
	if len(s.topics) > 0 {
		opts = append(opts, kgo.ConsumeTopics(s.topics...))
		for _, t := range s.topics {
			c.topics[t] = struct{}{}
		}
	}
	opts = append(opts, cfg.ClientOptions...)
	c.cl, err = newClient("consumer", opts)
	if err != nil {
		return nil, err
	}
	c.adm = kadm.NewClient(c.cl)
	pctx, cancel := context.WithTimeout(ctx, s.dialTimeout+5*time.Second)
	defer cancel()
	if err := ping(pctx, c.cl, s.brokers); err != nil {
		c.cl.Close()
		return nil, transport.NewError(transport.ErrConnection, name, "connect", err)
	}
	if s.autoDiscover {
		n, err := c.discover(pctx)
		if err != nil {
			c.cl.Close()
			return nil, transport.NewError(transport.ErrConnection, name, "discover",
				fmt.Errorf("listing topics for %s.auto_discover: %w", Section, err))
		}
		if n == 0 && len(s.topics) == 0 {
			c.log.Warn("no topic matches the auto-discovery patterns yet; the consumer subscribes when one appears",
				"refresh", s.topicRefresh.String())
		}
	}
	c.m.topics.Add(float64(len(c.topics)))
	bgCtx, bgCancel := context.WithCancel(context.Background())
	c.bgCancel = bgCancel
	if s.autoDiscover {
		c.bg.Add(1)
		go c.discoverLoop(bgCtx)
	}
	if s.lagInterval > 0 {
		c.bg.Add(1)
		go c.lagLoop(bgCtx)
	}
	if err := c.registerHealth(); err != nil {
		_ = c.Close(ctx)
		return nil, err
	}
	c.log.Info("kafka consumer started", append(s.describe(), "topics", c.Topics())...)
	return c, nil
}

// checkConsumer checks what a consumer needs.
func (s *settings) checkConsumer() error {
	if s.group == "" {
		return configError("%s.group is empty: set the consumer group id (KAFKA_GROUP_ID), or set %s.role to producer", Section, Section)
	}
	if len(s.topics) == 0 && !s.autoDiscover {
		return configError("%s.topics is empty: list the topics to consume (KAFKA_TOPICS) or set %s.auto_discover", Section, Section)
	}
	return nil
}

// Name returns "kafka".
func (c *Consumer) Name() string { return name }

// Client returns the underlying franz-go client, for metrics hooks and
// diagnostics. Do not poll or commit through it.
func (c *Consumer) Client() *kgo.Client { return c.cl }

// Topics returns the subscribed topics, sorted.
func (c *Consumer) Topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Assigned returns the partitions currently assigned to this member.
func (c *Consumer) Assigned() map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownedLocked()
}

func (c *Consumer) ownedLocked() map[string][]int32 {
	out := make(map[string][]int32)
	for k := range c.parts {
		out[k.topic] = append(out[k.topic], k.partition)
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	return out
}

// Recv returns the next records under limits, at most
// consumer.max_poll_records. It blocks until a record is available, ctx is
// done (ctx.Err() is returned; records already fetched stay buffered in
// the consumer and come first on the next call), the gate is paused (it
// waits for Resume), or the consumer is closed (transport.ErrClosed).
//
// Each record has the Kafka key, headers, timestamp and value; tokens are
// one *Token per record, aligned with the records. The byte cap stops the
// batch once the payload sum reaches it, with a floor of one record; the
// rest stays buffered for the next call.
func (c *Consumer) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if c.closed.Load() {
		return transport.Batch{}, errClosed("recv")
	}
	if err := ctx.Err(); err != nil {
		return transport.Batch{}, err
	}
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	lim := limits.Normalize()
	if lim.MaxRecords > c.s.pollCap {
		lim.MaxRecords = c.s.pollCap
	}
	for {
		if err := c.waitResumed(ctx); err != nil {
			return transport.Batch{}, err
		}
		have, haveBytes := c.pendingSize()
		switch {
		case have == 0:
			if err := c.pollInto(ctx, lim.MaxRecords, true); err != nil {
				return transport.Batch{}, err
			}
		case !lim.Full(have, haveBytes):
			// Top up from what the client already buffered, without
			// waiting.
			if err := c.pollInto(ctx, lim.MaxRecords-have, false); err != nil && !isCtxErr(err) {
				return transport.Batch{}, err
			}
		}
		if err := ctx.Err(); err != nil {
			return transport.Batch{}, err
		}
		if b := c.take(lim); len(b.Records) > 0 {
			return b, nil
		}
		if c.closed.Load() {
			return transport.Batch{}, errClosed("recv")
		}
	}
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// waitResumed blocks while the gate holds.
func (c *Consumer) waitResumed(ctx context.Context) error {
	c.mu.Lock()
	ch := c.resumed
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return errClosed("recv")
	}
}

// pollInto polls up to n records (waiting for them when wait is set) and
// sorts them into the pending buffer. The poll is registered so that a
// rebalance callback can interrupt it (pollBarrier); an interrupted poll
// returns nothing and is simply repeated by Recv.
func (c *Consumer) pollInto(ctx context.Context, n int, wait bool) error {
	pctx, cancel := context.WithCancel(ctx)
	ps := &pollState{cancel: cancel, done: make(chan struct{})}
	c.mu.Lock()
	c.poll = ps
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.poll == ps {
			c.poll = nil
		}
		c.mu.Unlock()
		cancel()
		close(ps.done)
	}()
	var fs kgo.Fetches
	if wait {
		fs = c.cl.PollRecords(pctx, n)
	} else {
		//nolint:staticcheck // a nil context returns at once with what is buffered
		fs = c.cl.PollRecords(nil, n)
	}
	return c.absorb(ctx, fs)
}

// pollBarrier interrupts the poll in progress, if any, and waits until
// its records are in the pending buffer under the current ownerships.
// Rebalance callbacks call it before they change ownerships.
func (c *Consumer) pollBarrier() {
	c.mu.Lock()
	ps := c.poll
	c.mu.Unlock()
	if ps == nil {
		return
	}
	ps.cancel()
	<-ps.done
}

func (c *Consumer) pendingSize() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) - c.pendHead, c.pendSize
}

// absorb checks the fetch errors and appends the records of partitions
// this member owns to the pending buffer, stamped with their ownership.
// Records of a partition no longer owned are dropped: its owner fetches
// them again from the committed offset. Rebalance callbacks wait for a
// running absorb (pollBarrier), so records are never stamped with an
// assignment made after they were fetched.
func (c *Consumer) absorb(ctx context.Context, fs kgo.Fetches) error {
	var terminal error
	fs.EachError(func(topic string, partition int32, err error) {
		if terminal != nil {
			return
		}
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			terminal = errClosed("recv")
		case isCtxErr(err):
			if ctx.Err() != nil {
				terminal = ctx.Err()
			}
		case isAuthError(err):
			terminal = transport.NewError(transport.ErrRecv, name, "recv",
				fmt.Errorf("topic %q partition %d: %w (check %s.sasl_* and the ACLs of the user)", topic, partition, err, Section))
		default:
			c.m.pollErrors.Inc()
			c.lastErr.Store(&timedErr{err: fmt.Errorf("topic %q partition %d: %w", topic, partition, err), at: time.Now()})
			var gs *kgo.ErrGroupSession
			if ok, skipped := c.pollLog.Allow(); ok {
				msg := "kafka fetch error; the client retries"
				if errors.As(err, &gs) {
					msg = "kafka group session error; the client rejoins the group"
				}
				c.log.Warn(msg, "topic", topic, "partition", partition, "error", err, "suppressed", skipped)
			}
		}
	})
	added := 0
	c.mu.Lock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		own := c.parts[tp{p.Topic, p.Partition}]
		if own == nil || own.revoked {
			return
		}
		for _, r := range p.Records {
			c.pending = append(c.pending, pendingRec{r: r, own: own})
			c.pendSize += int64(len(r.Value))
		}
		added += len(p.Records)
	})
	c.mu.Unlock()
	if added > 0 {
		c.lastErr.Store(nil)
	}
	return terminal
}

// isAuthError reports an authentication or authorisation failure, which
// retrying does not cure.
func isAuthError(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// take moves records from the pending buffer into a batch under lim and
// marks them delivered. It returns nothing while the gate holds.
func (c *Consumer) take(lim transport.Limits) transport.Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.paused {
		return transport.Batch{}
	}
	var (
		n     int
		bytes int64
		nhdr  int
		end   = c.pendHead
	)
	for end < len(c.pending) && !lim.Full(n, bytes) {
		p := c.pending[end]
		end++
		if p.own.revoked {
			continue
		}
		n++
		bytes += int64(len(p.r.Value))
		nhdr += len(p.r.Headers)
	}
	if n == 0 {
		c.dropPendingLocked(end)
		return transport.Batch{}
	}
	recs := make([]transport.Record, n)
	toks := make([]transport.Token, n)
	slab := make([]Token, n)
	var hdrs []transport.Header
	if nhdr > 0 {
		hdrs = make([]transport.Header, 0, nhdr)
	}
	i := 0
	for _, p := range c.pending[c.pendHead:end] {
		if p.own.revoked {
			continue
		}
		r := p.r
		rec := &recs[i]
		rec.Payload = r.Value
		rec.Key = r.Key
		rec.Timestamp = r.Timestamp
		if len(r.Headers) > 0 {
			start := len(hdrs)
			for _, h := range r.Headers {
				hdrs = append(hdrs, transport.Header{Key: h.Key, Value: h.Value})
			}
			rec.Headers = hdrs[start:len(hdrs):len(hdrs)]
		}
		slab[i] = Token{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch, own: p.own}
		toks[i] = &slab[i]
		if next := r.Offset + 1; next > p.own.delivered {
			p.own.delivered = next
		}
		i++
	}
	c.dropPendingLocked(end)
	c.m.records.Add(float64(n))
	c.m.bytes.Add(float64(bytes))
	return transport.Batch{Records: recs, Tokens: toks}
}

// dropPendingLocked forgets pending entries before end.
func (c *Consumer) dropPendingLocked(end int) {
	for _, p := range c.pending[c.pendHead:end] {
		c.pendSize -= int64(len(p.r.Value))
	}
	clear(c.pending[c.pendHead:end])
	c.pendHead = end
	if c.pendHead == len(c.pending) {
		c.pending = c.pending[:0]
		c.pendHead = 0
	}
}

// Commit commits, synchronously, the highest offset + 1 per partition
// among tokens, and returns a failed commit (a transport.ErrCommit error)
// so that the caller stops. Tokens of a partition this member no longer
// owns under the same assignment (revoked, lost, or revoked and assigned
// again) are not committed: the partition's current owner re-delivers
// them. Tokens that are not *Token, or that another consumer returned,
// are ignored. An offset at or below what this member already committed
// for the partition is not committed again (no rewind).
func (c *Consumer) Commit(ctx context.Context, tokens []transport.Token) error {
	if len(tokens) == 0 {
		return nil
	}
	if c.closed.Load() {
		return errClosed("commit")
	}
	type high struct {
		own   *ownership
		off   int64
		epoch int32
	}
	highs := make([]high, 0, 4)
	last := -1
	for _, t := range tokens {
		tok, ok := t.(*Token)
		if !ok || tok == nil || tok.own == nil || tok.own.c != c {
			continue
		}
		if last < 0 || highs[last].own != tok.own {
			last = -1
			for i := range highs {
				if highs[i].own == tok.own {
					last = i
					break
				}
			}
			if last < 0 {
				highs = append(highs, high{own: tok.own, off: tok.Offset, epoch: tok.LeaderEpoch})
				last = len(highs) - 1
				continue
			}
		}
		if tok.Offset > highs[last].off {
			highs[last].off, highs[last].epoch = tok.Offset, tok.LeaderEpoch
		}
	}
	if len(highs) == 0 {
		return nil
	}

	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	offsets := make(map[string]map[int32]kgo.EpochOffset, 1)
	fenced := 0
	c.mu.Lock()
	for _, h := range highs {
		if h.own.revoked || c.parts[tp{h.own.topic, h.own.partition}] != h.own {
			fenced++
			continue
		}
		if h.off+1 <= h.own.committed {
			continue
		}
		ps := offsets[h.own.topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			offsets[h.own.topic] = ps
		}
		ps[h.own.partition] = kgo.EpochOffset{Epoch: h.epoch, Offset: h.off + 1}
	}
	c.mu.Unlock()
	if fenced > 0 {
		c.m.commitFenced.Add(float64(fenced))
		if ok, skipped := c.fenceLog.Allow(); ok {
			c.log.Info("offsets of partitions no longer owned were not committed; their new owner re-delivers them",
				"partitions", fenced, "suppressed", skipped)
		}
	}
	if len(offsets) == 0 {
		return nil
	}
	start := time.Now()
	var cerr error
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("partition %s/%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	c.m.commitSeconds.Observe(time.Since(start).Seconds())
	if cerr != nil {
		c.m.commitFailures.Inc()
		return transport.NewError(transport.ErrCommit, name, "commit",
			fmt.Errorf("group %q, %d partition(s): %w", c.s.group, countOffsets(offsets), cerr))
	}
	c.mu.Lock()
	for _, h := range highs {
		if ps, ok := offsets[h.own.topic]; ok {
			if eo, ok := ps[h.own.partition]; ok && eo.Offset > h.own.committed {
				h.own.committed = eo.Offset
			}
		}
	}
	c.signalLocked()
	c.mu.Unlock()
	c.m.commits.Inc()
	return nil
}

func countOffsets(m map[string]map[int32]kgo.EpochOffset) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// signalLocked wakes everything waiting for commit or ownership progress.
func (c *Consumer) signalLocked() {
	close(c.progress)
	c.progress = make(chan struct{})
}

// Committed returns the offsets this member committed, per partition it
// currently owns (the next offset to read), for diagnostics and tests.
func (c *Consumer) Committed() map[string]map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[int32]int64)
	for k, own := range c.parts {
		if own.committed < 0 {
			continue
		}
		if out[k.topic] == nil {
			out[k.topic] = make(map[int32]int64)
		}
		out[k.topic][k.partition] = own.committed
	}
	return out
}

// Health returns nil while the consumer can make progress: not closed,
// and no fetch error in the last minute that was not followed by a
// record.
func (c *Consumer) Health(context.Context) error {
	if c.closed.Load() {
		return errClosed("health")
	}
	if e := c.lastErr.Load(); e != nil && time.Since(e.at) < healthErrorWindow {
		return transport.NewError(transport.ErrConnection, name, "health", e.err)
	}
	return nil
}

// PartitionLimited reports the last lag read's verdict: the group has at
// least as many members as partitions and still lags, so more members
// would not consume faster.
func (c *Consumer) PartitionLimited() bool { return c.limited.Load() }

func (c *Consumer) registerHealth() error {
	if c.health == nil {
		return nil
	}
	if err := c.health.Register(HealthCheckTransport, func(ctx context.Context) (health.Status, string) {
		if err := c.Health(ctx); err != nil {
			return health.Unhealthy, err.Error()
		}
		return health.Healthy, ""
	}); err != nil {
		return fmt.Errorf("kafka: registering health check %s: %w", HealthCheckTransport, err)
	}
	if err := c.health.Register(HealthCheckPartitionLimited, func(context.Context) (health.Status, string) {
		if c.limited.Load() {
			return health.Degraded, "members >= partitions and the group lags: more pods will not help; add partitions"
		}
		return health.Healthy, ""
	}); err != nil {
		c.health.Unregister(HealthCheckTransport)
		return fmt.Errorf("kafka: registering health check %s: %w", HealthCheckPartitionLimited, err)
	}
	return nil
}

// Close leaves the group and releases the client within ctx. Records
// received but not committed are re-delivered to the partitions' next
// owner. Recv blocked in another goroutine returns transport.ErrClosed.
func (c *Consumer) Close(ctx context.Context) error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(c.closing)
	if c.bgCancel != nil {
		c.bgCancel()
	}
	c.bg.Wait()
	if c.health != nil {
		c.health.Unregister(HealthCheckTransport)
		c.health.Unregister(HealthCheckPartitionLimited)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.cl.Close()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return transport.NewError(transport.ErrTimeout, name, "close",
			fmt.Errorf("leaving group %q did not finish before the deadline: %w", c.s.group, ctx.Err()))
	}
	c.mu.Lock()
	n := len(c.parts)
	if c.paused {
		c.m.paused.Sub(float64(n))
	}
	for k, own := range c.parts {
		own.revoked = true
		delete(c.parts, k)
	}
	c.pending, c.pendHead, c.pendSize = nil, 0, 0
	topics := len(c.topics)
	c.mu.Unlock()
	c.m.assigned.Sub(float64(n))
	c.m.topics.Sub(float64(topics))
	c.log.Info("kafka consumer closed")
	return nil
}
