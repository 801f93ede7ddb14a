package pool

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Section is the config section a Pool reads: worker_pool.
const Section = "worker_pool"

// Defaults for the fields of Config whose zero value means "use the default".
const (
	// DefaultMinWorkers is the lowest target SetTarget accepts when
	// min_workers is unset.
	DefaultMinWorkers = 1
	// DefaultInlineBelow is the item count under which Map runs a call on
	// the caller's goroutine without starting any other.
	DefaultInlineBelow = 32
	// MaxAutoChunk is the largest chunk of consecutive items a Map worker
	// takes at once when chunk_size is unset.
	MaxAutoChunk = 256
)

// Config is the worker_pool section. The zero value is valid and means: a
// target between 1 and GOMAXPROCS workers, starting at GOMAXPROCS, no item
// timeout, automatic chunking.
//
//	worker_pool:
//	  min_workers: 1
//	  max_workers: 8
//	  initial_workers: 4
//	  item_timeout: 30s
type Config struct {
	// MinWorkers is the lowest concurrency target. 0 means 1.
	MinWorkers int `koanf:"min_workers"`
	// MaxWorkers is the highest concurrency target. 0 means GOMAXPROCS,
	// which follows the container's CPU limit, or MinWorkers when that is
	// larger. A value above GOMAXPROCS is honoured: it only pays for work
	// that waits (I/O in Go or FanOut).
	MaxWorkers int `koanf:"max_workers"`
	// InitialWorkers is the target at start. 0 means MaxWorkers.
	InitialWorkers int `koanf:"initial_workers"`
	// ItemTimeout bounds each item run by Go or FanOut; the item's context
	// carries the deadline and a late item's result is ErrItemTimeout.
	// 0 means no timeout. Map does not apply it: its items are short CPU
	// work and the caller's ctx bounds the call.
	ItemTimeout time.Duration `koanf:"item_timeout"`
	// InlineBelow is the item count under which Map runs on the caller's
	// goroutine only. 0 means DefaultInlineBelow (32).
	InlineBelow int `koanf:"inline_below"`
	// ChunkSize is how many consecutive items a Map worker claims at once.
	// 0 means automatic: about eight chunks per worker, at most
	// MaxAutoChunk items each.
	ChunkSize int `koanf:"chunk_size"`
}

// resolved is a Config with its defaults applied.
type resolved struct {
	min, max, initial int
	itemTimeout       time.Duration
	inlineBelow       int
	chunk             int // 0 = auto
}

// WithDefaults returns c with every unset field replaced by its default.
// It does not validate; call Validate for that.
func (c Config) WithDefaults() Config {
	if c.MinWorkers == 0 {
		c.MinWorkers = DefaultMinWorkers
	}
	if c.MaxWorkers == 0 {
		c.MaxWorkers = runtime.GOMAXPROCS(0)
		if c.MaxWorkers < c.MinWorkers && c.MinWorkers > 0 {
			// An explicit min above the CPU count is a request for more
			// concurrency than cores (I/O work): honour it rather than fail.
			c.MaxWorkers = c.MinWorkers
		}
	}
	if c.InitialWorkers == 0 {
		c.InitialWorkers = c.MaxWorkers
	}
	if c.InlineBelow == 0 {
		c.InlineBelow = DefaultInlineBelow
	}
	return c
}

// Validate reports every problem in the section, each as a *ConfigError that
// names the key, the value found and the fix, joined with errors.Join. It
// returns nil for the zero Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{
			Key: Section + "." + key,
			Msg: Section + "." + key + " " + fmt.Sprintf(format, args...),
		})
	}
	if c.MinWorkers < 0 {
		bad("min_workers", "must be >= 1 (got %d); leave it unset for the default %d", c.MinWorkers, DefaultMinWorkers)
	}
	if c.MaxWorkers < 0 {
		bad("max_workers", "must be >= 1 (got %d); leave it unset for GOMAXPROCS (%d)", c.MaxWorkers, runtime.GOMAXPROCS(0))
	}
	if c.InitialWorkers < 0 {
		bad("initial_workers", "must be >= 1 (got %d); leave it unset to start at max_workers", c.InitialWorkers)
	}
	if c.ItemTimeout < 0 {
		bad("item_timeout", "must be >= 0 (got %s); use 0 for no timeout", c.ItemTimeout)
	}
	if c.InlineBelow < 0 {
		bad("inline_below", "must be >= 0 (got %d); leave it unset for the default %d", c.InlineBelow, DefaultInlineBelow)
	}
	if c.ChunkSize < 0 {
		bad("chunk_size", "must be >= 0 (got %d); leave it unset for automatic chunking", c.ChunkSize)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d := c.WithDefaults()
	if d.MaxWorkers < d.MinWorkers {
		bad("max_workers", "must be >= %s.min_workers (got %d < %d); raise max_workers or lower min_workers",
			Section, d.MaxWorkers, d.MinWorkers)
	} else if d.InitialWorkers < d.MinWorkers || d.InitialWorkers > d.MaxWorkers {
		bad("initial_workers", "must be within [%s.min_workers, %s.max_workers] (got %d, range %d..%d); leave it unset to start at max_workers",
			Section, Section, d.InitialWorkers, d.MinWorkers, d.MaxWorkers)
	}
	return errors.Join(errs...)
}

func (c Config) resolve() (resolved, error) {
	if err := c.Validate(); err != nil {
		return resolved{}, err
	}
	d := c.WithDefaults()
	return resolved{
		min:         d.MinWorkers,
		max:         d.MaxWorkers,
		initial:     d.InitialWorkers,
		itemTimeout: d.ItemTimeout,
		inlineBelow: d.InlineBelow,
		chunk:       d.ChunkSize,
	}, nil
}
