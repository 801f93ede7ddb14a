package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// testEnv holds a test's isolated directories.
type testEnv struct {
	root, work, sys, user, home string
	logs                        *syncBuffer
	reg                         *metrics.Registry
}

// newEnv isolates a test from the machine: temp directories for every
// search location, a cleared application environment, a private metrics
// registry and a captured log.
func newEnv(t testing.TB) *testEnv {
	t.Helper()
	root := t.TempDir()
	e := &testEnv{
		root: root,
		work: filepath.Join(root, "work"),
		sys:  filepath.Join(root, "sys"),
		user: filepath.Join(root, "user"),
		home: filepath.Join(root, "home"),
		logs: &syncBuffer{},
		reg:  metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
	}
	for _, d := range []string{e.work, e.home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"APP_ENV", "ENVIRONMENT", "ENV", "APP_NAME"} {
		t.Setenv(v, "")
	}
	return e
}

// opts returns Options confined to the test's directories.
func (e *testEnv) opts() Options {
	return Options{
		AppName:       "myapp",
		WorkDir:       e.work,
		SystemDir:     e.sys,
		UserConfigDir: e.user,
		HomeDir:       e.home,
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:       e.reg,
	}
}

func (e *testEnv) load(t testing.TB, o Options) *Config {
	t.Helper()
	c, err := Load(context.Background(), o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// unsetEnv makes name unset for the test and restores it afterwards.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func mustString(t *testing.T, c *Config, key string) string {
	t.Helper()
	s, err := c.String(key)
	if err != nil {
		t.Fatalf("String(%q): %v", key, err)
	}
	return s
}

func assertContains(t *testing.T, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%q does not contain %q", s, w)
		}
	}
}

// discardLogger drops every record.
var discardLogger = slog.New(slog.DiscardHandler)
