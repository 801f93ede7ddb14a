package platform_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/keel-go/keel/platform"
)

// A Detector over a fake root, as in tests; the zero Detector reads the
// real machine.
func ExampleDetector() {
	root, _ := os.MkdirTemp("", "platform-example")
	defer os.RemoveAll(root)
	cg := filepath.Join(root, "sys", "fs", "cgroup")
	_ = os.MkdirAll(cg, 0o755)
	_ = os.WriteFile(filepath.Join(cg, "cgroup.controllers"), []byte("cpu memory"), 0o644)
	_ = os.WriteFile(filepath.Join(cg, "memory.max"), []byte("1073741824\n"), 0o644)
	_ = os.WriteFile(filepath.Join(cg, "memory.high"), []byte("805306368\n"), 0o644)
	_ = os.WriteFile(filepath.Join(cg, "cpu.max"), []byte("150000 100000\n"), 0o644)

	env := map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "POD_NAME": "orders-0", "POD_NAMESPACE": "shop"}
	d := platform.Detector{Root: root, Getenv: func(k string) string { return env[k] }}

	info, err := d.Detect()
	if err != nil {
		fmt.Println("warning:", err)
	}
	fmt.Println(info.Environment, info.PodName, info.Namespace)
	fmt.Println("memory limit MiB:", info.MemoryLimitBytes>>20, "cpus:", info.CPUQuota)
	fmt.Println("data dir:", d.Paths("orders").Data)
	// Output:
	// kubernetes orders-0 shop
	// memory limit MiB: 768 cpus: 1.5
	// data dir: /app/data
}

func ExampleIsProduction() {
	fmt.Println(platform.IsProduction("Prod"), platform.IsProduction("staging"))
	// Output: true false
}
