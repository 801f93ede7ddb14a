package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/transport"
)

// ErrCannotDrain is matched by the Health error of a Sink that cannot drain
// its spool: its breaker is open (ErrCircuitOpen), the spool holds records
// and none was resolved for tiered.stall_timeout (ErrStalled), or the spool
// is full (spool.ErrFull). See CannotDrain.
var ErrCannotDrain = errors.New("tiered: the sink cannot drain its spool")

// ErrCircuitOpen is matched by the Health error of a Sink whose breaker is
// open: records go to the spool until the downstream answers again.
var ErrCircuitOpen = errors.New("tiered: downstream circuit open")

// ErrStalled is matched by the Health error of a Sink whose spool has held
// records for tiered.stall_timeout without the drainer delivering or
// dead-lettering any: the downstream takes nothing (it reports
// backpressure, fails, or refuses every record) while the breaker may
// still be closed.
var ErrStalled = errors.New("tiered: spool not draining")

// DeadLetterSink takes records that can never be delivered. *dlq.DLQ
// implements it; Write must return only once the entries are durable, since
// the Sink acknowledges them in the spool right after.
type DeadLetterSink interface {
	Write(ctx context.Context, entries ...dlq.Entry) error
}

// Options wires a Sink: what does not come from the config file.
type Options struct {
	// DeadLetters receives the records that can never be delivered. Nil
	// means there is nowhere to put them: such a record stays in the spool
	// and the drainer holds at it (logged at ERROR, reported by Health,
	// Stalled and CannotDrain once tiered.stall_timeout passed) until the
	// sink is opened again with a dead-letter queue, unless
	// tiered.drop_undeliverable is true: the record is then logged at
	// ERROR, counted in
	// keel_tiered_dropped_records_total{reason="no_dead_letter_queue"}
	// and discarded.
	DeadLetters DeadLetterSink
	// Name labels the metrics (label sink) and the breaker (label target).
	// Default: the downstream's Name.
	Name string
	// Clock drives the breaker and the stall detection (see
	// Config.StallTimeout); nil means the wall clock.
	Clock breaker.Clock
	// Metrics receives keel_tiered_*, keel_breaker_* and keel_spool_*;
	// nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger

	// onIdle, for tests, is called each time the drainer finds the spool
	// empty.
	onIdle func()
}

// Reasons, the reason label of keel_tiered_spooled_records_total.
const (
	spoolOpen        = "circuit_open"
	spoolOrdering    = "ordering"
	spoolFailure     = "failure"
	spoolTimeout     = "timeout"
	spoolBackpressur = "backpressure"
	spoolRejected    = "rejected"
)

var _ transport.Sender = (*Sink)(nil)

// Sink is a transport.Sender that delivers to a downstream Sender when it
// can and spools to disk when it cannot; see the package documentation.
type Sink struct {
	cfg  Config
	down transport.Sender
	sp   *spool.Spool
	br   *breaker.Breaker
	dl   DeadLetterSink
	log  *slog.Logger
	name string
	lim  *rate.Limiter

	// sendMu: Send holds it shared, Close exclusively, so that Close
	// waits for sends in flight.
	sendMu sync.RWMutex
	closed bool

	// mu serialises, in strict mode, the choice between direct send and
	// spool with the drainer's "spool is empty" transition.
	mu       sync.Mutex
	spooling bool

	closing     atomic.Bool
	emptied     chan struct{}
	emptiedOnce sync.Once
	drainCancel context.CancelFunc
	drainDone   chan struct{}
	closeOnce   sync.Once
	closeErr    error

	lastErr atomic.Pointer[errBox]
	// held is set while the drainer holds an undeliverable record for
	// want of a dead-letter queue (ErrNoDeadLetterQueue).
	held atomic.Pointer[errBox]

	clock breaker.Clock
	// lastProgress is when the drainer last resolved records or met a new
	// backlog (Unix nanoseconds of clock); idle is set while it waits for
	// the spool to hold something.
	lastProgress atomic.Int64
	idle         atomic.Bool

	mDirect  *metrics.CounterVec
	mSpooled *metrics.CounterVec
	mDrained *metrics.CounterVec
	mDead    *metrics.CounterVec
	mRetries *metrics.CounterVec
	mDropped *metrics.CounterVec
	cDirect  prometheus.Counter
	cDrained prometheus.Counter
	cRetries prometheus.Counter
	onIdle   func()

	warnEvery *logging.Sampler
	heldEvery *logging.Sampler
}

type errBox struct{ err error }

// New opens the spool of cfg.Spool, starts the drainer and returns the Sink.
// Records left in the spool by an earlier Sink are drained first. The Sink
// owns down and closes it in Close.
func New(ctx context.Context, down transport.Sender, cfg Config, opts Options) (*Sink, error) {
	if down == nil {
		return nil, fmt.Errorf("%w: the downstream sender is nil: pass the transport.Sender to protect", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.normalized()
	if opts.Name == "" {
		opts.Name = down.Name()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	reg := metrics.OrDefault(opts.Metrics)
	if cfg.Spool.Metrics == nil {
		cfg.Spool.Metrics = opts.Metrics
	}
	if cfg.Spool.Logger == nil {
		cfg.Spool.Logger = opts.Logger
	}
	br, err := breaker.New(cfg.Breaker, breaker.Options{Target: opts.Name, Clock: opts.Clock, Metrics: opts.Metrics, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	sp, err := spool.Open(ctx, cfg.Spool)
	if err != nil {
		return nil, fmt.Errorf("tiered %s: opening the spool (tiered.spool): %w", opts.Name, err)
	}
	m := registerVecs(reg)
	s := &Sink{
		cfg: cfg, down: down, sp: sp, br: br, dl: opts.DeadLetters,
		log:       opts.Logger.With("sink", opts.Name),
		name:      opts.Name,
		spooling:  sp.Len() > 0,
		warnEvery: logging.Every(10 * time.Second),
		heldEvery: logging.Every(10 * time.Second),
		clock:     opts.Clock,
		onIdle:    opts.onIdle,
		emptied:   make(chan struct{}),
		drainDone: make(chan struct{}),
		mDirect:   m.direct,
		mSpooled:  m.spooled,
		mDrained:  m.drained,
		mDead:     m.dead,
		mRetries:  m.retries,
		mDropped:  m.dropped,
	}
	s.cDirect = s.mDirect.With(s.name)
	s.cDrained = s.mDrained.With(s.name)
	s.cRetries = s.mRetries.With(s.name)
	if cfg.RateLimit > 0 {
		s.lim = rate.NewLimiter(rate.Limit(cfg.RateLimit), cfg.DrainBatch)
	}
	s.markProgress()
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.drainCancel = cancel
	go s.drain(dctx)
	return s, nil
}

// Name returns "tiered:" and the downstream's name.
func (s *Sink) Name() string { return "tiered:" + s.down.Name() }

// Spool returns the Sink's spool (for its Stats; do not consume from it).
func (s *Sink) Spool() *spool.Spool { return s.sp }

// Breaker returns the breaker guarding the downstream.
func (s *Sink) Breaker() *breaker.Breaker { return s.br }

// PressureRatio is the spool's fill level in [0, 1]: a soft pressure source
// for the governor.
func (s *Sink) PressureRatio() float64 { return s.sp.PressureRatio() }

// Draining reports records waiting in the spool.
func (s *Sink) Draining() bool { return s.sp.Len() > 0 }

// CircuitOpen reports an open breaker: the downstream failed
// tiered.breaker.failure_threshold times in a row. CannotDrain includes it.
func (s *Sink) CircuitOpen() bool { return s.br.IsOpen() }

// Stalled reports a spool that holds records while the drainer has resolved
// none (delivered or dead-lettered) for tiered.stall_timeout: the downstream
// takes nothing, whether it fails, answers with backpressure (which the
// breaker does not count) or refuses every record.
func (s *Sink) Stalled() bool {
	if s.idle.Load() || s.sp.Len() == 0 {
		return false
	}
	return s.clock.Now().Sub(time.Unix(0, s.lastProgress.Load())) >= s.cfg.StallTimeout
}

// CannotDrain reports a sink that cannot drain its spool: the breaker is
// open, the spool is stalled (Stalled), the drainer holds an undeliverable
// record for want of a dead-letter queue (Health matches
// ErrNoDeadLetterQueue), or the spool is full (its fill level,
// PressureRatio, reached 1: the downstream does not keep up with what
// comes in). Pass it to scaling.CircuitSource so that the scaling pressure
// drops to zero: more instances would only push more into a downstream
// that takes nothing more. The fill level thus only ever pushes the
// scaling pressure down; Health fails under the same conditions.
func (s *Sink) CannotDrain() bool { return s.stuck() || s.sp.PressureRatio() >= 1 }

// stuck reports an open breaker, a stalled spool or a held record: the
// drainer delivers nothing, so Close does not wait for it.
func (s *Sink) stuck() bool { return s.br.IsOpen() || s.Stalled() || s.held.Load() != nil }

// markProgress notes that the drainer resolved records or met a new backlog.
func (s *Sink) markProgress() { s.lastProgress.Store(s.clock.Now().UnixNano()) }

// Health returns nil while the downstream is reachable and the spool works;
// the last spool error while appends fail, an error matching
// ErrNoDeadLetterQueue while the drainer holds an undeliverable record for
// want of a dead-letter queue, an error matching
// ErrCannotDrain while the sink cannot drain (see CannotDrain; it also
// matches ErrCircuitOpen, ErrStalled or spool.ErrFull, whichever holds), and
// transport.ErrClosed after Close.
func (s *Sink) Health(ctx context.Context) error {
	s.sendMu.RLock()
	closed := s.closed
	s.sendMu.RUnlock()
	if closed {
		return transport.NewError(transport.ErrClosed, s.Name(), "health", errors.New("the sink is closed"))
	}
	if b := s.lastErr.Load(); b != nil && b.err != nil {
		return transport.NewError(transport.ErrSend, s.Name(), "health", b.err)
	}
	if b := s.held.Load(); b != nil {
		return transport.NewError(transport.ErrSend, s.Name(), "health", b.err)
	}
	if s.br.IsOpen() {
		return transport.NewError(transport.ErrConnection, s.Name(), "health", &drainError{cause: ErrCircuitOpen,
			msg: fmt.Sprintf("%s: %s failed %d times in a row; records go to the spool %s (%d waiting) until a probe after %s succeeds",
				ErrCircuitOpen, s.name, s.cfg.Breaker.Threshold(), s.sp.Dir(), s.sp.Len(), s.br.OpenUntil().Format(time.RFC3339))})
	}
	if s.Stalled() {
		return transport.NewError(transport.ErrSend, s.Name(), "health", &drainError{cause: ErrStalled,
			msg: fmt.Sprintf("%s: no record of the spool %s (%d waiting) was delivered or dead-lettered for %s (tiered.stall_timeout): %s takes nothing",
				ErrStalled, s.sp.Dir(), s.sp.Len(), s.cfg.StallTimeout, s.name)})
	}
	if s.sp.PressureRatio() >= 1 {
		return transport.NewError(transport.ErrBackpressure, s.Name(), "health", &drainError{cause: spool.ErrFull,
			msg: fmt.Sprintf("%s: %s (%d records, %d bytes) is at its bound (tiered.spool.max_bytes, max_records): %s does not keep up",
				spool.ErrFull, s.sp.Dir(), s.sp.Len(), s.sp.Bytes(), s.name)})
	}
	return nil
}

// drainError is the Health error of a Sink that cannot drain: it matches
// ErrCannotDrain and its cause.
type drainError struct {
	cause error
	msg   string
}

func (e *drainError) Error() string   { return e.msg }
func (e *drainError) Unwrap() []error { return []error{ErrCannotDrain, e.cause} }

// Send delivers one record; see SendBatch.
func (s *Sink) Send(ctx context.Context, rec transport.Record) error {
	return s.SendBatch(ctx, []transport.Record{rec})
}

// SendBatch sends records to the downstream (within tiered.send_timeout)
// while the breaker is closed and, in strict ordering, the spool is empty.
// Records the downstream did not accept, and every record when it could not
// be called, are appended to the spool instead; SendBatch then returns nil:
// the records are as durable as the spool's sync policy makes them (see the
// package documentation). It returns an error only when the spool could not
// take them (full under the error policy, broken, closed) or after Close.
func (s *Sink) SendBatch(ctx context.Context, records []transport.Record) error {
	if len(records) == 0 {
		return nil
	}
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closed {
		return transport.NewError(transport.ErrClosed, s.Name(), "send", errors.New("the sink is closed"))
	}
	strict := s.cfg.Ordering == OrderingStrict
	if strict {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.spooling {
			return s.toSpool(ctx, records, nil, spoolOrdering)
		}
	}
	t, err := s.br.Allow()
	if err != nil {
		if strict {
			s.spooling = true
		}
		return s.toSpool(ctx, records, nil, spoolOpen)
	}
	rest, idx, reason := s.direct(ctx, t, records)
	if len(rest) == 0 {
		return nil
	}
	if strict {
		s.spooling = true
	}
	return s.toSpool(ctx, rest, idx, reason)
}

// direct sends records and returns those not accepted, with the reason;
// idx holds their indices in records, or is nil when none was accepted
// (rest is then records).
func (s *Sink) direct(ctx context.Context, t breaker.Ticket, records []transport.Record) (rest []transport.Record, idx []int, reason string) {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	err := s.down.SendBatch(sctx, records)
	timedOut := sctx.Err() != nil && ctx.Err() == nil
	cancel()
	if err == nil {
		t.Success()
		s.cDirect.Add(float64(len(records)))
		return nil, nil, ""
	}
	failed, ok := failedIndices(err, len(records))
	if !ok {
		switch {
		case ctx.Err() != nil:
			t.Ignore()
			return records, nil, spoolFailure
		case timedOut || errors.Is(err, transport.ErrTimeout):
			t.Failure()
			return records, nil, spoolTimeout
		case transport.Classify(err) == transport.Backpressure:
			t.Ignore()
			return records, nil, spoolBackpressur
		case permanent(err):
			// Maybe one record's fault, maybe the downstream's (an HTTP
			// endpoint answering 500): a failure for the breaker; the
			// drainer pins it on one record if a later record is accepted.
			t.Failure()
			s.noteDownErr(err)
			return records, nil, spoolRejected
		default:
			t.Failure()
			s.noteDownErr(err)
			return records, nil, spoolFailure
		}
	}
	rest = make([]transport.Record, 0, len(failed))
	idx = make([]int, 0, len(failed))
	allBP := true
	for _, f := range failed {
		rest = append(rest, records[f.Index])
		idx = append(idx, f.Index)
		if !errors.Is(f.Err, transport.ErrBackpressure) {
			allBP = false
		}
	}
	s.cDirect.Add(float64(len(records) - len(rest)))
	switch {
	case allBP:
		t.Ignore()
		return rest, idx, spoolBackpressur
	case len(rest) == len(records):
		t.Failure()
		return rest, nil, spoolFailure
	default:
		// The downstream answered and took some: it is up; the rest are
		// per-record problems the drainer sorts out.
		t.Success()
		return rest, idx, spoolRejected
	}
}

func (s *Sink) noteDownErr(err error) {
	if ok, skipped := s.warnEvery.Allow(); ok {
		s.log.Warn("downstream send failed; records go to the spool", "error", err.Error(), "suppressed", skipped)
	}
}

// failedIndices returns the distinct in-range failed indices of a
// *transport.BatchError in ascending order; ok is false when err is not one
// or names no valid index.
func failedIndices(err error, n int) ([]transport.FailedRecord, bool) {
	var be *transport.BatchError
	if !errors.As(err, &be) {
		return nil, false
	}
	seen := make([]bool, n)
	out := make([]transport.FailedRecord, 0, len(be.Failed))
	for _, f := range be.Failed {
		if f.Index < 0 || f.Index >= n || seen[f.Index] {
			continue
		}
		seen[f.Index] = true
		if f.Err == nil {
			f.Err = err
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, false
	}
	// Ascending order, whatever order the sender listed them in.
	sorted := out[:0:0]
	for i := range n {
		if !seen[i] {
			continue
		}
		for _, f := range out {
			if f.Index == i {
				sorted = append(sorted, f)
				break
			}
		}
	}
	return sorted, true
}

// toSpool appends records to the spool. idx holds their indices in the
// batch given to SendBatch, nil when records is that batch. When only some
// could be spooled, the error is a *transport.BatchError naming the others
// by those indices, so that the engine sends again only what the spool did
// not take.
func (s *Sink) toSpool(ctx context.Context, records []transport.Record, idx []int, reason string) error {
	size := 0
	for _, r := range records {
		size += encodedSize(r)
	}
	buf := make([]byte, 0, size)
	payloads := make([][]byte, len(records))
	for i, r := range records {
		start := len(buf)
		buf = EncodeRecord(buf, r)
		payloads[i] = buf[start:len(buf):len(buf)]
	}
	spooled := s.mSpooled.With(s.name, reason)
	i := 0
	for i < len(payloads) {
		_, n, err := s.sp.AppendBatch(ctx, payloads[i:])
		spooled.Add(float64(n))
		i += n
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, spool.ErrDropped):
			// The configured full policy discarded them (counted by the
			// spool too); the caller chose that loss.
			s.mDropped.With(s.name, "spool_full").Add(float64(len(payloads) - i))
			s.lastErr.Store(nil)
			return nil
		case errors.Is(err, spool.ErrTooLarge) && i < len(payloads):
			if derr := s.deadLetter(ctx, []deadItem{{rec: records[i], reason: "too large for the spool: " + err.Error(), tag: "too_large"}}); derr != nil {
				return transport.NewError(transport.ErrSend, s.Name(), "spool", fmt.Errorf("record %d is too large for spool %s and could not be dead-lettered: %w", i, s.sp.Dir(), derr))
			}
			i++
		default:
			s.lastErr.Store(&errBox{err: err})
			return s.unspooled(len(records), idx, i, err)
		}
	}
	// Under the interval and never policies the spool buffers appends:
	// write them out, so that they survive a crash of the process before
	// the engine commits their input.
	if err := s.sp.Flush(); err != nil {
		s.lastErr.Store(&errBox{err: err})
		return transport.NewError(transport.ErrSend, s.Name(), "spool",
			fmt.Errorf("downstream unavailable and the spooled records could not be written to %s (see the disk): %w", s.sp.Dir(), err))
	}
	s.lastErr.Store(nil)
	return nil
}

// unspooled is the error of SendBatch when records from on of a spool
// append of n could not be spooled: a full disk is backpressure (the
// engine waits and sends them again; space may come back), any other
// failure is fatal. It names the failed records by their index in the
// batch (idx, or the identity when nil) unless none of the batch was taken.
func (s *Sink) unspooled(n int, idx []int, from int, err error) error {
	kind := transport.ErrSend
	if errors.Is(err, spool.ErrDiskFull) {
		kind = transport.ErrBackpressure
	}
	cause := transport.NewError(kind, s.Name(), "spool",
		fmt.Errorf("downstream unavailable and %d records could not be spooled to %s (see tiered.spool.max_bytes, full_policy and the disk): %w", n-from, s.sp.Dir(), err))
	if from == 0 && idx == nil {
		return cause
	}
	be := &transport.BatchError{Failed: make([]transport.FailedRecord, 0, n-from)}
	for k := from; k < n; k++ {
		i := k
		if idx != nil {
			i = idx[k]
		}
		be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: cause})
	}
	return be
}

type deadItem struct {
	rec      transport.Record
	seq      uint64
	reason   string
	tag      string
	attempts int
}

// ErrNoDeadLetterQueue is matched by the Health error of a Sink that holds
// an undeliverable record because it has no dead-letter queue
// (Options.DeadLetters) and tiered.drop_undeliverable is false.
var ErrNoDeadLetterQueue = errors.New("tiered: undeliverable record held: no dead-letter queue")

// deadLetter writes items to the dead-letter queue (durably). Without one
// it discards them, logged and counted, under tiered.drop_undeliverable,
// and otherwise returns an error matching ErrNoDeadLetterQueue, so that the
// records stay where they are.
func (s *Sink) deadLetter(ctx context.Context, items []deadItem) error {
	if len(items) == 0 {
		return nil
	}
	if s.dl == nil {
		if !s.cfg.DropUndeliverable {
			it := items[0]
			if ok, skipped := s.heldEvery.Allow(); ok {
				s.log.Error("undeliverable record held in the spool: no dead-letter queue configured; configure one, or set tiered.drop_undeliverable: true to discard such records",
					"records", len(items), "reason", it.reason, "attempts", it.attempts, "spool_seq", it.seq, "suppressed", skipped)
			}
			return fmt.Errorf("%w: %d undeliverable records (the first: %s) stay in spool %s; configure a dead-letter queue, or set tiered.drop_undeliverable: true to discard them",
				ErrNoDeadLetterQueue, len(items), it.reason, s.sp.Dir())
		}
		for _, it := range items {
			s.log.Error("undeliverable record discarded (tiered.drop_undeliverable): no dead-letter queue configured",
				"reason", it.reason, "attempts", it.attempts, "spool_seq", it.seq, "payload_bytes", len(it.rec.Payload))
			s.mDropped.With(s.name, "no_dead_letter_queue").Inc()
		}
		return nil
	}
	entries := make([]dlq.Entry, len(items))
	for i, it := range items {
		entries[i] = dlq.Entry{
			Reason:      it.reason,
			Attempts:    it.attempts,
			Payload:     it.rec.Payload,
			Destination: s.down.Name(),
			Key:         it.rec.Key,
			Headers:     it.rec.Headers,
		}
		if it.seq != 0 {
			entries[i].Source = &dlq.Source{Token: "spool:" + s.sp.Name() + ":" + strconv.FormatUint(it.seq, 10)}
		}
	}
	if err := s.dl.Write(ctx, entries...); err != nil {
		return fmt.Errorf("dead-letter queue refused %d records: %w", len(items), err)
	}
	for _, it := range items {
		s.mDead.With(s.name, it.tag).Inc()
	}
	return nil
}

// Close stops accepting records (later sends fail with transport.ErrClosed),
// lets the drainer replay what it can until the spool is empty, the breaker
// is open or the spool stalled (Stalled), tiered.close_drain_timeout has
// passed or half
// the time ctx has left is used, whichever comes first, and leaves the rest
// in the spool, which it closes (fsync): a Sink opened later on the same
// spool directory drains it. It then closes the downstream. Records left in
// the spool are not an error: Close logs how many stay and returns nil
// unless closing the spool or the downstream fails. Close first waits for
// sends in flight; a send blocked on a full spool under the block policy
// holds it until that send's context ends. Calling it again returns the
// first result.
func (s *Sink) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Sink) close(ctx context.Context) error {
	s.sendMu.Lock()
	s.closed = true
	s.sendMu.Unlock()
	s.closing.Store(true)
	// Drain before closing while the downstream takes records; when it
	// takes nothing, the records stay spooled for the next start instead
	// of holding the shutdown.
	if s.sp.Len() > 0 && !s.stuck() {
		s.drainAtClose(ctx)
	}
	s.drainCancel()
	<-s.drainDone
	left := s.sp.Len()
	if left > 0 {
		s.log.Warn("closing with records left in the spool; they are drained at the next start",
			"records", left, "bytes", s.sp.Bytes(), "spool_dir", s.sp.Dir(), "cannot_drain", s.CannotDrain())
	}
	var errs []error
	if err := s.sp.Close(); err != nil {
		errs = append(errs, fmt.Errorf("tiered %s: closing spool %s: %w", s.name, s.sp.Dir(), err))
	}
	if err := s.down.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("tiered %s: closing the downstream: %w", s.name, err))
	}
	return errors.Join(errs...)
}

// closePoll is how often Close checks, while it drains, whether the sink
// can still drain.
const closePoll = 50 * time.Millisecond

// drainAtClose lets the drainer work until the spool is empty, the drainer
// stops, the breaker opens or the spool stalls, ctx ends, or the time allowed has passed:
// tiered.close_drain_timeout and at most half of what ctx has left, so that
// closing the downstream and the later shutdown steps keep time.
func (s *Sink) drainAtClose(ctx context.Context) {
	limit := s.cfg.CloseDrainTimeout
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl)/2)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	tick := time.NewTicker(closePoll)
	defer tick.Stop()
	for {
		select {
		case <-s.emptied:
			return
		case <-s.drainDone:
			return
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case <-tick.C:
			if s.stuck() {
				return
			}
		}
	}
}

// wallClock is the default Clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// backoff returns the wait after n consecutive failed rounds (n >= 1):
// exponential, capped, with jitter in [d/2, d].
func (s *Sink) backoff(n int) time.Duration {
	d := s.cfg.Backoff.Initial
	for i := 1; i < n && d < s.cfg.Backoff.Max; i++ {
		d *= 2
	}
	d = min(d, s.cfg.Backoff.Max)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx ends; it reports whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// RegisterMetrics registers the keel_tiered_* metrics on reg (nil means
// metrics.Default()), with those of the breaker and the spool a Sink
// builds, without building a Sink, so that a metrics manifest lists them
// before any sink exists. New registers them too.
func RegisterMetrics(reg *metrics.Registry) {
	registerVecs(metrics.OrDefault(reg))
	breaker.RegisterMetrics(reg)
	spool.RegisterMetrics(reg)
}

// sinkVecs are the keel_tiered_* vectors, labelled by sink.
type sinkVecs struct {
	direct, spooled, drained, dead, retries, dropped *metrics.CounterVec
}

// registerVecs registers the sink's metric vectors on reg, or returns them
// when they already are.
func registerVecs(reg *metrics.Registry) sinkVecs {
	o := func(name, help string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "tiered", Name: name, Help: help, Group: "tiered"}
	}
	return sinkVecs{
		direct:  reg.CounterVec(o("direct_records_total", "Records delivered directly to the downstream."), "sink"),
		spooled: reg.CounterVec(o("spooled_records_total", "Records written to the spool, by why they could not be sent directly."), "sink", "reason"),
		drained: reg.CounterVec(o("drained_records_total", "Records replayed from the spool and accepted by the downstream."), "sink"),
		dead:    reg.CounterVec(o("dead_lettered_records_total", "Records sent to the dead-letter queue, by reason."), "sink", "reason"),
		retries: reg.CounterVec(o("retries_total", "Drain rounds retried after a failure."), "sink"),
		dropped: reg.CounterVec(o("dropped_records_total", "Records discarded: spool full under drop_newest, or undeliverable without a dead-letter queue."), "sink", "reason"),
	}
}
