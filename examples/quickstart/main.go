// Command quickstart is the smallest keel service: it loads the config
// cascade, logs as masked JSON, serves the Kubernetes probes and Prometheus
// metrics on the admin server, reloads its config on change, and shuts down
// gracefully on SIGTERM or Ctrl-C. It runs with no config at all:
//
//	go run ./examples/quickstart
//	curl localhost:9090/readyz
//	curl localhost:9090/metrics
//
// Every setting can come from a settings.yaml, a QUICKSTART_* environment
// variable (QUICKSTART_ADMIN__ADDR=:9191, QUICKSTART_WORK__INTERVAL=500ms)
// or a flag (--admin.addr=:9191).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
	"github.com/spf13/pflag"
)

// WorkConfig is the example's own config section, "work".
type WorkConfig struct {
	// Interval between two units of work. Default 1s.
	Interval time.Duration `koanf:"interval"`
	// Greeting is logged with each unit of work.
	Greeting string `koanf:"greeting"`
	// APIToken shows that secrets never reach a log line.
	APIToken secret.String `koanf:"api_token"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	flags := pflag.NewFlagSet("quickstart", pflag.ContinueOnError)
	flags.StringP("config", "c", "", "explicit config file")
	flags.String("admin.addr", "", "admin listen address (default :9090)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		return err
	}

	log := logging.Setup(logging.Options{Service: "quickstart", Version: metrics.ReadBuildInfo().Version})
	reg := metrics.New(metrics.Config{Namespace: "quickstart"})
	metrics.SetDefault(reg)

	ctx := context.Background()
	cfg, err := config.Load(ctx, config.Options{
		AppName: "quickstart",
		Flags:   flags,
		Defaults: map[string]any{
			"work.interval":  "1s",
			"work.greeting":  "hello from keel",
			"work.api_token": "demo-token-never-printed",
		},
		Logger:  log,
		Metrics: reg,
	})
	if err != nil {
		return err
	}
	var adminCfg admin.Config
	if err := cfg.Section("admin", &adminCfg); err != nil {
		return err
	}
	var lifeCfg lifecycle.Config
	if err := cfg.Section("lifecycle", &lifeCfg); err != nil {
		return err
	}
	var work WorkConfig
	if err := cfg.Section("work", &work); err != nil {
		return err
	}
	var current atomic.Pointer[WorkConfig]
	current.Store(&work)
	config.Subscribe(cfg, "work", func(w WorkConfig) {
		current.Store(&w)
		log.Info("work config reloaded", "interval", w.Interval, "greeting", w.Greeting)
	})

	hr := health.New(health.Config{Logger: log})
	lifeCfg.Metrics, lifeCfg.Logger = reg, log
	lifeCfg.OnForce = func() { os.Exit(2) }
	life, err := lifecycle.New(lifeCfg, hr)
	if err != nil {
		return err
	}
	srv, err := admin.New(adminCfg, admin.Deps{Health: hr, Metrics: reg, ConfigJSON: cfg.DumpJSON, Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	// Hooks run in reverse order: the admin server, registered first, stops last.
	if err := life.OnShutdown("admin", srv.Shutdown); err != nil {
		return err
	}
	life.Start(ctx)
	root := life.Context()

	units := reg.Counter(metrics.Opts{Name: "work_units_total", Help: "Units of work done."})
	var lastWork, done atomic.Int64
	lastWork.Store(time.Now().UnixNano())
	if err := hr.Register("worker", func(context.Context) (health.Status, string) {
		if age := time.Since(time.Unix(0, lastWork.Load())); age > 10*current.Load().Interval {
			return health.Degraded, fmt.Sprintf("no work for %s", age.Round(time.Millisecond))
		}
		return health.Healthy, ""
	}); err != nil {
		return err
	}

	go func() {
		if err := cfg.Watch(root, config.WatchOptions{}); err != nil {
			log.Error("config watch stopped", "error", err)
		}
	}()

	log.Info("quickstart started", "admin_addr", srv.Addr(), "config_files", cfg.Files())
	hr.MarkStarted()

	timer := time.NewTimer(current.Load().Interval)
	defer timer.Stop()
	for {
		select {
		case <-root.Done():
			err := life.Wait()
			if errors.Is(err, lifecycle.ErrForced) {
				os.Exit(2)
			}
			log.Info("quickstart stopped", "units", done.Load(), "error", err)
			return err
		case <-timer.C:
			w := current.Load()
			units.Inc()
			lastWork.Store(time.Now().UnixNano())
			log.Info(w.Greeting, "units", done.Add(1), "api_token", w.APIToken)
			timer.Reset(w.Interval)
		}
	}
}
