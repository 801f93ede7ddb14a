package admin

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

// TestReadinessFailsDuringPreStopDelay is the shutdown-ordering regression
// test, through a real listener: after SIGTERM, /readyz answers 503 while
// the root context is still alive (the pre-stop delay), liveness stays 200
// throughout, and the root context is cancelled only once the delay is
// over. The admin server, registered first, is shut down last.
func TestReadinessFailsDuringPreStopDelay(t *testing.T) {
	reg := health.New(health.Config{Logger: slog.New(slog.DiscardHandler)})
	met := metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
	sigs := make(chan os.Signal)
	asked := make(chan time.Duration, 1)
	fire := make(chan time.Time)
	m, err := lifecycle.New(lifecycle.Config{
		Signals:  sigs,
		After:    func(d time.Duration) <-chan time.Time { asked <- d; return fire },
		Platform: platform.Detector{Root: t.TempDir(), Getenv: func(k string) string { return map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1"}[k] }},
		Metrics:  met,
		Logger:   slog.New(slog.DiscardHandler),
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Addr: "127.0.0.1:0"}, Deps{Health: reg, Metrics: met, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, health: reg, metrics: met, base: "http://" + srv.Addr(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	defer e.client.CloseIdleConnections()

	_ = m.OnShutdown("admin", srv.Shutdown) // first registered, last to run
	hookSawReady := make(chan int, 1)
	_ = m.OnShutdown("consumer", func(ctx context.Context) error {
		// Hooks run after the cancel; the admin server still answers.
		hookSawReady <- e.get(t, "/readyz").code
		return nil
	})

	reg.MarkStarted()
	m.Start(context.Background())
	if r := e.get(t, "/readyz"); r.code != http.StatusOK {
		t.Fatalf("ready before the signal: %d %s", r.code, r.body)
	}

	sigs <- syscall.SIGTERM
	<-m.Stopping()
	if d := <-asked; d != lifecycle.DefaultKubernetesPreStopDelay {
		t.Fatalf("pre-stop delay = %v", d)
	}
	// Inside the pre-stop delay: not ready, still live, context alive.
	r := e.get(t, "/readyz")
	if r.code != http.StatusServiceUnavailable || jsonBody(t, r)["reason"] != "draining" {
		t.Fatalf("ready during the pre-stop delay: %d %s", r.code, r.body)
	}
	if m.Context().Err() != nil {
		t.Fatal("root context cancelled during the pre-stop delay")
	}
	if r := e.get(t, "/healthz"); r.code != http.StatusOK {
		t.Fatalf("liveness during the pre-stop delay: %d", r.code)
	}
	if r := e.get(t, "/startupz"); r.code != http.StatusOK {
		t.Fatalf("startup during the pre-stop delay: %d", r.code)
	}

	fire <- time.Now() // the delay is over
	<-m.Context().Done()
	if code := <-hookSawReady; code != http.StatusServiceUnavailable {
		t.Fatalf("ready during the hooks: %d", code)
	}
	if err := m.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if _, err := e.client.Get(e.base + "/healthz"); err == nil {
		t.Fatal("admin server still serving after the shutdown hooks ran")
	}
	if v := value(t, met, "keel_lifecycle_evictions_total"); v != 1 {
		t.Fatalf("evictions_total = %v", v)
	}
}
