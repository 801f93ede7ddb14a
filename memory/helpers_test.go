package memory

import (
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

// fakeRoot writes files (path relative to the root -> content) into a new
// temporary directory and returns it.
func fakeRoot(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Fixture files.
func cgroupV2(maxV, highV string) map[string]string {
	m := map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu memory\n"}
	if maxV != "" {
		m["sys/fs/cgroup/memory.max"] = maxV + "\n"
	}
	if highV != "" {
		m["sys/fs/cgroup/memory.high"] = highV + "\n"
	}
	return m
}

func cgroupV1(limit string) map[string]string {
	return map[string]string{"sys/fs/cgroup/memory/memory.limit_in_bytes": limit + "\n"}
}

func meminfo(kb string) string {
	return "MemTotal:       " + kb + " kB\nMemFree:         1000 kB\nMemAvailable:    2000 kB\n"
}

func withMeminfo(files map[string]string, kb string) map[string]string {
	files["proc/meminfo"] = meminfo(kb)
	return files
}

// noEnv is a Getenv that sees no variable at all.
func noEnv(string) string { return "" }

// isolate makes the process-wide inputs of Resolve known for the test:
// the Go runtime memory limit is off and GOMEMLIMIT is unset; both are
// restored afterwards. Tests that call it must not run in parallel.
func isolate(t *testing.T) {
	t.Helper()
	prev := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// newGuard builds a guard with the given config over a fixture root (nil
// files = an empty machine: no cgroup, no /proc/meminfo) and a fresh
// registry.
func newGuard(t *testing.T, cfg Config, files map[string]string, opts ...Option) *Guard {
	t.Helper()
	isolate(t)
	base := []Option{
		WithPlatform(platform.Detector{Root: fakeRoot(t, files), Getenv: noEnv}),
		WithMetrics(testRegistry()),
		WithLogger(quietLogger()),
	}
	g, err := New(cfg, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return g
}

// limited returns a guard with an explicit limit of n bytes.
func limited(t *testing.T, n int64, opts ...Option) *Guard {
	t.Helper()
	return newGuard(t, Config{LimitBytes: n}, nil, opts...)
}

func ptr[T any](v T) *T { return &v }

// emptyMachine is a Detector over an empty root: no cgroup, no
// /proc/meminfo, no environment.
func emptyMachine(t testing.TB) platform.Detector {
	return platform.Detector{Root: t.TempDir(), Getenv: noEnv}
}

// machine is a Detector over fixture files and no environment.
func machine(t testing.TB, files map[string]string) platform.Detector {
	return platform.Detector{Root: fakeRoot(t, files), Getenv: noEnv}
}
