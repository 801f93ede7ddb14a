package memory

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Section is the config section the guard reads: memory.
const Section = "memory"

// Defaults of the fields of Config whose zero value means "use the default".
const (
	// DefaultHeadroomFraction is the share of the base limit (the cgroup
	// limit, the user's GOMEMLIMIT or the system memory) the guard may
	// account before it refuses reservations.
	DefaultHeadroomFraction = 0.80
	// DefaultPressureThreshold is the pressure ratio (current / guard
	// limit) from which the guard reports pressure.
	DefaultPressureThreshold = 0.80
	// DefaultGoMemoryLimitFraction is the share of the cgroup limit that
	// ApplyGoMemoryLimit gives the Go runtime as its soft memory limit.
	DefaultGoMemoryLimitFraction = 0.90
	// DefaultHeapSampleInterval is the most often the guard reads the live
	// heap when use_heap is on.
	DefaultHeapSampleInterval = 100 * time.Millisecond
)

// Config is the memory section. The zero value is valid and means: the
// guard is on, its limit is 80% of the cgroup limit (else of the system
// memory), pressure from 80% of that limit, a Go runtime memory limit of
// 90% of the cgroup limit once ApplyGoMemoryLimit is called, and current
// bytes are the bytes accounted through TryReserve and Add.
//
//	memory:
//	  enabled: true
//	  limit_bytes: 0                  # 0 = detect
//	  headroom_fraction: 0.80
//	  pressure_threshold: 0.80
//	  go_memory_limit_fraction: 0.90
//	  use_heap: false
//	  heap_sample_interval: 100ms
//
// A fraction of 0 means its default; a negative, NaN, infinite or above-1
// fraction is a start-up error.
type Config struct {
	// Enabled switches the guard on. Nil means true. A disabled guard
	// still counts bytes but never refuses and never reports pressure, and
	// ApplyGoMemoryLimit leaves the Go runtime alone.
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// LimitBytes is the guard's limit, used as given (no headroom). 0
	// means detect it: the cgroup limit, else the system memory, times
	// HeadroomFraction. It must not exceed the Go runtime memory limit.
	LimitBytes int64 `koanf:"limit_bytes" json:"limit_bytes" yaml:"limit_bytes"`
	// HeadroomFraction is the share of the detected base limit the guard
	// uses as its limit, in (0, 1). 0 means DefaultHeadroomFraction (0.80).
	// It must be below GoMemoryLimitFraction, so that the guard's limit
	// sits below the Go runtime memory limit and the guard refuses work
	// before the Go garbage collector has to fight for memory.
	HeadroomFraction float64 `koanf:"headroom_fraction" json:"headroom_fraction" yaml:"headroom_fraction"`
	// PressureThreshold is the pressure ratio from which UnderPressure is
	// true, in (0, 1]. 0 means DefaultPressureThreshold (0.80).
	PressureThreshold float64 `koanf:"pressure_threshold" json:"pressure_threshold" yaml:"pressure_threshold"`
	// GoMemoryLimitFraction is the share of the cgroup limit that
	// ApplyGoMemoryLimit sets as the Go runtime memory limit when the user
	// did not set GOMEMLIMIT, in (0, 1]. 0 means
	// DefaultGoMemoryLimitFraction (0.90).
	GoMemoryLimitFraction float64 `koanf:"go_memory_limit_fraction" json:"go_memory_limit_fraction" yaml:"go_memory_limit_fraction"`
	// UseHeap adds the live Go heap (runtime/metrics /gc/heap/live:bytes)
	// to the guard's view: current bytes become the larger of the accounted
	// bytes and the live heap, and a reservation must fit under the limit
	// in both views. Accounting (TryReserve, Add, Release) works the same
	// either way. Default false.
	UseHeap bool `koanf:"use_heap" json:"use_heap" yaml:"use_heap"`
	// HeapSampleInterval is the most often the live heap is read when
	// UseHeap is on; reads in between return the last sample. 0 means
	// DefaultHeapSampleInterval (100ms).
	HeapSampleInterval time.Duration `koanf:"heap_sample_interval" json:"heap_sample_interval" yaml:"heap_sample_interval"`
}

// IsEnabled reports whether the guard is on (Enabled nil or true).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// WithDefaults returns c with every unset field replaced by its default.
// It does not validate; call Validate for that.
func (c Config) WithDefaults() Config {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.HeadroomFraction == 0 {
		c.HeadroomFraction = DefaultHeadroomFraction
	}
	if c.PressureThreshold == 0 {
		c.PressureThreshold = DefaultPressureThreshold
	}
	if c.GoMemoryLimitFraction == 0 {
		c.GoMemoryLimitFraction = DefaultGoMemoryLimitFraction
	}
	if c.HeapSampleInterval == 0 {
		c.HeapSampleInterval = DefaultHeapSampleInterval
	}
	return c
}

// Validate reports every problem in the section, each as a *ConfigError
// that names the key, the value found and the fix, joined with
// errors.Join. It returns nil for the zero Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	fractions := []struct {
		key string
		v   float64
		def float64
	}{
		{"headroom_fraction", c.HeadroomFraction, DefaultHeadroomFraction},
		{"pressure_threshold", c.PressureThreshold, DefaultPressureThreshold},
		{"go_memory_limit_fraction", c.GoMemoryLimitFraction, DefaultGoMemoryLimitFraction},
	}
	fracOK := true
	for _, f := range fractions {
		// 0 is "unset": the default applies.
		if f.v == 0 {
			continue
		}
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			fracOK = false
			bad(f.key, "must be in (0, 1], got %s; leave it unset for the default %s", fmtFloat(f.v), fmtFloat(f.def))
		}
	}
	if c.LimitBytes < 0 {
		bad("limit_bytes", "must be >= 0, got %d; use 0 to detect the limit from the cgroup or the system memory", c.LimitBytes)
	}
	if c.HeapSampleInterval < 0 {
		bad("heap_sample_interval", "must be >= 0, got %s; leave it unset for the default %s", c.HeapSampleInterval, DefaultHeapSampleInterval)
	}
	if fracOK {
		d := c.WithDefaults()
		if d.HeadroomFraction >= d.GoMemoryLimitFraction {
			bad("headroom_fraction", "(%s) must be below memory.go_memory_limit_fraction (%s): the guard's limit must sit below the Go runtime memory limit so that it refuses work first; lower headroom_fraction or raise go_memory_limit_fraction",
				fmtFloat(d.HeadroomFraction), fmtFloat(d.GoMemoryLimitFraction))
		}
	}
	return errors.Join(errs...)
}

// fmtFloat prints a float the way a user wrote it: 1.5, 0.8, NaN, +Inf.
func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
