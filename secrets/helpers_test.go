package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// fakeClock moves only when Advance is called. Timers fire when the clock
// passes their deadline.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	timers    []*fakeTimer
	requested []time.Duration
	notify    chan struct{}
}

type fakeTimer struct {
	clk     *fakeClock
	c       chan time.Time
	at      time.Time
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), notify: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	c.mu.Lock()
	t := &fakeTimer{clk: c, c: make(chan time.Time, 1), at: c.now.Add(d)}
	c.timers = append(c.timers, t)
	c.requested = append(c.requested, d)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.at.After(c.now) {
			t.fired = true
			t.c <- c.now
		}
	}
}

// pending returns the timers neither fired nor stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// waitTimers blocks until n timers have been requested in total and
// returns their durations. It fails the test after a generous bound, which
// only a broken implementation reaches.
func (c *fakeClock) waitTimers(t testing.TB, n int) []time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.requested) >= n {
			out := append([]time.Duration(nil), c.requested...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %d timers", n)
		}
	}
}

// envMap returns a LookupEnv over a fixed map.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// harness is a manager with a captured log, a private metrics registry, a
// fake clock, and a list of values that must never show up anywhere.
type harness struct {
	t       *testing.T
	m       *Manager
	logs    *syncBuffer
	reg     *metrics.Registry
	clk     *fakeClock
	forbid  []string
	rnd     func() float64
	extra   []func() string // more text to scan (errors seen)
	closeMu sync.Mutex
}

type harnessOpt func(*Options)

func newHarness(t *testing.T, cfg Config, hopts ...harnessOpt) *harness {
	t.Helper()
	h, err := tryHarness(t, cfg, hopts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func tryHarness(t *testing.T, cfg Config, hopts ...harnessOpt) (*harness, error) {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, clk: newFakeClock()}
	h.reg = metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	opts := Options{
		Logger:    slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   h.reg,
		Env:       "development",
		LookupEnv: envMap(nil),
		clock:     h.clk,
	}
	for _, o := range hopts {
		o(&opts)
	}
	m, err := New(context.Background(), cfg, opts)
	if err != nil {
		h.scan("New error", err.Error())
		return nil, err
	}
	h.m = m
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		h.checkNoLeak()
	})
	return h, nil
}

func withEnv(env map[string]string) harnessOpt {
	return func(o *Options) { o.LookupEnv = envMap(env) }
}

func withAppEnv(env string) harnessOpt { return func(o *Options) { o.Env = env } }

func withRand(r func() float64) harnessOpt { return func(o *Options) { o.rand = r } }

// secret registers values that must never appear in logs, metrics, stats,
// health or errors.
func (h *harness) secret(values ...string) { h.forbid = append(h.forbid, values...) }

// checkErr scans an error for secret values and returns it.
func (h *harness) checkErr(err error) error {
	h.t.Helper()
	if err != nil {
		h.scan("error", err.Error())
		h.scan("error %+v", fmt.Sprintf("%+v", err))
	}
	return err
}

func (h *harness) scan(what, text string) {
	h.t.Helper()
	for _, s := range h.forbid {
		for _, form := range leakForms(s) {
			if strings.Contains(text, form) {
				h.t.Errorf("%s contains a secret value (%q): %s", what, form, text)
			}
		}
	}
}

// leakForms are the ways a value could show up: raw, base64, JSON-quoted.
func leakForms(s string) []string {
	q, _ := json.Marshal(s)
	return []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), strings.Trim(string(q), `"`)}
}

func (h *harness) metricsText() string {
	rec := httptest.NewRecorder()
	h.reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func (h *harness) checkNoLeak() {
	h.t.Helper()
	h.scan("log", h.logs.String())
	h.scan("metrics", h.metricsText())
	st, _ := json.Marshal(h.m.Stats())
	h.scan("stats", string(st))
	hv, _ := json.Marshal(h.m.Health())
	h.scan("health", string(hv))
	rec := httptest.NewRecorder()
	h.reg.ManifestHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/manifest", nil))
	h.scan("manifest", rec.Body.String())
}

// get reads a named source and fails the test on error.
func (h *harness) get(name string) Value {
	h.t.Helper()
	v, err := h.m.GetValue(context.Background(), name)
	if err != nil {
		h.checkErr(err)
		h.t.Fatalf("GetValue(%s): %v", name, err)
	}
	return v
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func fmtSprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func secretNew(s string) secret.String { return secret.New(s) }
