package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Producer is a transport.Sender that writes records to Kafka and waits
// for the brokers' acknowledgement. It is safe for concurrent use.
//
// The topic comes from Config.Route, else producer.topic; never from the
// record key, which is the partition key (records with the same key go to
// the same partition). Headers are copied. The global propagator
// (otel.GetTextMapPropagator, which telemetry.Setup installs from
// OTEL_PROPAGATORS) injects the trace context and baggage of the context
// of Send/SendBatch into every record: each header it writes replaces the
// record's headers of that name, compared ignoring case (a new traceparent
// also drops the record's tracestate), so a record never carries two.
// Headers it does not write, such as the record's own traceparent when
// the context has no span, pass through.
type Producer struct {
	s      *settings
	cl     *kgo.Client
	route  RouteFunc
	log    *slog.Logger
	m      *producerMetrics
	closed atomic.Bool
	last   atomic.Pointer[timedErr]
}

var _ transport.Sender = (*Producer)(nil)

// NewProducer validates cfg and connects a producer. ctx bounds the broker
// check. Config errors name the key.
func NewProducer(ctx context.Context, cfg Config) (*Producer, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if !s.role.produces() {
		return nil, wrongRole("NewProducer", s.role, "producer or both")
	}
	if err := s.checkProducer(cfg.Route); err != nil {
		return nil, err
	}
	return newProducer(ctx, cfg, s)
}

func (s *settings) checkProducer(route RouteFunc) error {
	if s.produceTopic == "" && route == nil {
		return configError("%s.producer.topic is empty: set the topic to produce to, set Config.Route, or set %s.role to consumer", Section, Section)
	}
	return nil
}

func newProducer(ctx context.Context, cfg Config, s *settings) (*Producer, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts, err := s.commonOpts(logger)
	if err != nil {
		return nil, err
	}
	opts = append(opts, s.producerOpts()...)
	opts = append(opts, cfg.ClientOptions...)
	cl, err := newClient("producer", opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.dialTimeout+5*time.Second)
	defer cancel()
	if err := ping(pctx, cl, s.brokers); err != nil {
		cl.Close()
		return nil, transport.NewError(transport.ErrConnection, name, "connect", err)
	}
	p := &Producer{
		s:     s,
		cl:    cl,
		route: cfg.Route,
		log:   logger.With("transport", name),
		m:     newProducerMetrics(metrics.OrDefault(cfg.Metrics)),
	}
	p.log.Info("kafka producer started", append(s.describe(), "topic", s.produceTopic, "routed", cfg.Route != nil)...)
	return p, nil
}

// Name returns "kafka".
func (p *Producer) Name() string { return name }

// Client returns the underlying franz-go client, for hooks and
// diagnostics.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Send delivers one record and waits for its acknowledgement. See
// SendBatch for the errors.
func (p *Producer) Send(ctx context.Context, rec transport.Record) error {
	err := p.SendBatch(ctx, []transport.Record{rec})
	var be *transport.BatchError
	if errors.As(err, &be) && len(be.Failed) == 1 {
		return be.Failed[0].Err
	}
	return err
}

// SendBatch sends records and returns once the brokers acknowledged every
// record it sent (a lingering partition is sent at once, not after the
// linger). It returns nil when all were delivered, else a
// *transport.BatchError naming each failed index:
//
//   - a record that does not fit in the produce buffer
//     (producer.max_buffered_bytes / max_buffered_records) fails with
//     transport.ErrBackpressure, and so does every record after it, so
//     that a retry of the failed indices keeps the order;
//   - a delivery timeout fails with transport.ErrTimeout (retryable);
//   - a routing error fails with what Route returned;
//   - any other failure is transport.ErrSend (fatal).
func (p *Producer) SendBatch(ctx context.Context, records []transport.Record) error {
	if p.closed.Load() {
		return errClosed("send")
	}
	if len(records) == 0 {
		return nil
	}
	start := time.Now()
	injected := traceInjection(ctx)
	krs := make([]kgo.Record, len(records))
	ptrs := make([]*kgo.Record, 0, len(records))
	var failed []transport.FailedRecord

	nhdr := 0
	for i := range records {
		nhdr += len(records[i].Headers)
	}
	nhdr += len(injected) * len(records)
	var slab []kgo.RecordHeader
	if nhdr > 0 {
		slab = make([]kgo.RecordHeader, 0, nhdr)
	}

	freeBytes := int64(p.s.maxBufferedBytes) - p.cl.BufferedProduceBytes()
	freeRecs := int64(p.s.maxBufferedRecords) - p.cl.BufferedProduceRecords()
	var usedBytes, usedRecs int64
	backpressured := false
	bp := transport.NewError(transport.ErrBackpressure, name, "send",
		fmt.Errorf("the produce buffer is full (%s.producer.max_buffered_bytes %d, max_buffered_records %d)", Section, p.s.maxBufferedBytes, p.s.maxBufferedRecords))
	for i := range records {
		r := &records[i]
		if backpressured {
			failed = append(failed, transport.FailedRecord{Index: i, Err: bp})
			continue
		}
		topic, err := p.topicFor(r)
		if err != nil {
			failed = append(failed, transport.FailedRecord{Index: i, Err: err})
			continue
		}
		kr := &krs[i]
		kr.Topic, kr.Key, kr.Value = topic, r.Key, r.Payload
		if !r.Timestamp.IsZero() {
			kr.Timestamp = r.Timestamp
		}
		if len(r.Headers) > 0 || len(injected) > 0 {
			from := len(slab)
			for _, h := range r.Headers {
				if len(injected) > 0 && replacedBy(h.Key, injected) {
					continue
				}
				slab = append(slab, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			for _, h := range injected {
				slab = append(slab, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			kr.Headers = slab[from:len(slab):len(slab)]
		}
		size := recordSize(kr)
		if len(ptrs) > 0 || freeBytes < int64(p.s.maxBufferedBytes) || freeRecs < int64(p.s.maxBufferedRecords) {
			// Something is buffered: refuse what does not fit. A record
			// larger than the whole buffer, alone in an empty buffer, is
			// passed on and refused by the client as too large.
			if usedBytes+size > freeBytes || usedRecs+1 > freeRecs {
				backpressured = true
				failed = append(failed, transport.FailedRecord{Index: i, Err: bp})
				continue
			}
		}
		usedBytes += size
		usedRecs++
		ptrs = append(ptrs, kr)
	}

	var sentBytes int64
	sent := 0
	if len(ptrs) > 0 {
		dctx, cancel := context.WithTimeout(ctx, p.s.deliveryTimeout)
		results := p.cl.ProduceSync(dctx, ptrs...)
		cancel()
		var pos map[*kgo.Record]int
		for _, res := range results {
			if res.Err == nil {
				sent++
				sentBytes += int64(len(res.Record.Value))
				continue
			}
			if pos == nil {
				pos = make(map[*kgo.Record]int, len(ptrs))
				for j := range krs {
					pos[&krs[j]] = j
				}
			}
			failed = append(failed, transport.FailedRecord{Index: pos[res.Record], Err: p.classify(res.Record, res.Err)})
		}
	}
	p.m.records.Add(float64(sent))
	p.m.bytes.Add(float64(sentBytes))
	p.m.sendSeconds.Observe(time.Since(start).Seconds())
	if len(failed) == 0 {
		p.last.Store(nil)
		return nil
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Index < failed[j].Index })
	var nbp, nfail int
	for _, f := range failed {
		if errors.Is(f.Err, transport.ErrBackpressure) {
			nbp++
		} else {
			nfail++
		}
	}
	p.m.backpressure.Add(float64(nbp))
	p.m.failures.Add(float64(nfail))
	be := &transport.BatchError{Failed: failed}
	if transport.Classify(be) == transport.Fatal {
		p.last.Store(&timedErr{err: be, at: time.Now()})
	}
	return be
}

// topicFor returns the record's topic from Route or the configured topic.
func (p *Producer) topicFor(r *transport.Record) (string, error) {
	if p.route == nil {
		return p.s.produceTopic, nil
	}
	topic, err := p.route(r)
	if err != nil {
		if errors.Is(err, transport.ErrDeadLettered) {
			return "", err
		}
		return "", transport.NewError(transport.ErrSend, name, "route", err)
	}
	if topic == "" {
		return "", transport.NewError(transport.ErrSend, name, "route", errors.New("the route function returned an empty topic"))
	}
	return topic, nil
}

// classify maps a produce failure to the transport taxonomy.
func (p *Producer) classify(r *kgo.Record, err error) error {
	kind := transport.ErrSend
	switch {
	case errors.Is(err, kgo.ErrMaxBuffered):
		kind = transport.ErrBackpressure
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded):
		kind = transport.ErrTimeout
	case errors.Is(err, kgo.ErrClientClosed):
		kind = transport.ErrClosed
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && ke.Retriable && kind == transport.ErrSend {
		kind = transport.ErrTimeout
	}
	return transport.NewError(kind, name, "send", fmt.Errorf("topic %q: %w", r.Topic, err))
}

// recordSize is the size franz-go accounts a buffered record at.
func recordSize(r *kgo.Record) int64 {
	n := int64(len(r.Key) + len(r.Value))
	for _, h := range r.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// Health returns nil unless the producer is closed or the last batch had
// a fatal failure within the last minute (cleared by the next clean
// batch).
func (p *Producer) Health(context.Context) error {
	if p.closed.Load() {
		return errClosed("health")
	}
	if e := p.last.Load(); e != nil && time.Since(e.at) < healthErrorWindow {
		return transport.NewError(transport.ErrSend, name, "health", e.err)
	}
	return nil
}

// Close flushes the records still buffered, within ctx (or
// producer.close_timeout when ctx has no deadline), and closes the client.
// Records not acknowledged by then fail, and Close says how many.
func (p *Producer) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.s.closeTimeout)
		defer cancel()
	}
	err := p.cl.Flush(ctx)
	left := p.cl.BufferedProduceRecords()
	p.cl.Close()
	if err != nil {
		return transport.NewError(transport.ErrTimeout, name, "close",
			fmt.Errorf("%d record(s) were not acknowledged before the close deadline: %w", left, err))
	}
	p.log.Info("kafka producer closed")
	return nil
}
