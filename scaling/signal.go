package scaling

import (
	"fmt"
	"math"
	"regexp"
	"slices"
)

// Names of the built-in components. Each is a signal in [0,1] that the
// application reports with Pressure.Set or a source registered with
// Pressure.Source, and a double variable of the same name in
// scaling.expression.
const (
	// CPU is the CPU utilisation of the pod as a fraction of its limit
	// (or of its cores when it has none).
	CPU = "cpu"
	// Memory is the memory in use as a fraction of the pod's limit. At or
	// above scaling.memory_gate it forces the pressure to 100.
	Memory = "memory"
	// Queue is how full the inbound queue or buffer is (items or bytes
	// held over its capacity).
	Queue = "queue"
	// Lag is the consumer lag. It is set in messages (the raw lag, for
	// example the sum over the pod's assigned partitions) and normalised
	// as min(lag / scaling.lag_full, 1).
	Lag = "lag"
	// Pool is the worker pool saturation (workers busy over workers
	// available, or target over maximum).
	Pool = "pool"
)

// Default weights of the built-in components in the weighted formula. Lag
// and queue fill say most directly that work arrives faster than the pod
// drains it, so they weigh most; CPU follows; memory weighs little because
// the memory gate already handles the dangerous end, and pool saturation
// is often a consequence of the others.
const (
	// DefaultWeightLag is the default weight of lag.
	DefaultWeightLag = 0.35
	// DefaultWeightQueue is the default weight of queue.
	DefaultWeightQueue = 0.25
	// DefaultWeightCPU is the default weight of cpu.
	DefaultWeightCPU = 0.20
	// DefaultWeightMemory is the default weight of memory.
	DefaultWeightMemory = 0.10
	// DefaultWeightPool is the default weight of pool.
	DefaultWeightPool = 0.10
)

// builtins lists the built-in components in a fixed order (the order of
// the JSON report and of Known in UnknownSignalError).
var builtins = [...]struct {
	name   string
	weight float64
}{
	{CPU, DefaultWeightCPU},
	{Memory, DefaultWeightMemory},
	{Queue, DefaultWeightQueue},
	{Lag, DefaultWeightLag},
	{Pool, DefaultWeightPool},
}

// DefaultWeights returns a new map of the built-in components' default
// weights.
func DefaultWeights() map[string]float64 {
	m := make(map[string]float64, len(builtins))
	for _, b := range builtins {
		m[b.name] = b.weight
	}
	return m
}

func builtinNames() []string {
	out := make([]string, len(builtins))
	for i, b := range builtins {
		out[i] = b.name
	}
	return out
}

func isBuiltin(name string) bool {
	for _, b := range builtins {
		if b.name == name {
			return true
		}
	}
	return false
}

// MaxCustomComponents bounds the custom components of one Pressure (and so
// the label values of keel_scaling_component).
const MaxCustomComponents = 16

var validComponentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// reservedNames cannot name a custom component: CEL keywords and literals,
// and the functions of the expression language.
var reservedNames = []string{
	"true", "false", "null", "in", "as", "break", "const", "continue", "else",
	"for", "function", "if", "import", "let", "loop", "package", "namespace",
	"return", "var", "void", "while",
	"max", "min", "abs", "clamp",
}

// checkComponentName reports why name cannot be a component name, or nil.
func checkComponentName(name string) error {
	if !validComponentName.MatchString(name) {
		return fmt.Errorf("%q is not a valid component name: use 1 to 32 lower-case letters, digits and underscores, starting with a letter", truncate(name, 64))
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("%q is reserved by the expression language; pick another component name", name)
	}
	return nil
}

// clamp01 maps v into [0,1]; NaN stays NaN (absent).
func clamp01(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return v
	case v <= 0:
		return 0
	case v >= 1:
		return 1
	}
	return v
}
