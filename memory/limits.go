package memory

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"

	"github.com/keel-go/keel/platform"
)

// Source says where the guard's limit comes from.
type Source string

// Sources of the guard's limit.
const (
	// SourceConfig: memory.limit_bytes, used as given.
	SourceConfig Source = "config"
	// SourceCgroupV2: memory.max capped by memory.high, times the headroom.
	SourceCgroupV2 Source = "cgroup_v2"
	// SourceCgroupV1: memory.limit_in_bytes, times the headroom.
	SourceCgroupV1 Source = "cgroup_v1"
	// SourceGoMemoryLimit: the Go runtime memory limit the user set
	// (GOMEMLIMIT, or debug.SetMemoryLimit before the guard was built),
	// lower than the cgroup limit, times the headroom.
	SourceGoMemoryLimit Source = "go_memory_limit"
	// SourceSystem: MemTotal of /proc/meminfo, times the headroom.
	SourceSystem Source = "system"
	// SourceNone: no limit was found anywhere; the guard admits
	// everything. Set memory.limit_bytes.
	SourceNone Source = "none"
	// SourceDisabled: memory.enabled is false.
	SourceDisabled Source = "disabled"
)

// GoLimitSource says where the Go runtime memory limit the guard sits
// under comes from.
type GoLimitSource string

// Sources of the Go runtime memory limit.
const (
	// GoLimitNone: there is no Go memory limit, and none will be set.
	GoLimitNone GoLimitSource = ""
	// GoLimitFromEnv: the user set GOMEMLIMIT; keel leaves it alone.
	GoLimitFromEnv GoLimitSource = "gomemlimit"
	// GoLimitFromRuntime: the process already runs with a Go memory limit
	// (set through debug.SetMemoryLimit) lower than keel would set; keel
	// leaves it alone.
	GoLimitFromRuntime GoLimitSource = "runtime"
	// GoLimitFromCgroup: the cgroup limit times go_memory_limit_fraction;
	// ApplyGoMemoryLimit sets it.
	GoLimitFromCgroup GoLimitSource = "cgroup"
)

// Limits is what Resolve found: the guard's limit and the numbers it was
// derived from. Byte counts of 0 mean "none" (unlimited or unknown).
type Limits struct {
	// Bytes is the guard's limit; 0 means unlimited (SourceNone or
	// SourceDisabled).
	Bytes int64 `json:"bytes"`
	// Source says where Bytes comes from.
	Source Source `json:"source"`
	// CgroupVersion is 2, 1, or 0 when no memory cgroup was found.
	CgroupVersion int `json:"cgroup_version"`
	// CgroupBytes is the cgroup limit (v2 memory.max capped by
	// memory.high, or v1 memory.limit_in_bytes); 0 means none.
	CgroupBytes int64 `json:"cgroup_bytes"`
	// SystemBytes is MemTotal of /proc/meminfo; 0 means unknown.
	SystemBytes int64 `json:"system_bytes"`
	// GoBytes is the Go runtime memory limit the guard sits under; 0
	// means none. With GoSource GoLimitFromCgroup it is the limit
	// ApplyGoMemoryLimit sets.
	GoBytes int64 `json:"go_bytes"`
	// GoSource says where GoBytes comes from.
	GoSource GoLimitSource `json:"go_source"`
	// Warning holds the files that could not be read or parsed (a cgroup
	// file with unexpected content, a malformed /proc/meminfo). Their
	// values were ignored; New logs it.
	Warning error `json:"-"`
}

// maxFileBytes bounds the read of /proc/meminfo.
const maxFileBytes = 64 << 10

// goMemLimitEnv is the environment variable the Go runtime reads its
// memory limit from.
const goMemLimitEnv = "GOMEMLIMIT"

// Resolve validates cfg and works out the guard's limit on the machine d
// describes (d.Root for the cgroup and /proc files, d.Getenv for
// GOMEMLIMIT; the zero Detector reads the real machine):
//
//   - the Go limit: GOMEMLIMIT when the user set it (the runtime's syntax:
//     "900MiB", "1073741824", "off"); else a lower limit the process
//     already runs with; else the cgroup limit times
//     go_memory_limit_fraction (set by ApplyGoMemoryLimit); else none.
//   - the guard's limit: memory.limit_bytes as given when set, and then it
//     must not exceed the Go limit; else the base times
//     headroom_fraction, where the base is the cgroup limit (else the
//     system memory), lowered to the user's Go limit when that is lower.
//
// Errors are *ConfigError values (matching ErrInvalidConfig). Unreadable
// files are not errors: they are reported in Limits.Warning.
func Resolve(cfg Config, d platform.Detector) (Limits, error) {
	if err := cfg.Validate(); err != nil {
		return Limits{}, err
	}
	c := cfg.WithDefaults()
	if !c.IsEnabled() {
		return Limits{Source: SourceDisabled}, nil
	}
	var lim Limits
	var warns []error
	st, err := d.Memory()
	if err != nil {
		warns = append(warns, err)
	}
	lim.CgroupVersion, lim.CgroupBytes = st.CgroupVersion, st.Limit()
	sys, err := systemMemory(d.Root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		warns = append(warns, err)
	}
	lim.SystemBytes = sys
	lim.Warning = errors.Join(warns...)

	getenv := d.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	planned := int64(0)
	if lim.CgroupBytes > 0 {
		planned = fraction(lim.CgroupBytes, c.GoMemoryLimitFraction)
	}
	if v := getenv(goMemLimitEnv); v != "" {
		b, err := parseGoMemLimit(v)
		if err != nil {
			return Limits{}, &ConfigError{Key: goMemLimitEnv, Msg: fmt.Sprintf(
				"%s=%q is not a memory limit: %v; use a byte count with an optional unit (B, KiB, MiB, GiB, TiB) such as 900MiB, or off, or unset it to let keel derive the limit from the cgroup",
				goMemLimitEnv, v, err)}
		}
		lim.GoBytes, lim.GoSource = b, GoLimitFromEnv
	} else if cur := runtimeMemoryLimit(); cur > 0 && (planned == 0 || cur < planned) {
		lim.GoBytes, lim.GoSource = cur, GoLimitFromRuntime
	} else if planned > 0 {
		lim.GoBytes, lim.GoSource = planned, GoLimitFromCgroup
	}

	if c.LimitBytes > 0 {
		if lim.GoBytes > 0 && c.LimitBytes > lim.GoBytes {
			return Limits{}, &ConfigError{Key: Section + ".limit_bytes", Msg: fmt.Sprintf(
				"memory.limit_bytes (%d, %s) must not exceed the Go runtime memory limit (%d, %s, from %s): above it the garbage collector runs flat out before the guard refuses anything; lower memory.limit_bytes or leave it 0 to derive it",
				c.LimitBytes, humanBytes(c.LimitBytes), lim.GoBytes, humanBytes(lim.GoBytes), goSourceText(lim.GoSource))}
		}
		lim.Bytes, lim.Source = c.LimitBytes, SourceConfig
		return lim, nil
	}

	base, src := lim.CgroupBytes, SourceCgroupV2
	if st.CgroupVersion == 1 {
		src = SourceCgroupV1
	}
	if base == 0 {
		base, src = lim.SystemBytes, SourceSystem
	}
	// A Go limit the user chose (or the program set) below the base is the
	// real ceiling: derive the guard from it. The one keel derives from the
	// cgroup is above base×headroom by construction (Validate checks
	// headroom_fraction <= go_memory_limit_fraction).
	if lim.GoSource == GoLimitFromEnv || lim.GoSource == GoLimitFromRuntime {
		if lim.GoBytes > 0 && (base == 0 || lim.GoBytes < base) {
			base, src = lim.GoBytes, SourceGoMemoryLimit
		}
	}
	if base == 0 {
		lim.Source = SourceNone
		return lim, nil
	}
	lim.Bytes, lim.Source = fraction(base, c.HeadroomFraction), src
	return lim, nil
}

func goSourceText(s GoLimitSource) string {
	switch s {
	case GoLimitFromEnv:
		return "GOMEMLIMIT"
	case GoLimitFromRuntime:
		return "debug.SetMemoryLimit in this process"
	case GoLimitFromCgroup:
		return "the cgroup limit times memory.go_memory_limit_fraction"
	}
	return "none"
}

// fraction returns floor(b × f), at least 1 and at most math.MaxInt64.
func fraction(b int64, f float64) int64 {
	v := math.Floor(float64(b) * f)
	switch {
	case v >= math.MaxInt64: // float64(MaxInt64) rounds up to 2^63
		return math.MaxInt64
	case v < 1:
		return 1
	}
	return int64(v)
}

// runtimeMemoryLimit returns the Go runtime's memory limit in bytes, 0
// when none is set (math.MaxInt64). It reads runtime/metrics, which takes
// no lock.
func runtimeMemoryLimit() int64 {
	v := readRuntimeMetric("/gc/gomemlimit:bytes")
	if v <= 0 || v == math.MaxInt64 {
		return 0
	}
	return v
}

// readRuntimeMetric reads one uint64 runtime metric, clamped to int64; 0
// when the runtime does not know it.
func readRuntimeMetric(name string) int64 {
	s := []rtmetrics.Sample{{Name: name}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	u := s[0].Value.Uint64()
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

// errBadByteCount is the cause of a malformed GOMEMLIMIT.
var errBadByteCount = errors.New("want a non-negative integer with an optional B, KiB, MiB, GiB or TiB suffix")

// parseGoMemLimit parses GOMEMLIMIT exactly as the Go runtime does: "off"
// (no limit, returned as 0) or a non-negative integer with an optional
// unit suffix B, KiB, MiB, GiB or TiB that fits in an int64.
func parseGoMemLimit(s string) (int64, error) {
	if s == "off" {
		return 0, nil
	}
	if s == "" {
		return 0, errBadByteCount
	}
	num, mult := s, uint64(1)
	switch {
	case s[len(s)-1] >= '0' && s[len(s)-1] <= '9':
	case strings.HasSuffix(s, "iB") && len(s) >= 4:
		switch s[len(s)-3] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		default:
			return 0, errBadByteCount
		}
		num = s[:len(s)-3]
	case strings.HasSuffix(s, "B"):
		num = s[:len(s)-1]
		if num == "" || num[len(num)-1] < '0' || num[len(num)-1] > '9' {
			return 0, errBadByteCount
		}
	default:
		return 0, errBadByteCount
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadByteCount
	}
	if uint64(n) > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w: %s overflows int64", errBadByteCount, s)
	}
	return n * int64(mult), nil
}

// systemMemory returns MemTotal from <root>/proc/meminfo in bytes. A
// missing file gives an error matching fs.ErrNotExist (not Linux).
func systemMemory(root string) (int64, error) {
	if root == "" {
		root = "/"
	}
	p := filepath.Join(root, "proc", "meminfo")
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return 0, fmt.Errorf("memory: read %s: %w", p, err)
	}
	v, err := parseMemTotal(string(b))
	if err != nil {
		return 0, fmt.Errorf("memory: cannot parse %s: %w; the system memory is ignored, set memory.limit_bytes", p, err)
	}
	return v, nil
}

// errNoMemTotal: /proc/meminfo holds no MemTotal line.
var errNoMemTotal = errors.New("no MemTotal line")

// parseMemTotal finds "MemTotal: <n> kB" in the text of /proc/meminfo and
// returns n × 1024.
func parseMemTotal(s string) (int64, error) {
	for line := range strings.Lines(s) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf(`MemTotal line %q: want "MemTotal: <number> kB"`, shorten(line))
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("MemTotal line %q: %q is not a positive integer", shorten(line), f[0])
		}
		if n > math.MaxInt64>>10 {
			return 0, fmt.Errorf("MemTotal line %q: value out of range", shorten(line))
		}
		return int64(n) << 10, nil
	}
	return 0, errNoMemTotal
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// humanBytes formats b with a binary unit and one rounded decimal: "921.6 MiB",
// "1 GiB", "512 B".
func humanBytes(b int64) string {
	units := [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, exp := float64(b), 0
	for v >= 1024 && exp < len(units)-1 {
		v /= 1024
		exp++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[exp]
}
