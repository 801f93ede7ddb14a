package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The demo binary, built once per package run by demoBinary and removed by
// removeBinary at the end of TestMain.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// demoBinary builds the demo with the go command that runs the tests (go
// test puts its GOROOT/bin first on PATH) and returns its path.
func demoBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			binErr = errors.Join(errors.New("no go command on PATH to build the demo binary"), err)
			return
		}
		binDir, binErr = os.MkdirTemp("", "keel-demo-bin-*")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "keel-demo")
		build := exec.Command(goCmd, "build", "-o", binPath, ".")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = errors.Join(errors.New("go build of the demo failed:\n"+string(out)), err)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// removeBinary removes what demoBinary built.
func removeBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// processDemo is the demo binary running as a subprocess.
type processDemo struct {
	cmd      *exec.Cmd
	out, log *syncBuffer
	done     chan struct{} // closed when the process exited
	addr     string        // the admin server's bound address
	dataDir  string
}

var adminLineRE = regexp.MustCompile(`admin server listening on (\S+)`)

// startProcess runs the demo binary on a new data directory, with
// lifecycle.prestop_delay set to preStop through a --config file, the
// extra environment variables (KEY=value) and the extra flags, and waits
// until it printed its admin address. Unless env or extra says otherwise
// (METRICS_ADDR, --metrics-addr), the admin server is on a free loopback
// port. The process is killed at the end of the test if it is still
// running.
func startProcess(t *testing.T, preStop time.Duration, env []string, extra ...string) *processDemo {
	t.Helper()
	bin := demoBinary(t)
	cfg := filepath.Join(t.TempDir(), "keel-demo.yaml")
	if err := os.WriteFile(cfg, []byte("lifecycle:\n  prestop_delay: "+preStop.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &processDemo{out: &syncBuffer{}, log: &syncBuffer{}, done: make(chan struct{}), dataDir: t.TempDir()}
	args := []string{"--data-dir", d.dataDir, "--rate", "1000", "--progress", "200ms", "--log-level", "warn", "--config", cfg}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "METRICS_ADDR=") }) {
		args = append(args, "--metrics-addr", "127.0.0.1:0")
	}
	d.cmd = exec.Command(bin, append(args, extra...)...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start the demo binary: %v", err)
	}
	go func() {
		_ = d.cmd.Wait() // the exit status is read from ProcessState
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})

	waitFor(t, "the admin address on stdout", func() bool {
		select {
		case <-d.done:
			t.Fatalf("the demo exited with %d before it started\nstdout:\n%s\nstderr:\n%s", d.cmd.ProcessState.ExitCode(), d.out, d.log)
		default:
		}
		m := adminLineRE.FindStringSubmatch(d.out.String())
		if m == nil {
			return false
		}
		d.addr = m[1]
		return true
	})
	return d
}

// waitExit waits a bounded time for the process to exit and returns its
// exit code; past the bound it kills the process and fails.
func (d *processDemo) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("the demo did not exit within 30s of its stop; killed\nstdout:\n%s\nstderr:\n%s", d.out, d.log)
		return -1
	}
}

func TestDemoBinaryServesAndDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	// The pre-stop delay holds readiness at 503 while the admin server
	// still answers, long enough for the test to see it.
	d := startProcess(t, 2*time.Second, nil)
	checkServing(t, d.addr, d.dataDir)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	waitDraining(t, d.addr)

	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, d.out, d.log)
	}
	checkSummary(t, d.out.String(), d.dataDir)
}

func TestDemoBinaryStopsAfterDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	// The admin address comes from the environment fallback of
	// --metrics-addr.
	d := startProcess(t, 100*time.Millisecond, []string{"METRICS_ADDR=127.0.0.1:0"}, "--duration", "3s")
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, d.out, d.log)
	}
	out := d.out.String()
	if !strings.Contains(out, "--duration 3s elapsed") {
		t.Errorf("no line saying --duration elapsed:\n%s", out)
	}
	checkSummary(t, out, d.dataDir)
}

// TestDemoBinaryStandardCommands: the built binary prints its build
// information and checks its configuration like every keel service.
func TestDemoBinaryStandardCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the demo binary")
	}
	bin := demoBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	for _, want := range []string{"keel-demo ", "module:         github.com/keel-go/keel\n", "keel version:", "go:             go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}

	check := exec.Command(bin, "config-check", "--brokers", "kafka-1:9092", "--data-dir", t.TempDir())
	var stderr syncBuffer
	check.Stderr = &stderr
	out, err = check.Output()
	if err != nil {
		t.Fatalf("config-check: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "configuration is valid") || !strings.Contains(string(out), `"kafka-1:9092"`) {
		t.Fatalf("config-check did not print the effective configuration:\nstdout:\n%s\nstderr:\n%s", out, stderr.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("input:\n  kafka:\n    lag_interval: soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check = exec.Command(bin, "config-check", "-c", bad)
	msg, err := check.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(msg), "lag_interval") {
		t.Fatalf("config-check of a bad file: %v, want exit 1 naming lag_interval:\n%s", err, msg)
	}
}
