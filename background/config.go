package background

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keel-go/keel/metrics"
)

// Defaults of Config.
const (
	// DefaultQueueCapacity is the number of items a Sink holds.
	DefaultQueueCapacity = 10000
	// DefaultBatchSize is the largest batch handed to Drain.WriteBatch.
	DefaultBatchSize = 256
	// DefaultFlushInterval is how long a partial batch waits for more
	// items before it is written.
	DefaultFlushInterval = 100 * time.Millisecond
	// DefaultMaxAttempts is how many times a failed batch is written
	// before it is dropped.
	DefaultMaxAttempts = 3
	// DefaultRetryBackoff is the wait after the first failed write; it
	// doubles for each further attempt up to MaxRetryBackoff.
	DefaultRetryBackoff = 100 * time.Millisecond
	// MaxRetryBackoff caps the wait between two write attempts.
	MaxRetryBackoff = 5 * time.Second
	// DefaultWriteTimeout bounds one WriteBatch and one Flush call.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultSubsystem is the metrics subsystem of a Sink: its metrics are
	// keel_background_*.
	DefaultSubsystem = "background"
	// DefaultName is the value of the sink label when Config.Name is empty.
	DefaultName = "default"
	// UnlimitedAttempts as Config.MaxAttempts retries a failed batch until
	// it is written or Close runs out of time.
	UnlimitedAttempts = -1
)

// Overflow is what Push does when the queue is full.
type Overflow uint8

const (
	// OverflowBlock (the default) makes Push wait for room, until its
	// context ends. Pressure brakes the producer; nothing is lost.
	OverflowBlock Overflow = iota
	// OverflowDrop makes Push return ErrQueueFull at once. The item is not
	// taken; the refusal is counted in keel_<subsystem>_overflow_total.
	OverflowDrop
)

// String returns "block" or "drop".
func (o Overflow) String() string {
	switch o {
	case OverflowBlock:
		return "block"
	case OverflowDrop:
		return "drop"
	default:
		return fmt.Sprintf("Overflow(%d)", uint8(o))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (o Overflow) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads "block" or "drop" (case-insensitive; empty means
// block).
func (o *Overflow) UnmarshalText(b []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(b))) {
	case "", "block":
		*o = OverflowBlock
	case "drop":
		*o = OverflowDrop
	default:
		return fmt.Errorf("%w: overflow %q: use block or drop", ErrInvalidConfig, string(b))
	}
	return nil
}

// Config configures a Sink. The zero value is valid: a queue of 10 000
// items, batches of up to 256 written after at most 100 ms, Push waiting
// for room, a failed batch tried 3 times (100 ms, then 200 ms apart) before
// it is dropped, 30 s per write, durability only at barriers and Close, and
// metrics keel_background_*{sink="default"} in metrics.Default().
//
// The keys are meant to sit inside the owner's config section:
//
//	queue_capacity: 10000
//	batch_size: 256
//	flush_interval: 100ms
//	sync_interval: 0s      # 0: durable at Flush, Write and Close only
//	overflow: block        # block | drop
//	max_attempts: 3        # -1: until written or Close runs out of time
//	retry_backoff: 100ms
//	write_timeout: 30s
type Config struct {
	// QueueCapacity bounds the items held: queued, batched or being
	// written. 0 means DefaultQueueCapacity.
	QueueCapacity int `koanf:"queue_capacity" json:"queue_capacity" yaml:"queue_capacity"`
	// BatchSize is the largest batch handed to Drain.WriteBatch. 0 means
	// DefaultBatchSize.
	BatchSize int `koanf:"batch_size" json:"batch_size" yaml:"batch_size"`
	// FlushInterval is the longest a partial batch waits before it is
	// written. 0 means DefaultFlushInterval.
	FlushInterval time.Duration `koanf:"flush_interval" json:"flush_interval" yaml:"flush_interval"`
	// SyncInterval, when positive, makes the sink call Drain.Flush that
	// often while something was written since the last Flush, so written
	// items become durable within about SyncInterval without a barrier.
	// A failure is reported to the next Flush barrier.
	SyncInterval time.Duration `koanf:"sync_interval" json:"sync_interval" yaml:"sync_interval"`
	// Overflow is what Push does on a full queue.
	Overflow Overflow `koanf:"overflow" json:"overflow" yaml:"overflow"`
	// MaxAttempts is how often a batch is written before it is dropped
	// (counted, logged and handed to a Dropper). 0 means
	// DefaultMaxAttempts; UnlimitedAttempts retries until Close runs out of
	// time, so a drain that is down holds the queue and Push waits.
	MaxAttempts int `koanf:"max_attempts" json:"max_attempts" yaml:"max_attempts"`
	// RetryBackoff is the wait after the first failed write, doubled for
	// each further one up to MaxRetryBackoff, with up to 20% jitter.
	// 0 means DefaultRetryBackoff.
	RetryBackoff time.Duration `koanf:"retry_backoff" json:"retry_backoff" yaml:"retry_backoff"`
	// WriteTimeout bounds each WriteBatch and Flush call. 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration `koanf:"write_timeout" json:"write_timeout" yaml:"write_timeout"`

	// Name is the value of the sink label of the metrics and the sink
	// attribute of log lines. Empty means DefaultName.
	Name string `koanf:"-" json:"-" yaml:"-"`
	// Subsystem is the metrics subsystem: metrics are
	// keel_<subsystem>_pushed_total and so on. Empty means
	// DefaultSubsystem.
	Subsystem string `koanf:"-" json:"-" yaml:"-"`
	// Metrics receives the metrics. Nil means metrics.Default().
	Metrics *metrics.Registry `koanf:"-" json:"-" yaml:"-"`
	// Logger receives the sink's warnings. Nil means slog.Default() at the
	// time of each line.
	Logger *slog.Logger `koanf:"-" json:"-" yaml:"-"`
}

// Validate reports every problem, each naming its key (bare, such as
// "batch_size") and the fix. See ValidateAt.
func (c Config) Validate() error { return c.ValidateAt("") }

// ValidateAt is Validate with the keys prefixed by section and a dot, for
// owners that embed these keys in their own section (ValidateAt("dlq")
// names dlq.batch_size). Every error matches ErrInvalidConfig.
func (c Config) ValidateAt(section string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		if section != "" {
			key = section + "." + key
		}
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.QueueCapacity < 0 {
		bad("queue_capacity", "must be >= 1 (got %d); leave it unset for %d", c.QueueCapacity, DefaultQueueCapacity)
	}
	if c.BatchSize < 0 {
		bad("batch_size", "must be >= 1 (got %d); leave it unset for %d", c.BatchSize, DefaultBatchSize)
	}
	if c.BatchSize > 0 && c.BatchSize > c.queueCapacity() {
		bad("batch_size", "is %d, more than queue_capacity %d; a batch could never fill", c.BatchSize, c.queueCapacity())
	}
	if c.FlushInterval < 0 {
		bad("flush_interval", "must be > 0 (got %s); leave it unset for %s", c.FlushInterval, DefaultFlushInterval)
	}
	if c.SyncInterval < 0 {
		bad("sync_interval", "must be >= 0 (got %s); use 0 to sync only at barriers", c.SyncInterval)
	}
	if c.Overflow > OverflowDrop {
		bad("overflow", "is %s; use block or drop", c.Overflow)
	}
	if c.MaxAttempts < UnlimitedAttempts {
		bad("max_attempts", "must be >= 1, or -1 for unlimited (got %d)", c.MaxAttempts)
	}
	if c.RetryBackoff < 0 {
		bad("retry_backoff", "must be > 0 (got %s); leave it unset for %s", c.RetryBackoff, DefaultRetryBackoff)
	}
	if c.WriteTimeout < 0 {
		bad("write_timeout", "must be > 0 (got %s); leave it unset for %s", c.WriteTimeout, DefaultWriteTimeout)
	}
	return errors.Join(errs...)
}

func (c *Config) queueCapacity() int {
	if c.QueueCapacity <= 0 {
		return DefaultQueueCapacity
	}
	return c.QueueCapacity
}

func (c *Config) batchSize() int {
	if c.BatchSize <= 0 {
		return DefaultBatchSize
	}
	return c.BatchSize
}

func (c *Config) flushInterval() time.Duration {
	if c.FlushInterval <= 0 {
		return DefaultFlushInterval
	}
	return c.FlushInterval
}

func (c *Config) maxAttempts() int {
	if c.MaxAttempts == 0 {
		return DefaultMaxAttempts
	}
	return c.MaxAttempts
}

func (c *Config) retryBackoff() time.Duration {
	if c.RetryBackoff <= 0 {
		return DefaultRetryBackoff
	}
	return c.RetryBackoff
}

func (c *Config) writeTimeout() time.Duration {
	if c.WriteTimeout <= 0 {
		return DefaultWriteTimeout
	}
	return c.WriteTimeout
}

func (c *Config) name() string {
	if c.Name == "" {
		return DefaultName
	}
	return c.Name
}

func (c *Config) subsystem() string {
	if c.Subsystem == "" {
		return DefaultSubsystem
	}
	return c.Subsystem
}
