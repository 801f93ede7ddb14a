// Command quickstart is the smallest keel service: keel.Main gives it the
// config cascade, masked JSON logs, the Kubernetes probes and Prometheus
// metrics on the admin server, hot config reload, and a graceful shutdown
// on SIGTERM or Ctrl-C. It runs with no config at all:
//
//	go run ./examples/quickstart
//	curl localhost:9090/readyz
//	curl localhost:9090/metrics
//	go run ./examples/quickstart config-check   # the effective config, redacted
//
// Every setting can come from a settings.yaml, a QUICKSTART_* environment
// variable (QUICKSTART_ADMIN__ADDR=:9191, QUICKSTART_WORK__INTERVAL=500ms)
// or a flag (--metrics-addr=:9191, --work.interval=500ms). Edit the work
// section of settings.yaml while it runs: the new interval and greeting
// apply at once.
package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// WorkConfig is the example's own config section, "work".
type WorkConfig struct {
	// Interval between two units of work. Default 1s.
	Interval time.Duration `koanf:"interval"`
	// Greeting is logged with each unit of work.
	Greeting string `koanf:"greeting"`
	// APIToken shows that secrets never reach a log line or a config dump.
	APIToken secret.String `koanf:"api_token"`
}

// Validate names the bad key.
func (w *WorkConfig) Validate() error {
	if w.Interval <= 0 {
		return fmt.Errorf("work.interval is %s: use a positive duration such as 1s", w.Interval)
	}
	return nil
}

func main() {
	keel.Main(newApp())
}

// newApp returns the service: its work section with defaults, and its body.
func newApp() keel.App {
	work := &WorkConfig{Interval: time.Second, Greeting: "hello from keel", APIToken: secret.New("demo-token-never-printed")}
	return keel.App{
		Name:     "quickstart",
		Sections: map[string]any{"work": work},
		Flags:    func(fs *pflag.FlagSet) { fs.Duration("work.interval", 0, "time between two units of work") },
		RegisterMetrics: func(reg *metrics.Registry) {
			reg.Counter(metrics.Opts{Name: "work_units_total", Help: "Units of work done."})
		},
		Run: func(ctx context.Context, rt *keel.Runtime) error { return serve(ctx, rt, work) },
	}
}

// serve does a unit of work every work.interval until the shutdown.
func serve(ctx context.Context, rt *keel.Runtime, work *WorkConfig) error {
	log := rt.Logger()
	var current atomic.Pointer[WorkConfig]
	current.Store(work)
	// A reload that breaks the section is refused and the old one stays.
	removeCheck := config.AddValidator(rt.Config(), "work", func(w WorkConfig) error { return w.Validate() })
	defer removeCheck()
	stop := config.Subscribe(rt.Config(), "work", func(w WorkConfig) {
		current.Store(&w)
		log.Info("work config reloaded", "interval", w.Interval, "greeting", w.Greeting)
	})
	defer stop()

	units := rt.Metrics().Counter(metrics.Opts{Name: "work_units_total", Help: "Units of work done."})
	var lastWork atomic.Int64
	lastWork.Store(time.Now().UnixNano())
	if err := rt.Health().Register("worker", func(context.Context) (health.Status, string) {
		if age := time.Since(time.Unix(0, lastWork.Load())); age > 10*current.Load().Interval {
			return health.Degraded, fmt.Sprintf("no work for %s", age.Round(time.Millisecond))
		}
		return health.Healthy, ""
	}); err != nil {
		return err
	}
	rt.MarkStarted()

	var done int64
	timer := time.NewTimer(current.Load().Interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("quickstart stopped", "units", done)
			return nil
		case <-timer.C:
			w := current.Load()
			units.Inc()
			done++
			lastWork.Store(time.Now().UnixNano())
			log.Info(w.Greeting, "units", done, "api_token", w.APIToken)
			timer.Reset(w.Interval)
		}
	}
}
