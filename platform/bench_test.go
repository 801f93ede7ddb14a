package platform

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func benchTree(b *testing.B) Detector {
	return detector(b, v2(map[string]string{
		"proc/self/cgroup":                               "0::/kubepods/pod1/ctr\n",
		"sys/fs/cgroup/kubepods/pod1/ctr/memory.max":     "1073741824\n",
		"sys/fs/cgroup/kubepods/pod1/ctr/memory.high":    "max\n",
		"sys/fs/cgroup/kubepods/pod1/ctr/memory.current": "104857600\n",
	}), nil)
}

// BenchmarkMemory reads limit and usage through the Detector (the resolved
// cgroup path, the walk to the root, both limit files at each level).
func BenchmarkMemory(b *testing.B) {
	d := benchTree(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Memory(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineReadFile is the floor: two os.ReadFile calls of known
// paths and strconv, with no path resolution or hierarchy walk.
func BenchmarkBaselineReadFile(b *testing.B) {
	d := benchTree(b)
	dir := filepath.Join(d.Root, "sys/fs/cgroup/kubepods/pod1/ctr")
	b.ReportAllocs()
	for b.Loop() {
		m, err := os.ReadFile(filepath.Join(dir, "memory.max"))
		if err != nil {
			b.Fatal(err)
		}
		c, err := os.ReadFile(filepath.Join(dir, "memory.current"))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = strconv.ParseInt(strings.TrimSpace(string(m)), 10, 64)
		_, _ = strconv.ParseInt(strings.TrimSpace(string(c)), 10, 64)
	}
}
