package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CgroupVersion returns 2 when the unified hierarchy is mounted at
// /sys/fs/cgroup (cgroup.controllers exists there), 1 when v1 controllers
// are (including the hybrid layout, whose memory and cpu controllers are
// v1), and 0 when neither is found.
func (d Detector) CgroupVersion() int {
	mount := d.path(cgroupDir)
	if exists(filepath.Join(mount, "cgroup.controllers")) {
		return 2
	}
	for _, c := range []string{"memory", "cpu", "cpu,cpuacct"} {
		if exists(filepath.Join(mount, c)) {
			return 1
		}
	}
	return 0
}

func (d Detector) procCgroup() procCgroup {
	s, err := readFile(d.path(procSelfCgroup))
	if err != nil {
		return procCgroup{v1: map[string]string{}}
	}
	return parseProcCgroup(s)
}

// chain returns the cgroup directories from the process's own (mount+rel)
// up to the mount, leaf first. When the process's directory does not exist
// under the mount (a container without a cgroup namespace sees its host
// path in /proc/self/cgroup, but has its own cgroup mounted at the root),
// the chain is the mount alone.
func chain(mount, rel string) []string {
	leaf := filepath.Join(mount, filepath.FromSlash(rel))
	if st, err := os.Stat(leaf); err != nil || !st.IsDir() {
		return []string{mount}
	}
	dirs := make([]string, 0, 4)
	for dir := leaf; len(dirs) < 64; dir = filepath.Dir(dir) {
		dirs = append(dirs, dir)
		if dir == mount || len(dir) <= len(mount) {
			break
		}
	}
	return dirs
}

// minLimit returns the smaller of two limits where 0 means unlimited.
func minLimit(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case b < a:
		return b
	}
	return a
}

func minCPU(a, b float64) float64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case b < a:
		return b
	}
	return a
}

// readLimit reads one limit file; a missing file is "no limit".
func readLimit(path string) (int64, error) {
	s, err := readFile(path)
	if err != nil {
		if notExist(err) {
			return 0, nil
		}
		return 0, err
	}
	v, err := parseLimit(s)
	if err != nil {
		return 0, newParseError(path, s, err)
	}
	return v, nil
}

// readCounter reads one counter file; ok is false when it does not exist.
func readCounter(path string) (v int64, ok bool, err error) {
	s, err := readFile(path)
	if err != nil {
		if notExist(err) {
			return 0, false, nil
		}
		return 0, false, err
	}
	v, err = parseCounter(s)
	if err != nil {
		return 0, false, newParseError(path, s, err)
	}
	return v, true, nil
}

// MemoryStats is the memory state of the process's cgroup. Limits of 0
// mean unlimited.
type MemoryStats struct {
	// CgroupVersion is the hierarchy the values come from (1 or 2), or 0
	// when no memory cgroup was found.
	CgroupVersion int `json:"cgroup_version"`
	// Max is the hard limit: the smallest v2 memory.max or v1
	// memory.limit_in_bytes on the path to the root.
	Max int64 `json:"max_bytes"`
	// High is the smallest v2 memory.high on the path to the root, where
	// the kernel starts to throttle and reclaim. Always 0 on v1.
	High int64 `json:"high_bytes"`
	// Usage is memory.current (v2) or memory.usage_in_bytes (v1) of the
	// process's cgroup; valid only when HasUsage is true.
	Usage int64 `json:"usage_bytes"`
	// HasUsage reports whether Usage was read.
	HasUsage bool `json:"has_usage"`
}

// Limit returns the effective limit: Max capped by High, 0 for unlimited.
func (m MemoryStats) Limit() int64 { return minLimit(m.Max, m.High) }

// Ratio returns Usage / Limit, or 0 when there is no limit or no usage.
func (m MemoryStats) Ratio() float64 {
	l := m.Limit()
	if l == 0 || !m.HasUsage {
		return 0
	}
	return float64(m.Usage) / float64(l)
}

// Memory reads the memory limits and usage of the process's cgroup. Files
// that cannot be parsed leave their value at zero (unlimited, or no usage)
// and are reported in the error, a join of *ParseError.
func (d Detector) Memory() (MemoryStats, error) {
	switch d.CgroupVersion() {
	case 2:
		return d.memoryV2()
	case 1:
		return d.memoryV1()
	}
	return MemoryStats{}, nil
}

func (d Detector) memoryV2() (MemoryStats, error) {
	st := MemoryStats{CgroupVersion: 2}
	var errs []error
	dirs := chain(d.path(cgroupDir), d.procCgroup().unified)
	for _, dir := range dirs {
		mx, err := readLimit(filepath.Join(dir, "memory.max"))
		if err != nil {
			errs = append(errs, err)
		}
		hi, err := readLimit(filepath.Join(dir, "memory.high"))
		if err != nil {
			errs = append(errs, err)
		}
		st.Max, st.High = minLimit(st.Max, mx), minLimit(st.High, hi)
	}
	u, ok, err := readCounter(filepath.Join(dirs[0], "memory.current"))
	if err != nil {
		errs = append(errs, err)
	}
	st.Usage, st.HasUsage = u, ok
	return st, errors.Join(errs...)
}

func (d Detector) memoryV1() (MemoryStats, error) {
	mount := d.path(cgroupDir + "/memory")
	if !exists(mount) {
		return MemoryStats{}, nil
	}
	st := MemoryStats{CgroupVersion: 1}
	var errs []error
	rel := d.procCgroup().v1["memory"]
	dirs := chain(mount, rel)
	for _, dir := range dirs {
		mx, err := readLimit(filepath.Join(dir, "memory.limit_in_bytes"))
		if err != nil {
			errs = append(errs, err)
		}
		st.Max = minLimit(st.Max, mx)
	}
	u, ok, err := readCounter(filepath.Join(dirs[0], "memory.usage_in_bytes"))
	if err != nil {
		errs = append(errs, err)
	}
	st.Usage, st.HasUsage = u, ok
	return st, errors.Join(errs...)
}

// MemoryLimit returns the effective memory limit of the process's cgroup
// in bytes (see MemoryStats.Limit), 0 for unlimited. The error reports
// files that could not be parsed; their limits are ignored.
func (d Detector) MemoryLimit() (int64, error) {
	st, err := d.Memory()
	return st.Limit(), err
}

// MemoryUsage returns the memory charged to the process's cgroup in bytes.
// It returns ErrUnavailable when no memory cgroup accounts for the process
// (a host process in the root cgroup), or a *ParseError.
func (d Detector) MemoryUsage() (int64, error) {
	st, err := d.Memory()
	if st.HasUsage {
		return st.Usage, nil
	}
	if err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%w: no memory cgroup usage file for this process under %s", ErrUnavailable, d.path(cgroupDir))
}

// CPUQuota returns the CPU quota of the process's cgroup as a number of
// CPUs (1.5 = one and a half), the smallest on the path to the root; 0
// means no quota. Files that cannot be parsed are ignored and reported in
// the error.
func (d Detector) CPUQuota() (float64, error) {
	switch d.CgroupVersion() {
	case 2:
		return d.cpuV2()
	case 1:
		return d.cpuV1()
	}
	return 0, nil
}

func (d Detector) cpuV2() (float64, error) {
	var cpus float64
	var errs []error
	for _, dir := range chain(d.path(cgroupDir), d.procCgroup().unified) {
		p := filepath.Join(dir, "cpu.max")
		s, err := readFile(p)
		if err != nil {
			if !notExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		v, err := parseCPUMax(s)
		if err != nil {
			errs = append(errs, newParseError(p, s, err))
			continue
		}
		cpus = minCPU(cpus, v)
	}
	return cpus, errors.Join(errs...)
}

func (d Detector) cpuV1() (float64, error) {
	var mount string
	for _, c := range []string{"cpu", "cpu,cpuacct"} {
		if m := d.path(cgroupDir + "/" + c); exists(filepath.Join(m, "cpu.cfs_quota_us")) {
			mount = m
			break
		}
	}
	if mount == "" {
		return 0, nil
	}
	var cpus float64
	var errs []error
	for _, dir := range chain(mount, d.procCgroup().v1["cpu"]) {
		qp, pp := filepath.Join(dir, "cpu.cfs_quota_us"), filepath.Join(dir, "cpu.cfs_period_us")
		q, err := readFile(qp)
		if err != nil {
			if !notExist(err) {
				errs = append(errs, err)
			}
			continue
		}
		p, err := readFile(pp)
		if err != nil && !notExist(err) {
			errs = append(errs, err)
			continue
		}
		v, badPeriod, err := parseCFS(q, p)
		if err != nil {
			if badPeriod {
				errs = append(errs, newParseError(pp, p, err))
			} else {
				errs = append(errs, newParseError(qp, q, err))
			}
			continue
		}
		cpus = minCPU(cpus, v)
	}
	return cpus, errors.Join(errs...)
}
