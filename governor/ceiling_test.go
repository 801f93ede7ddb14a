package governor_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/platform"
)

// The containers of the documented arithmetic: the guard's limit is 80%
// of the container's, and the block ceiling 1/16 of the guard's limit.
const (
	pod128Guard   = int64(107374182) // floor(128 MiB × 0.80)
	pod128Ceiling = int64(6710886)   // floor(107374182 / 16): 6.4 MiB
	pod1GGuard    = int64(858993459) // floor(1 GiB × 0.80)
	pod1GCeiling  = int64(53687091)  // floor(858993459 / 16): 51.2 MiB
)

func TestBlockCeilingArithmetic(t *testing.T) {
	cases := []struct {
		name     string
		limit    int64
		fraction float64
		want     int64
	}{
		{"128 MiB container", pod128Guard, governor.DefaultMaxBlockFraction, pod128Ceiling},
		{"1 GiB container", pod1GGuard, governor.DefaultMaxBlockFraction, pod1GCeiling},
		{"whole limit", pod1GGuard, 1, pod1GGuard},
		{"a quarter", 1000, 0.25, 250},
		{"no limit", 0, governor.DefaultMaxBlockFraction, 0},
		{"negative limit", -5, 0.5, 0},
		{"tiny limit floors at one byte", 10, governor.DefaultMaxBlockFraction, 1},
		{"fraction 0 is the default", 1600, 0, 100},
		{"NaN fraction is the default", 1600, math.NaN(), 100},
		{"negative fraction is the default", 1600, -1, 100},
		{"fraction above 1 is the default", 1600, 2, 100},
		{"huge limit", math.MaxInt64, 1, math.MaxInt64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := governor.BlockCeiling(c.limit, c.fraction); got != c.want {
				t.Fatalf("BlockCeiling(%d, %v) = %d, want %d", c.limit, c.fraction, got, c.want)
			}
		})
	}
	// The documented peak: a block at the ceiling plus its tenfold
	// expansion stays within 0.55 of the container and under the Go
	// memory limit (0.9 of it).
	const pod128 = 128 << 20
	if peak := 11 * pod128Ceiling; float64(peak) > 0.55*pod128 || float64(peak) >= 0.9*pod128 {
		t.Fatalf("peak %d of a 128 MiB container", peak)
	}
}

func TestBudgetBlockCeiling(t *testing.T) {
	tp := governor.ProfileThroughput.Budget()
	cases := []struct {
		name    string
		profile governor.Profile
		over    governor.BudgetConfig
		ceiling int64
		want    governor.BudgetConfig
		keys    []string // keys the warnings must name; none means no warning
	}{
		{"profile under the ceiling is lowered silently", governor.ProfileThroughput, governor.BudgetConfig{}, 4 * mib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MaxBytes = 4*mib, 4*mib }), nil},
		{"ceiling above the profile changes nothing", governor.ProfileThroughput, governor.BudgetConfig{}, 256 * mib, tp, nil},
		{"no ceiling", governor.ProfileThroughput, governor.BudgetConfig{}, 0, tp, nil},
		{"floor lowered too", governor.ProfileThroughput, governor.BudgetConfig{}, 64 * kib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MinBytes, c.MaxBytes = 64*kib, 64*kib, 64*kib }), nil},
		{"low_latency start below the ceiling stays", governor.ProfileLowLatency, governor.BudgetConfig{}, pod128Ceiling,
			withF(governor.ProfileLowLatency.Budget(), func(c *governor.BudgetConfig) { c.MaxBytes = pod128Ceiling }), nil},
		{"override of max_bytes above the ceiling", governor.ProfileThroughput, governor.BudgetConfig{MaxBytes: 32 * mib}, 4 * mib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MaxBytes = 4*mib, 4*mib }), []string{"budget.max_bytes"}},
		{"override of min_bytes above the ceiling", governor.ProfileThroughput, governor.BudgetConfig{MinBytes: 8 * mib}, 4 * mib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MinBytes, c.MaxBytes = 4*mib, 4*mib, 4*mib }), []string{"budget.min_bytes"}},
		{"override of start_bytes above the ceiling", governor.ProfileThroughput, governor.BudgetConfig{StartBytes: 20 * mib}, 4 * mib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MaxBytes = 4*mib, 4*mib }), []string{"budget.start_bytes"}},
		{"overrides under the ceiling are kept", governor.ProfileThroughput, governor.BudgetConfig{StartBytes: mib, MaxBytes: 2 * mib}, 4 * mib,
			withF(tp, func(c *governor.BudgetConfig) { c.StartBytes, c.MaxBytes = mib, 2*mib }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, buf := bufferLogger()
			b := governor.NewBudget(c.profile, c.over, governor.WithMetrics(testRegistry()), governor.WithLogger(log),
				governor.WithBlockCeiling(c.ceiling))
			if got := b.Config(); got != c.want {
				t.Fatalf("envelope %+v\nwant     %+v", got, c.want)
			}
			if b.Bytes() != c.want.StartBytes || b.Ceiling() != c.ceiling {
				t.Fatalf("bytes %d ceiling %d", b.Bytes(), b.Ceiling())
			}
			logs := buf.String()
			if got := strings.Count(logs, "level=WARN"); got != len(c.keys) {
				t.Fatalf("%d warnings, want %d:\n%s", got, len(c.keys), logs)
			}
			for _, k := range c.keys {
				if !strings.Contains(logs, "key=self_regulation."+k) || !strings.Contains(logs, "max_block_fraction") {
					t.Fatalf("no warning names %s and the fix:\n%s", k, logs)
				}
			}
			// Slack blocks never take the budget above the ceiling.
			for range 1000 {
				b.Observe(1, 0, ms)
			}
			if c.ceiling > 0 && b.Bytes() > c.ceiling {
				t.Fatalf("budget grew to %d, above the ceiling %d", b.Bytes(), c.ceiling)
			}
		})
	}
}

// containerGuard is a memory guard that detects the given cgroup v2
// memory.max from a fixture machine, as a service in that container.
func containerGuard(t *testing.T, maxBytes string, cfg memory.Config) *memory.Guard {
	t.Helper()
	root := t.TempDir()
	for rel, body := range map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
		"sys/fs/cgroup/memory.max":         maxBytes + "\n",
		"proc/meminfo":                     "MemTotal:       16318472 kB\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := memory.New(cfg, memory.WithPlatform(platform.Detector{Root: root, Getenv: func(string) string { return "" }}),
		memory.WithMetrics(testRegistry()), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// New derives the block ceiling from the memory guard: in a 128 MiB
// container every profile's start and ceiling are 6.4 MiB, in a large one
// the profiles are untouched.
func TestNewCapsTheBudgetAtTheGuardsLimit(t *testing.T) {
	small := containerGuard(t, "134217728", memory.Config{})
	if small.Limit() != pod128Guard {
		t.Fatalf("guard limit %d in a 128 MiB container, want %d", small.Limit(), pod128Guard)
	}
	for _, p := range governor.Profiles() {
		t.Run("128MiB/"+p.String(), func(t *testing.T) {
			g, _ := newGovernor(t, governor.Config{Profile: p}, governor.WithMemory(small))
			b := g.Budget().(*governor.Budget)
			env, prof := b.Config(), p.Budget()
			if b.Ceiling() != pod128Ceiling || env.MaxBytes != min(prof.MaxBytes, pod128Ceiling) ||
				env.StartBytes != min(prof.StartBytes, pod128Ceiling) || env.MinBytes != prof.MinBytes || b.Bytes() != env.StartBytes {
				t.Fatalf("ceiling %d, envelope %+v", b.Ceiling(), env)
			}
			if g.Config().MaxBlockFraction != governor.DefaultMaxBlockFraction {
				t.Fatalf("max_block_fraction %v", g.Config().MaxBlockFraction)
			}
		})
	}
	t.Run("4GiB", func(t *testing.T) {
		big := containerGuard(t, "4294967296", memory.Config{})
		g, _ := newGovernor(t, governor.Config{}, governor.WithMemory(big))
		b := g.Budget().(*governor.Budget)
		if b.Ceiling() != big.Limit()/16 || b.Config() != governor.ProfileThroughput.Budget() {
			t.Fatalf("ceiling %d, envelope %+v", b.Ceiling(), b.Config())
		}
	})
	t.Run("max_block_fraction", func(t *testing.T) {
		g, _ := newGovernor(t, governor.Config{MaxBlockFraction: 0.5}, governor.WithMemory(small))
		b := g.Budget().(*governor.Budget)
		if b.Ceiling() != pod128Guard/2 || b.Config().StartBytes != 16*mib || b.Config().MaxBytes != pod128Guard/2 {
			t.Fatalf("ceiling %d, envelope %+v", b.Ceiling(), b.Config())
		}
	})
	t.Run("the lowest guard sets it", func(t *testing.T) {
		lower := containerGuard(t, "67108864", memory.Config{})
		g, _ := newGovernor(t, governor.Config{}, governor.WithMemory(small), governor.WithMemory(lower))
		if got := g.Budget().(*governor.Budget).Ceiling(); got != lower.Limit()/16 {
			t.Fatalf("ceiling %d, want %d", got, lower.Limit()/16)
		}
	})
	t.Run("an override above it is lowered with a warning", func(t *testing.T) {
		log, buf := bufferLogger()
		g, err := governor.New(governor.Config{Budget: governor.BudgetConfig{MaxBytes: 64 * mib}},
			governor.WithMemory(small), governor.WithMetrics(testRegistry()), governor.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Budget().(*governor.Budget).Config().MaxBytes; got != pod128Ceiling {
			t.Fatalf("max_bytes %d, want %d", got, pod128Ceiling)
		}
		if logs := buf.String(); !strings.Contains(logs, "key=self_regulation.budget.max_bytes") || !strings.Contains(logs, "block_ceiling_bytes=6710886") {
			t.Fatalf("log:\n%s", logs)
		}
	})
	t.Run("a guard without a limit sets none and says so", func(t *testing.T) {
		off, err := memory.New(memory.Config{Enabled: ptr(false)}, memory.WithMetrics(testRegistry()), memory.WithLogger(quietLogger()))
		if err != nil {
			t.Fatal(err)
		}
		log, buf := bufferLogger()
		g, err := governor.New(governor.Config{}, governor.WithMemory(off), governor.WithMetrics(testRegistry()), governor.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		b := g.Budget().(*governor.Budget)
		if b.Ceiling() != 0 || b.Config() != governor.ProfileThroughput.Budget() || !strings.Contains(buf.String(), "the memory guard has no limit") {
			t.Fatalf("ceiling %d, envelope %+v, log:\n%s", b.Ceiling(), b.Config(), buf.String())
		}
	})
	t.Run("no guard", func(t *testing.T) {
		g, _ := newGovernor(t, governor.Config{})
		if b := g.Budget().(*governor.Budget); b.Ceiling() != 0 || b.Config() != governor.ProfileThroughput.Budget() {
			t.Fatalf("ceiling %d, envelope %+v", b.Ceiling(), b.Config())
		}
	})
}
