package keel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/secrets"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
	"github.com/keel-go/keel/transport/httptransport"
	"github.com/keel-go/keel/transport/inmem"
	"github.com/keel-go/keel/transport/pipe"
)

// Built-in transport types (TransportKafka too).
const (
	TransportInmem = "inmem"
	TransportFile  = "file"
	TransportPipe  = "pipe"
	// TransportHTTP is the built-in HTTP transport type (package
	// transport/httptransport): a receiver serving a POST endpoint, a
	// sender posting batches.
	TransportHTTP = "http"
)

// TransportBuilder builds the receiver and the sender of one transport
// type from its config section. Register one with WithTransport; a nil
// Receiver or Sender means the type does not support that side.
type TransportBuilder struct {
	// Validate checks the type's settings without connecting or opening
	// anything. Start-up and config-check call it for every section in
	// App.Transports. Nil means the settings are only checked when a
	// receiver or sender is built.
	Validate func(tc TransportContext) error
	// Receiver builds a receiver.
	Receiver func(ctx context.Context, tc TransportContext) (transport.Receiver, error)
	// Sender builds a sender.
	Sender func(ctx context.Context, tc TransportContext) (transport.Sender, error)
}

// TransportContext is what a TransportBuilder builds from: the section
// that names the transport, its type, and the key of the type's own
// settings. For
//
//	input:
//	  type: file
//	  file:
//	    path: /data/in.ndjson
//
// Section is "input", Type "file" and Key "input.file".
type TransportContext struct {
	// Section is the transport section, e.g. "transport".
	Section string
	// Type is the value of its type key, e.g. "kafka".
	Type string
	// Key is where the type's settings live: Section + "." + Type.
	Key string
	// Runtime gives the builder the service's config, logger, metrics,
	// memory guard and the rest.
	Runtime *Runtime

	ctx context.Context // of the Receiver or Sender call; nil at start-up checks
}

// Decode decodes the type's settings (the section at Key) into dst, a
// pointer pre-filled with defaults, and registers them, so config-check
// and /config show them. While the service runs, every secret.String
// field holding a secret reference (vault:..., file:..., env:...) is then
// replaced by its secret (see Runtime.Secrets). An error is a
// *SectionError naming Key; an unresolvable reference names the key and
// the reference, never a value.
func (tc TransportContext) Decode(dst any) error {
	if err := tc.Runtime.cfg.Section(tc.Key, dst); err != nil {
		return &SectionError{Key: tc.Key, Err: err}
	}
	rt := tc.Runtime
	if rt.mode == modeRun && rt.secrets != nil {
		ctx := tc.ctx
		if ctx == nil {
			ctx = rt.bgCtx
		}
		if err := secrets.ResolveStruct(ctx, rt.secrets, tc.Key, dst); err != nil {
			return &SectionError{Key: tc.Key, Err: err}
		}
	}
	return nil
}

// builtinTransports returns the built-in builders. The inmem builder
// keeps one queue per section in rt, so the receiver and the sender of
// one section are the two ends of the same queue.
func (rt *Runtime) builtinTransports() map[string]TransportBuilder {
	return map[string]TransportBuilder{
		TransportKafka: kafkaBuilder(),
		TransportInmem: {
			Validate: func(tc TransportContext) error {
				_, err := decodeInmem(tc)
				return err
			},
			Receiver: func(_ context.Context, tc TransportContext) (transport.Receiver, error) { return rt.inmemQueue(tc) },
			Sender:   func(_ context.Context, tc TransportContext) (transport.Sender, error) { return rt.inmemQueue(tc) },
		},
		TransportFile: localBuilder(file.Section, func(c *file.Config, reg *metrics.Registry, log *slog.Logger) { c.Metrics, c.Logger = reg, log },
			file.NewReceiver, file.NewSender),
		TransportPipe: localBuilder(pipe.Section, func(c *pipe.Config, reg *metrics.Registry, log *slog.Logger) {
			c.Metrics, c.Logger = reg, log
			c.Input, c.Output = rt.opts.pipeIn, rt.opts.pipeOut
		}, pipe.NewReceiver, pipe.NewSender),
		TransportHTTP: localBuilder(httptransport.Section, func(c *httptransport.Config, reg *metrics.Registry, log *slog.Logger) { c.Metrics, c.Logger = reg, log },
			httptransport.NewReceiver, httptransport.NewSender),
	}
}

func decodeInmem(tc TransportContext) (inmem.Config, error) {
	var c inmem.Config
	if err := tc.Decode(&c); err != nil {
		return c, err
	}
	var errs []error
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("%s.buffer_size is %d: use a queue capacity >= 1 (0 means %d)", tc.Key, c.Capacity, inmem.DefaultCapacity))
	}
	if c.RecvTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s.recv_timeout is %s: use a duration >= 0 (0 waits for the first record)", tc.Key, c.RecvTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return c, &SectionError{Key: tc.Key, Err: fmt.Errorf("%w: %w", transport.ErrConfig, err)}
	}
	return c, nil
}

// localBuilder is the builder of a transport type whose settings are
// one sub-section decoded into a C (file, pipe, http): newReceiver and
// newSender build from it, once decodeLocal decoded and validated it.
func localBuilder[C interface{ Validate() error }, R transport.Receiver, S transport.Sender](section string,
	attach func(*C, *metrics.Registry, *slog.Logger), newReceiver func(C) (R, error), newSender func(C) (S, error)) TransportBuilder {
	return TransportBuilder{
		Validate: func(tc TransportContext) error {
			_, err := decodeLocal(tc, section, attach)
			return err
		},
		Receiver: func(_ context.Context, tc TransportContext) (transport.Receiver, error) {
			c, err := decodeLocal(tc, section, attach)
			if err != nil {
				return nil, err
			}
			return newReceiver(c)
		},
		Sender: func(_ context.Context, tc TransportContext) (transport.Sender, error) {
			c, err := decodeLocal(tc, section, attach)
			if err != nil {
				return nil, err
			}
			return newSender(c)
		},
	}
}

// decodeLocal decodes tc's sub-section into a C, validates it with the
// keys named under tc.Key instead of the package's own section, and lets
// attach give it the runtime's metrics registry and logger.
func decodeLocal[C interface{ Validate() error }](tc TransportContext, section string, attach func(*C, *metrics.Registry, *slog.Logger)) (C, error) {
	var c C
	if err := tc.Decode(&c); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, &SectionError{Key: tc.Key, Err: rekey(err, section, tc.Key)}
	}
	attach(&c, tc.Runtime.reg, tc.Runtime.log)
	return c, nil
}

// rekeyedError is an error whose text names the keys of the section they
// were read from: a transport package names its keys under its default
// section (transport.file.path), which is wrong for input.file.path.
type rekeyedError struct {
	msg string
	err error
}

func (e *rekeyedError) Error() string { return e.msg }
func (e *rekeyedError) Unwrap() error { return e.err }

// rekey rewrites the keys under from to keys under to in err's text,
// keeping err as the cause.
func rekey(err error, from, to string) error {
	if from == to {
		return err
	}
	return &rekeyedError{msg: strings.ReplaceAll(err.Error(), from+".", to+"."), err: err}
}

// inmemQueue returns the section's queue, creating it on first use.
func (rt *Runtime) inmemQueue(tc TransportContext) (*inmem.Transport, error) {
	c, err := decodeInmem(tc)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if q, ok := rt.inmem[tc.Section]; ok {
		return q, nil
	}
	q := inmem.New(c)
	rt.inmem[tc.Section] = q
	return q, nil
}

// TransportTypes returns the transport types this runtime can build,
// sorted.
func (rt *Runtime) TransportTypes() []string {
	return slices.Sorted(maps.Keys(rt.builders))
}

// transportContext resolves a transport section to its builder.
func (rt *Runtime) transportContext(section string) (TransportContext, TransportBuilder, error) {
	if section == "" {
		section = SectionTransport
	}
	known := strings.Join(rt.TransportTypes(), ", ")
	key := section + ".type"
	typ, err := rt.cfg.String(key)
	if err != nil {
		if errors.Is(err, config.ErrNotFound) {
			return TransportContext{}, TransportBuilder{}, &SectionError{Key: section, Err: fmt.Errorf(
				"%w: %s is not set: set it to one of %s (environment variable %s)",
				ErrUnknownTransport, key, known, config.EnvVarName(rt.cfg.EnvPrefix(), key))}
		}
		return TransportContext{}, TransportBuilder{}, &SectionError{Key: section, Err: err}
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	b, ok := rt.builders[typ]
	if !ok {
		return TransportContext{}, TransportBuilder{}, &SectionError{Key: section, Err: fmt.Errorf(
			"%w: %s is %q: use one of %s", ErrUnknownTransport, key, typ, known)}
	}
	return TransportContext{Section: section, Type: typ, Key: section + "." + typ, Runtime: rt}, b, nil
}

// checkTransport validates a transport section without building it.
func (rt *Runtime) checkTransport(section string) error {
	tc, b, err := rt.transportContext(section)
	if err != nil {
		return err
	}
	var berr error
	if b.Validate != nil {
		berr = b.Validate(tc)
	}
	return errors.Join(berr, rt.checkTiered(tc.Section))
}

// Receiver builds a receiver from a transport section ("" means
// "transport"): its type key picks the builder (kafka, http, inmem, file, pipe,
// and those added with WithTransport), which reads its settings from the
// sub-section of the type's name (transport.file, ...). A missing or
// unknown type is an error listing the known ones.
//
// With self-regulation on (the default) the receiver is braked by the
// governor: one with a native pause (a Kafka consumer pauses its
// partitions and stays in its group) gets a gate of its own, labelled
// "<type>:<section>"; any other is wrapped with gated.Governed, which
// stops receiving while the governor's gate is held. Then the
// WithReceiverWrapper wrappers apply. Use As to reach the transport under
// the wrappers. The receiver is registered as a health check
// ("receiver:<section>") so readiness reflects it, and closed at shutdown
// after the senders. A receiver that reports how full its inbound queue
// is (a QueueFill() float64 method, as inmem and http have) feeds the
// queue component of the scaling pressure until it is closed. The inmem
// type returns one queue per section, shared with Sender of the same
// section.
func (rt *Runtime) Receiver(ctx context.Context, section string) (transport.Receiver, error) {
	if err := rt.refuseWhenClosing("Receiver"); err != nil {
		return nil, err
	}
	tc, b, err := rt.transportContext(section)
	if err != nil {
		return nil, err
	}
	tc.ctx = ctx
	if b.Receiver == nil {
		return nil, &SectionError{Key: tc.Section, Err: fmt.Errorf("%w: transport type %q has no receiver; use it as a sender",
			transport.ErrConfig, tc.Type)}
	}
	r, err := b.Receiver(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("keel: build the %s receiver of section %q: %w", tc.Type, tc.Section, err)
	}
	stopFill := rt.addQueueFill(r)
	r = rt.brake(tc, r)
	for _, w := range rt.opts.receiverWrapper {
		wrapped, werr := w(ctx, tc, r)
		if werr != nil {
			stopFill()
			_ = r.Close(ctx)
			return nil, fmt.Errorf("keel: wrap the %s receiver of section %q: %w", tc.Type, tc.Section, werr)
		}
		r = wrapped
	}
	if err := rt.adopt("receiver", tc, r, r.Health, r.Close, stopFill); err != nil {
		stopFill()
		return nil, err
	}
	return r, nil
}

// queueFiller is a receiver that reports how full its inbound queue or
// buffer is, in [0,1] (inmem, http).
type queueFiller interface{ QueueFill() float64 }

// addQueueFill feeds the queue fill of r (or of what r wraps) to the
// scaling pressure's queue component, which is the largest fill of the
// receivers fed, and returns the function that stops feeding it, called
// when the receiver is closed. A receiver that reports no fill is not fed.
// The runtime sets the queue source with the first receiver that reports
// one.
func (rt *Runtime) addQueueFill(r transport.Receiver) (stop func()) {
	q, ok := As[queueFiller](r)
	if !ok {
		return func() {}
	}
	// One entry per queue: an inmem section's receiver built twice is one
	// queue, closed once.
	var key any = q
	if !reflect.TypeOf(q).Comparable() {
		key = new(byte)
	}
	rt.mu.Lock()
	if rt.fills == nil {
		rt.fills = make(map[any]queueFiller)
	}
	rt.fills[key] = q
	first := !rt.fillFed
	rt.fillFed = true
	rt.mu.Unlock()
	if first {
		if err := rt.scaling.Source(scaling.Queue, rt.maxQueueFill); err != nil {
			rt.log.Debug("the receivers' queue fill is not fed to the scaling pressure", "error", err)
		}
	}
	return func() {
		rt.mu.Lock()
		delete(rt.fills, key)
		rt.mu.Unlock()
	}
}

// maxQueueFill is the scaling pressure's queue source: the largest queue
// fill of the receivers not closed, or NaN (no reading) when there is
// none.
func (rt *Runtime) maxQueueFill() float64 {
	rt.mu.Lock()
	fills := slices.Collect(maps.Values(rt.fills))
	rt.mu.Unlock()
	out := math.NaN()
	for _, q := range fills {
		v := q.QueueFill()
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(out) || v > out {
			out = v
		}
	}
	return out
}

// Sender builds a sender from a transport section ("" means "transport"),
// like Receiver. It is registered as a health check ("sender:<section>")
// and flushed and closed at shutdown, before the receivers.
//
// With <section>.tiered.enabled true (see TieredSection) the sender is
// wrapped in a tiered.Sink named after the section, with the runtime's
// dead-letter queue (DLQ, when built) for records that can never be
// delivered: what the sender cannot take is spooled to disk and replayed
// once it recovers. The returned sender is then the *tiered.Sink, whose
// Health is the section's health check and whose Close, in the senders
// phase of shutdown, drains the spool for at most its close_drain_timeout,
// leaves the rest spooled for the next start and closes the sender. Its
// spool fill level is a soft pressure source of the governor
// (TieredSourceName), and while any tiered sink cannot drain (breaker
// open, spool stalled for stall_timeout, or spool full) the scaling
// pressure's circuit is reported open, which forces the scaling pressure
// to zero (more instances would not help a downstream that is down). The runtime owns
// the scaling pressure's circuit source from the first tiered sink on.
func (rt *Runtime) Sender(ctx context.Context, section string) (transport.Sender, error) {
	if err := rt.refuseWhenClosing("Sender"); err != nil {
		return nil, err
	}
	tc, b, err := rt.transportContext(section)
	if err != nil {
		return nil, err
	}
	tc.ctx = ctx
	if b.Sender == nil {
		return nil, &SectionError{Key: tc.Section, Err: fmt.Errorf("%w: transport type %q has no sender; use it as a receiver",
			transport.ErrConfig, tc.Type)}
	}
	s, err := b.Sender(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("keel: build the %s sender of section %q: %w", tc.Type, tc.Section, err)
	}
	if s, err = rt.wrapTiered(ctx, tc, s); err != nil {
		return nil, fmt.Errorf("keel: build the tiered sink of section %q: %w", tc.Section, err)
	}
	if err := rt.adopt("sender", tc, s, s.Health, s.Close, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// closable is a transport the runtime closes at shutdown.
type closable struct {
	name   string
	check  string
	id     any // the transport, for de-duplication when comparable
	close  func(context.Context) error
	forget func() // stops what the runtime reads from it; nil for nothing
}

// adopt registers a built transport: its health check, its close, and
// forget (nil for nothing), called when the runtime closes it, or skips it
// because it closed the same transport already.
func (rt *Runtime) adopt(side string, tc TransportContext, t any, healthFn, closeFn func(context.Context) error, forget func()) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closing {
		_ = closeFn(context.Background())
		return fmt.Errorf("%w: %s of section %q built during shutdown; it was closed", ErrShuttingDown, side, tc.Section)
	}
	base := side + ":" + tc.Section
	rt.checkSeq[base]++
	check := base
	if n := rt.checkSeq[base]; n > 1 {
		check = base + "#" + strconv.Itoa(n)
	}
	c := closable{name: fmt.Sprintf("%s %q (%s)", side, tc.Section, tc.Type), check: check, close: closeFn, forget: forget}
	// A receiver is identified by what it wraps, so that an inmem queue
	// used as both ends of a section is closed once.
	if r, ok := t.(transport.Receiver); ok && side == "receiver" {
		t = innermost(r)
	}
	if reflect.TypeOf(t).Comparable() {
		c.id = t
	}
	if side == "sender" {
		rt.senders = append(rt.senders, c)
	} else {
		rt.receivers = append(rt.receivers, c)
	}
	return rt.health.Register(check, func(ctx context.Context) (health.Status, string) {
		if err := healthFn(ctx); err != nil {
			return health.Unhealthy, logging.MaskString(err.Error())
		}
		return health.Healthy, ""
	})
}
