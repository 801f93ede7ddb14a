package pool

import (
	"math"
	"testing"
)

// above returns the next float64 after v, the smallest value strictly above
// it.
func above(v float64) float64 { return math.Nextafter(v, 2) }

// below returns the largest float64 strictly below v.
func below(v float64) float64 { return math.Nextafter(v, -1) }

func TestDecideBoundaries(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	// Default thresholds: grow_below 0.60, shrink_above 0.85,
	// emergency_above 0.95, memory_pressure_cap 0.80; bounds [2, 8].
	cases := []struct {
		name      string
		cpu, mem  float64
		cur       int
		min, max  int
		th        Thresholds
		want      int
		direction Direction
	}{
		// CPU rules from the middle of the range.
		{"idle grows by 2", 0.10, 0, 4, 2, 8, Thresholds{}, 6, DirectionUp},
		{"just below grow_below grows", below(0.60), 0, 4, 2, 8, Thresholds{}, 6, DirectionUp},
		{"equal to grow_below is steady", 0.60, 0, 4, 2, 8, Thresholds{}, 4, DirectionSteady},
		{"between grow and shrink is steady", 0.75, 0, 4, 2, 8, Thresholds{}, 4, DirectionSteady},
		{"equal to shrink_above is steady", 0.85, 0, 4, 2, 8, Thresholds{}, 4, DirectionSteady},
		{"just above shrink_above is down", above(0.85), 0, 4, 2, 8, Thresholds{}, 3, DirectionDown},
		{"between shrink and emergency is down", 0.90, 0, 4, 2, 8, Thresholds{}, 3, DirectionDown},
		{"equal to emergency_above is down", 0.95, 0, 4, 2, 8, Thresholds{}, 3, DirectionDown},
		{"just above emergency_above is emergency", above(0.95), 0, 4, 2, 8, Thresholds{}, 2, DirectionEmergencyDown},
		{"saturated is emergency", 1.0, 0, 5, 2, 8, Thresholds{}, 3, DirectionEmergencyDown},
		{"zero CPU grows", 0, 0, 4, 2, 8, Thresholds{}, 6, DirectionUp},
		{"negative CPU counts as idle", -0.5, 0, 4, 2, 8, Thresholds{}, 6, DirectionUp},
		{"CPU above 1 is emergency", 1.7, 0, 5, 2, 8, Thresholds{}, 3, DirectionEmergencyDown},
		{"infinite CPU is emergency", inf, 0, 5, 2, 8, Thresholds{}, 3, DirectionEmergencyDown},
		{"no CPU reading holds", nan, 0, 5, 2, 8, Thresholds{}, 5, DirectionSteady},

		// Memory overrides CPU, strictly above the cap only.
		{"memory above cap drops to min", 0.10, 0.81, 6, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"memory just above cap drops to min", 0.10, above(0.80), 6, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"memory equal to cap is not capped", 0.10, 0.80, 6, 2, 8, Thresholds{}, 8, DirectionUp},
		{"memory just below cap is not capped", 0.75, below(0.80), 6, 2, 8, Thresholds{}, 6, DirectionSteady},
		{"memory cap wins over emergency CPU", 0.99, 0.90, 6, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"memory cap without a CPU reading", nan, 0.90, 6, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"memory cap already at min", 0.10, 1.5, 2, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"infinite memory is capped", 0.10, inf, 6, 2, 8, Thresholds{}, 2, DirectionMemoryCap},
		{"NaN memory is no pressure", 0.10, nan, 4, 2, 8, Thresholds{}, 6, DirectionUp},

		// Clamping at the bounds.
		{"up clamps at max", 0.10, 0, 7, 2, 8, Thresholds{}, 8, DirectionUp},
		{"up at max stays", 0.10, 0, 8, 2, 8, Thresholds{}, 8, DirectionUp},
		{"down at min stays", 0.90, 0, 2, 2, 8, Thresholds{}, 2, DirectionDown},
		{"emergency clamps at min", 0.99, 0, 3, 2, 8, Thresholds{}, 2, DirectionEmergencyDown},
		{"emergency at min stays", 0.99, 0, 2, 2, 8, Thresholds{}, 2, DirectionEmergencyDown},
		{"current above max is clamped first", 0.75, 0, 20, 2, 8, Thresholds{}, 8, DirectionSteady},
		{"current below min is clamped first", 0.10, 0, 0, 2, 8, Thresholds{}, 4, DirectionUp},
		{"min equal to max pins the target", 0.10, 0, 3, 3, 3, Thresholds{}, 3, DirectionUp},
		{"min below 1 counts as 1", 0.99, 0, 2, 0, 8, Thresholds{}, 1, DirectionEmergencyDown},
		{"max below min counts as min", 0.10, 0, 3, 3, 1, Thresholds{}, 3, DirectionUp},
		{"current near MaxInt does not overflow", 0.10, 0, math.MaxInt - 1, 1, math.MaxInt, Thresholds{}, math.MaxInt, DirectionUp},

		// Thresholds of the section replace the defaults.
		{"custom grow_below", 0.45, 0, 4, 1, 8, Thresholds{GrowBelow: 0.40}, 4, DirectionSteady},
		{"custom shrink_above", 0.75, 0, 4, 1, 8, Thresholds{ShrinkAbove: 0.70}, 3, DirectionDown},
		{"custom emergency_above", 0.90, 0, 4, 1, 8, Thresholds{EmergencyAbove: 0.88}, 2, DirectionEmergencyDown},
		{"custom memory cap", 0.10, 0.60, 4, 1, 8, Thresholds{MemoryPressureCap: 0.50}, 1, DirectionMemoryCap},
		{"cap of 1 tolerates a full guard", 0.10, 1.0, 4, 1, 8, Thresholds{MemoryPressureCap: 1}, 6, DirectionUp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(ScaleInput{CPU: tc.cpu, Memory: tc.mem, Current: tc.cur, Min: tc.min, Max: tc.max, Thresholds: tc.th})
			if d.Target != tc.want || d.Direction != tc.direction {
				t.Fatalf("Decide(cpu=%v mem=%v cur=%d [%d,%d]) = %s -> %d, want %s -> %d",
					tc.cpu, tc.mem, tc.cur, tc.min, tc.max, d.Direction, d.Target, tc.direction, tc.want)
			}
			if d.Changed() != (d.Target != d.From) {
				t.Fatalf("Changed() = %v with From %d Target %d", d.Changed(), d.From, d.Target)
			}
			if !math.IsNaN(tc.cpu) && d.CPU != tc.cpu || !math.IsNaN(tc.mem) && d.Memory != tc.mem {
				t.Fatalf("decision carries cpu=%v mem=%v, want the inputs %v %v", d.CPU, d.Memory, tc.cpu, tc.mem)
			}
		})
	}
}

func TestDecideChangedOnlyWhenTheTargetMoves(t *testing.T) {
	atMax := Decide(ScaleInput{CPU: 0.1, Current: 8, Min: 2, Max: 8})
	if atMax.Changed() || atMax.From != 8 {
		t.Fatalf("up at max: %+v, want From 8 and no change", atMax)
	}
	moved := Decide(ScaleInput{CPU: 0.1, Current: 7, Min: 2, Max: 8})
	if !moved.Changed() || moved.From != 7 || moved.Target != 8 {
		t.Fatalf("up below max: %+v, want 7 -> 8", moved)
	}
}

func TestThresholdsWithDefaults(t *testing.T) {
	want := Thresholds{GrowBelow: 0.60, ShrinkAbove: 0.85, EmergencyAbove: 0.95, MemoryPressureCap: 0.80}
	if got := (Thresholds{}).WithDefaults(); got != want {
		t.Fatalf("zero Thresholds default to %+v, want %+v", got, want)
	}
	custom := Thresholds{GrowBelow: 0.3, ShrinkAbove: 0.5, EmergencyAbove: 0.7, MemoryPressureCap: 0.9}
	if got := custom.WithDefaults(); got != custom {
		t.Fatalf("set Thresholds changed by WithDefaults: %+v", got)
	}
	if got := (Config{}).Thresholds(); got != want {
		t.Fatalf("Config{}.Thresholds() = %+v, want %+v", got, want)
	}
}

// FuzzDecide checks the invariants of Decide for any input: the target is
// within the bounds, memory above the cap always gives the minimum, and the
// direction and the move agree.
func FuzzDecide(f *testing.F) {
	f.Add(0.5, 0.0, 4, 2, 8, 0.0, 0.0, 0.0, 0.0)
	f.Add(0.99, 0.81, 8, 1, 8, 0.6, 0.85, 0.95, 0.8)
	f.Add(math.NaN(), math.NaN(), -5, -3, -9, -1.0, 2.0, math.Inf(1), math.NaN())
	f.Add(math.Inf(-1), math.Inf(1), math.MaxInt, math.MinInt, math.MaxInt, 0.9, 0.1, 0.5, 0.0)
	f.Fuzz(func(t *testing.T, cpu, mem float64, cur, lo, hi int, grow, shrink, emerg, capRatio float64) {
		th := Thresholds{GrowBelow: grow, ShrinkAbove: shrink, EmergencyAbove: emerg, MemoryPressureCap: capRatio}
		d := Decide(ScaleInput{CPU: cpu, Memory: mem, Current: cur, Min: lo, Max: hi, Thresholds: th})
		wantLo := max(lo, 1)
		wantHi := max(hi, wantLo)
		if d.Target < wantLo || d.Target > wantHi || d.From < wantLo || d.From > wantHi {
			t.Fatalf("decision %+v outside [%d, %d]", d, wantLo, wantHi)
		}
		if mem > th.WithDefaults().MemoryPressureCap {
			if d.Direction != DirectionMemoryCap || d.Target != wantLo {
				t.Fatalf("memory %v above cap gave %+v", mem, d)
			}
			return
		}
		switch d.Direction {
		case DirectionUp:
			if d.Target < d.From {
				t.Fatalf("up moved down: %+v", d)
			}
		case DirectionSteady:
			if d.Changed() {
				t.Fatalf("steady moved: %+v", d)
			}
		case DirectionDown, DirectionEmergencyDown:
			if d.Target > d.From {
				t.Fatalf("down moved up: %+v", d)
			}
		default:
			t.Fatalf("unexpected direction %q", d.Direction)
		}
	})
}
