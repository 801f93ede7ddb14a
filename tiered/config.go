package tiered

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/spool"
)

// Section is the config section the tiered sink reads: tiered.
const Section = "tiered"

// Defaults of the Config fields whose zero value means "use the default".
const (
	// DefaultSendTimeout bounds one downstream call.
	DefaultSendTimeout = time.Second
	// DefaultDrainBatch is the most records the drainer sends at once.
	DefaultDrainBatch = 500
	// DefaultDrainBytes is the most payload bytes the drainer sends at once
	// (at least one record).
	DefaultDrainBytes = 4 << 20
	// DefaultMaxAttempts is how often a record the downstream refuses
	// alone, with a permanent error, is tried before the record after it
	// decides whether it is dead-lettered (see Config.MaxAttempts).
	DefaultMaxAttempts = 5
	// DefaultBackoffInitial is the first wait of the drainer after a
	// failed round.
	DefaultBackoffInitial = 100 * time.Millisecond
	// DefaultBackoffMax caps the drainer's wait.
	DefaultBackoffMax = 30 * time.Second
	// DefaultStallTimeout is how long a non-empty spool may go without a
	// record drained before the sink reports that it cannot drain.
	DefaultStallTimeout = 30 * time.Second
	// DefaultCloseDrainTimeout bounds how long Close keeps draining the
	// spool before it leaves the rest for the next start.
	DefaultCloseDrainTimeout = 10 * time.Second
)

// ErrInvalidConfig is matched by every error of Config.Validate and of New
// for a bad tiered section.
var ErrInvalidConfig = errors.New("tiered: invalid tiered config")

// Ordering says how new records relate to spooled ones.
type Ordering string

// Orderings.
const (
	// OrderingStrict (the default): while the spool holds records, new
	// records go to the spool behind them, and a record is sent directly
	// only when the spool is empty. The downstream receives the records
	// in the order they were sent to the Sink (one Sink, one process).
	OrderingStrict Ordering = "strict"
	// OrderingInterleaved: new records are sent directly whenever the
	// breaker lets them, while the drainer replays the spool beside them.
	// Records that went through the spool arrive later than records sent
	// after them. Lower latency for new data during recovery.
	OrderingInterleaved Ordering = "interleaved"
)

// Backoff is the drainer's wait after a failed round: Initial, doubling up to
// Max, each wait drawn at random between half and all of it (jitter).
type Backoff struct {
	// Initial is the first wait. 0 means DefaultBackoffInitial.
	Initial time.Duration `koanf:"initial" json:"initial" yaml:"initial"`
	// Max caps the wait. 0 means DefaultBackoffMax.
	Max time.Duration `koanf:"max" json:"max" yaml:"max"`
}

// Config is the tiered section. The zero value is valid: 1 s send timeout,
// strict ordering, drain batches of 500 records or 4 MiB, 5 attempts,
// backoff 100 ms to 30 s, no drain rate limit, a 30 s stall timeout, a 10 s
// drain at close, and the spool and breaker defaults.
//
//	tiered:
//	  send_timeout: 1s
//	  ordering: strict        # strict | interleaved
//	  drain_batch: 500
//	  drain_bytes: 4194304
//	  max_attempts: 5
//	  backoff:
//	    initial: 100ms
//	    max: 30s
//	  rate_limit: 0           # drained records/s, 0 = unlimited
//	  spool:
//	    dir: /var/lib/myapp/spool
//	    sync: interval
//	  breaker:
//	    failure_threshold: 5
//	    open_timeout: 30s
type Config struct {
	// SendTimeout bounds one downstream call, direct or from the drainer.
	// A call that runs out of time counts as a breaker failure; its
	// records go to (or stay in) the spool. Default 1 s.
	SendTimeout time.Duration `koanf:"send_timeout" json:"send_timeout" yaml:"send_timeout"`
	// Ordering is strict (default) or interleaved.
	Ordering Ordering `koanf:"ordering" json:"ordering" yaml:"ordering"`
	// DrainBatch is the most records sent in one drain call. Default 500.
	DrainBatch int `koanf:"drain_batch" json:"drain_batch" yaml:"drain_batch"`
	// DrainBytes is the most payload bytes read for one drain call (at
	// least one record). Default 4 MiB.
	DrainBytes int64 `koanf:"drain_bytes" json:"drain_bytes" yaml:"drain_bytes"`
	// MaxAttempts is how often the downstream must refuse a record sent
	// alone, with a permanent error, each time after a backoff wait,
	// before the drainer sends the record after it to find out whose
	// fault it is: if the downstream accepts that one, the record is
	// dead-lettered. Outage errors (timeouts, connection, closed-sender
	// and configuration errors) and backpressure are never charged to a
	// record. Default 5.
	MaxAttempts int `koanf:"max_attempts" json:"max_attempts" yaml:"max_attempts"`
	// DropUndeliverable lets the sink discard, logged at ERROR and counted
	// in keel_tiered_dropped_records_total{reason="no_dead_letter_queue"},
	// a record that can never be delivered when it has no dead-letter
	// queue. False (the default) keeps such a record in the spool: the
	// drainer holds at it, nothing behind it is delivered, and Health,
	// then Stalled and CannotDrain, report it until a dead-letter queue is
	// configured.
	DropUndeliverable bool `koanf:"drop_undeliverable" json:"drop_undeliverable" yaml:"drop_undeliverable"`
	// Backoff is the drainer's wait after a failed round.
	Backoff Backoff `koanf:"backoff" json:"backoff" yaml:"backoff"`
	// RateLimit caps the drain rate in records per second. 0 means no cap.
	RateLimit float64 `koanf:"rate_limit" json:"rate_limit" yaml:"rate_limit"`
	// StallTimeout is how long the spool may hold records without the
	// drainer resolving any (delivered or dead-lettered) before the sink
	// reports that it cannot drain (CannotDrain, Health). Default 30 s.
	StallTimeout time.Duration `koanf:"stall_timeout" json:"stall_timeout" yaml:"stall_timeout"`
	// CloseDrainTimeout bounds how long Close keeps draining the spool
	// into the downstream (never more than half the time its context has
	// left) before it leaves the rest spooled for the next start. Default
	// 10 s.
	CloseDrainTimeout time.Duration `koanf:"close_drain_timeout" json:"close_drain_timeout" yaml:"close_drain_timeout"`
	// Spool is the spool the records go to when the downstream cannot
	// take them (see package spool).
	Spool spool.Config `koanf:"spool" json:"spool" yaml:"spool"`
	// Breaker guards the downstream (see package breaker).
	Breaker breaker.Config `koanf:"breaker" json:"breaker" yaml:"breaker"`
}

// ConfigError is one bad key of the tiered section. It matches
// ErrInvalidConfig.
type ConfigError struct {
	// Key is the full key, such as tiered.ordering.
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reports every problem in the section, the spool and breaker
// sub-sections included, each naming its key (tiered.spool.max_bytes), joined
// with errors.Join. It returns nil for the zero Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	if c.SendTimeout < 0 {
		bad("send_timeout", "is %s: use a positive duration such as 1s, or 0 for the default %s", c.SendTimeout, DefaultSendTimeout)
	}
	switch c.Ordering {
	case "", OrderingStrict, OrderingInterleaved:
	default:
		bad("ordering", "is %q: use strict or interleaved", string(c.Ordering))
	}
	if c.DrainBatch < 0 {
		bad("drain_batch", "is %d: use a positive record count, or 0 for the default %d", c.DrainBatch, DefaultDrainBatch)
	}
	if c.DrainBytes < 0 {
		bad("drain_bytes", "is %d: use a positive byte count, or 0 for the default %d", c.DrainBytes, DefaultDrainBytes)
	}
	if c.MaxAttempts < 0 {
		bad("max_attempts", "is %d: use a positive count, or 0 for the default %d", c.MaxAttempts, DefaultMaxAttempts)
	}
	if c.Backoff.Initial < 0 {
		bad("backoff.initial", "is %s: use a positive duration such as 100ms, or 0 for the default %s", c.Backoff.Initial, DefaultBackoffInitial)
	}
	if c.Backoff.Max < 0 {
		bad("backoff.max", "is %s: use a positive duration such as 30s, or 0 for the default %s", c.Backoff.Max, DefaultBackoffMax)
	}
	if c.Backoff.Initial > 0 && c.Backoff.Max > 0 && c.Backoff.Max < c.Backoff.Initial {
		bad("backoff.max", "is %s, below backoff.initial %s: raise it", c.Backoff.Max, c.Backoff.Initial)
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) {
		bad("rate_limit", "is %v: use records per second (> 0), or 0 for no limit", c.RateLimit)
	}
	if c.StallTimeout < 0 {
		bad("stall_timeout", "is %s: use a positive duration such as 30s, or 0 for the default %s", c.StallTimeout, DefaultStallTimeout)
	}
	if c.CloseDrainTimeout < 0 {
		bad("close_drain_timeout", "is %s: use a positive duration such as 10s, or 0 for the default %s", c.CloseDrainTimeout, DefaultCloseDrainTimeout)
	}
	errs = append(errs, prefixed(c.Spool.Validate())...)
	errs = append(errs, prefixed(c.Breaker.ValidateAt(Section+"."+breaker.Section))...)
	return errors.Join(errs...)
}

// prefixed puts "tiered." in front of each of the spool's key errors,
// keeping them matchable with errors.Is.
func prefixed(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixed(e)...)
		}
		return out
	}
	var se *spool.ConfigError
	if errors.As(err, &se) {
		return []error{fmt.Errorf("%s.%w: %w", Section, err, ErrInvalidConfig)}
	}
	return []error{err}
}

// WithDefaults returns c with every zero field replaced by its default,
// those of the spool and breaker sub-sections included. It does not
// validate; call Validate for that.
func (c Config) WithDefaults() Config {
	c = c.normalized()
	c.Spool = c.Spool.WithDefaults()
	c.Breaker = c.Breaker.WithDefaults()
	return c
}

// normalized is WithDefaults for the sink's own fields; New leaves the
// spool and breaker sub-sections to spool.Open and breaker.New.
func (c Config) normalized() Config {
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.Ordering == "" {
		c.Ordering = OrderingStrict
	}
	if c.DrainBatch == 0 {
		c.DrainBatch = DefaultDrainBatch
	}
	if c.DrainBytes == 0 {
		c.DrainBytes = DefaultDrainBytes
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = DefaultBackoffInitial
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = DefaultBackoffMax
	}
	if c.Backoff.Max < c.Backoff.Initial {
		c.Backoff.Max = c.Backoff.Initial
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.CloseDrainTimeout == 0 {
		c.CloseDrainTimeout = DefaultCloseDrainTimeout
	}
	return c
}
