package scaling

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Section is the config section a Pressure reads: scaling.
const Section = "scaling"

// Defaults for the fields of Config whose zero value means "use the
// default".
const (
	// DefaultMemoryGate is the memory signal at or above which the
	// pressure is forced to 100.
	DefaultMemoryGate = 0.9
	// DefaultLagFull is the consumer lag, in messages, that counts as a
	// full lag signal (1.0).
	DefaultLagFull = 100_000
	// DefaultInterval is the evaluation period of Run.
	DefaultInterval = 5 * time.Second
	// MinInterval is the shortest evaluation period Validate accepts.
	MinInterval = 100 * time.Millisecond
	// MaxExpressionLength bounds scaling.expression, in bytes.
	MaxExpressionLength = 4096
)

// Config is the scaling section. The zero value is valid and means:
// enabled, the default weights, memory gate 0.9, a lag of 100 000 messages
// counts as full, no expression, evaluation every 5 s.
//
//	scaling:
//	  enabled: true
//	  weights: { lag: 0.5, queue: 0.3, cpu: 0.2, memory: 0, pool: 0 }
//	  memory_gate: 0.9
//	  lag_full: 100000
//	  expression: "max(cpu, lag) * 100"
//	  interval: 5s
type Config struct {
	// Enabled turns the signal on. nil means true. A disabled Pressure
	// reports 0 (gate "disabled"), so KEDA never scales out on it.
	Enabled *bool `koanf:"enabled" json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Weights overrides the weight of a component in the weighted
	// formula, by name; components left out keep their default weight
	// (see DefaultWeights; a custom component's default is the weight
	// given to WithCustom). Weights are relative: the formula divides by
	// their sum. A weight of 0 removes the component from the formula (it
	// is still reported, still a variable of the expression, and memory
	// still drives the memory gate). Each weight must be finite and >= 0.
	Weights map[string]float64 `koanf:"weights" json:"weights,omitempty" yaml:"weights,omitempty"`
	// MemoryGate is the memory signal at or above which the pressure is
	// forced to 100, in (0,1]. 0 means DefaultMemoryGate (0.9).
	MemoryGate float64 `koanf:"memory_gate" json:"memory_gate,omitempty" yaml:"memory_gate,omitempty"`
	// LagFull is the consumer lag, in messages, that maps to a lag signal
	// of 1; the signal is min(lag/lag_full, 1). 0 means DefaultLagFull
	// (100 000). Set it to the backlog one pod should never hold, e.g.
	// its throughput per second times the seconds of delay you tolerate.
	LagFull float64 `koanf:"lag_full" json:"lag_full,omitempty" yaml:"lag_full,omitempty"`
	// Expression, if set, computes the pressure instead of the weighted
	// formula: a CEL expression over the component signals (doubles),
	// whose result is clamped to [0,100]. See the package documentation
	// for the language. Gates still apply first.
	Expression string `koanf:"expression" json:"expression,omitempty" yaml:"expression,omitempty"`
	// Interval is the evaluation period of Run. 0 means DefaultInterval
	// (5 s); at least MinInterval (100 ms).
	Interval time.Duration `koanf:"interval" json:"interval,omitempty" yaml:"interval,omitempty"`
}

// IsEnabled reports whether the section turns the signal on (Enabled nil
// or true).
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// WithDefaults returns c with every unset field replaced by its default;
// Weights becomes a new map holding the default weight of every built-in
// component, overridden by c.Weights. It does not validate; call Validate
// for that.
func (c Config) WithDefaults() Config {
	if c.Enabled == nil {
		t := true
		c.Enabled = &t
	}
	w := DefaultWeights()
	for k, v := range c.Weights {
		w[k] = v
	}
	c.Weights = w
	if c.MemoryGate == 0 {
		c.MemoryGate = DefaultMemoryGate
	}
	if c.LagFull == 0 {
		c.LagFull = DefaultLagFull
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	return c
}

// Validate reports every problem in the section, each as a *ConfigError
// (or, for the expression's syntax, an *ExpressionError) that names the
// key, the value found and the fix, joined with errors.Join. It returns nil
// for the zero Config.
//
// Validate checks the syntax of scaling.expression only: whether every name
// it uses is a known signal, and whether it yields a number, depends on the
// custom components, which New knows. Likewise a weight for a name that is
// not a built-in component is accepted here and refused by New unless that
// custom component is registered.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{
			Key: Section + "." + key,
			Msg: Section + "." + key + " " + fmt.Sprintf(format, args...),
		})
	}
	keys := make([]string, 0, len(c.Weights))
	for k := range c.Weights {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := c.Weights[k]
		if err := checkComponentName(k); err != nil {
			bad("weights", "has a bad key: %v", err)
			continue
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			bad("weights."+k, "must be a finite number >= 0 (got %v); use 0 to leave the component out of the weighted formula", v)
		}
	}
	switch g := c.MemoryGate; {
	case math.IsNaN(g) || g < 0 || g > 1:
		bad("memory_gate", "must be in (0, 1] (got %v); it is the memory fraction at which the pressure is forced to 100, leave it unset for %v", g, DefaultMemoryGate)
	}
	switch l := c.LagFull; {
	case math.IsNaN(l) || math.IsInf(l, 0) || l < 0:
		bad("lag_full", "must be a finite number of messages > 0 (got %v); leave it unset for %d", l, DefaultLagFull)
	}
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < MinInterval) {
		bad("interval", "must be at least %s (got %s); leave it unset for %s", MinInterval, c.Interval, DefaultInterval)
	}
	if len(c.Expression) > MaxExpressionLength {
		bad("expression", "is %d bytes long, more than the %d allowed; shorten it", len(c.Expression), MaxExpressionLength)
	} else if c.Expression != "" {
		if err := parseExpression(c.Expression); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
