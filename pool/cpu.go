package pool

import (
	"errors"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/keel-go/keel/platform"
)

// ErrCPUBaseline is returned by CPUMeter.Sample when it has no earlier
// reading to measure from (its first successful reading). It is not a
// failure: the next Sample measures from this one.
var ErrCPUBaseline = errors.New("pool: first CPU reading, no window to measure yet")

// ErrCPUTimeUnsupported is returned by ProcessCPUTime on a platform that
// has no way to read the process's CPU time (js/wasm, plan9). The scaler
// then holds the target steady.
var ErrCPUTimeUnsupported = errors.New("pool: process CPU time is not available on this platform; the scaler holds the target steady")

// MinCPUWindow is the shortest wall-clock window a CPUMeter divides by; a
// shorter window between two samples counts as this long.
const MinCPUWindow = time.Millisecond

// CPURefreshInterval is how often a CPUMeter re-reads the number of CPUs
// the process may use (the cgroup quota can change while a pod runs).
const CPURefreshInterval = 30 * time.Second

// CPUMeterConfig makes the sources of a CPUMeter replaceable, for tests or
// for another notion of CPU time. The zero value reads the real process.
type CPUMeterConfig struct {
	// CPUTime returns the CPU time (user + system, all threads) the
	// process has used since it started. Nil means ProcessCPUTime.
	CPUTime func() (time.Duration, error)
	// Now returns the wall-clock time. Nil means time.Now.
	Now func() time.Time
	// CPUs returns how many CPUs the process may use, possibly fractional.
	// Nil means AvailableCPUs. A value that is not a positive number counts
	// as 1.
	CPUs func() float64
}

// CPUMeter measures the process's own CPU utilisation: the CPU time it used
// between two calls of Sample, over the wall time between them, over the
// CPUs it may use. It measures the process, not the host, so neighbours on
// a shared node do not move it. A CPUMeter is safe for concurrent use.
type CPUMeter struct {
	cpuTime func() (time.Duration, error)
	now     func() time.Time
	cpusFn  func() float64

	mu      sync.Mutex
	primed  bool
	lastCPU time.Duration
	lastAt  time.Time
	cpus    float64
	cpusAt  time.Time
}

// NewCPUMeter returns a meter and takes its first reading, so that the
// first Sample measures from the moment of NewCPUMeter. If that reading
// fails, the first successful Sample takes it instead and returns
// ErrCPUBaseline.
func NewCPUMeter(cfg CPUMeterConfig) *CPUMeter {
	m := &CPUMeter{cpuTime: cfg.CPUTime, now: cfg.Now, cpusFn: cfg.CPUs}
	if m.cpuTime == nil {
		m.cpuTime = ProcessCPUTime
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cpusFn == nil {
		m.cpusFn = AvailableCPUs
	}
	_, _ = m.Sample()
	return m
}

// Sample returns the CPU utilisation since the previous successful Sample
// (or NewCPUMeter), in [0, 1]: CPU time used / (wall time × CPUs). A wall
// window shorter than MinCPUWindow counts as MinCPUWindow and a CPU time
// that went backwards counts as none, so the result is always finite. It
// returns ErrCPUBaseline on the first successful reading and the reader's
// error when the CPU time cannot be read; the baseline is kept then.
func (m *CPUMeter) Sample() (float64, error) {
	used, err := m.cpuTime()
	if err != nil {
		return 0, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.primed || now.Sub(m.cpusAt) >= CPURefreshInterval {
		m.cpus, m.cpusAt = m.cpusFn(), now
	}
	if !m.primed {
		m.primed, m.lastCPU, m.lastAt = true, used, now
		return 0, ErrCPUBaseline
	}
	wall := max(now.Sub(m.lastAt), MinCPUWindow)
	delta := max(used-m.lastCPU, 0)
	m.lastCPU, m.lastAt = used, now
	return utilisation(delta, wall, m.cpus), nil
}

// CPUs returns the number of CPUs the last Sample divided by.
func (m *CPUMeter) CPUs() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sanitizeCPUs(m.cpus)
}

// utilisation is delta / (wall × cpus), clamped to [0, 1].
func utilisation(delta, wall time.Duration, cpus float64) float64 {
	u := delta.Seconds() / (wall.Seconds() * sanitizeCPUs(cpus))
	return min(max(u, 0), 1)
}

func sanitizeCPUs(c float64) float64 {
	if !(c > 0) || math.IsInf(c, 1) { // also NaN
		return 1
	}
	return c
}

// AvailableCPUs returns how many CPUs the process may use: the CPU quota of
// its cgroup (platform.Detector.CPUQuota, possibly fractional, such as 1.5)
// when there is one and it is below GOMAXPROCS, else GOMAXPROCS. A quota
// file that cannot be parsed counts as no quota.
func AvailableCPUs() float64 {
	return availableCPUs(platform.Detector{}, runtime.GOMAXPROCS(0))
}

// availableCPUs is AvailableCPUs over a given detector and GOMAXPROCS. The
// process cannot run Go code on more than GOMAXPROCS CPUs, so a quota above
// it (GOMAXPROCS lowered by hand) is capped to it.
func availableCPUs(d platform.Detector, procs int) float64 {
	p := float64(max(procs, 1))
	if q, _ := d.CPUQuota(); q > 0 && q < p {
		return q
	}
	return p
}

// ProcessCPUTime returns the CPU time (user + system, all threads) the
// process has used since it started, from getrusage(RUSAGE_SELF) on Unix
// and GetProcessTimes on Windows. Elsewhere it returns
// ErrCPUTimeUnsupported.
func ProcessCPUTime() (time.Duration, error) { return processCPUTime() }
