package platform

import (
	"errors"
	"math"
	"path"
	"strconv"
	"strings"
)

// unlimitedThreshold: cgroup v1 reports "no limit" as the page-rounded
// math.MaxInt64 (9223372036854771712). Any value at or above 2^62 bytes
// (4 EiB) is no real limit.
const unlimitedThreshold = 1 << 62

var (
	errNotNumber  = errors.New("not a non-negative integer")
	errFieldCount = errors.New(`want "quota period"`)
	errBadPeriod  = errors.New("period must be a positive integer")
	errBadQuota   = errors.New(`quota must be a positive integer or "max"`)
	errEmptyFile  = errors.New("empty")
	errOutOfRange = errors.New("value out of range")
)

// parseLimit parses a cgroup memory limit file (v2 memory.max or
// memory.high, v1 memory.limit_in_bytes). It returns 0 for no limit:
// "max", "-1", 0, or a value at or above 2^62.
func parseLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return 0, errEmptyFile
	case "max", "-1":
		return 0, nil
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errNotNumber
	}
	if u >= unlimitedThreshold {
		return 0, nil
	}
	return int64(u), nil
}

// parseCounter parses a byte counter (memory.current, memory.usage_in_bytes).
func parseCounter(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errEmptyFile
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, errNotNumber
	}
	if u > math.MaxInt64 {
		return 0, errOutOfRange
	}
	return int64(u), nil
}

// parseCPUMax parses cgroup v2 cpu.max: "quota period", "max period" or
// "max"; a missing period is the kernel default of 100000 µs. It returns
// the quota in CPUs, 0 for no quota.
func parseCPUMax(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return 0, errFieldCount
	}
	period := uint64(100000)
	if len(f) == 2 {
		p, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || p == 0 {
			return 0, errBadPeriod
		}
		period = p
	}
	if f[0] == "max" {
		return 0, nil
	}
	q, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || q == 0 {
		return 0, errBadQuota
	}
	return float64(q) / float64(period), nil
}

// parseCFS turns cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us into CPUs,
// 0 for no quota (quota -1). The returned flag says which file was wrong.
func parseCFS(quota, period string) (cpus float64, badPeriod bool, err error) {
	quota, period = strings.TrimSpace(quota), strings.TrimSpace(period)
	if quota == "-1" {
		return 0, false, nil
	}
	q, err := strconv.ParseInt(quota, 10, 64)
	if err != nil || q <= 0 {
		return 0, false, errBadQuota
	}
	p, err := strconv.ParseInt(period, 10, 64)
	if err != nil || p <= 0 {
		return 0, true, errBadPeriod
	}
	return float64(q) / float64(p), false, nil
}

// procCgroup is the parsed /proc/self/cgroup: the unified (v2) path and the
// path of each v1 controller.
type procCgroup struct {
	unified string            // "" when the process has no v2 entry
	v1      map[string]string // controller name -> path
}

// parseProcCgroup parses /proc/self/cgroup lines "id:controllers:path".
// Malformed lines are skipped. Paths are cleaned and rooted, so "..",
// however many, cannot climb above the cgroup mount.
func parseProcCgroup(s string) procCgroup {
	pc := procCgroup{v1: map[string]string{}}
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		id, rest, ok := strings.Cut(line, ":")
		if !ok || id == "" {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		p = path.Clean(p)
		if id == "0" && controllers == "" {
			pc.unified = p
			continue
		}
		for c := range strings.SplitSeq(controllers, ",") {
			if c != "" {
				pc.v1[c] = p
			}
		}
	}
	return pc
}
