package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineWatch is a log sink that signals when a line contains a wanted text.
type lineWatch struct {
	mu    sync.Mutex
	all   strings.Builder
	wants map[string]chan struct{}
}

func (w *lineWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	for s, ch := range w.wants {
		if strings.Contains(string(p), s) {
			close(ch)
			delete(w.wants, s)
		}
	}
	return len(p), nil
}

func (w *lineWatch) seen(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if strings.Contains(w.all.String(), s) {
		close(ch)
		return ch
	}
	w.wants[s] = ch
	return ch
}

func (w *lineWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

func TestQuickstartWorksAndReloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	file := filepath.Join(dir, "settings.yaml")
	write := func(greeting string) {
		t.Helper()
		doc := "work:\n  interval: 5ms\n  greeting: " + greeting + "\n  api_token: file-token-never-printed\n"
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first greeting")
	logs := &lineWatch{wants: map[string]chan struct{}{}}
	first, second := logs.seen("first greeting"), logs.seen("second greeting")

	app := newApp()
	handles := make(chan *keel.Runtime, 1)
	body := app.Run
	app.Run = func(ctx context.Context, rt *keel.Runtime) error {
		handles <- rt
		return body(ctx, rt)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- keel.Run(runCtx, app,
			keel.WithConfigOptions(func(c *config.Options) {
				c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = dir, true, true, true
			}),
			keel.WithConfigWatch(config.WatchOptions{PollInterval: -1, DisableSIGHUP: true}),
			keel.WithOverrides(map[string]any{"admin.addr": "127.0.0.1:0", "lifecycle.prestop_delay": "-1s"}),
			keel.WithLogOutput(logs))
	}()
	var rt *keel.Runtime
	select {
	case rt = <-handles:
	case <-ctx.Done():
		t.Fatal("the service did not start")
	}
	select {
	case <-first:
	case <-ctx.Done():
		t.Fatalf("no unit of work logged:\n%s", logs.String())
	}
	write("second greeting")
	if err := rt.Config().Reload(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-second:
	case <-ctx.Done():
		t.Fatalf("the reloaded greeting was not used:\n%s", logs.String())
	}
	// A reload with a bad interval is refused, naming the key.
	if err := os.WriteFile(file, []byte("work:\n  interval: -1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rt.Config().Reload(ctx); err == nil || !strings.Contains(err.Error(), "work.interval") {
		t.Fatalf("bad reload: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l := logs.String()
	for _, s := range []string{"file-token-never-printed", "demo-token-never-printed"} {
		if strings.Contains(l, s) {
			t.Fatal("a secret reached the logs")
		}
	}
	if !strings.Contains(l, `"api_token":"[REDACTED]"`) {
		t.Fatalf("the token field is not logged redacted:\n%s", l)
	}
	if !strings.Contains(l, "quickstart stopped") {
		t.Fatal("no stop line")
	}
}
