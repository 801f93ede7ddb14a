package memory

import (
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/keel-go/keel/platform"
)

// The worked example of the package documentation, a 1 GiB pod.
const (
	podBytes       = int64(1073741824)
	podGoLimit     = int64(966367641) // floor(1 GiB × 0.90)
	podGuard       = int64(858993459) // floor(1 GiB × 0.80)
	podSystemKiB   = "16318472"
	podSystem      = int64(16318472) * 1024
	podSystemGuard = int64(13368092262) // floor(podSystem × 0.80)
)

func resolve(t *testing.T, cfg Config, d platform.Detector) Limits {
	t.Helper()
	lim, err := Resolve(cfg, d)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return lim
}

func TestResolveCgroupV2(t *testing.T) {
	cases := []struct {
		name        string
		max, high   string
		wantCgroup  int64
		wantGuard   int64
		wantGo      int64
		wantSource  Source
		wantGoSrc   GoLimitSource
		wantVersion int
	}{
		{"max only", "1073741824", "max", podBytes, podGuard, podGoLimit, SourceCgroupV2, GoLimitFromCgroup, 2},
		{"high caps max", "1073741824", "536870912", 512 * mib, 429496729, 483183820, SourceCgroupV2, GoLimitFromCgroup, 2},
		{"max above high ignored", "2147483648", "1073741824", podBytes, podGuard, podGoLimit, SourceCgroupV2, GoLimitFromCgroup, 2},
		{"high without max", "max", "1073741824", podBytes, podGuard, podGoLimit, SourceCgroupV2, GoLimitFromCgroup, 2},
		{"max means no limit: system memory", "max", "max", 0, podSystemGuard, 0, SourceSystem, GoLimitNone, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			lim := resolve(t, Config{}, machine(t, withMeminfo(cgroupV2(tc.max, tc.high), podSystemKiB)))
			if lim.CgroupBytes != tc.wantCgroup || lim.Bytes != tc.wantGuard || lim.GoBytes != tc.wantGo ||
				lim.Source != tc.wantSource || lim.GoSource != tc.wantGoSrc || lim.CgroupVersion != tc.wantVersion {
				t.Fatalf("Resolve = %+v\nwant cgroup %d guard %d go %d source %s go source %q version %d",
					lim, tc.wantCgroup, tc.wantGuard, tc.wantGo, tc.wantSource, tc.wantGoSrc, tc.wantVersion)
			}
			if lim.SystemBytes != podSystem {
				t.Fatalf("SystemBytes = %d, want %d", lim.SystemBytes, podSystem)
			}
			if lim.GoBytes > 0 && lim.Bytes > lim.GoBytes {
				t.Fatalf("guard limit %d above the Go limit %d", lim.Bytes, lim.GoBytes)
			}
			if lim.Warning != nil {
				t.Fatalf("unexpected warning: %v", lim.Warning)
			}
		})
	}
}

func TestResolveCgroupV1(t *testing.T) {
	t.Run("limit", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, machine(t, withMeminfo(cgroupV1("536870912"), podSystemKiB)))
		if lim.Source != SourceCgroupV1 || lim.CgroupVersion != 1 || lim.CgroupBytes != 512*mib ||
			lim.Bytes != 429496729 || lim.GoBytes != 483183820 {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	// The kernel's "no limit": the page-rounded math.MaxInt64.
	t.Run("unlimited sentinel falls back to the system memory", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, machine(t, withMeminfo(cgroupV1("9223372036854771712"), podSystemKiB)))
		if lim.Source != SourceSystem || lim.CgroupBytes != 0 || lim.Bytes != podSystemGuard || lim.GoSource != GoLimitNone {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
}

func TestResolveSystemMemoryAndNone(t *testing.T) {
	t.Run("no cgroup: meminfo", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{HeadroomFraction: 0.5}, machine(t, map[string]string{"proc/meminfo": meminfo("2048")}))
		if lim.Source != SourceSystem || lim.SystemBytes != 2<<20 || lim.Bytes != 1<<20 {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("bare metal: the system memory makes a hard source", func(t *testing.T) {
		g := newGuard(t, Config{}, map[string]string{"proc/meminfo": meminfo(podSystemKiB)})
		if g.Limit() != podSystemGuard || g.Limits().Source != SourceSystem || !g.Hard() {
			t.Fatalf("limit %d source %s hard %v", g.Limit(), g.Limits().Source, g.Hard())
		}
		g.Add(podSystemGuard / 2)
		if r := g.PressureRatio(); math.Abs(r-0.5) > 1e-9 {
			t.Fatalf("pressure ratio %v, want 0.5", r)
		}
	})
	t.Run("nothing at all", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, emptyMachine(t))
		if lim.Source != SourceNone || lim.Bytes != 0 || lim.Warning != nil {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("malformed meminfo is a warning", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, machine(t, map[string]string{"proc/meminfo": "MemTotal: lots\n"}))
		if lim.Source != SourceNone || lim.Warning == nil || !strings.Contains(lim.Warning.Error(), "meminfo") {
			t.Fatalf("Resolve = %+v (warning %v)", lim, lim.Warning)
		}
	})
	t.Run("malformed memory.max is a warning and is ignored", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, machine(t, withMeminfo(cgroupV2("banana", ""), podSystemKiB)))
		if lim.Source != SourceSystem || !errors.Is(lim.Warning, platform.ErrMalformed) {
			t.Fatalf("Resolve = %+v (warning %v)", lim, lim.Warning)
		}
	})
	t.Run("guard with no limit admits everything", func(t *testing.T) {
		g := newGuard(t, Config{}, nil)
		if g.Limit() != 0 || g.Limits().Source != SourceNone || !g.TryReserve(math.MaxInt64/2) || g.PressureRatio() != 0 || g.UnderPressure() || g.Hard() {
			t.Fatalf("unlimited guard: limit %d ratio %v pressure %v hard %v", g.Limit(), g.PressureRatio(), g.UnderPressure(), g.Hard())
		}
	})
}

func TestResolveExplicitLimit(t *testing.T) {
	t.Run("used as given under a cgroup", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{LimitBytes: 123456789}, machine(t, cgroupV2("1073741824", "max")))
		if lim.Bytes != 123456789 || lim.Source != SourceConfig || lim.GoBytes != podGoLimit || lim.GoSource != GoLimitFromCgroup {
			t.Fatalf("Resolve = %+v", lim)
		}
		g := newGuard(t, Config{LimitBytes: 123456789}, cgroupV2("1073741824", "max"))
		if g.Limit() != 123456789 {
			t.Fatalf("Limit = %d", g.Limit())
		}
	})
	t.Run("used as given without a cgroup, even above the system memory", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{LimitBytes: 4 * gib}, machine(t, map[string]string{"proc/meminfo": meminfo("1024")}))
		if lim.Bytes != 4*gib || lim.Source != SourceConfig || lim.GoSource != GoLimitNone {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("above the Go limit is an error", func(t *testing.T) {
		isolate(t)
		_, err := Resolve(Config{LimitBytes: podGoLimit + 1}, machine(t, cgroupV2("1073741824", "max")))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != "memory.limit_bytes" || !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("err = %v, want a *ConfigError for memory.limit_bytes", err)
		}
		if !strings.Contains(err.Error(), "966367641") || !strings.Contains(err.Error(), "must not exceed the Go runtime memory limit") {
			t.Fatalf("error %q does not explain the Go limit", err)
		}
		// Exactly at the Go limit is fine.
		if _, err := Resolve(Config{LimitBytes: podGoLimit}, machine(t, cgroupV2("1073741824", "max"))); err != nil {
			t.Fatalf("limit at the Go limit: %v", err)
		}
	})
}

func TestResolveGOMEMLIMIT(t *testing.T) {
	pod := func(t *testing.T) platform.Detector {
		// Getenv nil: the real environment, which the subtests set.
		return platform.Detector{Root: fakeRoot(t, cgroupV2("1073741824", "max"))}
	}
	t.Run("absent: derived from the cgroup", func(t *testing.T) {
		isolate(t)
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromCgroup || lim.GoBytes != podGoLimit || lim.Bytes != podGuard || lim.Source != SourceCgroupV2 {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("below the cgroup: the guard derives from it", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "700MiB")
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromEnv || lim.GoBytes != 700*mib || lim.Source != SourceGoMemoryLimit || lim.Bytes != 560*mib {
			t.Fatalf("Resolve = %+v, want guard %d", lim, 560*mib)
		}
	})
	t.Run("above the cgroup: the cgroup wins", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "2GiB")
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromEnv || lim.GoBytes != 2*gib || lim.Source != SourceCgroupV2 || lim.Bytes != podGuard {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("off: no Go limit, guard from the cgroup", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "off")
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromEnv || lim.GoBytes != 0 || lim.Source != SourceCgroupV2 || lim.Bytes != podGuard {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("without a cgroup: the guard derives from it", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "1000000")
		lim := resolve(t, Config{}, platform.Detector{Root: fakeRoot(t, map[string]string{"proc/meminfo": meminfo(podSystemKiB)})})
		if lim.Source != SourceGoMemoryLimit || lim.Bytes != 800000 {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("malformed is an error naming GOMEMLIMIT", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "lots")
		_, err := Resolve(Config{}, pod(t))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != "GOMEMLIMIT" || !strings.Contains(err.Error(), `GOMEMLIMIT="lots"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("explicit limit above GOMEMLIMIT is an error", func(t *testing.T) {
		isolate(t)
		t.Setenv("GOMEMLIMIT", "100MiB")
		_, err := Resolve(Config{LimitBytes: 200 * mib}, pod(t))
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "from GOMEMLIMIT") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a lower limit set in the process counts like GOMEMLIMIT", func(t *testing.T) {
		isolate(t)
		debug.SetMemoryLimit(500 * mib) // isolate restores it
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromRuntime || lim.GoBytes != 500*mib || lim.Source != SourceGoMemoryLimit || lim.Bytes != 400*mib {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
	t.Run("a higher limit set in the process is replaced by the cgroup's", func(t *testing.T) {
		isolate(t)
		debug.SetMemoryLimit(4 * gib)
		lim := resolve(t, Config{}, pod(t))
		if lim.GoSource != GoLimitFromCgroup || lim.GoBytes != podGoLimit {
			t.Fatalf("Resolve = %+v", lim)
		}
	})
}

func TestResolveDisabled(t *testing.T) {
	isolate(t)
	lim := resolve(t, Config{Enabled: ptr(false)}, machine(t, cgroupV2("1073741824", "max")))
	if lim.Source != SourceDisabled || lim.Bytes != 0 || lim.GoSource != GoLimitNone {
		t.Fatalf("Resolve = %+v", lim)
	}
	if _, err := Resolve(Config{Enabled: ptr(false), HeadroomFraction: 3}, emptyMachine(t)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a disabled section is still validated: err = %v", err)
	}
}

func TestParseGoMemLimit(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1": 1, "1024": 1024, "5B": 5, "1KiB": 1 << 10, "700MiB": 700 << 20, "2GiB": 2 << 30,
		"1TiB": 1 << 40, "off": 0, "+5": 5, "9223372036854775807": math.MaxInt64, "8388607TiB": 8388607 << 40,
	}
	for in, want := range good {
		got, err := parseGoMemLimit(in)
		if err != nil || got != want {
			t.Errorf("parseGoMemLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "1GB", "1G", "1kiB", "KiB", "iB", "B", "5iB", "1 MiB", "MiB5", "8388608TiB", "9223372036854775808", "OFF", "1PiB"} {
		if got, err := parseGoMemLimit(in); err == nil {
			t.Errorf("parseGoMemLimit(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseMemTotal(t *testing.T) {
	v, err := parseMemTotal("MemFree: 5 kB\nMemTotal:       24684096 kB\n")
	if err != nil || v != 24684096*1024 {
		t.Fatalf("parseMemTotal = %d, %v", v, err)
	}
	for _, in := range []string{"", "MemFree: 5 kB\n", "MemTotal: 5\n", "MemTotal: 5 MB\n", "MemTotal: x kB\n", "MemTotal: 0 kB\n", "MemTotal: -5 kB\n", "MemTotal: 99999999999999999999 kB\n", "MemTotal: 9007199254740992 kB\n"} {
		if v, err := parseMemTotal(in); err == nil {
			t.Errorf("parseMemTotal(%q) = %d, want an error", in, v)
		}
	}
}

func TestFraction(t *testing.T) {
	cases := []struct {
		b    int64
		f    float64
		want int64
	}{
		{podBytes, 0.9, podGoLimit},
		{podBytes, 0.8, podGuard},
		{1, 0.5, 1}, // never below one byte
		{math.MaxInt64, 1, math.MaxInt64},
		{10, 1, 10},
	}
	for _, c := range cases {
		if got := fraction(c.b, c.f); got != c.want {
			t.Errorf("fraction(%d, %v) = %d, want %d", c.b, c.f, got, c.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[int64]string{512: "512 B", 1024: "1 KiB", podGoLimit: "921.6 MiB", podGuard: "819.2 MiB", gib: "1 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
