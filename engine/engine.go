package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
)

// ProcessFunc transforms one block. It may fan records out or in and add
// dead letters; it must keep the input tokens (transport.Batch.MapRecords
// does). The engine commits the tokens it received, whatever process
// returns, and warns (rate-limited) when the count changed. An error is
// terminal for the loop. It is never called with zero records.
type ProcessFunc func(ctx context.Context, b transport.Batch) (transport.Batch, error)

// SinkFunc delivers one out-batch (or sub-block). It returns nil only when
// every record was delivered; an error is terminal for the loop and the
// block is not committed. Under CommitSinkManaged the batch carries the
// input tokens and the sink commits them.
type SinkFunc func(ctx context.Context, b transport.Batch) error

// Engine drives blocks from a transport.Receiver through process, the
// dead-letter policy and a sink, then commits the input tokens: at least
// once, never past a failure. See the package documentation for the loop.
//
// One Engine may run several loops at once (each on its own receiver) and
// serve ProcessRecords calls concurrently; its Stats and metrics add up.
type Engine struct {
	cfg      Config
	policy   DeadLetterPolicy
	ins      *instruments
	c        counters
	pool     *pool.Pool
	interner *codec.Interner
	// loopParse and callParse are the parse options of the run loops and
	// of ProcessRecords.
	loopParse, callParse codec.ParseOptions

	tokenWarn   rateLimit
	discardWarn rateLimit

	// tracing decides per block whether a block span is started.
	tracing *blockTracing
}

// New validates cfg and returns an Engine. It starts no goroutine. Errors
// match ErrInvalidConfig and name the key.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, policy: cfg.policy(), pool: cfg.Pool, interner: cfg.Interner}
	e.ins = newInstruments(cfg.Metrics)
	e.tracing = newBlockTracing(cfg.Tracer)
	if e.pool == nil {
		p, err := pool.New(pool.Config{}, pool.WithMetrics(cfg.Metrics), pool.WithName("engine"), pool.WithLogger(cfg.Logger))
		if err != nil {
			return nil, fmt.Errorf("engine: build the default worker pool: %w", err)
		}
		e.pool = p
	}
	if e.interner == nil {
		in, err := codec.NewInterner(codec.InternerConfig{})
		if err != nil {
			return nil, fmt.Errorf("engine: build the field-name interner: %w", err)
		}
		e.interner = in
	}
	// The loops parse without copying: a transport hands out payloads it no
	// longer writes to. With interned keys the parse copies, so that no
	// interned name can keep a payload alive.
	e.loopParse = codec.ParseOptions{Format: cfg.Format, MaxDepth: cfg.MaxDepth, ZeroCopy: !cfg.InternKeys}
	if cfg.InternKeys {
		e.loopParse.Interner = e.interner
	}
	// ProcessRecords parses with copies: its caller owns the payloads and
	// may reuse them once the call returns.
	e.callParse = e.loopParse
	e.callParse.ZeroCopy = false
	e.tokenWarn.every = DefaultTokenWarnInterval
	e.discardWarn.every = DefaultTokenWarnInterval
	return e, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the engine's totals since New.
func (e *Engine) Stats() Stats { return e.c.snapshot() }

// Interner returns the field-name interner shared by the engine's parses.
func (e *Engine) Interner() *codec.Interner { return e.interner }

func (e *Engine) logger() *slog.Logger {
	if e.cfg.Logger != nil {
		return e.cfg.Logger
	}
	return slog.Default()
}

// Run is the on-demand loop: receive a block, route its dead letters,
// lease its bytes, process it, route the dead letters process produced,
// sink the out-batch, commit the input tokens. Nothing is parsed; a
// process step that needs a field parses it (codec.Parse).
//
// Cancelling ctx stops intake: nothing is received after it. The block in
// flight, if any, is finished and committed under a context that outlives
// the cancellation by batch_processing.drain_timeout; if it does not
// finish in time it is not committed and comes again from the source.
// Either way Run then returns nil (or the block's terminal error). Run
// also returns nil when the receiver reports the end of a finite source
// (transport.ErrClosed) after the last block was committed. Any other receive error, a process, routing, sink
// or commit error is terminal: Run returns a *StageError and nothing is
// received or committed after it.
func (e *Engine) Run(ctx context.Context, r transport.Receiver, process ProcessFunc, sink SinkFunc) error {
	if err := checkArgs(r, process == nil, sink == nil); err != nil {
		return err
	}
	proc := func(ctx context.Context, b transport.Batch) (transport.Batch, int, error) {
		out, err := process(ctx, b)
		if err == nil {
			e.countFiltered(len(b.Records), out)
		}
		return out, len(b.Records), err
	}
	return e.loop(ctx, r, "on_demand", e.fixedLimits(), func(ctx context.Context, b transport.Batch, _ time.Time, _ trace.Span) error {
		return e.driveBlock(ctx, r, b, proc, sink)
	}, nil)
}

// RunStreaming is Run with each block processed in sub-blocks of about
// batch_processing.sub_block_bytes payload bytes, drawn one at a time:
// only one sub-block is leased against Config.Memory at once, the block's
// tokens are committed once after the last sub-block was sunk, and a
// failure on any sub-block commits nothing of the block. Sub-blocks carry
// no tokens, so CommitSinkManaged is refused with ErrSinkManagedUnsupported
// before anything is received.
func (e *Engine) RunStreaming(ctx context.Context, r transport.Receiver, process ProcessFunc, sink SinkFunc) error {
	if err := checkArgs(r, process == nil, sink == nil); err != nil {
		return err
	}
	if e.cfg.CommitMode == CommitSinkManaged {
		return ErrSinkManagedUnsupported
	}
	target := e.cfg.SubBlockBytes
	return e.loop(ctx, r, "streaming", e.fixedLimits(), func(ctx context.Context, b transport.Batch, _ time.Time, span trace.Span) error {
		return e.driveStreaming(ctx, r, b, process, sink, target, span)
	}, nil)
}

// RunGoverned is the self-regulated loop. With Config.Budget set, each
// receive is capped at Budget.Bytes() payload bytes and at the smaller of
// max_chunk_size and Budget.RecordCap() records, each block streams in
// sub-blocks of Budget.Bytes() (read again for every block), and every
// block's bytes, processing time and receive interval are reported to
// Budget.Observe. CommitSinkManaged is then refused with
// ErrSinkManagedUnsupported. Without a budget RunGoverned is exactly Run.
func (e *Engine) RunGoverned(ctx context.Context, r transport.Receiver, process ProcessFunc, sink SinkFunc) error {
	budget := e.cfg.Budget
	if budget == nil {
		return e.Run(ctx, r, process, sink)
	}
	if err := checkArgs(r, process == nil, sink == nil); err != nil {
		return err
	}
	if e.cfg.CommitMode == CommitSinkManaged {
		return ErrSinkManagedUnsupported
	}
	maxRecords := e.cfg.maxRecords()
	limits := func() transport.Limits {
		n := maxRecords
		if rc := budget.RecordCap(); rc > 0 && rc < n {
			n = rc
		}
		return transport.Limits{MaxRecords: n, MaxBytes: max(budget.Bytes(), 1)}
	}
	var last time.Time
	interval := func(at time.Time) time.Duration {
		var d time.Duration
		if !last.IsZero() {
			d = at.Sub(last)
		}
		last = at
		return d
	}
	drive := func(ctx context.Context, b transport.Batch, at time.Time, span trace.Span) error {
		iv := interval(at)
		bytes := b.PayloadBytes()
		target := max(budget.Bytes(), 1)
		e.ins.budgetBytes.Set(float64(target))
		start := time.Now()
		if err := e.driveStreaming(ctx, r, b, process, sink, target, span); err != nil {
			return err
		}
		budget.Observe(bytes, time.Since(start), iv)
		return nil
	}
	empty := func(at time.Time) { budget.Observe(0, 0, interval(at)) }
	return e.loop(ctx, r, "governed", limits, drive, empty)
}

// checkArgs reports a nil receiver, process or sink. The nil-ness of the
// functions is passed as booleans: a nil func stored in an interface is not
// a nil interface.
func checkArgs(r transport.Receiver, nilProcess, nilSink bool) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: receiver is nil", ErrNilArgument)
	case nilProcess:
		return fmt.Errorf("%w: process function is nil", ErrNilArgument)
	case nilSink:
		return fmt.Errorf("%w: sink function is nil", ErrNilArgument)
	}
	return nil
}

func (e *Engine) fixedLimits() func() transport.Limits {
	l := transport.Limits{MaxRecords: e.cfg.maxRecords(), MaxBytes: e.cfg.MaxBytes}
	return func() transport.Limits { return l }
}

// blockFunc drives one non-empty block received at the given time. span
// is the block's span, already in ctx, or nil when tracing is off.
type blockFunc func(ctx context.Context, b transport.Batch, receivedAt time.Time, span trace.Span) error

// loop is the receive loop shared by every mode. It checks ctx first on
// each turn, runs a due tick between blocks, and gives Recv a deadline at
// the next tick so a quiet source cannot hold the ticker back. Blocks run
// under the drain context (see drainContext): cancelling ctx stops intake
// at once, and the block in flight finishes within drain_timeout.
func (e *Engine) loop(ctx context.Context, r transport.Receiver, mode string, limits func() transport.Limits,
	drive blockFunc, onEmpty func(time.Time)) error {
	log := e.logger()
	tk := newTicker(e.cfg.TickInterval, e.cfg.OnTick, time.Now())
	log.Info("engine loop starting", "mode", mode, "receiver", r.Name(),
		"max_chunk_size", e.cfg.maxRecords(), "commit_mode", e.cfg.CommitMode.String(),
		"dead_letter_policy", e.policy.String(), "ticker", tk != nil, "drain_timeout", e.cfg.drainTimeout())
	dctx, release := e.drainContext(ctx)
	defer release()
	stopped := func(reason string) error {
		log.Info("engine loop stopped", "mode", mode, "receiver", r.Name(), "reason", reason)
		return nil
	}
	// block drives b and turns the outcome into the loop's: go on, or
	// stop with nil or a terminal error.
	block := func(b transport.Batch, at time.Time, stopReason string) (bool, error) {
		stop, err := e.runBlock(ctx, dctx, mode, r.Name(), drive, b, at)
		if stop && err == nil {
			return true, stopped(stopReason)
		}
		return stop, err
	}
	for {
		if ctx.Err() != nil {
			return stopped("context done")
		}
		recvCtx, cancel := ctx, context.CancelFunc(nil)
		if tk != nil {
			if now := time.Now(); tk.due(now) {
				e.tick(ctx, tk, mode, now)
				if ctx.Err() != nil {
					return stopped("context done")
				}
			}
			recvCtx, cancel = context.WithDeadline(ctx, tk.next)
		}
		b, err := r.Recv(recvCtx, limits())
		if cancel != nil {
			cancel()
		}
		at := time.Now()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				// A receiver may hand back what it gathered before the
				// cancellation: it left the source, so it is drained.
				if !b.IsEmpty() {
					_, ferr := block(b, at, "context done")
					return ferr
				}
				return stopped("context done")
			case errors.Is(err, transport.ErrClosed):
				if !b.IsEmpty() {
					if stop, ferr := block(b, at, "context done"); stop {
						return ferr
					}
				}
				return stopped("source closed")
			case recvCtx.Err() != nil:
				// The tick deadline ended the receive; records it already
				// held come back with it or on the next call.
			default:
				e.c.failures.Add(1)
				e.ins.failures.With(string(StageRecv)).Inc()
				serr := &StageError{Stage: StageRecv, Receiver: r.Name(), Err: err}
				log.Error("engine receive failed; stopping the loop", "mode", mode, "receiver", r.Name(), "error", err)
				return serr
			}
		}
		if b.IsEmpty() {
			if onEmpty != nil {
				onEmpty(at)
			}
			continue
		}
		if stop, ferr := block(b, at, "context done (block in flight drained)"); stop {
			return ferr
		}
	}
}

// driveChecked runs drive under the block's span, when tracing is on, and
// counts and logs a terminal block failure. A failure that is only the end
// of ctx (a shutdown that cut the block short) is returned uncounted: the
// block was not committed. Either failure marks the span as an error.
func (e *Engine) driveChecked(ctx context.Context, mode, receiver string, drive blockFunc, b transport.Batch, at time.Time) error {
	var err error
	if tracer := e.tracing.tracer(); tracer != nil {
		sctx, span := startBlockSpan(ctx, tracer, mode, receiver, b)
		err = drive(sctx, b, at, span)
		endBlockSpan(span, err)
	} else {
		err = drive(ctx, b, at, nil)
	}
	if err == nil {
		return nil
	}
	if contextFailure(ctx, err) {
		return err
	}
	var se *StageError
	if errors.As(err, &se) {
		e.c.failures.Add(1)
		e.ins.failures.With(string(se.Stage)).Inc()
		e.logger().Error("engine block failed; stopping the loop (nothing of the block was committed)",
			"stage", string(se.Stage), "receiver", se.Receiver, "records", se.Records, "tokens", se.Tokens, "error", se.Err)
	}
	return err
}

// procFn is the internal process step: the out-batch and the number of
// input records it processed.
type procFn func(ctx context.Context, b transport.Batch) (transport.Batch, int, error)

// driveBlock takes one block through the whole-batch path.
func (e *Engine) driveBlock(ctx context.Context, r transport.Receiver, b transport.Batch, process procFn, sink SinkFunc) error {
	start := time.Now()
	nrec := len(b.Records)
	bytes := b.PayloadBytes()
	e.countBlock(nrec, bytes)
	tokens := b.Tokens
	fail := func(stage Stage, err error) error {
		return &StageError{Stage: stage, Receiver: r.Name(), Records: nrec, Tokens: len(tokens), Err: err}
	}
	if len(b.DeadLetters) > 0 {
		if err := e.routeDeadLetters(ctx, b.DeadLetters); err != nil {
			return fail(StageRoute, err)
		}
		b.DeadLetters = nil
	}

	e.lease(bytes)
	defer e.release(bytes)

	out := transport.Batch{Tokens: tokens}
	if nrec > 0 {
		t := time.Now()
		var err error
		var done int
		out, done, err = process(ctx, b)
		e.ins.processDur.Observe(since(t))
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return fail(StageParse, err)
			}
			return fail(StageProcess, err)
		}
		e.c.processed.Add(uint64(done))
		e.ins.processed.Add(float64(done))
		e.checkTokens(len(tokens), len(out.Tokens))
		if len(out.DeadLetters) > 0 {
			if err := e.routeDeadLetters(ctx, out.DeadLetters); err != nil {
				return fail(StageRoute, err)
			}
			out.DeadLetters = nil
		}
	}

	sinkManaged := e.cfg.CommitMode == CommitSinkManaged
	// A sink-managed sink also gets a block whose records were all filtered
	// out, or nobody would commit its tokens.
	if len(out.Records) > 0 || (sinkManaged && len(out.Tokens) > 0) {
		if err := e.sink(ctx, sink, out); err != nil {
			return fail(StageSink, err)
		}
	}
	if !sinkManaged {
		if err := e.commit(ctx, r, tokens); err != nil {
			return fail(StageCommit, err)
		}
	}
	e.ins.blockDur.Observe(since(start))
	return nil
}

// driveStreaming takes one block through lazily drawn sub-blocks and
// commits its tokens once at the end.
func (e *Engine) driveStreaming(ctx context.Context, r transport.Receiver, b transport.Batch,
	process ProcessFunc, sink SinkFunc, target int64, span trace.Span) error {
	start := time.Now()
	nrec := len(b.Records)
	e.countBlock(nrec, b.PayloadBytes())
	tokens := b.Tokens
	if len(b.DeadLetters) > 0 {
		if err := e.routeDeadLetters(ctx, b.DeadLetters); err != nil {
			return &StageError{Stage: StageRoute, Receiver: r.Name(), Records: nrec, Tokens: len(tokens), Err: err}
		}
	}
	subs := newSubBlocks(b.Records, target)
	for i := 0; ; i++ {
		sub, bytes, ok := subs.next()
		if !ok {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}

		subBlockEvent(span, i, len(sub), bytes)
		if err := e.driveSubBlock(ctx, r, sub, bytes, len(tokens), process, sink); err != nil {
			return err
		}
	}
	if err := e.commit(ctx, r, tokens); err != nil {
		return &StageError{Stage: StageCommit, Receiver: r.Name(), Records: nrec, Tokens: len(tokens), Err: err}
	}
	e.ins.blockDur.Observe(since(start))
	return nil
}

// driveSubBlock leases, processes and sinks one sub-block; the lease is
// released before the next sub-block is drawn, on every path.
func (e *Engine) driveSubBlock(ctx context.Context, r transport.Receiver, sub []transport.Record, bytes int64, ntok int,
	process ProcessFunc, sink SinkFunc) error {
	fail := func(stage Stage, err error) error {
		return &StageError{Stage: stage, Receiver: r.Name(), Records: len(sub), Tokens: ntok, Err: err}
	}
	e.lease(bytes)
	defer e.release(bytes)
	e.ins.subBlocks.Inc()

	t := time.Now()
	out, err := process(ctx, transport.Batch{Records: sub})
	e.ins.processDur.Observe(since(t))
	if err != nil {
		return fail(StageProcess, err)
	}
	e.c.processed.Add(uint64(len(sub)))
	e.ins.processed.Add(float64(len(sub)))
	e.countFiltered(len(sub), out)
	e.checkTokens(0, len(out.Tokens))
	if len(out.DeadLetters) > 0 {
		if err := e.routeDeadLetters(ctx, out.DeadLetters); err != nil {
			return fail(StageRoute, err)
		}
		out.DeadLetters = nil
	}
	if len(out.Records) > 0 {
		if err := e.sink(ctx, sink, out); err != nil {
			return fail(StageSink, err)
		}
	}
	return nil
}

// countFiltered counts the records a run loop's process step dropped:
// the input records it was given minus the records and dead letters it
// returned, when fewer came out. A fan-out counts nothing; a fan-in
// (several records merged into one) counts the difference.
func (e *Engine) countFiltered(in int, out transport.Batch) {
	if n := in - len(out.Records) - len(out.DeadLetters); n > 0 {
		e.c.filtered.Add(uint64(n))
		e.ins.filtered.Add(float64(n))
	}
}

func (e *Engine) countBlock(nrec int, bytes int64) {
	e.c.blocks.Add(1)
	e.c.received.Add(uint64(nrec))
	e.c.receivedBytes.Add(uint64(bytes))
	e.ins.blocks.Inc()
	e.ins.received.Add(float64(nrec))
	e.ins.receivedBytes.Add(float64(bytes))
	e.ins.blockRecords.Observe(float64(nrec))
	e.ins.blockBytesHist.Observe(float64(bytes))
}

func (e *Engine) sink(ctx context.Context, sink SinkFunc, out transport.Batch) error {
	t := time.Now()
	err := sink(ctx, out)
	e.ins.sinkDur.Observe(since(t))
	if err != nil {
		return err
	}
	e.c.delivered.Add(uint64(len(out.Records)))
	e.ins.delivered.Add(float64(len(out.Records)))
	return nil
}

// commit acknowledges tokens; a block without tokens has nothing to
// commit. Nothing is committed once ctx is done, whatever the receiver
// does with a done context: a block cut short by the drain deadline is
// committed entirely or not at all.
func (e *Engine) commit(ctx context.Context, r transport.Receiver, tokens []transport.Token) error {
	if len(tokens) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.Now()
	if err := r.Commit(ctx, tokens); err != nil {
		return err
	}
	e.ins.commitDur.Observe(since(t))
	e.c.committed.Add(1)
	e.ins.commits.Inc()
	return nil
}

func (e *Engine) lease(n int64) {
	if e.cfg.Memory != nil {
		e.cfg.Memory.Add(n)
	}
	e.ins.inflightBytes.Add(float64(n))
}

func (e *Engine) release(n int64) {
	if e.cfg.Memory != nil {
		e.cfg.Memory.Release(n)
	}
	e.ins.inflightBytes.Sub(float64(n))
}

// checkTokens warns, at most once per interval, when process changed the
// number of commit tokens. The engine still commits the input tokens.
func (e *Engine) checkTokens(in, out int) {
	if in == out {
		return
	}
	e.ins.tokenMismatch.Inc()
	if suppressed, ok := e.tokenWarn.allow(); ok {
		e.logger().Warn("process changed the number of commit tokens; the engine commits the input tokens it was given. "+
			"Keep tokens with transport.Batch.MapRecords instead of building a new batch from records",
			"input_tokens", in, "output_tokens", out, "suppressed", suppressed)
	}
}

// routeDeadLetters applies the dead-letter policy. An error is terminal.
func (e *Engine) routeDeadLetters(ctx context.Context, dls []transport.DeadLetter) error {
	n := len(dls)
	switch e.policy {
	case DeadLetterDiscard:
		e.c.discarded.Add(uint64(n))
		e.ins.discarded.Add(float64(n))
		if suppressed, ok := e.discardWarn.allow(); ok {
			e.logger().Warn("dead letters discarded by batch_processing.dead_letter_policy discard",
				"count", n, "first_reason", dls[0].Reason, "suppressed", suppressed)
		}
		return nil
	case DeadLetterRoute:
		if err := e.cfg.RouteDeadLetters(ctx, dls); err != nil {
			return err
		}
		e.c.deadLettered.Add(uint64(n))
		e.ins.routed.Add(float64(n))
		return nil
	default:
		e.ins.rejected.Add(float64(n))
		return &DeadLetterError{Count: n, FirstReason: dls[0].Reason}
	}
}

// tick runs the ticker function; an error is logged, not returned.
func (e *Engine) tick(ctx context.Context, tk *ticker, mode string, now time.Time) {
	tk.advance(now)
	e.c.ticks.Add(1)
	e.ins.ticks.Inc()
	if err := tk.fn(ctx); err != nil {
		e.c.tickErrors.Add(1)
		e.ins.tickErrors.Inc()
		e.logger().Error("engine ticker failed; the loop goes on", "mode", mode, "error", err)
	}
}

// ticker schedules OnTick: first one period after start, then every
// period; periods missed while a block was in flight fold into one tick.
type ticker struct {
	every time.Duration
	next  time.Time
	fn    func(context.Context) error
}

func newTicker(every time.Duration, fn func(context.Context) error, start time.Time) *ticker {
	if every <= 0 || fn == nil {
		return nil
	}
	return &ticker{every: every, next: start.Add(every), fn: fn}
}

func (t *ticker) due(now time.Time) bool { return !now.Before(t.next) }

func (t *ticker) advance(now time.Time) {
	t.next = t.next.Add(t.every)
	if !t.next.After(now) {
		t.next = now.Add(t.every)
	}
}

// rateLimit lets one event through per interval and counts the rest.
type rateLimit struct {
	every      time.Duration
	last       atomic.Int64
	suppressed atomic.Uint64
}

func (r *rateLimit) allow() (suppressed uint64, ok bool) {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if (last != 0 && now-last < int64(r.every)) || !r.last.CompareAndSwap(last, now) {
		r.suppressed.Add(1)
		return 0, false
	}
	return r.suppressed.Swap(0), true
}
