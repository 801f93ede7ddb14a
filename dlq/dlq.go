package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

// MaintenanceInterval is how often the DLQ runs its backends' Maintain
// (the file backend's rotation of an idle file, compression and
// retention).
const MaintenanceInterval = time.Minute

// Options wires a DLQ: what does not come from the config file.
type Options struct {
	// Service is written into every entry without one and names the file
	// backend's subdirectory.
	Service string
	// Clock stamps entries and drives file rotation and retention. Nil
	// means the wall clock.
	Clock Clock
	// Metrics receives keel_dlq_*. Nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives the DLQ's warnings. Nil means slog.Default().
	Logger *slog.Logger
	// KafkaClientOpts are added to the Kafka backend's client options
	// (TLS, SASL, ...).
	KafkaClientOpts []kgo.Opt
	// HTTPClient, when set, sends the HTTP backend's requests.
	HTTPClient *http.Client
	// RedisClient, when set, is used by the Redis backend instead of one
	// built from dlq.redis.url.
	RedisClient redis.UniversalClient
	// Backends, when set, replace the backends of the config: they are
	// used in this order, by Config.Mode. The DLQ closes them.
	Backends []Backend
}

// DLQ is the dead-letter queue: a bounded queue in front of one or more
// backends. Its methods are safe for concurrent use. See the package
// documentation.
type DLQ struct {
	enabled  bool
	mode     Mode
	cfg      Config
	service  string
	clock    Clock
	logger   *slog.Logger
	m        *dlqMetrics
	names    []string
	sink     *background.Sink[Encoded]
	disp     *dispatcher
	maint    *background.Worker
	closeMu  sync.Mutex
	closed   bool
	closeErr error
}

// New builds the backends and starts the queue. With cfg.Enabled false it
// returns a disabled DLQ that refuses entries with ErrDisabled. It fails
// on an invalid config (naming the key) and when a backend cannot be set
// up (such as an unwritable dlq.file.path).
func New(ctx context.Context, cfg Config, opts Options) (*DLQ, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &DLQ{enabled: cfg.Enabled, mode: cfg.Mode, cfg: cfg, service: opts.Service, clock: opts.Clock, logger: opts.Logger}
	if d.clock == nil {
		d.clock = wallClock{}
	}
	if d.logger == nil {
		d.logger = slog.Default()
	}
	if !cfg.Enabled {
		return d, nil
	}
	d.m = newDLQMetrics(opts.Metrics)
	backends := opts.Backends
	if backends == nil {
		var err error
		backends, err = buildBackends(ctx, cfg, opts, d.logger)
		if err != nil {
			return nil, err
		}
	}
	if len(backends) == 0 {
		return nil, &ConfigError{Key: Section + ".order", Msg: "leaves no backend; enable one of dlq.file, dlq.kafka, dlq.http, dlq.redis"}
	}
	if cfg.Mode == ModeSingle && len(backends) != 1 {
		closeAll(ctx, backends)
		return nil, &ConfigError{Key: Section + ".mode", Msg: fmt.Sprintf("is single but %d backends are given; give one, or use cascade or fan_out", len(backends))}
	}
	for _, b := range backends {
		d.names = append(d.names, b.Name())
	}
	scfg := cfg.sinkConfig()
	scfg.Name = "dlq"
	scfg.Subsystem = queueSubsystem
	scfg.Metrics = opts.Metrics
	scfg.Logger = opts.Logger
	maxUnsynced := scfg.QueueCapacity
	if maxUnsynced <= 0 {
		maxUnsynced = background.DefaultQueueCapacity
	}
	d.disp = newDispatcher(cfg.Mode, backends, maxUnsynced, d.m, d.logger, d.clock.Now)
	sink, err := background.New[Encoded](scfg, d.disp)
	if err != nil {
		closeAll(ctx, backends)
		return nil, err
	}
	d.sink = sink
	var maint []Maintainer
	for _, b := range backends {
		if mb, ok := b.(Maintainer); ok {
			maint = append(maint, mb)
		}
	}
	if len(maint) > 0 {
		w, err := background.Periodic{Name: "dlq_maintenance", Interval: MaintenanceInterval, Jitter: 0.1,
			Metrics: opts.Metrics, Logger: opts.Logger}.Start(context.Background(), func(ctx context.Context) error {
			var errs []error
			for _, mb := range maint {
				errs = append(errs, mb.Maintain(ctx))
			}
			return errors.Join(errs...)
		})
		if err != nil {
			_ = sink.Close(ctx)
			return nil, err
		}
		d.maint = w
	}
	d.logger.Info("dead-letter queue started", "mode", cfg.Mode.String(), "backends", d.names,
		"queue_capacity", sink.Capacity())
	return d, nil
}

// buildBackends builds the enabled backends in cascade order; with none
// enabled, the file backend.
func buildBackends(ctx context.Context, cfg Config, opts Options, logger *slog.Logger) ([]Backend, error) {
	names := cfg.enabledBackends()
	if len(names) == 0 {
		names = []string{BackendFile}
	}
	var out []Backend
	for _, name := range names {
		var b Backend
		var err error
		switch name {
		case BackendFile:
			b, err = NewFileBackend(ctx, cfg.File, FileOptions{Service: opts.Service, Clock: opts.Clock, Metrics: opts.Metrics, Logger: logger})
		case BackendKafka:
			b, err = NewKafkaBackend(cfg.Kafka, KafkaOptions{ClientOpts: opts.KafkaClientOpts, Metrics: opts.Metrics, Logger: logger})
		case BackendHTTP:
			b, err = NewHTTPBackend(cfg.HTTP, HTTPOptions{Client: opts.HTTPClient})
		case BackendRedis:
			b, err = NewRedisBackend(cfg.Redis, RedisOptions{Client: opts.RedisClient})
		}
		if err != nil {
			closeAll(ctx, out)
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func closeAll(ctx context.Context, bs []Backend) {
	for _, b := range bs {
		_ = b.Close(ctx)
	}
}

// Enabled reports whether the DLQ takes entries.
func (d *DLQ) Enabled() bool { return d.enabled }

// Mode returns the dispatch mode.
func (d *DLQ) Mode() Mode { return d.mode }

// Backends returns the backends' names in the order they are tried.
func (d *DLQ) Backends() []string { return slices.Clone(d.names) }

// Pending returns the entries queued and not yet written or dropped.
func (d *DLQ) Pending() int {
	if d.sink == nil {
		return 0
	}
	return d.sink.Pending()
}

// Dropped returns the entries lost because no backend took them within
// max_attempts, since the start.
func (d *DLQ) Dropped() uint64 {
	if d.sink == nil {
		return 0
	}
	return d.sink.Dropped()
}

// encode fills the time and service and encodes entries.
func (d *DLQ) encode(entries []Entry) []Encoded {
	out := make([]Encoded, len(entries))
	var now time.Time
	for i, e := range entries {
		if e.Time.IsZero() {
			if now.IsZero() {
				now = d.clock.Now()
			}
			e.Time = now
		}
		if e.Service == "" {
			e.Service = d.service
		}
		out[i] = Encode(e)
	}
	return out
}

// Push queues entries (all or none): it waits for room under overflow
// block (until ctx ends) and refuses at once with ErrQueueFull under
// overflow drop. nil means queued, not yet written: see Flush and Write.
func (d *DLQ) Push(ctx context.Context, entries ...Entry) error {
	if !d.enabled {
		return ErrDisabled
	}
	return d.sink.Push(ctx, d.encode(entries)...)
}

// TryPush queues entries (all or none) without waiting; on a full queue it
// returns ErrQueueFull and the entries stay with the caller.
func (d *DLQ) TryPush(entries ...Entry) error {
	if !d.enabled {
		return ErrDisabled
	}
	return d.sink.TryPush(d.encode(entries)...)
}

// Write queues entries, waiting for room, and returns once they were
// written and made durable, or with the reason they were not.
func (d *DLQ) Write(ctx context.Context, entries ...Entry) error {
	if !d.enabled {
		return ErrDisabled
	}
	return d.sink.Write(ctx, d.encode(entries)...)
}

// Flush is a barrier: it returns once every entry queued before it was
// written and made durable (file fsync; Kafka, HTTP and Redis writes are
// acknowledged when written), or with what failed since the previous
// barrier: entries no backend took, or a failed sync whose entries no
// other backend took. A disabled DLQ returns nil.
func (d *DLQ) Flush(ctx context.Context) error {
	if !d.enabled {
		return nil
	}
	return d.sink.Flush(ctx)
}

// Close stops taking entries, writes and syncs everything queued, closes
// the backends and returns what failed. When ctx ends first, what is
// still queued is dropped, counted and reported. Close is idempotent.
func (d *DLQ) Close(ctx context.Context) error {
	if !d.enabled {
		return nil
	}
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return d.closeErr
	}
	d.closed = true
	if d.maint != nil {
		d.maint.Stop()
	}
	d.closeErr = d.sink.Close(ctx)
	if d.closeErr != nil {
		d.logger.Error("dead-letter queue closed with errors", "error", d.closeErr, "dropped_total", d.sink.Dropped())
	}
	return d.closeErr
}

// queueSubsystem is the metrics subsystem of the DLQ's queue
// (keel_dlq_queue_*).
const queueSubsystem = "dlq_queue"

// RegisterMetrics registers the keel_dlq_* metrics on reg (nil means
// metrics.Default()): those of the dispatcher, the queue, the file backend
// and the maintenance worker, without building a DLQ, so that a metrics
// manifest lists them before any DLQ exists. New registers them too.
func RegisterMetrics(reg *metrics.Registry) {
	newDLQMetrics(reg)
	newFileMetrics(reg)
	kafkaFallbackCounter(reg)
	background.RegisterSinkMetrics(reg, queueSubsystem)
	background.RegisterPeriodicMetrics(reg)
}
