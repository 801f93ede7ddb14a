package pool

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/platform"
)

// fakeCPU is a process whose CPU time, wall clock and CPU count the test
// sets by hand.
type fakeCPU struct {
	mu       sync.Mutex
	used     time.Duration
	now      time.Time
	cpus     float64
	err      error
	cpuReads int
}

func newFakeCPU(cpus float64) *fakeCPU {
	return &fakeCPU{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), cpus: cpus}
}

func (f *fakeCPU) cpuTime() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used, f.err
}

func (f *fakeCPU) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeCPU) count() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cpuReads++
	return f.cpus
}

// advance moves the wall clock by wall and the CPU time by used.
func (f *fakeCPU) advance(wall, used time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(wall)
	f.used += used
	f.mu.Unlock()
}

func (f *fakeCPU) set(fn func(f *fakeCPU)) {
	f.mu.Lock()
	fn(f)
	f.mu.Unlock()
}

func (f *fakeCPU) meter() *CPUMeter {
	return NewCPUMeter(CPUMeterConfig{CPUTime: f.cpuTime, Now: f.clock, CPUs: f.count})
}

func TestCPUMeterArithmetic(t *testing.T) {
	cases := []struct {
		name       string
		cpus       float64
		wall, used time.Duration
		want       float64
	}{
		{"1.5 CPUs of a 2-CPU quota over 1s", 2, time.Second, 1500 * time.Millisecond, 0.75},
		{"half of one CPU", 1, time.Second, 500 * time.Millisecond, 0.5},
		{"fractional quota 1.5, fully used", 1.5, 2 * time.Second, 3 * time.Second, 1},
		{"fractional quota 0.5, a quarter used", 0.5, 4 * time.Second, 500 * time.Millisecond, 0.25},
		{"idle", 4, 5 * time.Second, 0, 0},
		{"over the quota is clamped to 1", 2, time.Second, 3 * time.Second, 1},
		{"5s window at the default interval", 8, 5 * time.Second, 10 * time.Second, 0.25},
		{"zero CPUs count as 1", 0, time.Second, 250 * time.Millisecond, 0.25},
		{"negative CPUs count as 1", -3, time.Second, 250 * time.Millisecond, 0.25},
		{"NaN CPUs count as 1", math.NaN(), time.Second, 250 * time.Millisecond, 0.25},
		{"infinite CPUs count as 1", math.Inf(1), time.Second, 250 * time.Millisecond, 0.25},
		{"zero wall counts as 1ms", 1, 0, 500 * time.Microsecond, 0.5},
		{"wall below 1ms counts as 1ms", 2, 10 * time.Microsecond, 500 * time.Microsecond, 0.25},
		{"clock going backwards counts as 1ms", 1, -time.Hour, 250 * time.Microsecond, 0.25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCPU(tc.cpus)
			f.advance(0, 10*time.Second) // CPU used before the meter started
			m := f.meter()
			f.advance(tc.wall, tc.used)
			got, err := m.Sample()
			if err != nil {
				t.Fatalf("Sample: %v", err)
			}
			if math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Sample() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCPUMeterMeasuresEachWindow(t *testing.T) {
	f := newFakeCPU(2)
	m := f.meter()
	steps := []struct {
		wall, used time.Duration
		want       float64
	}{
		{time.Second, 1500 * time.Millisecond, 0.75},
		{time.Second, 200 * time.Millisecond, 0.10},
		{2 * time.Second, 4 * time.Second, 1},
		{time.Second, 0, 0},
	}
	for i, s := range steps {
		f.advance(s.wall, s.used)
		got, err := m.Sample()
		if err != nil || math.Abs(got-s.want) > 1e-9 {
			t.Fatalf("window %d: Sample() = %v, %v; want %v (each window measured from the previous sample)", i, got, err, s.want)
		}
	}
	if c := m.CPUs(); c != 2 {
		t.Fatalf("CPUs() = %v, want 2", c)
	}
}

func TestCPUMeterCPUTimeGoingBackwardsCountsAsNone(t *testing.T) {
	f := newFakeCPU(1)
	f.advance(0, 10*time.Second)
	m := f.meter()
	f.set(func(f *fakeCPU) { f.used = 4 * time.Second; f.now = f.now.Add(time.Second) })
	if got, err := m.Sample(); err != nil || got != 0 {
		t.Fatalf("Sample() after CPU time went back = %v, %v; want 0, nil", got, err)
	}
	// The lower reading is the new baseline.
	f.advance(time.Second, 500*time.Millisecond)
	if got, err := m.Sample(); err != nil || got != 0.5 {
		t.Fatalf("next Sample() = %v, %v; want 0.5 from the new baseline", got, err)
	}
}

func TestCPUMeterReadErrorKeepsBaseline(t *testing.T) {
	f := newFakeCPU(1)
	m := f.meter()
	boom := errors.New("rusage unavailable")
	f.set(func(f *fakeCPU) { f.err = boom })
	f.advance(time.Second, 300*time.Millisecond)
	if _, err := m.Sample(); !errors.Is(err, boom) {
		t.Fatalf("Sample() error = %v, want the reader's error", err)
	}
	f.set(func(f *fakeCPU) { f.err = nil })
	f.advance(time.Second, 500*time.Millisecond)
	// The window spans both seconds: 0.8 CPU-seconds over 2 s.
	if got, err := m.Sample(); err != nil || math.Abs(got-0.4) > 1e-9 {
		t.Fatalf("Sample() after a failed read = %v, %v; want 0.4 over the whole window", got, err)
	}
}

func TestCPUMeterFirstReadingFailedGivesBaselineLater(t *testing.T) {
	f := newFakeCPU(1)
	boom := errors.New("not yet")
	f.set(func(f *fakeCPU) { f.err = boom })
	m := f.meter() // the construction-time reading fails
	f.set(func(f *fakeCPU) { f.err = nil })
	f.advance(time.Second, time.Second)
	if _, err := m.Sample(); !errors.Is(err, ErrCPUBaseline) {
		t.Fatalf("first good Sample() error = %v, want ErrCPUBaseline", err)
	}
	f.advance(time.Second, 250*time.Millisecond)
	if got, err := m.Sample(); err != nil || got != 0.25 {
		t.Fatalf("second Sample() = %v, %v; want 0.25", got, err)
	}
}

func TestCPUMeterRefreshesCPUCount(t *testing.T) {
	f := newFakeCPU(2)
	m := f.meter()
	f.set(func(f *fakeCPU) { f.cpus = 1 }) // the quota was halved
	f.advance(10*time.Second, 5*time.Second)
	if got, _ := m.Sample(); got != 0.25 {
		t.Fatalf("Sample() before the refresh = %v, want 0.25 (still 2 CPUs)", got)
	}
	f.advance(CPURefreshInterval, CPURefreshInterval/2)
	if got, _ := m.Sample(); got != 0.5 {
		t.Fatalf("Sample() after the refresh = %v, want 0.5 (1 CPU)", got)
	}
	f.mu.Lock()
	reads := f.cpuReads
	f.mu.Unlock()
	if reads != 2 {
		t.Fatalf("CPU count read %d times, want 2 (at start and after %s)", reads, CPURefreshInterval)
	}
}

func TestProcessCPUTimeCountsOwnWork(t *testing.T) {
	start, err := ProcessCPUTime()
	if errors.Is(err, ErrCPUTimeUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("ProcessCPUTime: %v", err)
	}
	if start <= 0 {
		t.Fatalf("ProcessCPUTime() = %v; a running test process has used some CPU", start)
	}
	// Burn CPU on this goroutine until the process's CPU time moves; the
	// guard only turns a broken reader into a failure.
	deadline := time.Now().Add(guard)
	sink := uint64(1)
	for {
		for i := range 1_000_000 {
			sink = sink*6364136223846793005 + uint64(i)
		}
		now, err := ProcessCPUTime()
		if err != nil {
			t.Fatalf("ProcessCPUTime: %v", err)
		}
		if now < start {
			t.Fatalf("process CPU time went backwards: %v then %v", start, now)
		}
		if now > start {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process CPU time stuck at %v while this test burned CPU (sink %d)", start, sink)
		}
	}
}

func TestCPUMeterOnTheRealProcess(t *testing.T) {
	if _, err := ProcessCPUTime(); errors.Is(err, ErrCPUTimeUnsupported) {
		t.Skip(err)
	}
	m := NewCPUMeter(CPUMeterConfig{})
	if c := m.CPUs(); !(c > 0) || c > float64(max(1, runtime.GOMAXPROCS(0))) {
		t.Fatalf("CPUs() = %v, want within (0, GOMAXPROCS]", c)
	}
	u, err := m.Sample()
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	if u < 0 || u > 1 || math.IsNaN(u) {
		t.Fatalf("Sample() = %v, want a ratio in [0, 1]", u)
	}
}

func TestAvailableCPUsFollowsTheQuota(t *testing.T) {
	v2 := func(cpuMax string) map[string]string {
		return map[string]string{
			"sys/fs/cgroup/cgroup.controllers": "cpu memory",
			"proc/self/cgroup":                 "0::/\n",
			"sys/fs/cgroup/cpu.max":            cpuMax,
		}
	}
	cases := []struct {
		name  string
		files map[string]string
		procs int
		want  float64
	}{
		{"no cgroup: GOMAXPROCS", nil, 4, 4},
		{"fractional quota below GOMAXPROCS", v2("150000 100000\n"), 2, 1.5},
		{"quota of one CPU", v2("100000 100000\n"), 8, 1},
		{"no quota: GOMAXPROCS", v2("max 100000\n"), 3, 3},
		{"quota above GOMAXPROCS is capped to it", v2("400000 100000\n"), 2, 2},
		{"malformed quota counts as none", v2("lots\n"), 2, 2},
		{"cgroup v1 quota", map[string]string{
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  "50000\n",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
		}, 4, 0.5},
		{"GOMAXPROCS below 1 counts as 1", nil, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, content := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := availableCPUs(platform.Detector{Root: root}, tc.procs); got != tc.want {
				t.Fatalf("availableCPUs = %v, want %v", got, tc.want)
			}
		})
	}
}
