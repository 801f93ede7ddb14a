//go:build linux

package gated_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
)

const cgroupMount = "/sys/fs/cgroup"

// testCgroup is one leaf cgroup with a memory limit, removed at cleanup.
type testCgroup struct {
	version int    // 1 or 2
	dir     string // the leaf
}

// cgroupParent finds where this process may create a memory-limited child
// cgroup, or returns why it cannot.
func cgroupParent() (version int, parent string, skip string) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, "", "cannot read /proc/self/cgroup: " + err.Error()
	}
	own := func(match func(controllers string) bool) string {
		for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) == 3 && match(parts[1]) {
				return parts[2]
			}
		}
		return ""
	}
	under := func(mount, rel string) string {
		dir := filepath.Join(mount, filepath.FromSlash(rel))
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir
		}
		return mount // a cgroup namespace: our cgroup is the mount's root
	}
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers")); err == nil {
		dir := under(cgroupMount, own(func(c string) bool { return c == "" }))
		for _, cand := range []string{dir, cgroupMount} {
			ctrl, err := os.ReadFile(filepath.Join(cand, "cgroup.controllers"))
			if err != nil || !hasWord(string(ctrl), "memory") {
				continue
			}
			sub, _ := os.ReadFile(filepath.Join(cand, "cgroup.subtree_control"))
			if hasWord(string(sub), "memory") {
				return 2, cand, ""
			}
			// Enabling the controller for children fails with EBUSY when
			// the cgroup holds processes (the no-internal-processes rule),
			// except at the root.
			if err := os.WriteFile(filepath.Join(cand, "cgroup.subtree_control"), []byte("+memory"), 0); err == nil {
				return 2, cand, ""
			}
		}
		return 0, "", fmt.Sprintf("cgroup v2: the memory controller cannot be enabled for children of %s or %s "+
			"(not root, a read-only cgroupfs, or the no-internal-processes rule; run the test from a delegated cgroup)", dir, cgroupMount)
	}
	mount := filepath.Join(cgroupMount, "memory")
	if _, err := os.Stat(filepath.Join(mount, "memory.limit_in_bytes")); err == nil {
		rel := own(func(c string) bool { return hasWord(strings.ReplaceAll(c, ",", " "), "memory") })
		return 1, under(mount, rel), ""
	}
	return 0, "", "no cgroup memory controller is mounted under " + cgroupMount
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// newTestCgroup creates a leaf with the memory limit and no swap, or skips
// the test saying why it cannot.
func newTestCgroup(t *testing.T, name string, limit int64) *testCgroup {
	t.Helper()
	version, parent, skip := cgroupParent()
	if skip != "" {
		t.Skipf("real never-OOM test skipped: %s", skip)
	}
	dir := filepath.Join(parent, fmt.Sprintf("keel-gated-oom-%d-%s", os.Getpid(), name))
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM) {
			t.Skipf("real never-OOM test skipped: cannot create a cgroup under %s: %v (needs root and a writable cgroupfs)", parent, err)
		}
		t.Fatalf("create cgroup %s: %v", dir, err)
	}
	cg := &testCgroup{version: version, dir: dir}
	t.Cleanup(func() { cg.remove(t) })
	write := func(file, v string, optional bool) {
		err := os.WriteFile(filepath.Join(dir, file), []byte(v), 0)
		if err != nil && !(optional && errors.Is(err, fs.ErrNotExist)) {
			t.Fatalf("cgroup %s: write %s=%s: %v", dir, file, v, err)
		}
	}
	lim := strconv.FormatInt(limit, 10)
	if version == 2 {
		write("memory.max", lim, false)
		write("memory.swap.max", "0", true) // absent without swap accounting
	} else {
		write("memory.limit_in_bytes", lim, false)
		write("memory.memsw.limit_in_bytes", lim, true) // no swap either; absent without swap accounting
		_ = os.WriteFile(filepath.Join(dir, "memory.swappiness"), []byte("0"), 0)
		if oc, err := os.ReadFile(filepath.Join(dir, "memory.oom_control")); err == nil && strings.Contains(string(oc), "oom_kill_disable 1") {
			write("memory.oom_control", "0", false)
		}
	}
	return cg
}

// add moves the process into the cgroup.
func (c *testCgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

var oomKillLine = regexp.MustCompile(`(?m)^oom_kill (\d+)$`)

// oomKills returns the kernel's count of OOM kills in the cgroup.
func (c *testCgroup) oomKills(t *testing.T) int {
	t.Helper()
	file := "memory.events"
	if c.version == 1 {
		file = "memory.oom_control"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	m := oomKillLine.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no oom_kill counter (kernel older than 4.13?):\n%s", file, b)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// remove deletes the (empty) cgroup. The kernel may need a moment after
// the last process was reaped; a few short retries cover it.
func (c *testCgroup) remove(t *testing.T) {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Rmdir(c.dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("remove cgroup %s: %v", c.dir, err)
}

// peakUsage returns the cgroup's memory high-water mark in bytes, or -1
// when the kernel does not keep one.
func (c *testCgroup) peakUsage() int64 {
	file := "memory.peak" // cgroup v2, Linux 5.19+
	if c.version == 1 {
		file = "memory.max_usage_in_bytes"
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

type childResult struct {
	exitErr  error
	output   string
	oomKills int
	peak     int64
	elapsed  time.Duration
}

// runChild re-executes this test binary as TestHelperNeverOOMChild for
// leg, inside the cgroup: it starts the child, moves it into the cgroup,
// and only then lets it run (one line on its stdin).
func runChild(t *testing.T, cg *testCgroup, leg string, timeout time.Duration) childResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNeverOOMChild$", "-test.count=1", "-test.v", "-test.timeout=50s")
	env := []string{oomChildEnv + "=" + leg}
	for _, kv := range os.Environ() {
		// The child's Go memory limit is the guard's to set, from the cgroup.
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, oomChildEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	if err := cg.add(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("move child %d into %s: %v", cmd.Process.Pid, cg.dir, err)
	}
	start := time.Now()
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	_ = stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("leg %s did not finish within %s; output:\n%s", leg, timeout, tail(out.String(), 40))
	}
	return childResult{exitErr: werr, output: out.String(), oomKills: cg.oomKills(t), peak: cg.peakUsage(), elapsed: time.Since(start)}
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func resultLine(out string) map[string]string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, oomResultTag+" ") {
			continue
		}
		kv := map[string]string{"line": line}
		for _, f := range strings.Fields(strings.TrimPrefix(line, oomResultTag+" ")) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		return kv
	}
	return nil
}

// Never OOM, for real: the same binary, in a cgroup limited to 128 MiB
// without swap, streams 64 MiB of records from a backlog through a
// transform that holds ten times each record until its block is sunk.
// Both legs run the memory and self_regulation sections at their
// defaults; only the memory limit comes from the cgroup, as it would in
// production. (A -race binary gets a cgroup four times larger and memory
// fractions four times smaller, the same limits for the Go runtime and the
// guard, and room for the race detector's shadow memory; see oomLimits
// and oomMemoryConfig.) With self-regulation on the
// budget starts and stays under the block ceiling, 1/16 of the guard's
// limit (6.4 MiB here, against the throughput profile's 16 MiB start and
// 128 MiB ceiling): every record is delivered and committed, no block
// exceeds the ceiling, and the kernel kills nothing. With it off, the
// plain loop takes max_chunk_size records (16 MiB) as one block, its
// expansion exceeds the limit and the kernel OOM-kills the process: the
// control leg shows the limit is real.
func TestNeverOOMUnderCgroup(t *testing.T) {
	if os.Getenv(oomChildEnv) != "" {
		t.Skip("inside the helper process")
	}
	limit, _ := oomLimits()
	t.Run("on", func(t *testing.T) {
		cg := newTestCgroup(t, "on", limit)
		r := runChild(t, cg, "on", oomOnTimeout)
		res := resultLine(r.output)
		if r.exitErr != nil || res == nil {
			t.Fatalf("self-regulated leg failed (%v, %d OOM kills) after %s; output:\n%s", r.exitErr, r.oomKills, r.elapsed, tail(r.output, 40))
		}
		want := strconv.Itoa(oomRecords)
		if res["delivered"] != want || res["committed"] != want {
			t.Fatalf("delivered %s, committed %s, want %s", res["delivered"], res["committed"], want)
		}
		if r.oomKills != 0 {
			t.Fatalf("%d OOM kills in the self-regulated leg", r.oomKills)
		}
		num := func(key string) int64 {
			v, err := strconv.ParseInt(res[key], 10, 64)
			if err != nil {
				t.Fatalf("result %s=%q: %v; line: %s", key, res[key], err, res["line"])
			}
			return v
		}
		// The guard found the cgroup's limit, as a service would.
		headroom := oomMemoryConfig().WithDefaults().HeadroomFraction
		if got, wantGuard := num("guard_limit"), int64(float64(limit)*headroom); got != wantGuard {
			t.Fatalf("guard limit %d, want %d (the cgroup's %d × %v)", got, wantGuard, limit, headroom)
		}
		// The brake acted: the default budget was built under the block
		// ceiling, below the throughput profile's start and ceiling, and
		// no block the sink saw was larger.
		ceiling := num("block_ceiling")
		prof := governor.DefaultProfile.Budget()
		if wantC := governor.BlockCeiling(num("guard_limit"), governor.DefaultMaxBlockFraction); ceiling != wantC || ceiling >= prof.StartBytes {
			t.Fatalf("block ceiling %d, want %d, below the %s profile's start %d", ceiling, wantC, governor.DefaultProfile, prof.StartBytes)
		}
		if num("budget_start") != ceiling || num("budget_max") != ceiling || num("budget") > ceiling {
			t.Fatalf("budget start %d, max %d, final %d: want start and max at the ceiling %d", num("budget_start"), num("budget_max"), num("budget"), ceiling)
		}
		if n := num("max_block_records"); n < 1 || n > max(ceiling/oomRecordSize, 1) {
			t.Fatalf("largest block %d records, want 1..%d (the block ceiling)", n, ceiling/oomRecordSize)
		}
		t.Logf("on: survived in %s, cgroup peak %d bytes of %d: %s", r.elapsed.Round(time.Millisecond), r.peak, limit, res["line"])
	})
	t.Run("off", func(t *testing.T) {
		cg := newTestCgroup(t, "off", limit)
		r := runChild(t, cg, "off", oomOffTimeout)
		var ee *exec.ExitError
		if r.exitErr == nil {
			t.Fatalf("the control leg survived (%s): it proves nothing; output:\n%s", r.elapsed, tail(r.output, 20))
		}
		if !errors.As(r.exitErr, &ee) {
			t.Fatalf("control leg: %v", r.exitErr)
		}
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("control leg ended with %v, want SIGKILL by the OOM killer; output:\n%s", r.exitErr, tail(r.output, 40))
		}
		if r.oomKills < 1 {
			t.Fatalf("control leg was SIGKILLed but the cgroup counts no OOM kill")
		}
		t.Logf("off: OOM-killed after %s (oom_kill %d)", r.elapsed.Round(time.Millisecond), r.oomKills)
	})
}
