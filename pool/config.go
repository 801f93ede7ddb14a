package pool

import (
	"errors"
	"fmt"
	"math"
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

	// DefaultScaleInterval is how often a Scaler re-evaluates the target
	// when scale_interval is unset.
	DefaultScaleInterval = 5 * time.Second
	// MinScaleInterval is the shortest scale_interval accepted: a shorter
	// window measures CPU mostly as noise.
	MinScaleInterval = 100 * time.Millisecond
	// DefaultGrowBelow is the CPU utilisation under which the scaler raises
	// the target by 2 (grow_below).
	DefaultGrowBelow = 0.60
	// DefaultShrinkAbove is the CPU utilisation above which the scaler
	// lowers the target by 1 (shrink_above).
	DefaultShrinkAbove = 0.85
	// DefaultEmergencyAbove is the CPU utilisation above which the scaler
	// lowers the target by 2 (emergency_above).
	DefaultEmergencyAbove = 0.95
	// DefaultMemoryPressureCap is the memory pressure ratio above which the
	// scaler drops the target to min_workers (memory_pressure_cap).
	DefaultMemoryPressureCap = 0.80
)

// Config is the worker_pool section. The zero value is valid and means: a
// target between 1 and GOMAXPROCS workers, starting at GOMAXPROCS, no item
// timeout, automatic chunking, and, once a Scaler is built for the pool, a
// scaling step every 5 s with the default thresholds.
//
//	worker_pool:
//	  min_workers: 1
//	  max_workers: 8
//	  initial_workers: 4
//	  item_timeout: 30s
//	  scaling_enabled: true
//	  scale_interval: 5s
//	  grow_below: 0.60
//	  shrink_above: 0.85
//	  emergency_above: 0.95
//	  memory_pressure_cap: 0.80
//
// The scaling keys are read by the Scaler (see NewScaler and Decide); New
// validates them too, so a bad value fails at start-up whether or not a
// Scaler is built.
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

	// ScalingEnabled switches the adaptive scaler on. Nil means true. With
	// false, Scaler.Run returns at once and the target stays where
	// InitialWorkers and SetTarget put it; Scaler.Tick still works when
	// called by hand.
	ScalingEnabled *bool `koanf:"scaling_enabled"`
	// ScaleInterval is the time between two scaling steps of Scaler.Run,
	// and so the window over which CPU utilisation is measured. 0 means
	// DefaultScaleInterval (5s); otherwise at least MinScaleInterval.
	ScaleInterval time.Duration `koanf:"scale_interval"`
	// GrowBelow is the CPU utilisation (0..1 of the CPUs the process may
	// use) under which the target grows by 2. 0 means DefaultGrowBelow
	// (0.60). It must be below ShrinkAbove.
	GrowBelow float64 `koanf:"grow_below"`
	// ShrinkAbove is the CPU utilisation above which the target shrinks by
	// 1; up to and including it the target holds. 0 means
	// DefaultShrinkAbove (0.85). It must be below EmergencyAbove.
	ShrinkAbove float64 `koanf:"shrink_above"`
	// EmergencyAbove is the CPU utilisation above which the target shrinks
	// by 2. 0 means DefaultEmergencyAbove (0.95); at most 1.
	EmergencyAbove float64 `koanf:"emergency_above"`
	// MemoryPressureCap is the memory pressure ratio above which (strictly)
	// the target drops to MinWorkers whatever the CPU says. 0 means
	// DefaultMemoryPressureCap (0.80); at most 1.
	MemoryPressureCap float64 `koanf:"memory_pressure_cap"`
}

// Thresholds returns the scaling thresholds of c with defaults applied.
func (c Config) Thresholds() Thresholds {
	return Thresholds{
		GrowBelow:         c.GrowBelow,
		ShrinkAbove:       c.ShrinkAbove,
		EmergencyAbove:    c.EmergencyAbove,
		MemoryPressureCap: c.MemoryPressureCap,
	}.WithDefaults()
}

// resolved is a Config with its defaults applied.
type resolved struct {
	min, max, initial int
	itemTimeout       time.Duration
	inlineBelow       int
	chunk             int // 0 = auto
	scale             scaleConfig
}

// scaleConfig is the resolved scaling part of the section.
type scaleConfig struct {
	enabled    bool
	interval   time.Duration
	thresholds Thresholds
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
	if c.ScalingEnabled == nil {
		on := true
		c.ScalingEnabled = &on
	}
	if c.ScaleInterval == 0 {
		c.ScaleInterval = DefaultScaleInterval
	}
	th := c.Thresholds()
	c.GrowBelow, c.ShrinkAbove, c.EmergencyAbove, c.MemoryPressureCap =
		th.GrowBelow, th.ShrinkAbove, th.EmergencyAbove, th.MemoryPressureCap
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
	if c.ScaleInterval < 0 || c.ScaleInterval > 0 && c.ScaleInterval < MinScaleInterval {
		bad("scale_interval", "must be >= %s (got %s); leave it unset for the default %s",
			MinScaleInterval, c.ScaleInterval, DefaultScaleInterval)
	}
	for _, f := range []struct {
		key string
		v   float64
		def float64
	}{
		{"grow_below", c.GrowBelow, DefaultGrowBelow},
		{"shrink_above", c.ShrinkAbove, DefaultShrinkAbove},
		{"emergency_above", c.EmergencyAbove, DefaultEmergencyAbove},
		{"memory_pressure_cap", c.MemoryPressureCap, DefaultMemoryPressureCap},
	} {
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			bad(f.key, "must be a ratio in (0, 1] (got %v); leave it unset for the default %v", f.v, f.def)
		}
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
	if d.GrowBelow >= d.ShrinkAbove {
		bad("grow_below", "must be < %s.shrink_above (got %v >= %v); lower grow_below or raise shrink_above",
			Section, d.GrowBelow, d.ShrinkAbove)
	}
	if d.ShrinkAbove >= d.EmergencyAbove {
		bad("shrink_above", "must be < %s.emergency_above (got %v >= %v); lower shrink_above or raise emergency_above",
			Section, d.ShrinkAbove, d.EmergencyAbove)
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
		scale: scaleConfig{
			enabled:    *d.ScalingEnabled,
			interval:   d.ScaleInterval,
			thresholds: d.Thresholds(),
		},
	}, nil
}
