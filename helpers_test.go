package keel_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// A re-executed test binary running keel.Main: see
		// TestHelperMain. Main exits the process itself.
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// isolated returns options that keep a runtime away from the machine:
// no settings files from the working directory, /config or the user's
// config directory, no .env, no file polling or SIGHUP, the admin server
// on a free local port, logs to a buffer.
func isolated(t testing.TB, logs io.Writer, overrides map[string]any) []keel.Option {
	t.Helper()
	dir := t.TempDir()
	o := map[string]any{"admin.addr": "127.0.0.1:0"}
	for k, v := range overrides {
		o[k] = v
	}
	return []keel.Option{
		keel.WithConfigOptions(func(c *config.Options) {
			c.WorkDir = dir
			c.SkipSystemDir = true
			c.SkipUserConfigDir = true
			c.SkipDotEnv = true
		}),
		keel.WithConfigWatch(config.WatchOptions{PollInterval: -1, DisableSIGHUP: true}),
		keel.WithOverrides(o),
		keel.WithLogOutput(logs),
	}
}

// writeFile writes a config file into a temp dir and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// fetch fetches path from the admin server and returns the status and
// body; it may be called from any goroutine.
func fetch(addr, path string) (int, string, error) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// get is fetch for the test goroutine: an error fails the test.
func get(t testing.TB, addr, path string) (int, string) {
	t.Helper()
	code, body, err := fetch(addr, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}

// testCtx bounds a test so that a broken runtime fails instead of hanging.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wait receives from ch or fails the test when ctx ends first.
func wait[T any](t testing.TB, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func passThrough(_ context.Context, b transport.Batch) (transport.Batch, error) { return b, nil }

func contains(t testing.TB, s, sub, what string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s lacks %q:\n%s", what, sub, s)
	}
}

// queue returns the inmem queue under a receiver the factory built (under
// the governor's brake) or the queue a sender is; nil for anything else.
func queue(t any) *inmem.Transport {
	switch v := t.(type) {
	case transport.Receiver:
		q, _ := keel.As[*inmem.Transport](v)
		return q
	default:
		q, _ := t.(*inmem.Transport)
		return q
	}
}
