package pool

import "math"

// Direction names the rule a scaling decision took. The set is closed: it
// is also the direction label of keel_pool_scale_events_total.
type Direction string

// The directions of a scaling decision, from the rule that fired.
const (
	// DirectionUp: CPU utilisation below grow_below; the target grows by
	// ScaleUpStep.
	DirectionUp Direction = "up"
	// DirectionSteady: CPU utilisation from grow_below up to and including
	// shrink_above, or no CPU reading; the target holds.
	DirectionSteady Direction = "steady"
	// DirectionDown: CPU utilisation above shrink_above, up to and
	// including emergency_above; the target shrinks by ScaleDownStep.
	DirectionDown Direction = "down"
	// DirectionEmergencyDown: CPU utilisation above emergency_above; the
	// target shrinks by EmergencyDownStep.
	DirectionEmergencyDown Direction = "emergency_down"
	// DirectionMemoryCap: memory pressure above memory_pressure_cap; the
	// target drops to the minimum whatever the CPU says.
	DirectionMemoryCap Direction = "memory_cap"
)

// Directions lists every Direction, in the order of the rules.
func Directions() []Direction {
	return []Direction{DirectionMemoryCap, DirectionUp, DirectionSteady, DirectionDown, DirectionEmergencyDown}
}

// Step sizes of the CPU rules.
const (
	// ScaleUpStep is how much DirectionUp raises the target.
	ScaleUpStep = 2
	// ScaleDownStep is how much DirectionDown lowers the target.
	ScaleDownStep = 1
	// EmergencyDownStep is how much DirectionEmergencyDown lowers the
	// target.
	EmergencyDownStep = 2
)

// Thresholds are the cut-offs of Decide, as ratios in (0, 1]. A zero field
// means its default (DefaultGrowBelow, DefaultShrinkAbove,
// DefaultEmergencyAbove, DefaultMemoryPressureCap).
type Thresholds struct {
	// GrowBelow: CPU utilisation strictly below it grows the target.
	GrowBelow float64
	// ShrinkAbove: CPU utilisation strictly above it shrinks the target by
	// one; from GrowBelow up to and including it the target holds.
	ShrinkAbove float64
	// EmergencyAbove: CPU utilisation strictly above it shrinks the target
	// by two.
	EmergencyAbove float64
	// MemoryPressureCap: memory pressure strictly above it drops the
	// target to the minimum.
	MemoryPressureCap float64
}

// WithDefaults returns t with every zero field replaced by its default.
func (t Thresholds) WithDefaults() Thresholds {
	if t.GrowBelow == 0 {
		t.GrowBelow = DefaultGrowBelow
	}
	if t.ShrinkAbove == 0 {
		t.ShrinkAbove = DefaultShrinkAbove
	}
	if t.EmergencyAbove == 0 {
		t.EmergencyAbove = DefaultEmergencyAbove
	}
	if t.MemoryPressureCap == 0 {
		t.MemoryPressureCap = DefaultMemoryPressureCap
	}
	return t
}

// ScaleInput is what Decide looks at.
type ScaleInput struct {
	// CPU is the process's CPU utilisation over the last window, as a share
	// of the CPUs it may use (see CPUMeter). NaN means no reading: the
	// target holds unless memory caps it.
	CPU float64
	// Memory is the memory pressure ratio (for example
	// memory.Guard.PressureRatio); 0 when no source is wired. NaN counts as
	// no pressure.
	Memory float64
	// Current is the target in force.
	Current int
	// Min and Max bound the result. Min below 1 counts as 1 and Max below
	// Min counts as Min.
	Min, Max int
	// Thresholds are the cut-offs; zero fields mean the defaults.
	Thresholds Thresholds
}

// ScaleDecision is the outcome of one scaling step.
type ScaleDecision struct {
	// Direction is the rule that fired.
	Direction Direction
	// From is the target before the step (clamped to [Min, Max]).
	From int
	// Target is the target after the step, always within [Min, Max].
	Target int
	// CPU and Memory are the readings the decision was made on (CPU is NaN
	// when there was no reading).
	CPU, Memory float64
}

// Changed reports whether the decision moves the target. A decision can
// fire a rule and still leave the target alone when it is already at the
// bound the rule pushes towards.
func (d ScaleDecision) Changed() bool { return d.Target != d.From }

// Decide is the scaling rule, a pure function of its input:
//
//  1. Memory above the cap (strictly) drops the target to Min
//     (DirectionMemoryCap), whatever the CPU says; memory equal to the cap
//     is not capped.
//  2. Otherwise by CPU utilisation: below GrowBelow, +2 (DirectionUp);
//     up to and including ShrinkAbove, unchanged (DirectionSteady); up to
//     and including EmergencyAbove, −1 (DirectionDown); above it, −2
//     (DirectionEmergencyDown). A NaN CPU (no reading) is steady.
//  3. The result is clamped to [Min, Max].
//
// Decide never panics: any input, however odd, gives a target within
// [max(Min, 1), max(Min, Max, 1)].
func Decide(in ScaleInput) ScaleDecision {
	th := in.Thresholds.WithDefaults()
	lo := max(in.Min, 1)
	hi := max(in.Max, lo)
	cur := min(max(in.Current, lo), hi)
	d := ScaleDecision{From: cur, CPU: in.CPU, Memory: in.Memory}
	next := cur
	switch cpu := in.CPU; {
	case in.Memory > th.MemoryPressureCap: // false for NaN
		d.Direction, next = DirectionMemoryCap, lo
	case math.IsNaN(cpu):
		d.Direction = DirectionSteady
	case cpu < th.GrowBelow:
		d.Direction = DirectionUp
		next = cur + min(ScaleUpStep, hi-cur) // no overflow near MaxInt
	case cpu <= th.ShrinkAbove:
		d.Direction = DirectionSteady
	case cpu <= th.EmergencyAbove:
		d.Direction, next = DirectionDown, cur-ScaleDownStep
	default:
		d.Direction, next = DirectionEmergencyDown, cur-EmergencyDownStep
	}
	d.Target = min(max(next, lo), hi)
	return d
}
