// Command keel-demo runs a whole keel pipeline on a laptop with nothing
// installed but Go: an in-process Kafka cluster, a load generator writing JSON
// events (with a small share of malformed and poison events), and a keel
// service that consumes them with the governed engine, parses, enriches and
// routes them by their type, and writes them through a tiered sink to one
// NDJSON file per route (out/orders.ndjson, out/billing.ndjson,
// out/analytics.ndjson, out/misc.ndjson under --data-dir), with the events it
// cannot handle in the file dead-letter queue.
//
//	go run ./cmd/keel-demo                      # embedded Kafka, 2000 events/s
//	go run ./cmd/keel-demo --duration 30s       # stop on its own
//	go run ./cmd/keel-demo --fail-sink          # the file sink fails: records spill to the spool
//	go run ./cmd/keel-demo --brokers host:9092  # a real Kafka instead
//
// It prints a progress line every --progress and, on Ctrl-C, SIGTERM or
// when --duration elapsed, a summary that accounts for every generated event:
// delivered (lines in the route files), dead-lettered (entries in the DLQ
// files) or still spooled (the spool's length after it was closed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keel-go/keel"
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

// options are the demo's command-line flags.
type options struct {
	brokers    string
	duration   time.Duration
	configFile string
	rate       int
	failSink   bool
	dataDir    string
	progress   time.Duration
	adminAddr  string
	topic      string
	partitions int
	logLevel   string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("keel-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", "", "Kafka bootstrap brokers host:port[,host:port]; empty starts an in-process cluster")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long; 0 runs until Ctrl-C or SIGTERM")
	fs.StringVar(&o.configFile, "config", "", "config file layered over the demo's defaults")
	fs.IntVar(&o.rate, "rate", 2000, "events generated per second")
	fs.BoolVar(&o.failSink, "fail-sink", false, "make the file sink fail, so records spill to the spool")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory of the output, spool and DLQ files; empty means a new temporary directory")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "period of the progress line")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9090", "admin server address (/metrics, /healthz, /readyz, /startupz)")
	fs.StringVar(&o.topic, "topic", "events", "Kafka topic of the generated events")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of the topic in the in-process cluster")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: keel-demo takes flags only", fs.Arg(0))
	}
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
	return o, errors.Join(errs...)
}

// run is the whole demo; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, hooks runHooks) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "keel-demo:", err)
		return 2
	}
	sigs := hooks.signals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	d := &demo{opts: o, out: stdout, logOut: stderr, started: hooks.started, preStop: hooks.preStop}
	sum, err := d.run(ctx, sigs)
	if sum != nil {
		sum.print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "keel-demo:", err)
		return max(keel.ExitCode(err), keel.ExitError)
	}
	if !sum.balanced() {
		fmt.Fprintln(stderr, "keel-demo: the summary does not balance: some generated events are unaccounted for")
		return 1
	}
	return 0
}
