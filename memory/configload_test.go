package memory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
)

// loadSection reads the memory section through the config cascade from a
// settings.yaml holding yaml (and the environment with prefix MEMTEST).
func loadSection(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(context.Background(), config.Options{
		EnvPrefix: "MEMTEST", WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Strict: true, Logger: quietLogger(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	err = c.Section(Section, &cfg)
	return cfg, err
}

func TestConfigDecodesFromTheCascade(t *testing.T) {
	t.Setenv("MEMTEST_MEMORY__ENABLED", "false")
	cfg, err := loadSection(t, `
memory:
  limit_bytes: 536870912
  headroom_fraction: 0.7
  pressure_threshold: 0.75
  go_memory_limit_fraction: 0.85
  use_heap: true
  heap_sample_interval: 250ms
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Enabled: ptr(false), LimitBytes: 512 * mib, HeadroomFraction: 0.7, PressureThreshold: 0.75,
		GoMemoryLimitFraction: 0.85, UseHeap: true, HeapSampleInterval: 250 * time.Millisecond}
	if cfg.Enabled == nil || *cfg.Enabled || cfg.LimitBytes != want.LimitBytes || cfg.HeadroomFraction != want.HeadroomFraction ||
		cfg.PressureThreshold != want.PressureThreshold || cfg.GoMemoryLimitFraction != want.GoMemoryLimitFraction ||
		cfg.UseHeap != want.UseHeap || cfg.HeapSampleInterval != want.HeapSampleInterval {
		t.Fatalf("decoded %+v, want %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigAbsentSectionIsTheDefaults(t *testing.T) {
	cfg, err := loadSection(t, "other: 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Enabled != nil || cfg.LimitBytes != 0 || cfg.HeadroomFraction != 0 || !cfg.IsEnabled() || cfg.Validate() != nil {
		t.Fatalf("absent section decoded to %+v", cfg)
	}
}

func TestConfigBadValues(t *testing.T) {
	// A value of the wrong type fails in the decoder, naming the key.
	_, err := loadSection(t, "memory:\n  headroom_fraction: lots\n")
	if err == nil || !strings.Contains(err.Error(), "memory.headroom_fraction") {
		t.Fatalf("err = %v", err)
	}
	// A well-typed but invalid value fails in Validate, naming the key.
	cfg, err := loadSection(t, "memory:\n  headroom_fraction: 1.5\n")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "memory.headroom_fraction must be in (0, 1], got 1.5") {
		t.Fatalf("err = %v", err)
	}
}
