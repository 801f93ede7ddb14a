package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// waitFor bounds every wait in these tests; it is a failure deadline, not
// a synchronisation sleep.
const waitFor = 20 * time.Second

func reloadCount(c *Config, result string) float64 {
	return testutil.ToFloat64(c.reloads.With(result))
}

func TestReloadSwapsAndNotifies(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "kafka:\n  port: 1\nother:\n  x: 1\nraw:\n  y: 1\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		changes  []Change
		typed    []kafkaConfig
		rawCalls []Change
		others   int
	)
	c.OnChange("kafka", func(ch Change) { mu.Lock(); changes = append(changes, ch); mu.Unlock() })
	Subscribe(c, "kafka", func(k kafkaConfig) { mu.Lock(); typed = append(typed, k); mu.Unlock() })
	c.OnChange("raw", func(ch Change) { mu.Lock(); rawCalls = append(rawCalls, ch); mu.Unlock() })
	stopOther := c.OnChange("other", func(Change) { mu.Lock(); others++; mu.Unlock() })
	var rawTyped []map[string]int
	Subscribe(c, "raw", func(m map[string]int) { mu.Lock(); rawTyped = append(rawTyped, m); mu.Unlock() })

	writeFile(t, p, "kafka:\n  port: 2\nother:\n  x: 1\nraw:\n  y: 2\n")
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Int("kafka.port"); n != 2 || c.Version() != 2 {
		t.Fatalf("port = %d, version = %d", n, c.Version())
	}
	mu.Lock()
	if len(changes) != 1 || changes[0].Version != 2 || changes[0].Value.(*kafkaConfig).Port != 2 {
		t.Errorf("OnChange got %+v", changes)
	}
	if len(typed) != 1 || typed[0].Port != 2 || typed[0].Timeout != 10*time.Second {
		t.Errorf("Subscribe got %+v (defaults must be kept)", typed)
	}
	if len(rawCalls) != 1 || rawCalls[0].Value != nil {
		t.Errorf("unregistered section listener got %+v", rawCalls)
	}
	if len(rawTyped) != 1 || rawTyped[0]["y"] != 2 {
		t.Errorf("Subscribe on an unregistered section got %v", rawTyped)
	}
	if others != 0 {
		t.Errorf("listener of an unchanged section called %d times", others)
	}
	mu.Unlock()
	if got := reloadCount(c, "success"); got != 1 {
		t.Errorf("reloads success = %v", got)
	}
	if got := c.Sections()[0].Effective.(map[string]any)["port"]; got != 2 {
		t.Errorf("registry effective port = %v", got)
	}

	// An unchanged reload notifies nobody; a stopped listener is not called.
	stopOther()
	writeFile(t, p, "kafka:\n  port: 2\nother:\n  x: 2\nraw:\n  y: 2\n")
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 1 || others != 0 {
		t.Errorf("changes = %d, others = %d after an unrelated reload", len(changes), others)
	}
}

func TestReloadInvalidKeepsOld(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "kafka:\n  port: 1\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	called := 0
	c.OnChange("kafka", func(Change) { called++ })
	AddValidator(c, "kafka", func(k kafkaConfig) error {
		if k.Port > 1000 {
			return errors.New("port above 1000")
		}
		return nil
	})

	bad := []struct{ name, content, want string }{
		{"type mismatch", "kafka:\n  port: abc\n", "kafka.port"},
		{"yaml syntax", "kafka:\n  port: 1\n   x: 2\n", "line 3"},
		{"validator", "kafka:\n  port: 5000\n", "port above 1000"},
	}
	for i, b := range bad {
		writeFile(t, p, b.content)
		err := c.Reload(context.Background())
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "version 1 stays live") {
			t.Fatalf("%s: err = %v", b.name, err)
		}
		if n, _ := c.Int("kafka.port"); n != 1 || c.Version() != 1 {
			t.Fatalf("%s: port = %d, version = %d: the old config must stay", b.name, n, c.Version())
		}
		if got := reloadCount(c, "failure"); got != float64(i+1) {
			t.Fatalf("%s: failures = %v", b.name, got)
		}
	}
	if called != 0 || reloadCount(c, "success") != 0 {
		t.Fatalf("listener called %d times after failed reloads", called)
	}
	if got := c.Sections()[0].Effective.(map[string]any)["port"]; got != 1 {
		t.Fatalf("registry effective port = %v after failed reloads", got)
	}
	assertContains(t, e.logs.String(), "reload failed", "keeping the current configuration")

	o := e.opts()
	o.Strict = true
	writeFile(t, p, "kafka:\n  port: 1\n")
	c = e.load(t, o)
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, "kafka:\n  port: 1\n  prot: 2\n")
	if err := c.Reload(context.Background()); !errors.As(err, new(*UnknownKeysError)) {
		t.Fatalf("strict reload with a typo: err = %v", err)
	}
}

// TestListenerReentrant proves listeners run outside every lock: they may
// decode sections, subscribe, dump and even reload.
func TestListenerReentrant(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "kafka:\n  port: 1\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	c.OnChange("kafka", func(ch Change) {
		var k2 kafkaConfig
		if err := c.Section("kafka", &k2); err != nil {
			done <- err
			return
		}
		c.OnChange("kafka", func(Change) {})
		if _, err := c.DumpJSON(); err != nil {
			done <- err
			return
		}
		done <- c.Reload(context.Background()) // nothing changed: no recursion
	})
	c.OnChange("kafka", func(Change) { panic("a broken listener") })
	writeFile(t, p, "kafka:\n  port: 2\n")
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("listener deadlocked")
	}
	assertContains(t, e.logs.String(), "change listener panicked")
}

// watch runs Watch in the background and returns a channel of reload
// results and a stop func that waits for Watch to return.
func watch(t *testing.T, c *Config, o WatchOptions) (<-chan ReloadResult, func()) {
	t.Helper()
	results := make(chan ReloadResult, 16)
	o.OnReload = func(r ReloadResult) { results <- r }
	started := make(chan struct{})
	c.watchStarted = started
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Watch(ctx, o) }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("Watch returned at once: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { stopWatch(t, cancel, errc) }) }
	t.Cleanup(stop)
	return results, stop
}

func stopWatch(t *testing.T, cancel context.CancelFunc, errc <-chan error) {
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Watch returned %v", err)
		}
	case <-time.After(waitFor):
		t.Error("Watch did not return after cancel")
	}
}

func nextResult(t *testing.T, results <-chan ReloadResult) ReloadResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(waitFor):
		t.Fatal("no reload")
		return ReloadResult{}
	}
}

// writeAtomic replaces a file the way careful writers do (temp file and
// rename), so a poll never sees it half written.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFileChange(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "kafka:\n  port: 1\n")
	c := e.load(t, e.opts())
	k := defaultKafka()
	if err := c.Section("kafka", &k); err != nil {
		t.Fatal(err)
	}
	got := make(chan kafkaConfig, 4)
	Subscribe(c, "kafka", func(k kafkaConfig) { got <- k })
	results, stop := watch(t, c, WatchOptions{PollInterval: 5 * time.Millisecond, Debounce: 5 * time.Millisecond, DisableSIGHUP: true})

	if err := c.Watch(context.Background(), WatchOptions{}); !errors.Is(err, ErrAlreadyWatching) {
		t.Fatalf("second Watch: %v", err)
	}

	writeAtomic(t, p, "kafka:\n  port: 22\n")
	r := nextResult(t, results)
	if r.Err != nil || r.Trigger != "file" || r.Version != 2 || len(r.Changed) != 1 {
		t.Fatalf("result = %+v", r)
	}
	if k := <-got; k.Port != 22 {
		t.Fatalf("subscriber got port %d", k.Port)
	}

	// A broken file is rejected and kept out; fixing it reloads again.
	writeAtomic(t, p, "kafka:\n  port: [not, an, int]\n")
	r = nextResult(t, results)
	if r.Err == nil || r.Version != 2 {
		t.Fatalf("broken file result = %+v", r)
	}
	if n, _ := c.Int("kafka.port"); n != 22 {
		t.Fatalf("port = %d after a failed reload", n)
	}
	writeAtomic(t, p, "kafka:\n  port: 333\n")
	r = nextResult(t, results)
	if r.Err != nil || r.Version != 3 {
		t.Fatalf("fixed file result = %+v", r)
	}

	// A file that appears where none was is seen too.
	writeAtomic(t, filepath.Join(e.work, "config", "settings.yaml"), "kafka:\n  port: 4444\n")
	r = nextResult(t, results)
	if n, _ := c.Int("kafka.port"); r.Err != nil || n != 4444 {
		t.Fatalf("new file: result %+v, port %d", r, n)
	}
	stop()
	if got := reloadCount(c, "failure"); got != 1 {
		t.Fatalf("failures = %v", got)
	}
}

// TestWatchConfigMapSymlinkSwap mounts a file the way Kubernetes mounts a
// ConfigMap: settings.yaml -> ..data/settings.yaml, ..data -> ..<ts>/. The
// update writes a new timestamped directory and atomically re-points
// ..data. The new file has the same size and modification time as the
// old one, so only the resolved target path tells them apart.
func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	e := newEnv(t)
	mount := filepath.Join(e.root, "configmap")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeVersion := func(dir, content string) {
		p := filepath.Join(mount, dir, "settings.yaml")
		writeFile(t, p, content)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..2026_01_01", "kafka:\n  port: 1111\n")
	if err := os.Symlink("..2026_01_01", filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "settings.yaml"), filepath.Join(mount, "settings.yaml")); err != nil {
		t.Fatal(err)
	}
	o := e.opts()
	o.ExtraDirs = []string{mount}
	c := e.load(t, o)
	if n, _ := c.Int("kafka.port"); n != 1111 {
		t.Fatalf("port = %d", n)
	}
	results, _ := watch(t, c, WatchOptions{PollInterval: 5 * time.Millisecond, Debounce: 5 * time.Millisecond, DisableSIGHUP: true})

	writeVersion("..2026_01_02", "kafka:\n  port: 2222\n")
	tmp := filepath.Join(mount, "..data_tmp")
	if err := os.Symlink("..2026_01_02", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}
	r := nextResult(t, results)
	if n, _ := c.Int("kafka.port"); r.Err != nil || n != 2222 {
		t.Fatalf("after the swap: result %+v, port %d", r, n)
	}
}

func TestWatchPeriod(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "a: 1\n")
	c := e.load(t, e.opts())
	results, _ := watch(t, c, WatchOptions{PollInterval: -1, Period: 5 * time.Millisecond, DisableSIGHUP: true})
	r := nextResult(t, results)
	if r.Trigger != "period" || r.Err != nil || r.Version != 2 {
		t.Fatalf("result %+v", r)
	}
}

// TestWatchDebounce proves a burst of triggers inside the debounce window
// gives one reload: three file edits are made while the debounce (long
// compared with the poll) is pending, and the first reload already sees
// the last edit.
// TestWatchDebounce: a burst of edits within the debounce window gives
// exactly one reload, one result and one change notification, reading the
// last content.
func TestWatchDebounce(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "a: 0\n")
	c := e.load(t, e.opts())
	var notified atomic.Int32
	c.OnChange("a", func(Change) { notified.Add(1) })
	const debounce = 500 * time.Millisecond
	results, stop := watch(t, c, WatchOptions{PollInterval: time.Millisecond, Debounce: debounce, DisableSIGHUP: true})
	// The edits are spread over many polls, so that each one is seen and
	// must be folded into the reload the first one scheduled.
	for i := 1; i <= 3; i++ {
		if i > 1 {
			time.Sleep(20 * time.Millisecond)
		}
		writeAtomic(t, p, "a: "+strings.Repeat("1", i)+"\n")
	}
	r := nextResult(t, results)
	if n, _ := c.Int("a"); r.Err != nil || r.Version != 2 || n != 111 {
		t.Fatalf("result %+v, a = %d: the burst must give one reload with the last content", r, n)
	}
	// A second reload for the same burst would come within a debounce
	// period of polls; give it twice that before stopping.
	select {
	case r := <-results:
		t.Fatalf("a second reload for one burst: %+v", r)
	case <-time.After(2 * debounce):
	}
	stop()
	if n := len(results); n != 0 {
		t.Fatalf("%d more results after the burst's reload, want none", n)
	}
	if got := reloadCount(c, "success"); got != 1 {
		t.Fatalf("successful reloads = %v, want 1", got)
	}
	if got := reloadCount(c, "failure"); got != 0 {
		t.Fatalf("failed reloads = %v, want 0", got)
	}
	if got := notified.Load(); got != 1 {
		t.Fatalf("change listener called %d times, want 1", got)
	}
	if c.Version() != 2 {
		t.Fatalf("version = %d, want 2", c.Version())
	}
}
