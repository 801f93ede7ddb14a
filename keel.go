package keel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// Sentinel errors. Errors the runtime returns wrap one of these (or the
// error of the component that failed), so callers branch with errors.Is.
var (
	// ErrInvalidApp reports an App the runtime cannot run: no Name, no
	// Run function, or a Sections entry that is not a non-nil pointer.
	ErrInvalidApp = errors.New("keel: invalid App")
	// ErrInvalidOption reports an Option given bad arguments (an empty
	// transport type, a nil builder or hook).
	ErrInvalidOption = errors.New("keel: invalid option")
	// ErrUnknownTransport reports a transport section whose type key is
	// missing or names no known transport type.
	ErrUnknownTransport = errors.New("keel: unknown transport type")
	// ErrShuttingDown is returned by Receiver, Sender, OnShutdown and
	// OnShutdownLast once the shutdown reached the point where what they
	// add would no longer be closed or run.
	ErrShuttingDown = errors.New("keel: the runtime is shutting down")
	// ErrShutdownIncomplete is wrapped by the error Run returns when the
	// shutdown did not finish within lifecycle.shutdown_timeout; the
	// message lists what was still running.
	ErrShutdownIncomplete = errors.New("keel: shutdown did not complete")
)

// SectionError is a configuration section the runtime could not decode or
// validate: a start-up error naming the section's key. Err names the bad
// key inside it and the fix.
type SectionError struct {
	// Key is the section key, e.g. "memory" or "batch_processing".
	Key string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *SectionError) Error() string {
	return fmt.Sprintf("keel: config section %q: %v", e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *SectionError) Unwrap() error { return e.Err }

// App is a keel service: its name, its body, and its own configuration.
// Only Name and Run are required.
type App struct {
	// Name names the service. It is the service field of every log line,
	// the namespace of the app's own metrics (with characters Prometheus
	// does not accept replaced by '_'), and gives the environment variable
	// prefix (config.EnvPrefix: "orders" reads ORDERS_KAFKA__BROKERS).
	Name string
	// Version is the service version in logs and the version command;
	// "" means the main module's version from the build info.
	Version string
	// Short and Long are the help texts of the command line.
	Short, Long string

	// Run is the service body. It runs once every component is built and
	// started, with a Runtime handle; its ctx is cancelled when the
	// shutdown cancels intake (after readiness failed and the pre-stop
	// delay passed), and it must return then. Returning ends the service:
	// nil (or ctx's error after the cancellation) is a clean stop, any
	// other error a failure (exit status 1).
	Run func(ctx context.Context, rt *Runtime) error

	// Sections are the app's own config sections, by key: pointers to
	// structs (or maps) pre-filled with their defaults. Each is decoded
	// with config.Section before Run, so that config-check, /config and
	// config-defaults show it, and validated with its Validate() error
	// method when it has one. Run reads the decoded values through the
	// same pointers.
	Sections map[string]any
	// Defaults are the lowest config layer, values from code, as a nested
	// map or with dotted keys ({"transport.type": "inmem"}).
	Defaults map[string]any
	// Transports are the config sections the app builds transports from
	// with Runtime.Receiver and Runtime.Sender ("transport" when it uses
	// the default). They are checked at start-up and by config-check: a
	// missing or unknown type, or a bad sub-section, fails before the app
	// runs.
	Transports []string
	// RegisterMetrics registers the app's own metrics on the runtime's
	// registry (namespace Name). It runs during start-up and for
	// metrics-manifest, so the manifest lists them; asking the registry
	// again later returns the same collectors.
	RegisterMetrics func(reg *metrics.Registry)

	// Commands are the service's own commands, beside the standard ones.
	Commands []*cobra.Command
	// Flags adds the service's own flags; each sets the config key of its
	// name ("--server.port" sets server.port, '-' becomes '_').
	Flags func(fs *pflag.FlagSet)
}

var appNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

func (a *App) check(needRun bool) error {
	var errs []error
	if !appNameRE.MatchString(a.Name) {
		errs = append(errs, fmt.Errorf("%w: Name %q must start with a letter and hold only letters, digits, '_', '.' and '-'", ErrInvalidApp, a.Name))
	}
	if needRun && a.Run == nil {
		errs = append(errs, fmt.Errorf("%w: Run is nil; it is the service body", ErrInvalidApp))
	}
	for key, v := range a.Sections {
		if err := checkSectionPointer(key, v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *App) version() string {
	if a.Version != "" {
		return a.Version
	}
	return metrics.ReadBuildInfo().Version
}

// namespace returns the app's metric namespace: the name lower-cased with
// every character outside [a-z0-9_] replaced by '_'.
func (a *App) namespace() string {
	var b strings.Builder
	for _, r := range strings.ToLower(a.Name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Run builds the runtime for app, runs app.Run, and shuts down in order
// when a signal arrives, ctx ends, or app.Run returns. It returns nil after
// a clean shutdown, the app's error if it failed, an error wrapping
// lifecycle.ErrForced when a second signal forced the exit, and an error
// wrapping ErrShutdownIncomplete that names what was still running when
// the shutdown deadline passed. A start-up failure (a bad config section,
// an address already in use) is returned before app.Run is called, naming
// the key or resource.
//
// While it runs, the service's logger, metrics registry and health
// registry are the process-wide defaults (slog.Default, metrics.Default,
// health.Default); Run restores the previous ones when it returns. The Go
// memory limit it sets from the container (memory.Guard.ApplyGoMemoryLimit)
// stays.
//
// Run reads no command line: the cli flags come from Command and Main.
// Use WithConfigFile, WithOverrides and WithConfigOptions to configure it
// directly (tests, embedding). See the package documentation for the
// build order and the shutdown sequence.
func Run(ctx context.Context, app App, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	rt, err := build(ctx, &app, o, modeRun)
	if err != nil {
		return err
	}
	return rt.run(ctx)
}

// Command returns the root command of app's command line: run (the
// default), version, config-check, config-defaults, metrics-manifest and
// the app's own commands, with the standard flags (see package cli).
// Execute it to run the service; Main does that for you. Log lines go to
// the command's error writer unless WithLogOutput says otherwise.
func Command(app App, opts ...Option) (*cobra.Command, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	withIO := func(f *cli.Flags, stderr io.Writer) *options {
		oo := *o
		oo.flags = f
		if oo.logOutput == nil {
			oo.logOutput = stderr
		}
		return &oo
	}
	root, _, err := cli.New(cli.Spec{
		Name:     app.Name,
		Version:  app.Version,
		Short:    app.Short,
		Long:     app.Long,
		Commands: app.Commands,
		Flags:    app.Flags,
		Getenv:   o.getenv,
		Run: func(ctx context.Context, f *cli.Flags, _, stderr io.Writer) error {
			rt, err := build(ctx, &app, withIO(f, stderr), modeRun)
			if err != nil {
				return err
			}
			return rt.run(ctx)
		},
		ConfigCheck: func(ctx context.Context, f *cli.Flags, stdout, stderr io.Writer) error {
			return configCheck(ctx, &app, withIO(f, stderr), stdout, stderr)
		},
		ConfigDefaults: func(ctx context.Context, f *cli.Flags, format string, stdout, stderr io.Writer) error {
			return configDefaults(ctx, &app, withIO(f, stderr), format, stdout)
		},
		MetricsManifest: func(ctx context.Context, f *cli.Flags, stdout, stderr io.Writer) error {
			return metricsManifest(ctx, &app, withIO(f, stderr), stdout)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidApp, err)
	}
	return root, nil
}

// Exit statuses of Main.
const (
	// ExitOK is a clean shutdown.
	ExitOK = 0
	// ExitError is a start-up failure, a failed service, a failed command
	// or a shutdown that did not complete in time.
	ExitError = 1
	// ExitForced is an exit forced by a second signal during shutdown.
	ExitForced = 2
)

// ExitCode maps what Run (or an executed Command) returned to Main's exit
// status: ExitOK for nil, ExitForced for an error wrapping
// lifecycle.ErrForced, ExitError otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, lifecycle.ErrForced):
		return ExitForced
	default:
		return ExitError
	}
}

// Main is the whole main function of a keel service: it parses os.Args
// through Command, runs the command, prints an error (masked) to stderr,
// and exits with ExitCode. It is the only place in keel that calls
// os.Exit.
//
//	func main() {
//		keel.Main(keel.App{Name: "orders", Run: serve})
//	}
func Main(app App, opts ...Option) {
	os.Exit(mainCode(context.Background(), app, os.Args[1:], os.Stderr, opts))
}

// mainCode runs the command line args and returns the exit status.
func mainCode(ctx context.Context, app App, args []string, stderr io.Writer, opts []Option) int {
	root, err := Command(app, opts...)
	if err != nil {
		fmt.Fprintln(stderr, logging.MaskString(err.Error()))
		return ExitError
	}
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	if err != nil {
		name := app.Name
		if name == "" {
			name = "keel"
		}
		fmt.Fprintf(stderr, "%s: %s\n", name, logging.MaskString(err.Error()))
	}
	return ExitCode(err)
}
