package keel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/transport"
)

// Option configures Run, Command and Main. Options are per call: the
// runtime keeps no package-level registry.
type Option func(*options)

// BudgetBuilder builds the byte budget of the engine's governed loop
// (Engine.RunGoverned). It runs during start-up after the memory guard
// and before the engine are built; rt's Config, Logger, Metrics, Health,
// Lifecycle, Admin, Memory, Pool and Scaling are set.
type BudgetBuilder func(ctx context.Context, rt *Runtime) (engine.ByteBudget, error)

// RouterBuilder builds the engine's dead-letter route
// (engine.Config.RouteDeadLetters). It runs during start-up, like
// BudgetBuilder; a route that writes to a transport builds it with
// rt.Sender, and a route that buffers registers its flush with
// rt.OnShutdown.
type RouterBuilder func(ctx context.Context, rt *Runtime) (engine.DeadLetterRouter, error)

// ReceiverWrapper wraps every receiver the factory builds, after the
// governor's brake (see Runtime.Receiver). It may return r itself when it
// does not apply to tc.Type; a wrapper with an Unwrap() transport.Receiver
// method lets As see through it.
type ReceiverWrapper func(ctx context.Context, tc TransportContext, r transport.Receiver) (transport.Receiver, error)

type namedHook struct {
	name string
	fn   lifecycle.Hook
}

type options struct {
	transports      map[string]TransportBuilder
	budget          BudgetBuilder
	router          RouterBuilder
	engineHooks     []func(*engine.Config)
	receiverWrapper []ReceiverWrapper
	hooks           []namedHook
	lastHooks       []namedHook

	configFile string
	overrides  map[string]any
	configOpts []func(*config.Options)
	watch      *config.WatchOptions

	logOutput io.Writer
	pipeIn    io.Reader
	pipeOut   io.Writer
	signals   <-chan os.Signal
	preStop   func(time.Duration) <-chan time.Time
	getenv    func(string) string

	flags *cli.Flags
	errs  []error
}

func newOptions(opts []Option) (*options, error) {
	o := &options{transports: map[string]TransportBuilder{}}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o, errors.Join(o.errs...)
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...))
}

var transportTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// WithTransport registers the builder of a transport type, selected by
// the type key of a transport section (transport.type: bus). It adds to
// the built-in types kafka, http, inmem, file and pipe, or replaces one of
// them.
// The type name is lower-case letters, digits and '_'.
func WithTransport(typ string, b TransportBuilder) Option {
	return func(o *options) {
		switch {
		case !transportTypeRE.MatchString(typ):
			o.fail("WithTransport: type %q must be lower-case letters, digits and '_', starting with a letter", typ)
		case b.Receiver == nil && b.Sender == nil:
			o.fail("WithTransport(%q): the builder has neither a Receiver nor a Sender function", typ)
		default:
			o.transports[typ] = b
		}
	}
}

// WithByteBudget sets the builder of the engine's byte budget: with one,
// Engine.RunGoverned sizes receives and sub-blocks from it instead of the
// governor's AIMD budget (Runtime.Governor().Budget()), which is the
// default while self_regulation is on.
func WithByteBudget(b BudgetBuilder) Option {
	return func(o *options) {
		if b == nil {
			o.fail("WithByteBudget: nil builder")
			return
		}
		o.budget = b
	}
}

// WithDeadLetterRouter sets the builder of the engine's dead-letter route:
// with one, batch_processing.dead_letter_policy defaults to route.
func WithDeadLetterRouter(b RouterBuilder) Option {
	return func(o *options) {
		if b == nil {
			o.fail("WithDeadLetterRouter: nil builder")
			return
		}
		o.router = b
	}
}

// WithEngineConfig adjusts the engine's configuration after its section
// was decoded and before the engine is built, for wiring that has no
// config key (OnTick, Interner). It must not replace Pool, Memory or
// Metrics.
func WithEngineConfig(fn func(*engine.Config)) Option {
	return func(o *options) {
		if fn == nil {
			o.fail("WithEngineConfig: nil function")
			return
		}
		o.engineHooks = append(o.engineHooks, fn)
	}
}

// WithReceiverWrapper wraps every receiver the transport factory builds
// (see ReceiverWrapper). Wrappers apply in the order given.
func WithReceiverWrapper(w ReceiverWrapper) Option {
	return func(o *options) {
		if w == nil {
			o.fail("WithReceiverWrapper: nil wrapper")
			return
		}
		o.receiverWrapper = append(o.receiverWrapper, w)
	}
}

// WithShutdownHook registers a shutdown hook as Runtime.OnShutdown does:
// it runs after the app returned, before the transports close.
func WithShutdownHook(name string, hook lifecycle.Hook) Option {
	return func(o *options) {
		if name == "" || hook == nil {
			o.fail("WithShutdownHook: a hook needs a name and a function (name %q)", name)
			return
		}
		o.hooks = append(o.hooks, namedHook{name, hook})
	}
}

// WithFinalShutdownHook registers a hook as Runtime.OnShutdownLast does:
// it runs after the transports closed, just before the admin server
// stops (flush telemetry there).
func WithFinalShutdownHook(name string, hook lifecycle.Hook) Option {
	return func(o *options) {
		if name == "" || hook == nil {
			o.fail("WithFinalShutdownHook: a hook needs a name and a function (name %q)", name)
			return
		}
		o.lastHooks = append(o.lastHooks, namedHook{name, hook})
	}
}

// WithConfigFile sets the explicit config file, as --config does. The
// command line's --config wins over it.
func WithConfigFile(path string) Option {
	return func(o *options) { o.configFile = path }
}

// WithOverrides sets config values above the environment, with dotted
// keys ({"admin.addr": "127.0.0.1:0"}). The standard flags win over them.
func WithOverrides(values map[string]any) Option {
	return func(o *options) {
		if o.overrides == nil {
			o.overrides = make(map[string]any, len(values))
		}
		for k, v := range values {
			o.overrides[k] = v
		}
	}
}

// WithConfigOptions adjusts the options of the config cascade before it
// is loaded (WorkDir, SkipSystemDir, ExtraDirs, Strict, ...). The runtime
// sets AppName, ConfigFile, Defaults, Overrides, Flags, Logger and
// Metrics first; fn may change any of them.
func WithConfigOptions(fn func(*config.Options)) Option {
	return func(o *options) {
		if fn == nil {
			o.fail("WithConfigOptions: nil function")
			return
		}
		o.configOpts = append(o.configOpts, fn)
	}
}

// WithConfigWatch sets how the runtime watches the configuration for hot
// reload (file changes, SIGHUP). The default is config.WatchOptions{}.
func WithConfigWatch(w config.WatchOptions) Option {
	return func(o *options) { o.watch = &w }
}

// WithLogOutput sends the log lines to w instead of os.Stderr (or the
// command's error writer).
func WithLogOutput(w io.Writer) Option {
	return func(o *options) { o.logOutput = w }
}

// WithPipeIO sets the streams of the built-in pipe transport type: its
// receivers read in instead of standard input and its senders write out
// instead of standard output. A nil stream keeps the standard one. The
// runtime never closes them. Tests and services that embed a pipeline
// feed it this way.
func WithPipeIO(in io.Reader, out io.Writer) Option {
	return func(o *options) { o.pipeIn, o.pipeOut = in, out }
}

// WithSignals replaces the operating system's SIGTERM and SIGINT with
// ch: the first value starts the shutdown, a second forces the exit.
// Tests inject signals this way.
func WithSignals(ch <-chan os.Signal) Option {
	return func(o *options) { o.signals = ch }
}

// WithPreStopTimer replaces the timer of the pre-stop delay (time.After):
// the shutdown waits for the returned channel between failing readiness
// and cancelling the app. Tests use it to observe the service in between.
func WithPreStopTimer(after func(time.Duration) <-chan time.Time) Option {
	return func(o *options) { o.preStop = after }
}

// WithGetenv replaces os.Getenv for the environment fallbacks of the
// standard flags (CONFIG_FILE, LOG_LEVEL, LOG_FORMAT, METRICS_ADDR,
// LOG_VERBOSE, LOG_QUIET).
func WithGetenv(getenv func(string) string) Option {
	return func(o *options) { o.getenv = getenv }
}
