package governor

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Section is the config section the governor reads: self_regulation.
const Section = "self_regulation"

// Defaults of the fields of Config whose zero value means "use the default".
const (
	// DefaultPauseAt is the pressure level at and above which the latch
	// engages and the inbound gate pauses the source.
	DefaultPauseAt = 0.80
	// DefaultResumeAt is the pressure level at and below which an engaged
	// latch releases and the gate resumes the source.
	DefaultResumeAt = 0.65
	// DefaultInterval is the period of the gate evaluation loop (Run).
	DefaultInterval = 100 * time.Millisecond
	// MinInterval is the shortest evaluation period Validate accepts.
	MinInterval = time.Millisecond
	// DefaultSoftWeight is the weight of a soft pressure source that
	// self_regulation.weights does not name.
	DefaultSoftWeight = 1.0
	// DefaultMaxBlockFraction is the largest share of the memory guard's
	// limit one block may take (1/16): the byte budget's start, floor and
	// ceiling are capped at limit × max_block_fraction. A block at that
	// cap which the process step expands ten times holds 11/16 of the
	// guard's limit (55% of the container's), under the Go memory limit
	// (90%); see BlockCeiling.
	DefaultMaxBlockFraction = 1.0 / 16
)

// Defaults of the AIMD byte budget that no profile changes.
const (
	// DefaultTargetRho is the utilisation (EMA of process time over EMA of
	// ingest interval) above which the pipeline counts as behind.
	DefaultTargetRho = 0.7
	// DefaultDecreaseFactor multiplies the budget on a decrease.
	DefaultDecreaseFactor = 0.5
	// DefaultEMAAlpha is the smoothing factor of both moving averages.
	DefaultEMAAlpha = 0.3
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

// Profile names a byte-budget envelope: start, floor, ceiling, additive
// step and record cap.
//
//	profile      start    min      max      step     record_cap
//	throughput   16 MiB   256 KiB  128 MiB  512 KiB  2000
//	balanced      8 MiB    64 KiB   64 MiB  256 KiB  1000
//	low_latency   1 MiB     4 KiB    8 MiB   64 KiB   500
//
// The budget starts big (start) so that a cold pipeline is not throttled,
// and lets decreases find the level. The floor (min) is the smallest
// block that memory pressure can force: hard pressure, or a saturated
// pipeline (a backlog makes the utilisation about 1, which counts as
// behind) while the hard level is at or above resume_at. A backlog at
// low memory pressure grows the budget instead (see Budget).
//
// The table is the envelope on a large machine. New caps start, min and
// max at the block ceiling, the memory guard's limit times
// self_regulation.max_block_fraction (1/16 by default; see BlockCeiling),
// so that the first block, sized at start before any feedback, fits in
// memory even when the process step expands it ten times: in a 128 MiB
// container the guard's limit is 102.4 MiB and every profile's start and
// ceiling become 6.4 MiB. The throughput profile keeps its table values
// from a 2.5 GiB container up (a 2 GiB guard limit).
type Profile string

// The profiles.
const (
	// ProfileThroughput (the default) favours large blocks.
	ProfileThroughput Profile = "throughput"
	// ProfileBalanced halves the throughput envelope.
	ProfileBalanced Profile = "balanced"
	// ProfileLowLatency keeps blocks small: short blocks, small memory.
	ProfileLowLatency Profile = "low_latency"
)

// DefaultProfile is the profile of a Config whose profile is unset.
const DefaultProfile = ProfileThroughput

// Profiles returns every profile, default first.
func Profiles() []Profile { return []Profile{ProfileThroughput, ProfileBalanced, ProfileLowLatency} }

// Valid reports whether p names a profile ("" counts as the default).
func (p Profile) Valid() bool {
	switch p {
	case "", ProfileThroughput, ProfileBalanced, ProfileLowLatency:
		return true
	}
	return false
}

// String returns the profile name, the default's for "".
func (p Profile) String() string {
	if p == "" {
		return string(DefaultProfile)
	}
	return string(p)
}

// MarshalText writes the profile name.
func (p Profile) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a profile name, case-insensitive, with '-' or ' '
// taken as '_' ("low-latency" is low_latency). An empty value is the
// default profile. An unknown name is an error that lists the profiles.
func (p *Profile) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	s = strings.NewReplacer("-", "_", " ", "_").Replace(s)
	v := Profile(s)
	if s == "lowlatency" {
		v = ProfileLowLatency
	}
	if !v.Valid() {
		return fmt.Errorf("%w: %s.profile %q is not a profile: use throughput, balanced or low_latency",
			ErrInvalidConfig, Section, truncate(string(b), 64))
	}
	*p = v
	return nil
}

// Budget returns the complete budget envelope of the profile (every field
// set). An unknown profile gives the default profile's envelope.
func (p Profile) Budget() BudgetConfig {
	env := BudgetConfig{TargetRho: DefaultTargetRho, DecreaseFactor: DefaultDecreaseFactor, EMAAlpha: DefaultEMAAlpha}
	switch p {
	case ProfileBalanced:
		env.StartBytes, env.MinBytes, env.MaxBytes, env.StepBytes, env.RecordCap = 8*mib, 64*kib, 64*mib, 256*kib, 1000
	case ProfileLowLatency:
		env.StartBytes, env.MinBytes, env.MaxBytes, env.StepBytes, env.RecordCap = 1*mib, 4*kib, 8*mib, 64*kib, 500
	default:
		env.StartBytes, env.MinBytes, env.MaxBytes, env.StepBytes, env.RecordCap = 16*mib, 256*kib, 128*mib, 512*kib, 2000
	}
	return env
}

// BudgetConfig is the self_regulation.budget section: overrides of the
// profile's envelope and of the AIMD constants. A zero field takes the
// profile's value. A bad value (negative, NaN, out of range, a floor above
// the ceiling) is replaced by the profile's value with a warning naming
// the key; the budget never fails to build and is never zero. New caps
// start_bytes, min_bytes and max_bytes, overrides included, at the block
// ceiling (self_regulation.max_block_fraction of the memory guard's
// limit), with a warning for an override it lowers.
//
//	self_regulation:
//	  budget:
//	    start_bytes: 0       # first receive cap and sub-block size
//	    min_bytes: 0         # floor, >= 1
//	    max_bytes: 0         # ceiling, >= min_bytes
//	    step_bytes: 0        # additive increase when slack
//	    record_cap: 0        # records per receive, >= 1
//	    target_rho: 0        # (0, 1), default 0.7
//	    decrease_factor: 0   # (0, 1), default 0.5
//	    ema_alpha: 0         # (0, 1], default 0.3
type BudgetConfig struct {
	// StartBytes is the budget before any feedback, clamped into
	// [MinBytes, MaxBytes].
	StartBytes int64 `koanf:"start_bytes" json:"start_bytes" yaml:"start_bytes"`
	// MinBytes is the floor of the budget; never below 1.
	MinBytes int64 `koanf:"min_bytes" json:"min_bytes" yaml:"min_bytes"`
	// MaxBytes is the ceiling of the budget.
	MaxBytes int64 `koanf:"max_bytes" json:"max_bytes" yaml:"max_bytes"`
	// StepBytes is added to the budget after a block that found the
	// pipeline slack.
	StepBytes int64 `koanf:"step_bytes" json:"step_bytes" yaml:"step_bytes"`
	// RecordCap caps the records of one receive, whatever their size.
	RecordCap int `koanf:"record_cap" json:"record_cap" yaml:"record_cap"`
	// TargetRho is the utilisation above which the pipeline is behind.
	TargetRho float64 `koanf:"target_rho" json:"target_rho" yaml:"target_rho"`
	// DecreaseFactor multiplies the budget on a decrease.
	DecreaseFactor float64 `koanf:"decrease_factor" json:"decrease_factor" yaml:"decrease_factor"`
	// EMAAlpha is the weight of the newest sample in both moving averages.
	EMAAlpha float64 `koanf:"ema_alpha" json:"ema_alpha" yaml:"ema_alpha"`
}

// Config is the self_regulation section. The zero value is valid and
// means: self-regulation on, the throughput profile, pause at a pressure
// level of 0.80 and resume at 0.65, the gates evaluated every 100ms, no
// block above 1/16 of the memory guard's limit, and every soft pressure
// source weighing 1.
//
//	self_regulation:
//	  enabled: true
//	  profile: throughput        # throughput | balanced | low_latency
//	  pause_at: 0.80             # level >= pause_at engages the latch
//	  resume_at: 0.65            # level <= resume_at releases it
//	  interval: 100ms            # gate evaluation period
//	  max_block_fraction: 0.0625 # block ceiling: memory guard limit × this
//	  budget: {}                 # overrides of the profile, see BudgetConfig
//	  weights: {}                # soft source name -> weight in [0, 1]
//
// With enabled: false, New builds nothing and returns a nil *Governor,
// whose methods are safe to call and leave the data path as it is without
// self-regulation.
type Config struct {
	// Enabled switches self-regulation on. Nil means true.
	Enabled *bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Profile picks the byte-budget envelope. "" means throughput.
	Profile Profile `koanf:"profile" json:"profile" yaml:"profile"`
	// PauseAt is the level at and above which the latch engages, in
	// (0, 1]. 0 means DefaultPauseAt (0.80).
	PauseAt float64 `koanf:"pause_at" json:"pause_at" yaml:"pause_at"`
	// ResumeAt is the level at and below which the latch releases, in
	// (0, 1] and below PauseAt. 0 means DefaultResumeAt (0.65).
	ResumeAt float64 `koanf:"resume_at" json:"resume_at" yaml:"resume_at"`
	// Interval is the gate evaluation period of Run. 0 means
	// DefaultInterval (100ms); otherwise at least MinInterval.
	Interval time.Duration `koanf:"interval" json:"interval" yaml:"interval"`
	// MaxBlockFraction is the largest share of the memory guard's limit
	// one block may take, in (0, 1]: New caps the budget's start_bytes,
	// min_bytes and max_bytes, overrides included, at the guard's limit
	// times this fraction (see BlockCeiling). 0 means
	// DefaultMaxBlockFraction (1/16), sized for a process step that holds
	// up to ten times its input; raise it when the process step holds
	// little more than its input.
	MaxBlockFraction float64 `koanf:"max_block_fraction" json:"max_block_fraction" yaml:"max_block_fraction"`
	// Budget overrides the profile's byte-budget envelope.
	Budget BudgetConfig `koanf:"budget" json:"budget" yaml:"budget"`
	// Weights gives soft pressure sources, by name, a weight in [0, 1]:
	// the most a source can contribute to the level. Sources not named
	// weigh DefaultSoftWeight. Weights never apply to hard sources.
	Weights map[string]float64 `koanf:"weights" json:"weights" yaml:"weights"`
}

// IsEnabled reports whether self-regulation is on (Enabled nil or true).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// WithDefaults returns c with every unset field replaced by its default.
// It does not validate; call Validate for that.
func (c Config) WithDefaults() Config {
	if c.Enabled == nil {
		on := true
		c.Enabled = &on
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if c.PauseAt == 0 {
		c.PauseAt = DefaultPauseAt
	}
	if c.ResumeAt == 0 {
		c.ResumeAt = DefaultResumeAt
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxBlockFraction == 0 {
		c.MaxBlockFraction = DefaultMaxBlockFraction
	}
	return c
}

// Validate reports every problem of the section, each a *ConfigError that
// names the key, the value found and the fix, joined with errors.Join. It
// returns nil for the zero Config. The budget overrides are not checked
// here: a bad one is replaced by the profile's value with a warning when
// the budget is built.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	if !c.Profile.Valid() {
		bad("profile", "is %q; use throughput, balanced or low_latency", truncate(string(c.Profile), 64))
	}
	thresholdsOK := true
	for _, f := range []struct {
		key string
		v   float64
		def float64
	}{{"pause_at", c.PauseAt, DefaultPauseAt}, {"resume_at", c.ResumeAt, DefaultResumeAt}} {
		if f.v == 0 {
			continue // unset: the default
		}
		if math.IsNaN(f.v) || f.v < 0 || f.v > 1 {
			thresholdsOK = false
			bad(f.key, "must be in (0, 1], got %s; leave it unset for the default %s", fmtFloat(f.v), fmtFloat(f.def))
		}
	}
	if thresholdsOK {
		d := c.WithDefaults()
		if d.ResumeAt >= d.PauseAt {
			bad("resume_at", "(%s) must be below %s.pause_at (%s): the gap between them keeps the gate from flapping; lower resume_at or raise pause_at",
				fmtFloat(d.ResumeAt), Section, fmtFloat(d.PauseAt))
		}
	}
	if f := c.MaxBlockFraction; math.IsNaN(f) || f < 0 || f > 1 {
		bad("max_block_fraction", "must be in (0, 1], got %s; leave it unset for the default %s (a block may take 1/16 of the memory guard's limit)",
			fmtFloat(f), fmtFloat(DefaultMaxBlockFraction))
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < MinInterval) {
		bad("interval", "must be at least %s, got %s; leave it unset for the default %s", MinInterval, c.Interval, DefaultInterval)
	}
	names := make([]string, 0, len(c.Weights))
	for name := range c.Weights {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := c.Weights[name]
		if strings.TrimSpace(name) == "" {
			bad("weights", "has an entry with an empty source name; name the soft pressure source it weighs")
			continue
		}
		if math.IsNaN(w) || w < 0 || w > 1 {
			bad("weights."+name, "must be in [0, 1], got %s; it is the most the source can add to the pressure level", fmtFloat(w))
		}
	}
	return errors.Join(errs...)
}

// fmtFloat prints a float the way a user wrote it: 1.5, 0.8, NaN, +Inf.
func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
