// Command keel-demo runs a whole keel pipeline on a laptop with nothing
// installed but Go: an in-process Kafka cluster, a load generator writing JSON
// events (with a small share of malformed and poison events), and a keel
// service that consumes them with the governed engine, parses, enriches and
// routes them by their type, and writes them through a tiered sink to one
// NDJSON file per route (out/orders.ndjson, out/billing.ndjson,
// out/analytics.ndjson, out/misc.ndjson under --data-dir), with the events it
// cannot handle in the file dead-letter queue.
//
//	go run ./cmd/keel-demo                        # embedded Kafka, 2000 events/s
//	go run ./cmd/keel-demo --duration 30s         # stop on its own
//	go run ./cmd/keel-demo --fail-sink            # the file sink fails: records spill to the spool
//	go run ./cmd/keel-demo --brokers host:9092    # a real Kafka instead
//	go run ./cmd/keel-demo -c demo.yaml           # a config file over the demo's defaults
//	go run ./cmd/keel-demo --metrics-addr :9191   # the admin server elsewhere (env METRICS_ADDR)
//	go run ./cmd/keel-demo config-check           # the effective configuration, redacted
//
// It is a standard keel service: the commands run (the default), version,
// config-check, config-defaults and metrics-manifest, and the flags -c/--config,
// --log-level, --log-format, --metrics-addr, -v and -q with their environment
// fallbacks, come from keel.Command. Its own flags (--brokers, --duration,
// --rate, --fail-sink, --data-dir, --progress, --topic, --partitions) set up
// the run around the service and are not config keys.
//
// It prints a progress line every --progress and, on Ctrl-C, SIGTERM or
// when --duration elapsed, a summary that accounts for every event this run
// generated: delivered (lines in the route files), dead-lettered (entries in
// the DLQ files) or still spooled (records in the spool after it was
// closed). Every event carries the run's id, so events of earlier runs (in
// a reused topic or --data-dir) are processed but reported apart.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/logging"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, runHooks{}))
}

// runHooks lets a test drive the demo in-process.
type runHooks struct {
	// signals replaces SIGTERM and SIGINT when set.
	signals <-chan os.Signal
	// started is called with the admin server's address once the service
	// marked itself started.
	started func(adminAddr string)
	// preStop replaces the timer of the pre-stop delay when set.
	preStop func(time.Duration) <-chan time.Time
}

// options are the demo's own flags, beside the standard flags of every
// keel service.
type options struct {
	brokers    string
	duration   time.Duration
	rate       int
	failSink   bool
	dataDir    string
	progress   time.Duration
	topic      string
	partitions int
}

// flagSet returns the demo's own flags, bound to o.
func (o *options) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet(appName, pflag.ContinueOnError)
	fs.StringVar(&o.brokers, "brokers", "", "Kafka bootstrap brokers host:port[,host:port]; empty starts an in-process cluster")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long; 0 runs until Ctrl-C or SIGTERM")
	fs.IntVar(&o.rate, "rate", 2000, "events generated per second")
	fs.BoolVar(&o.failSink, "fail-sink", false, "make the file sink fail, so records spill to the spool")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory of the output, spool and DLQ files; empty means a new directory under the system's temporary directory")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "period of the progress line")
	fs.StringVar(&o.topic, "topic", "events", "Kafka topic of the generated events")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of the topic in the in-process cluster")
	return fs
}

// validate checks the flags and names the bad one.
func (o *options) validate() error {
	var errs []error
	if o.rate <= 0 {
		errs = append(errs, fmt.Errorf("--rate is %d: use a rate >= 1 event per second", o.rate))
	}
	if o.duration < 0 {
		errs = append(errs, fmt.Errorf("--duration is %s: use a duration >= 0 (0 runs until a signal)", o.duration))
	}
	if o.progress <= 0 {
		errs = append(errs, fmt.Errorf("--progress is %s: use a period > 0", o.progress))
	}
	if o.partitions <= 0 {
		errs = append(errs, fmt.Errorf("--partitions is %d: use at least 1", o.partitions))
	}
	if o.topic == "" {
		errs = append(errs, errors.New("--topic is empty: name the topic"))
	}
	return errors.Join(errs...)
}

// run executes the demo's command line and returns the exit status
// (keel.ExitCode of what the command returned).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, hooks runHooks) int {
	d, err := newDemo(hooks)
	if err == nil {
		var root *cobra.Command
		if root, err = d.command(); err == nil {
			root.SetArgs(args)
			root.SetOut(stdout)
			root.SetErr(stderr)
			err = root.ExecuteContext(ctx)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", appName, logging.MaskString(err.Error()))
	}
	return keel.ExitCode(err)
}

// newDemo returns a demo with a new run id.
func newDemo(hooks runHooks) (*demo, error) {
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("draw the run id: %w", err)
	}
	d := &demo{
		runID:       hex.EncodeToString(id[:]),
		hookSignals: hooks.signals,
		started:     hooks.started,
		preStop:     hooks.preStop,
		signals:     make(chan os.Signal, 2),
		out:         io.Discard,
		// Filled by prepare once the flags are parsed (and given the
		// in-process cluster's brokers by run): App.Defaults is this map.
		defaultValues: make(map[string]any),
	}
	d.flags = d.opts.flagSet()
	return d, nil
}

// command returns the demo's command line: keel.Command of the demo
// service, whose run command (and the root, which runs it by default)
// runs the service inside the demo's set-up (cluster, generator, signals,
// summary).
func (d *demo) command() (*cobra.Command, error) {
	app := keel.App{
		Name:  appName,
		Short: "keel demo: Kafka -> parse, enrich, route -> tiered sink, one NDJSON file per route, with a DLQ",
		Long: "keel-demo runs a whole keel pipeline: an in-process Kafka cluster (or --brokers), a load generator, " +
			"and a keel service that parses, enriches and routes the events to one NDJSON file per route " +
			"through a tiered sink, with a file dead-letter queue. Without --brokers, run points " +
			"input.kafka.brokers at the in-process cluster it starts. On Ctrl-C, SIGTERM or when --duration " +
			"elapsed it prints a summary that accounts for every event the run generated.",
		Run:        d.serve,
		Defaults:   d.defaultValues,
		Transports: []string{"input", "output"},
		Flags:      func(fs *pflag.FlagSet) { fs.AddFlagSet(d.flags) },
	}
	opts := []keel.Option{
		keel.WithSignals(d.signals),
		keel.WithTransport(keel.TransportFile, d.fileTransport()),
		keel.WithConfigOptions(d.configOptions),
	}
	if d.preStop != nil {
		opts = append(opts, keel.WithPreStopTimer(d.preStop))
	}
	root, err := keel.Command(app, opts...)
	if err != nil {
		return nil, err
	}
	resolve := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if resolve != nil {
			if err := resolve(cmd, args); err != nil {
				return err
			}
		}
		return d.prepare()
	}
	d.wrapRun(root)
	for _, c := range root.Commands() {
		if c.Name() == cli.CommandRun {
			d.wrapRun(c)
		}
	}
	return root, nil
}

// wrapRun runs the service of c inside the demo's set-up.
func (d *demo) wrapRun(c *cobra.Command) {
	serve := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return d.run(cmd.Context(), cmd.OutOrStdout(), func() error { return serve(cmd, args) })
	}
}

// configOptions keeps every flag out of the config tree: the runtime
// passes the standard flags as overrides itself, and the demo's own flags
// set up the run, they are not config keys.
func (d *demo) configOptions(c *config.Options) {
	c.FlagKey = func(*pflag.Flag) string { return "" }
}

// prepare checks the demo's flags, fixes the data directory's paths and
// fills the demo's config defaults from them; every command runs it, so
// that config-check and config-defaults show what run uses.
func (d *demo) prepare() error {
	if err := d.opts.validate(); err != nil {
		return err
	}
	d.newDataDir = d.opts.dataDir == ""
	if d.newDataDir {
		d.opts.dataDir = filepath.Join(os.TempDir(), appName+"-"+d.runID)
	}
	d.outPattern = filepath.Join(d.opts.dataDir, "out", routePlaceholder+".ndjson")
	d.spoolDir = filepath.Join(d.opts.dataDir, "spool", "output")
	d.dlqDir = filepath.Join(d.opts.dataDir, "dlq")
	d.brokers = splitBrokers(d.opts.brokers)
	maps.Copy(d.defaultValues, d.defaults())
	return nil
}
