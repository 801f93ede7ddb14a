package pool

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

func TestScalingConfigDefaults(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.ScalingEnabled == nil || !*d.ScalingEnabled || d.ScaleInterval != 5*time.Second ||
		d.GrowBelow != 0.60 || d.ShrinkAbove != 0.85 || d.EmergencyAbove != 0.95 || d.MemoryPressureCap != 0.80 {
		t.Fatalf("scaling defaults = enabled %v interval %v grow %v shrink %v emergency %v cap %v",
			d.ScalingEnabled, d.ScaleInterval, d.GrowBelow, d.ShrinkAbove, d.EmergencyAbove, d.MemoryPressureCap)
	}
	off := false
	if d := (Config{ScalingEnabled: &off}).WithDefaults(); *d.ScalingEnabled {
		t.Fatal("scaling_enabled: false was overridden by the default")
	}
	// The edges of the accepted ranges.
	for _, cfg := range []Config{
		{EmergencyAbove: 1},
		{MemoryPressureCap: 1},
		{ScaleInterval: MinScaleInterval},
		{GrowBelow: 0.01, ShrinkAbove: 0.02, EmergencyAbove: 0.03, MemoryPressureCap: 0.01},
		{GrowBelow: 0.84}, // just under the default shrink_above
	} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want valid", cfg, err)
		}
	}
}

func TestScalingConfigValidateNamesTheKey(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name string
		cfg  Config
		key  string
		want string
	}{
		{"negative interval", Config{ScaleInterval: -time.Second}, "worker_pool.scale_interval",
			"worker_pool.scale_interval must be >= 100ms (got -1s); leave it unset for the default 5s"},
		{"interval too short", Config{ScaleInterval: 10 * time.Millisecond}, "worker_pool.scale_interval", "(got 10ms)"},
		{"grow_below above 1", Config{GrowBelow: 1.5}, "worker_pool.grow_below",
			"worker_pool.grow_below must be a ratio in (0, 1] (got 1.5); leave it unset for the default 0.6"},
		{"grow_below negative", Config{GrowBelow: -0.1}, "worker_pool.grow_below", "(got -0.1)"},
		{"shrink_above NaN", Config{ShrinkAbove: nan}, "worker_pool.shrink_above", "(got NaN)"},
		{"emergency_above above 1", Config{EmergencyAbove: 1.01}, "worker_pool.emergency_above",
			"worker_pool.emergency_above must be a ratio in (0, 1] (got 1.01)"},
		{"emergency_above infinite", Config{EmergencyAbove: inf}, "worker_pool.emergency_above", "(got +Inf)"},
		{"memory_pressure_cap negative", Config{MemoryPressureCap: -0.2}, "worker_pool.memory_pressure_cap",
			"worker_pool.memory_pressure_cap must be a ratio in (0, 1] (got -0.2); leave it unset for the default 0.8"},
		{"memory_pressure_cap above 1", Config{MemoryPressureCap: 2}, "worker_pool.memory_pressure_cap", "(got 2)"},
		{"grow equal to shrink", Config{GrowBelow: 0.7, ShrinkAbove: 0.7}, "worker_pool.grow_below",
			"worker_pool.grow_below must be < worker_pool.shrink_above (got 0.7 >= 0.7); lower grow_below or raise shrink_above"},
		{"grow above the default shrink", Config{GrowBelow: 0.9}, "worker_pool.grow_below", "(got 0.9 >= 0.85)"},
		{"shrink equal to emergency", Config{ShrinkAbove: 0.95}, "worker_pool.shrink_above",
			"worker_pool.shrink_above must be < worker_pool.emergency_above (got 0.95 >= 0.95); lower shrink_above or raise emergency_above"},
		{"emergency below shrink", Config{EmergencyAbove: 0.8}, "worker_pool.shrink_above", "(got 0.85 >= 0.8)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error naming %s", tc.cfg, tc.key)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("errors.As ConfigError = %+v, want key %s", ce, tc.key)
			}
			if p, nerr := New(tc.cfg); p != nil || !errors.Is(nerr, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, %v; want nil and the validation error", tc.cfg, p, nerr)
			}
		})
	}
}

func TestScalingConfigReportsEveryRangeProblem(t *testing.T) {
	err := Config{GrowBelow: 2, ShrinkAbove: -1, MemoryPressureCap: math.NaN(), ScaleInterval: -1}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"worker_pool.grow_below", "worker_pool.shrink_above", "worker_pool.memory_pressure_cap", "worker_pool.scale_interval"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("joined error %q misses %s", err, key)
		}
	}
}

func TestScalingConfigLoadsFromKoanfSection(t *testing.T) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{
		"worker_pool.max_workers":         6,
		"worker_pool.scaling_enabled":     false,
		"worker_pool.scale_interval":      "2s",
		"worker_pool.grow_below":          0.5,
		"worker_pool.shrink_above":        0.8,
		"worker_pool.emergency_above":     0.9,
		"worker_pool.memory_pressure_cap": 0.7,
	}, "."), nil); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := k.Unmarshal(Section, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ScalingEnabled == nil || *cfg.ScalingEnabled || cfg.ScaleInterval != 2*time.Second ||
		cfg.Thresholds() != (Thresholds{GrowBelow: 0.5, ShrinkAbove: 0.8, EmergencyAbove: 0.9, MemoryPressureCap: 0.7}) {
		t.Fatalf("unmarshalled %+v", cfg)
	}
	p, _ := newTestPool(t, cfg)
	s, err := NewScaler(p, WithCPUSampler(&scriptCPU{}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled() || s.Interval() != 2*time.Second || s.Thresholds().GrowBelow != 0.5 {
		t.Fatalf("scaler from the section: enabled %v interval %v thresholds %+v", s.Enabled(), s.Interval(), s.Thresholds())
	}
}
