package lifecycle

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
)

// rig is a Manager wired for tests: injected signals, a fake pre-stop
// timer, fresh health and metrics registries, and a fake machine.
type rig struct {
	m       *Manager
	sigs    chan os.Signal
	health  *health.Registry
	metrics *metrics.Registry
	// preStop receives the delay the Manager asked for; fire releases it.
	preStop chan time.Duration
	fire    chan time.Time
}

func newRig(t *testing.T, cfg Config, env map[string]string) *rig {
	t.Helper()
	r := &rig{
		sigs:    make(chan os.Signal), // unbuffered: a send returns once the Manager took it
		health:  health.New(health.Config{Logger: slog.New(slog.DiscardHandler)}),
		metrics: metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true}),
		preStop: make(chan time.Duration, 1),
		fire:    make(chan time.Time, 1),
	}
	cfg.Signals = r.sigs
	cfg.Metrics = r.metrics
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Platform = platform.Detector{Root: t.TempDir(), Getenv: func(k string) string { return env[k] }}
	cfg.After = func(d time.Duration) <-chan time.Time {
		r.preStop <- d
		return r.fire
	}
	m, err := New(cfg, r.health)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	return r
}

// value returns the value of a counter or gauge (with the given label
// pairs) in reg, or -1 when the series does not exist.
func value(t *testing.T, reg *metrics.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}
