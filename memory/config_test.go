package memory

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigZeroValueMeansDefaults(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if !c.IsEnabled() {
		t.Fatal("zero Config is disabled; want enabled")
	}
	d := c.WithDefaults()
	if d.HeadroomFraction != 0.80 || d.PressureThreshold != 0.80 || d.GoMemoryLimitFraction != 0.90 ||
		d.HeapSampleInterval != 100*time.Millisecond || d.Enabled == nil || !*d.Enabled || d.UseHeap || d.LimitBytes != 0 {
		t.Fatalf("defaults = %+v", d)
	}
	if (Config{Enabled: ptr(false)}).IsEnabled() {
		t.Fatal("enabled: false reads as enabled")
	}
	// Set values survive WithDefaults.
	s := Config{HeadroomFraction: 0.5, PressureThreshold: 0.6, GoMemoryLimitFraction: 0.7, HeapSampleInterval: time.Second}.WithDefaults()
	if s.HeadroomFraction != 0.5 || s.PressureThreshold != 0.6 || s.GoMemoryLimitFraction != 0.7 || s.HeapSampleInterval != time.Second {
		t.Fatalf("WithDefaults overwrote set values: %+v", s)
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		key  string
		want string
	}{
		{"headroom above 1", Config{HeadroomFraction: 1.5}, "memory.headroom_fraction", "memory.headroom_fraction must be in (0, 1], got 1.5"},
		{"headroom negative", Config{HeadroomFraction: -0.1}, "memory.headroom_fraction", "got -0.1"},
		{"headroom NaN", Config{HeadroomFraction: math.NaN()}, "memory.headroom_fraction", "got NaN"},
		{"threshold +Inf", Config{PressureThreshold: math.Inf(1)}, "memory.pressure_threshold", "memory.pressure_threshold must be in (0, 1], got +Inf"},
		{"threshold -Inf", Config{PressureThreshold: math.Inf(-1)}, "memory.pressure_threshold", "got -Inf"},
		{"go fraction 2", Config{GoMemoryLimitFraction: 2}, "memory.go_memory_limit_fraction", "memory.go_memory_limit_fraction must be in (0, 1], got 2"},
		{"go fraction NaN", Config{GoMemoryLimitFraction: math.NaN()}, "memory.go_memory_limit_fraction", "got NaN"},
		{"negative limit", Config{LimitBytes: -1}, "memory.limit_bytes", "memory.limit_bytes must be >= 0, got -1"},
		{"negative interval", Config{HeapSampleInterval: -time.Second}, "memory.heap_sample_interval", "must be >= 0, got -1s"},
		{"headroom above go fraction", Config{HeadroomFraction: 0.95}, "memory.headroom_fraction", "must be below memory.go_memory_limit_fraction (0.9)"},
		{"headroom above lowered go fraction", Config{GoMemoryLimitFraction: 0.7}, "memory.headroom_fraction", "(0.8) must be below memory.go_memory_limit_fraction (0.7)"},
		{"headroom equal to go fraction", Config{HeadroomFraction: 0.9, GoMemoryLimitFraction: 0.9}, "memory.headroom_fraction", "(0.9) must be below memory.go_memory_limit_fraction (0.9)"},
		{"headroom equal to the default go fraction", Config{HeadroomFraction: 0.9}, "memory.headroom_fraction", "(0.9) must be below memory.go_memory_limit_fraction (0.9)"},
		{"both fractions 1", Config{HeadroomFraction: 1, GoMemoryLimitFraction: 1}, "memory.headroom_fraction", "(1) must be below memory.go_memory_limit_fraction (1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != tc.key {
				t.Fatalf("error %v: want a *ConfigError for %s", err, tc.key)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestValidateAcceptsBoundaries(t *testing.T) {
	for _, c := range []Config{
		{HeadroomFraction: 0.999, GoMemoryLimitFraction: 1, PressureThreshold: 1},
		{HeadroomFraction: 0.89, GoMemoryLimitFraction: 0.9},
		{HeadroomFraction: 1e-9, PressureThreshold: 1e-9, GoMemoryLimitFraction: 2e-9},
		{LimitBytes: 1, Enabled: ptr(false), UseHeap: true, HeapSampleInterval: time.Nanosecond},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", c, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := Config{HeadroomFraction: 2, PressureThreshold: -1, LimitBytes: -5}.Validate()
	for _, key := range []string{"memory.headroom_fraction", "memory.pressure_threshold", "memory.limit_bytes"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	isolate(t)
	g, err := New(Config{HeadroomFraction: 1.5}, WithPlatform(emptyMachine(t)), WithMetrics(testRegistry()), WithLogger(quietLogger()))
	if g != nil || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New = %v, %v; want nil and ErrInvalidConfig", g, err)
	}
	if !strings.Contains(err.Error(), "memory.headroom_fraction must be in (0, 1], got 1.5") {
		t.Fatalf("error %q does not name the key and value", err)
	}
}
