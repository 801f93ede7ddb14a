package pool

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

func TestConfigZeroValueMeansDefaults(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config must be valid, got %v", err)
	}
	d := Config{}.WithDefaults()
	procs := runtime.GOMAXPROCS(0)
	if d.MinWorkers != 1 || d.MaxWorkers != procs || d.InitialWorkers != procs || d.InlineBelow != DefaultInlineBelow ||
		d.ItemTimeout != 0 || d.ChunkSize != 0 {
		t.Fatalf("defaults = %+v, want min 1, max/initial %d, inline %d", d, procs, DefaultInlineBelow)
	}
	p, _ := newTestPool(t, Config{})
	s := p.Stats()
	if s.Min != 1 || s.Max != procs || s.Target != procs || s.Active != 0 || s.Closed {
		t.Fatalf("stats of a default pool = %+v", s)
	}
}

func TestConfigMinAboveCPUsRaisesDefaultMax(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	cfg := Config{MinWorkers: procs + 3}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("min_workers above GOMAXPROCS with max unset must be valid: %v", err)
	}
	if d := cfg.WithDefaults(); d.MaxWorkers != procs+3 || d.InitialWorkers != procs+3 {
		t.Fatalf("defaults = %+v, want max and initial raised to min %d", d, procs+3)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		key  string
		want string
	}{
		{"max below min", Config{MinWorkers: 4, MaxWorkers: 2}, "worker_pool.max_workers",
			"worker_pool.max_workers must be >= worker_pool.min_workers (got 2 < 4)"},
		{"negative min", Config{MinWorkers: -1}, "worker_pool.min_workers", "worker_pool.min_workers must be >= 1 (got -1)"},
		{"negative max", Config{MaxWorkers: -3}, "worker_pool.max_workers", "worker_pool.max_workers must be >= 1 (got -3)"},
		{"negative initial", Config{InitialWorkers: -2}, "worker_pool.initial_workers", "worker_pool.initial_workers must be >= 1 (got -2)"},
		{"initial above max", Config{MinWorkers: 1, MaxWorkers: 4, InitialWorkers: 9}, "worker_pool.initial_workers",
			"worker_pool.initial_workers must be within [worker_pool.min_workers, worker_pool.max_workers] (got 9, range 1..4)"},
		{"initial below min", Config{MinWorkers: 3, MaxWorkers: 4, InitialWorkers: 2}, "worker_pool.initial_workers", "(got 2, range 3..4)"},
		{"negative timeout", Config{ItemTimeout: -time.Second}, "worker_pool.item_timeout", "worker_pool.item_timeout must be >= 0 (got -1s)"},
		{"negative inline", Config{InlineBelow: -1}, "worker_pool.inline_below", "worker_pool.inline_below must be >= 0"},
		{"negative chunk", Config{ChunkSize: -5}, "worker_pool.chunk_size", "worker_pool.chunk_size must be >= 0 (got -5)"},
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
			p, nerr := New(tc.cfg)
			if p != nil || !errors.Is(nerr, ErrInvalidConfig) {
				t.Fatalf("New(%+v) = %v, %v; want nil and the validation error", tc.cfg, p, nerr)
			}
		})
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := Config{MinWorkers: -1, ChunkSize: -1, ItemTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, key := range []string{"worker_pool.min_workers", "worker_pool.chunk_size", "worker_pool.item_timeout"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("joined error %q misses %s", err, key)
		}
	}
}

func TestConfigLoadsFromKoanfSection(t *testing.T) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{
		"worker_pool.min_workers":     2,
		"worker_pool.max_workers":     6,
		"worker_pool.initial_workers": 3,
		"worker_pool.item_timeout":    "250ms",
		"worker_pool.inline_below":    8,
		"worker_pool.chunk_size":      64,
	}, "."), nil); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := k.Unmarshal(Section, &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{MinWorkers: 2, MaxWorkers: 6, InitialWorkers: 3, ItemTimeout: 250 * time.Millisecond, InlineBelow: 8, ChunkSize: 64}
	if cfg != want {
		t.Fatalf("unmarshalled %+v, want %+v", cfg, want)
	}
}

func TestSetTargetClamps(t *testing.T) {
	p, reg := newTestPool(t, Config{MinWorkers: 2, MaxWorkers: 6, InitialWorkers: 3})
	if got := p.Target(); got != 3 {
		t.Fatalf("initial target = %d, want 3", got)
	}
	for _, tc := range []struct{ in, want int }{{0, 2}, {-7, 2}, {1, 2}, {2, 2}, {4, 4}, {6, 6}, {100, 6}} {
		if got := p.SetTarget(tc.in); got != tc.want {
			t.Errorf("SetTarget(%d) = %d, want %d", tc.in, got, tc.want)
		}
		if got := p.Target(); got != tc.want {
			t.Errorf("Target() after SetTarget(%d) = %d, want %d", tc.in, got, tc.want)
		}
		if got := metricValue(t, reg, "keel_pool_target_workers", "t"); got != float64(tc.want) {
			t.Errorf("keel_pool_target_workers = %v, want %d", got, tc.want)
		}
	}
	if s := p.Stats(); s.Saturation() != 1 {
		t.Errorf("saturation at max = %v, want 1", s.Saturation())
	}
	if got := metricValue(t, reg, "keel_pool_max_workers", "t"); got != 6 {
		t.Errorf("keel_pool_max_workers = %v", got)
	}
	if got := metricValue(t, reg, "keel_pool_min_workers", "t"); got != 2 {
		t.Errorf("keel_pool_min_workers = %v", got)
	}
}
