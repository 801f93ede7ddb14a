package platform

import (
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max", "max\n", "-1", "0", "1073741824\n", "9223372036854771712", "18446744073709551615", "1e9", " 12 ", "", "\x00", "-0", "+5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseLimit(s)
		if v < 0 || v >= unlimitedThreshold {
			t.Fatalf("parseLimit(%q) = %d", s, v)
		}
		if err != nil && v != 0 {
			t.Fatalf("parseLimit(%q) = %d with error %v", s, v, err)
		}
		c, err := parseCounter(s)
		if c < 0 || (err != nil && c != 0) {
			t.Fatalf("parseCounter(%q) = %d, %v", s, c, err)
		}
	})
}

func FuzzParseCPU(f *testing.F) {
	for _, s := range []string{"max 100000", "max", "150000 100000", "50000", "0 100000", "1 0", "a b c", "", "18446744073709551615 1"} {
		f.Add(s, "100000")
	}
	f.Add("-1", "100000")
	f.Add("200000", "-100000")
	f.Fuzz(func(t *testing.T, a, b string) {
		v, err := parseCPUMax(a)
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || (err != nil && v != 0) {
			t.Fatalf("parseCPUMax(%q) = %v, %v", a, v, err)
		}
		v, _, err = parseCFS(a, b)
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || (err != nil && v != 0) {
			t.Fatalf("parseCFS(%q, %q) = %v, %v", a, b, v, err)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{
		"0::/\n",
		"0::/kubepods/pod1/ctr\n",
		"12:pids:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/x\n0::/\n",
		"0::/../../etc\n",
		"garbage\n::\n1:memory:relative\n",
		"1:name=systemd:/user.slice\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pc := parseProcCgroup(s)
		check := func(p string) {
			if p == "" {
				return
			}
			if !strings.HasPrefix(p, "/") || path.Clean(p) != p || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("parseProcCgroup(%q) gave path %q", s, p)
			}
		}
		check(pc.unified)
		for _, p := range pc.v1 {
			check(p)
		}
	})
}

// FuzzCgroupFiles writes arbitrary content into the files the readers use
// and checks that the readers neither panic nor return negative values.
func FuzzCgroupFiles(f *testing.F) {
	f.Add("0::/a\n", "max", "1024", "150000 100000", "7")
	f.Add("0::/../../x\n", "garbage", "", "max", "-3")
	f.Add("\x00", "9223372036854771712", "max\n", "1 2 3", "18446744073709551616")
	f.Fuzz(func(t *testing.T, proc, memMax, memHigh, cpuMax, current string) {
		root := t.TempDir()
		write := func(rel, content string) {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("sys/fs/cgroup/cgroup.controllers", "memory cpu")
		write("proc/self/cgroup", proc)
		write("sys/fs/cgroup/a/memory.max", memMax)
		write("sys/fs/cgroup/memory.max", memMax)
		write("sys/fs/cgroup/a/memory.high", memHigh)
		write("sys/fs/cgroup/a/cpu.max", cpuMax)
		write("sys/fs/cgroup/a/memory.current", current)
		write("sys/fs/cgroup/memory.current", current)
		d := Detector{Root: root, Getenv: envMap(nil)}
		st, _ := d.Memory()
		if st.Max < 0 || st.High < 0 || st.Usage < 0 || st.Limit() < 0 {
			t.Fatalf("negative memory stats %+v", st)
		}
		if cpu, _ := d.CPUQuota(); cpu < 0 || math.IsNaN(cpu) || math.IsInf(cpu, 0) {
			t.Fatalf("CPUQuota = %v", cpu)
		}
		_ = d.ContainerID()
	})
}
