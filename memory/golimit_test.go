package memory

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/keel-go/keel/platform"
)

// goLimit returns the runtime's memory limit without changing it.
func goLimit() int64 { return debug.SetMemoryLimit(-1) }

// podGuard builds a guard for a 1 GiB cgroup v2 pod that reads the real
// environment (set by the test with t.Setenv). isolate must have run.
func podGuardFor(t *testing.T, cfg Config) *Guard {
	t.Helper()
	g, err := New(cfg,
		WithPlatform(platform.Detector{Root: fakeRoot(t, cgroupV2("1073741824", "max"))}),
		WithMetrics(testRegistry()), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestApplyGoMemoryLimitWhenGOMEMLIMITIsAbsent(t *testing.T) {
	isolate(t) // GOMEMLIMIT unset, runtime limit off; restored after the test
	g := podGuardFor(t, Config{})
	if goLimit() != math.MaxInt64 {
		t.Fatal("New changed the runtime memory limit")
	}
	r := g.ApplyGoMemoryLimit()
	if r.Action != GoLimitSet || r.Bytes != podGoLimit || r.Previous != 0 {
		t.Fatalf("ApplyGoMemoryLimit = %+v", r)
	}
	if goLimit() != podGoLimit {
		t.Fatalf("runtime limit %d, want %d", goLimit(), podGoLimit)
	}
	if g.Limit() != podGuard || g.Limit() >= goLimit() {
		t.Fatalf("guard limit %d must sit below the Go limit %d", g.Limit(), goLimit())
	}
	if s := g.Snapshot(); s.GoMemoryLimitBytes != podGoLimit {
		t.Fatalf("snapshot Go limit %d", s.GoMemoryLimitBytes)
	}
	// Again: same outcome, nothing else changes.
	if r2 := g.ApplyGoMemoryLimit(); r2.Action != GoLimitSet || r2.Bytes != podGoLimit || r2.Previous != podGoLimit {
		t.Fatalf("second call = %+v", r2)
	}
	if !strings.Contains(r.String(), "966367641") {
		t.Fatalf("String() = %q", r.String())
	}
}

func TestApplyGoMemoryLimitRespectsGOMEMLIMIT(t *testing.T) {
	isolate(t)
	t.Setenv("GOMEMLIMIT", "700MiB")
	// What the runtime did at start with that variable.
	debug.SetMemoryLimit(700 * mib)
	g := podGuardFor(t, Config{})
	r := g.ApplyGoMemoryLimit()
	if r.Action != GoLimitUserSet || r.Bytes != 700*mib || goLimit() != 700*mib {
		t.Fatalf("ApplyGoMemoryLimit = %+v, runtime limit %d", r, goLimit())
	}
	if g.Limit() != 560*mib {
		t.Fatalf("guard limit %d, want 80%% of min(1 GiB, 700 MiB) = %d", g.Limit(), 560*mib)
	}
}

func TestApplyGoMemoryLimitKeepsALowerLimit(t *testing.T) {
	t.Run("set before New", func(t *testing.T) {
		isolate(t)
		debug.SetMemoryLimit(100 * mib)
		g := podGuardFor(t, Config{})
		r := g.ApplyGoMemoryLimit()
		if r.Action != GoLimitKeptLower || goLimit() != 100*mib || g.Limit() != 80*mib {
			t.Fatalf("ApplyGoMemoryLimit = %+v, runtime %d, guard %d", r, goLimit(), g.Limit())
		}
	})
	t.Run("set between New and Apply", func(t *testing.T) {
		isolate(t)
		g := podGuardFor(t, Config{})
		debug.SetMemoryLimit(100 * mib)
		r := g.ApplyGoMemoryLimit()
		if r.Action != GoLimitKeptLower || r.Bytes != 100*mib || goLimit() != 100*mib {
			t.Fatalf("ApplyGoMemoryLimit = %+v, runtime %d", r, goLimit())
		}
	})
}

func TestApplyGoMemoryLimitChangesNothingWithoutACgroupLimit(t *testing.T) {
	isolate(t)
	g := newGuard(t, Config{}, map[string]string{"proc/meminfo": meminfo(podSystemKiB)})
	r := g.ApplyGoMemoryLimit()
	if r.Action != GoLimitNoContainerLimit || r.Bytes != 0 || goLimit() != math.MaxInt64 {
		t.Fatalf("ApplyGoMemoryLimit = %+v, runtime %d", r, goLimit())
	}
	if g.Limit() != podSystemGuard {
		t.Fatalf("guard limit %d", g.Limit())
	}
}

func TestApplyGoMemoryLimitDisabled(t *testing.T) {
	g := newGuard(t, Config{Enabled: ptr(false)}, cgroupV2("1073741824", "max"))
	r := g.ApplyGoMemoryLimit()
	if r.Action != GoLimitDisabled || goLimit() != math.MaxInt64 {
		t.Fatalf("ApplyGoMemoryLimit = %+v, runtime %d", r, goLimit())
	}
}

func TestGoLimitResultString(t *testing.T) {
	for _, r := range []GoLimitResult{
		{Action: GoLimitSet, Bytes: 1 << 30},
		{Action: GoLimitUserSet, Bytes: 1 << 20},
		{Action: GoLimitKeptLower, Bytes: 5},
		{Action: GoLimitNoContainerLimit},
		{Action: GoLimitDisabled},
		{Action: "other"},
	} {
		if s := r.String(); s == "" || !strings.Contains(s, "Go memory limit") {
			t.Errorf("%+v.String() = %q", r, s)
		}
	}
}
