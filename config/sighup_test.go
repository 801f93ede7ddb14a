//go:build unix

package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWatchSIGHUP(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "a: 1\n")
	c := e.load(t, e.opts())
	results, _ := watch(t, c, WatchOptions{PollInterval: -1, Debounce: -1})
	writeFile(t, p, "a: 2\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r := nextResult(t, results)
	if n, _ := c.Int("a"); r.Trigger != "sighup" || n != 2 {
		t.Fatalf("result %+v, a = %d", r, n)
	}
}
