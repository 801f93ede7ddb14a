package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
	"github.com/keel-go/keel/transport/kafka"
)

const (
	appName = "keel-demo"
	// catchUpTimeout bounds how long the service keeps consuming, once the
	// generator stopped, to reach the last generated event; catchUpStall
	// gives up sooner when consumption stops moving for that long.
	catchUpTimeout = 20 * time.Second
	catchUpStall   = 8 * time.Second
	// brokersKey is the config key of the input's brokers.
	brokersKey = "input.kafka.brokers"
)

// demo is one run: the embedded cluster, the generator and the service.
type demo struct {
	opts  options
	flags *pflag.FlagSet // the demo's own flags, bound to opts
	// runID tags every event this run generates: the summary counts the
	// events that carry it.
	runID string

	out         io.Writer
	hookSignals <-chan os.Signal
	signals     chan os.Signal // what the runtime sees: hookSignals (or the OS's) and --duration
	started     func(adminAddr string)
	preStop     func(time.Duration) <-chan time.Time

	// defaultValues are App.Defaults: defaults() once the flags are
	// parsed, with the in-process cluster's brokers once it started.
	defaultValues map[string]any
	brokers       []string // --brokers, or the in-process cluster's
	newDataDir    bool     // --data-dir was empty: the directory is new
	outPattern    string   // output.file.path: one file per route, {route} in the name
	spoolDir      string
	dlqDir        string

	failing atomic.Bool

	gen   *generator
	stats stats
}

// stats are the service's counters.
type stats struct {
	consumed  atomic.Int64 // this run's records and receiver dead letters seen by process
	otherRuns atomic.Int64 // records and receiver dead letters of other runs seen by process
	sent      atomic.Int64 // records the sink accepted (delivered or spooled)
	dead      atomic.Int64 // dead letters handed to the DLQ route
}

// ofThisRun reports whether an event's payload carries this run's id.
func (d *demo) ofThisRun(payload []byte) bool {
	return bytes.Contains(payload, []byte(d.runID))
}

// run runs the service (serve) inside the demo's set-up: the data
// directory, the in-process cluster unless --brokers, the generator, the
// signals and --duration; then it prints the summary to out. It fails when
// the service failed or the summary does not balance.
func (d *demo) run(ctx context.Context, out io.Writer, serve func() error) error {
	d.out = out
	if d.newDataDir {
		if err := os.Mkdir(d.opts.dataDir, 0o755); err != nil {
			return fmt.Errorf("create the data directory: %w (set --data-dir)", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(d.outPattern), 0o755); err != nil {
		return fmt.Errorf("create the output directory under --data-dir %s: %w", d.opts.dataDir, err)
	}
	d.failing.Store(d.opts.failSink)

	origin := "--brokers"
	if len(d.brokers) == 0 {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(d.opts.partitions), d.opts.topic))
		if err != nil {
			return fmt.Errorf("start the in-process Kafka cluster: %w", err)
		}
		defer c.Close()
		d.brokers, origin = c.ListenAddrs(), "in-process cluster"
		d.defaultValues[brokersKey] = d.brokers
	}
	fmt.Fprintf(d.out, "keel-demo: brokers %s (%s), topic %s, %d events/s, data in %s, run id %s\n",
		strings.Join(d.brokers, ","), origin, d.opts.topic, d.opts.rate, d.opts.dataDir, d.runID)

	// What the spool already holds (a reused --data-dir) is of earlier
	// runs: the summary says so.
	_, carriedOver, err := d.countSpool(ctx)
	if err != nil {
		return fmt.Errorf("count what the spool under --data-dir %s already holds: %w", d.opts.dataDir, err)
	}

	gen, err := newGenerator(d.brokers, d.opts.topic, d.opts.rate, d.runID)
	if err != nil {
		return err
	}
	d.gen = gen

	sigs := d.hookSignals
	if sigs == nil {
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	// The runtime sees one signal channel: the OS (or test) signals and
	// the --duration timer.
	stopForward := make(chan struct{})
	var fwd sync.WaitGroup
	fwd.Add(1)
	go func() {
		defer fwd.Done()
		var timeout <-chan time.Time
		if d.opts.duration > 0 {
			t := time.NewTimer(d.opts.duration)
			defer t.Stop()
			timeout = t.C
		}
		for {
			select {
			case s := <-sigs:
				d.signals <- s
			case <-timeout:
				fmt.Fprintf(d.out, "keel-demo: --duration %s elapsed, shutting down\n", d.opts.duration)
				d.signals <- syscall.SIGTERM
				timeout = nil
			case <-stopForward:
				return
			}
		}
	}()

	runErr := serve()
	close(stopForward)
	fwd.Wait()
	gen.stop() // when the service failed before it started the generator

	sum, err := d.account(ctx)
	sum.carriedOver = carriedOver
	sum.print(d.out)
	if err = errors.Join(runErr, err); err != nil {
		return err
	}
	if !sum.balanced() {
		return errors.New("the summary does not balance: some generated events are unaccounted for")
	}
	return nil
}

// defaults are the demo's configuration, below --config and the environment.
// Without --brokers, input.kafka.brokers is set once run started the
// in-process cluster.
func (d *demo) defaults() map[string]any {
	m := map[string]any{
		"lifecycle.shutdown_timeout":              "40s",
		"input.type":                              keel.TransportKafka,
		"input.kafka.group":                       appName,
		"input.kafka.topics":                      []string{d.opts.topic},
		"input.kafka.role":                        "consumer",
		"input.kafka.lag_interval":                "2s",
		"input.kafka.consumer.auto_offset_reset":  "earliest",
		"output.type":                             keel.TransportFile,
		"output.file.path":                        d.outPattern,
		"output.file.sync":                        "interval",
		"output.tiered.enabled":                   true,
		"output.tiered.spool.dir":                 d.spoolDir,
		"output.tiered.breaker.failure_threshold": 3,
		"output.tiered.breaker.open_timeout":      "2s",
		// At shutdown the sink replays its spool for at most this long;
		// the rest stays spooled for the next start.
		"output.tiered.close_drain_timeout": "3s",
		"dlq.enabled":                       true,
		"dlq.file.enabled":                  true,
		"dlq.file.path":                     d.dlqDir,
		"self_regulation.enabled":           true,
	}
	if len(d.brokers) > 0 {
		m[brokersKey] = d.brokers
	}
	return m
}

// fileTransport replaces the built-in file type's sender: it routes each
// record to the NDJSON file of its route ({route} in output.file.path),
// behind a switch that makes every send fail (--fail-sink).
func (d *demo) fileTransport() keel.TransportBuilder {
	build := func(tc keel.TransportContext) (*routedSender, error) {
		var c file.Config
		if err := tc.Decode(&c); err != nil {
			return nil, err
		}
		if err := c.Validate(); err != nil {
			return nil, &keel.SectionError{Key: tc.Key, Err: err}
		}
		c.Metrics, c.Logger = tc.Runtime.Metrics(), tc.Runtime.Logger()
		s, err := newRoutedSender(c, tc.Key)
		if err != nil {
			return nil, &keel.SectionError{Key: tc.Key, Err: err}
		}
		return s, nil
	}
	return keel.TransportBuilder{
		Validate: func(tc keel.TransportContext) error {
			_, err := build(tc)
			return err
		},
		Sender: func(_ context.Context, tc keel.TransportContext) (transport.Sender, error) {
			s, err := build(tc)
			if err != nil {
				return nil, err
			}
			return &switchedSender{Sender: s, failing: &d.failing}, nil
		},
	}
}

// switchedSender is a transport.Sender that refuses every record while
// failing is set, as a downstream that is down would.
type switchedSender struct {
	transport.Sender
	failing *atomic.Bool
}

var errSinkDown = errors.New("the file sink is down (--fail-sink)")

func (s *switchedSender) Send(ctx context.Context, rec transport.Record) error {
	if s.failing.Load() {
		return transport.NewError(transport.ErrConnection, s.Name(), "send", errSinkDown)
	}
	return s.Sender.Send(ctx, rec)
}

func (s *switchedSender) SendBatch(ctx context.Context, records []transport.Record) error {
	if s.failing.Load() {
		return transport.NewError(transport.ErrConnection, s.Name(), "send", errSinkDown)
	}
	return s.Sender.SendBatch(ctx, records)
}

func (s *switchedSender) Health(ctx context.Context) error {
	if s.failing.Load() {
		return transport.NewError(transport.ErrConnection, s.Name(), "health", errSinkDown)
	}
	return s.Sender.Health(ctx)
}

// serve is the service body.
func (d *demo) serve(ctx context.Context, rt *keel.Runtime) error {
	in, err := rt.Receiver(ctx, "input")
	if err != nil {
		return err
	}
	out, err := rt.Sender(ctx, "output")
	if err != nil {
		return err
	}
	sink, _ := out.(*tiered.Sink)

	// The generator runs until the shutdown begins.
	d.gen.start()
	go func() {
		<-rt.Lifecycle().Stopping()
		d.gen.stop()
	}()

	// The engine keeps consuming after ctx ends until it has seen every
	// generated event (or catchUpTimeout), so that the summary balances.
	engCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	go func() {
		select {
		case <-ctx.Done():
		case <-engCtx.Done():
			return
		}
		d.gen.stop()
		deadline := time.NewTimer(catchUpTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		last, lastMove := d.stats.consumed.Load(), time.Now()
		for d.stats.consumed.Load() < d.gen.generated() {
			select {
			case <-deadline.C:
				d.warnBehind(rt)
				stopEngine()
				return
			case <-tick.C:
				if n := d.stats.consumed.Load(); n != last {
					last, lastMove = n, time.Now()
				} else if time.Since(lastMove) > catchUpStall {
					d.warnBehind(rt)
					stopEngine()
					return
				}
			case <-engCtx.Done():
				return
			}
		}
		stopEngine()
	}()

	// The consumer group's lag, as the Kafka consumer last read it.
	lag := func() (int64, bool) { return 0, false }
	if c, ok := keel.As[*kafka.Consumer](in); ok {
		lag = c.LastLag
	}
	rt.Go("progress", func(ctx context.Context) error {
		d.progressLoop(ctx, rt, sink, lag)
		return nil
	})

	rt.MarkStarted()
	// The bound address: --metrics-addr (or admin.addr in --config) may
	// ask for port 0.
	fmt.Fprintf(d.out, "keel-demo: admin server listening on %s (/metrics, /healthz, /readyz, /startupz)\n", rt.Admin().Addr())
	if d.started != nil {
		d.started(rt.Admin().Addr())
	}
	err = rt.Engine().RunGoverned(engCtx, in, d.process, d.countingSink(out))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// warnBehind logs that the service stops before consuming every generated
// event.
func (d *demo) warnBehind(rt *keel.Runtime) {
	rt.Logger().Warn("stopping before every generated event was consumed",
		"generated", d.gen.generated(), "consumed", d.stats.consumed.Load())
}
