package platform

import (
	"errors"
	"strings"
	"testing"
)

func v2(files map[string]string) map[string]string {
	out := map[string]string{"sys/fs/cgroup/cgroup.controllers": "cpu memory io\n"}
	for k, v := range files {
		out[k] = v
	}
	return out
}

func TestCgroupVersion(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int
	}{
		{"none", nil, 0},
		{"v2", v2(nil), 2},
		{"v1", map[string]string{"sys/fs/cgroup/memory/": ""}, 1},
		{"v1 cpu only", map[string]string{"sys/fs/cgroup/cpu,cpuacct/": ""}, 1},
		{"hybrid counts as v1", map[string]string{"sys/fs/cgroup/memory/": "", "sys/fs/cgroup/unified/cgroup.controllers": ""}, 1},
	}
	for _, tt := range tests {
		if got := detector(t, tt.files, nil).CgroupVersion(); got != tt.want {
			t.Errorf("%s: CgroupVersion() = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestMemoryV2(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantMax   int64
		wantHigh  int64
		wantLimit int64
		wantUsage int64
		malformed bool
	}{
		{"limit and usage", v2(map[string]string{"sys/fs/cgroup/memory.max": "1073741824\n", "sys/fs/cgroup/memory.current": "104857600\n"}),
			1 << 30, 0, 1 << 30, 100 << 20, false},
		{"max means unlimited", v2(map[string]string{"sys/fs/cgroup/memory.max": "max\n", "sys/fs/cgroup/memory.high": "max\n", "sys/fs/cgroup/memory.current": "5"}),
			0, 0, 0, 5, false},
		{"high lower than max caps the limit", v2(map[string]string{"sys/fs/cgroup/memory.max": "1073741824", "sys/fs/cgroup/memory.high": "805306368", "sys/fs/cgroup/memory.current": "1"}),
			1 << 30, 768 << 20, 768 << 20, 1, false},
		{"high alone is the limit", v2(map[string]string{"sys/fs/cgroup/memory.max": "max", "sys/fs/cgroup/memory.high": "268435456", "sys/fs/cgroup/memory.current": "1"}),
			0, 256 << 20, 256 << 20, 1, false},
		{"high above max does not raise it", v2(map[string]string{"sys/fs/cgroup/memory.max": "1000", "sys/fs/cgroup/memory.high": "2000", "sys/fs/cgroup/memory.current": "1"}),
			1000, 2000, 1000, 1, false},
		{"nested cgroup: the parent's limit is smaller", v2(map[string]string{
			"proc/self/cgroup":                               "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":         "600",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max":     "900",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.high":    "max",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "42",
			"sys/fs/cgroup/other/memory.max":                 "1",
		}), 600, 0, 600, 42, false},
		{"host path without cgroup namespace falls back to the mount", v2(map[string]string{
			"proc/self/cgroup":             "0::/system.slice/docker-abc.scope\n",
			"sys/fs/cgroup/memory.max":     "4096",
			"sys/fs/cgroup/memory.current": "7",
		}), 4096, 0, 4096, 7, false},
		{"dot-dot in /proc/self/cgroup cannot escape the mount", v2(map[string]string{
			"proc/self/cgroup":             "0::/../../..\n",
			"sys/fs/cgroup/memory.max":     "4096",
			"sys/fs/cgroup/memory.current": "7",
			"sys/fs/memory.max":            "1",
		}), 4096, 0, 4096, 7, false},
		{"garbage max is ignored and reported, high still applies", v2(map[string]string{"sys/fs/cgroup/memory.max": "unlimited!!", "sys/fs/cgroup/memory.high": "2048", "sys/fs/cgroup/memory.current": "3"}),
			0, 2048, 2048, 3, true},
		{"empty file", v2(map[string]string{"sys/fs/cgroup/memory.max": "", "sys/fs/cgroup/memory.current": "3"}),
			0, 0, 0, 3, true},
		{"negative limit", v2(map[string]string{"sys/fs/cgroup/memory.max": "-5", "sys/fs/cgroup/memory.current": "3"}),
			0, 0, 0, 3, true},
		{"absurd limit is unlimited", v2(map[string]string{"sys/fs/cgroup/memory.max": "9223372036854775807", "sys/fs/cgroup/memory.current": "3"}),
			0, 0, 0, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detector(t, tt.files, nil)
			st, err := d.Memory()
			if tt.malformed != (err != nil) {
				t.Fatalf("err = %v, malformed = %v", err, tt.malformed)
			}
			if err != nil {
				var pe *ParseError
				if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) || !strings.HasSuffix(pe.Path, "memory.max") {
					t.Fatalf("error must be a *ParseError naming memory.max: %v", err)
				}
			}
			if st.CgroupVersion != 2 || st.Max != tt.wantMax || st.High != tt.wantHigh || st.Limit() != tt.wantLimit || !st.HasUsage || st.Usage != tt.wantUsage {
				t.Fatalf("Memory() = %+v (limit %d), want max %d high %d limit %d usage %d", st, st.Limit(), tt.wantMax, tt.wantHigh, tt.wantLimit, tt.wantUsage)
			}
			limit, _ := d.MemoryLimit()
			if limit != tt.wantLimit {
				t.Fatalf("MemoryLimit() = %d, want %d", limit, tt.wantLimit)
			}
			usage, err := d.MemoryUsage()
			if err != nil || usage != tt.wantUsage {
				t.Fatalf("MemoryUsage() = %d, %v", usage, err)
			}
		})
	}
}

func TestMemoryV1(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantLimit int64
		wantUsage int64
		malformed bool
	}{
		{"limit", map[string]string{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "2147483648\n",
			"sys/fs/cgroup/memory/memory.usage_in_bytes": "1048576\n",
		}, 2 << 30, 1 << 20, false},
		{"kernel's no-limit value", map[string]string{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
			"sys/fs/cgroup/memory/memory.usage_in_bytes": "10\n",
		}, 0, 10, false},
		{"nested path from /proc/self/cgroup, parent limited", map[string]string{
			"proc/self/cgroup":                                           "12:pids:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                 "9223372036854771712",
			"sys/fs/cgroup/memory/process_api/memory.limit_in_bytes":     "5000",
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712",
			"sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes": "99",
			"sys/fs/cgroup/memory/memory.usage_in_bytes":                 "123456789",
		}, 5000, 99, false},
		{"garbage", map[string]string{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "0x1000",
			"sys/fs/cgroup/memory/memory.usage_in_bytes": "10",
		}, 0, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detector(t, tt.files, nil)
			st, err := d.Memory()
			if tt.malformed != (err != nil) {
				t.Fatalf("err = %v, malformed = %v", err, tt.malformed)
			}
			if tt.malformed && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if st.CgroupVersion != 1 || st.Limit() != tt.wantLimit || st.High != 0 || st.Usage != tt.wantUsage || !st.HasUsage {
				t.Fatalf("Memory() = %+v, want limit %d usage %d", st, tt.wantLimit, tt.wantUsage)
			}
		})
	}
}

func TestMemoryUsageUnavailable(t *testing.T) {
	d := detector(t, nil, nil)
	if _, err := d.MemoryUsage(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no cgroup: err = %v, want ErrUnavailable", err)
	}
	// Root cgroup of a v2 host: no memory.current.
	d = detector(t, v2(map[string]string{"sys/fs/cgroup/memory.max": "max"}), nil)
	if _, err := d.MemoryUsage(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("v2 root: err = %v, want ErrUnavailable", err)
	}
	// Garbage usage is a parse error, not "unavailable".
	d = detector(t, v2(map[string]string{"sys/fs/cgroup/memory.current": "NaN"}), nil)
	if _, err := d.MemoryUsage(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage usage: err = %v, want ErrMalformed", err)
	}
	limit, err := d.MemoryLimit()
	if limit != 0 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("MemoryLimit with garbage usage = %d, %v", limit, err)
	}
}

func TestMemoryRatio(t *testing.T) {
	if r := (MemoryStats{Max: 200, Usage: 50, HasUsage: true}).Ratio(); r != 0.25 {
		t.Errorf("ratio = %v", r)
	}
	if r := (MemoryStats{Max: 200, High: 100, Usage: 50, HasUsage: true}).Ratio(); r != 0.5 {
		t.Errorf("ratio against high = %v", r)
	}
	if r := (MemoryStats{Usage: 50, HasUsage: true}).Ratio(); r != 0 {
		t.Errorf("ratio without limit = %v", r)
	}
	if r := (MemoryStats{Max: 100}).Ratio(); r != 0 {
		t.Errorf("ratio without usage = %v", r)
	}
}

func TestCPUQuota(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		want      float64
		malformed bool
	}{
		{"none", nil, 0, false},
		{"v2 quota", v2(map[string]string{"sys/fs/cgroup/cpu.max": "150000 100000\n"}), 1.5, false},
		{"v2 max", v2(map[string]string{"sys/fs/cgroup/cpu.max": "max 100000\n"}), 0, false},
		{"v2 bare max", v2(map[string]string{"sys/fs/cgroup/cpu.max": "max"}), 0, false},
		{"v2 default period", v2(map[string]string{"sys/fs/cgroup/cpu.max": "50000"}), 0.5, false},
		{"v2 nested min", v2(map[string]string{
			"proc/self/cgroup":          "0::/a/b\n",
			"sys/fs/cgroup/a/cpu.max":   "100000 100000",
			"sys/fs/cgroup/a/b/cpu.max": "max 100000",
			"sys/fs/cgroup/cpu.max":     "400000 100000",
		}), 1, false},
		{"v2 garbage", v2(map[string]string{"sys/fs/cgroup/cpu.max": "lots of cpu"}), 0, true},
		{"v2 zero period", v2(map[string]string{"sys/fs/cgroup/cpu.max": "100000 0"}), 0, true},
		{"v2 zero quota", v2(map[string]string{"sys/fs/cgroup/cpu.max": "0 100000"}), 0, true},
		{"v2 no file", v2(nil), 0, false},
		{"v1 unlimited", map[string]string{"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 0, false},
		{"v1 quota", map[string]string{"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 2, false},
		{"v1 cpu,cpuacct", map[string]string{"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "25000", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"}, 0.25, false},
		{"v1 nested", map[string]string{
			"proc/self/cgroup":                               "3:cpu,cpuacct:/kubepods/x\n",
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":             "-1",
			"sys/fs/cgroup/cpu/cpu.cfs_period_us":            "100000",
			"sys/fs/cgroup/cpu/kubepods/x/cpu.cfs_quota_us":  "300000",
			"sys/fs/cgroup/cpu/kubepods/x/cpu.cfs_period_us": "100000",
		}, 3, false},
		{"v1 bad period", map[string]string{"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "zero"}, 0, true},
		{"v1 missing period", map[string]string{"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000"}, 0, true},
		{"v1 garbage quota", map[string]string{"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "\x00\xff", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detector(t, tt.files, nil).CPUQuota()
			if tt.malformed != (err != nil) {
				t.Fatalf("err = %v, malformed = %v", err, tt.malformed)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			if got != tt.want {
				t.Fatalf("CPUQuota() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseErrorShortensContent(t *testing.T) {
	d := detector(t, v2(map[string]string{"sys/fs/cgroup/memory.max": strings.Repeat("9", maxFileBytes*2)}), nil)
	_, err := d.MemoryLimit()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v", err)
	}
	if len(pe.Content) > 67 || len(err.Error()) > 400 {
		t.Fatalf("content not shortened: %d bytes, message %d bytes", len(pe.Content), len(err.Error()))
	}
}
