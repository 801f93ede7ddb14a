package governor_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/governor"
)

func TestConfigZeroValueIsValidAndDefaults(t *testing.T) {
	var c governor.Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.IsEnabled() {
		t.Fatal("enabled by default")
	}
	d := c.WithDefaults()
	if *d.Enabled != true || d.Profile != governor.ProfileThroughput || d.PauseAt != 0.80 || d.ResumeAt != 0.65 || d.Interval != 100*time.Millisecond ||
		d.MaxBlockFraction != 0.0625 {
		t.Fatalf("defaults %+v", d)
	}
	if (governor.Config{Enabled: ptr(false)}).IsEnabled() {
		t.Fatal("enabled: false")
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	cases := []struct {
		name string
		cfg  governor.Config
		want []string
	}{
		{"resume_equal_pause", governor.Config{PauseAt: 0.7, ResumeAt: 0.7}, []string{"self_regulation.resume_at (0.7) must be below self_regulation.pause_at (0.7)"}},
		{"pause_below_default_resume", governor.Config{PauseAt: 0.6}, []string{"self_regulation.resume_at (0.65) must be below self_regulation.pause_at (0.6)"}},
		{"pause_out_of_range", governor.Config{PauseAt: 1.5}, []string{"self_regulation.pause_at must be in (0, 1], got 1.5"}},
		{"resume_negative", governor.Config{ResumeAt: -0.1}, []string{"self_regulation.resume_at must be in (0, 1], got -0.1"}},
		{"nan", governor.Config{PauseAt: math.NaN()}, []string{"self_regulation.pause_at must be in (0, 1], got NaN"}},
		{"profile", governor.Config{Profile: "turbo"}, []string{`self_regulation.profile is "turbo"`}},
		{"interval_negative", governor.Config{Interval: -time.Second}, []string{"self_regulation.interval must be at least 1ms"}},
		{"interval_tiny", governor.Config{Interval: time.Microsecond}, []string{"self_regulation.interval must be at least 1ms, got 1µs"}},
		{"weights", governor.Config{Weights: map[string]float64{"queue": 1.5, "lag": math.NaN(), "": 0.5, "ok": 0}},
			[]string{"self_regulation.weights.queue must be in [0, 1], got 1.5", "self_regulation.weights.lag must be in [0, 1], got NaN", "empty source name"}},
		{"max_block_fraction_above_one", governor.Config{MaxBlockFraction: 1.5}, []string{"self_regulation.max_block_fraction must be in (0, 1], got 1.5; leave it unset for the default 0.0625"}},
		{"max_block_fraction_negative", governor.Config{MaxBlockFraction: -0.1}, []string{"self_regulation.max_block_fraction must be in (0, 1], got -0.1"}},
		{"max_block_fraction_nan", governor.Config{MaxBlockFraction: math.NaN()}, []string{"self_regulation.max_block_fraction must be in (0, 1], got NaN"}},
		{"several", governor.Config{PauseAt: 2, Profile: "x", Interval: -1}, []string{"pause_at", "profile", "interval"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if !errors.Is(err, governor.ErrInvalidConfig) {
				t.Fatalf("err %v does not match ErrInvalidConfig", err)
			}
			var ce *governor.ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Key, "self_regulation.") {
				t.Fatalf("err %v is not a *ConfigError with a key", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err %q does not contain %q", err, w)
				}
			}
		})
	}
	// Valid edge values.
	for _, cfg := range []governor.Config{
		{PauseAt: 1, ResumeAt: 0.99}, {PauseAt: 0.5, ResumeAt: 0.1}, {Interval: time.Millisecond},
		{Weights: map[string]float64{"q": 0, "r": 1}}, {Profile: governor.ProfileLowLatency},
	} {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
}

func TestProfileText(t *testing.T) {
	cases := map[string]governor.Profile{
		"": governor.ProfileThroughput, "throughput": governor.ProfileThroughput, " Balanced ": governor.ProfileBalanced,
		"low_latency": governor.ProfileLowLatency, "low-latency": governor.ProfileLowLatency, "LOW LATENCY": governor.ProfileLowLatency,
		"lowlatency": governor.ProfileLowLatency,
	}
	for in, want := range cases {
		var p governor.Profile
		if err := p.UnmarshalText([]byte(in)); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if p.String() != want.String() {
			t.Fatalf("%q -> %q, want %q", in, p, want)
		}
		b, _ := p.MarshalText()
		if string(b) != want.String() {
			t.Fatalf("marshal %q", b)
		}
	}
	var p governor.Profile = governor.ProfileBalanced
	err := p.UnmarshalText([]byte("turbo"))
	if !errors.Is(err, governor.ErrInvalidConfig) || !strings.Contains(err.Error(), "self_regulation.profile") || p != governor.ProfileBalanced {
		t.Fatalf("err %v, profile %q", err, p)
	}
}

// loadSection decodes self_regulation through the config cascade from a
// settings.yaml (and the environment with prefix GOVTEST).
func loadSection(t *testing.T, yaml string) (governor.Config, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(context.Background(), config.Options{
		EnvPrefix: "GOVTEST", WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Strict: true, Logger: quietLogger(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg governor.Config
	err = c.Section(governor.Section, &cfg)
	return cfg, err
}

func TestConfigDecodesFromTheCascade(t *testing.T) {
	t.Setenv("GOVTEST_SELF_REGULATION__PAUSE_AT", "0.9")
	t.Setenv("GOVTEST_SELF_REGULATION__BUDGET__MAX_BYTES", "4194304")
	cfg, err := loadSection(t, `
self_regulation:
  enabled: true
  profile: low-latency
  pause_at: 0.85
  resume_at: 0.6
  interval: 250ms
  max_block_fraction: 0.25
  budget:
    start_bytes: 524288
    min_bytes: 2048
    step_bytes: 32768
    record_cap: 100
    target_rho: 0.6
    decrease_factor: 0.25
    ema_alpha: 0.5
  weights:
    queue: 0.5
    lag: 1
`)
	if err != nil {
		t.Fatal(err)
	}
	want := governor.BudgetConfig{StartBytes: 512 * kib, MinBytes: 2 * kib, MaxBytes: 4 * mib, StepBytes: 32 * kib,
		RecordCap: 100, TargetRho: 0.6, DecreaseFactor: 0.25, EMAAlpha: 0.5}
	if cfg.Enabled == nil || !*cfg.Enabled || cfg.Profile != governor.ProfileLowLatency || cfg.PauseAt != 0.9 || cfg.ResumeAt != 0.6 ||
		cfg.Interval != 250*time.Millisecond || cfg.MaxBlockFraction != 0.25 || cfg.Budget != want || cfg.Weights["queue"] != 0.5 || cfg.Weights["lag"] != 1 {
		t.Fatalf("decoded %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCascadeDisabledAndAbsent(t *testing.T) {
	cfg, err := loadSection(t, "self_regulation:\n  enabled: false\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IsEnabled() {
		t.Fatal("enabled: false decoded as enabled")
	}
	cfg, err = loadSection(t, "other: 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IsEnabled() || cfg.Profile != "" || cfg.PauseAt != 0 || cfg.Validate() != nil {
		t.Fatalf("absent section: %+v", cfg)
	}
}

func TestConfigCascadeBadValues(t *testing.T) {
	// An unknown profile fails in the decoder, naming the key.
	_, err := loadSection(t, "self_regulation:\n  profile: turbo\n")
	if err == nil || !strings.Contains(err.Error(), "self_regulation.profile") {
		t.Fatalf("err = %v", err)
	}
	// A value of the wrong type fails in the decoder, naming the key.
	_, err = loadSection(t, "self_regulation:\n  pause_at: lots\n")
	if err == nil || !strings.Contains(err.Error(), "self_regulation.pause_at") {
		t.Fatalf("err = %v", err)
	}
	// A well-typed but invalid value fails in Validate, naming the key.
	cfg, err := loadSection(t, "self_regulation:\n  pause_at: 0.6\n  resume_at: 0.7\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); !errors.Is(err, governor.ErrInvalidConfig) || !strings.Contains(err.Error(), "self_regulation.resume_at (0.7)") {
		t.Fatalf("err = %v", err)
	}
}
