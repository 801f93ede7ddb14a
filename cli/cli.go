package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keel-go/keel/metrics"
)

// Names of the standard commands.
const (
	CommandRun             = "run"
	CommandVersion         = "version"
	CommandConfigCheck     = "config-check"
	CommandConfigDefaults  = "config-defaults"
	CommandMetricsManifest = "metrics-manifest"
)

// Output formats of config-defaults.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// ErrNoRun is returned by New when Spec.Run is nil: a service without a
// run command has nothing to do.
var ErrNoRun = errors.New("cli: Spec.Run is required")

// Handler runs one standard command. f holds the resolved standard flags;
// stdout and stderr are the command's writers (the process's, or a test's
// buffers).
type Handler func(ctx context.Context, f *Flags, stdout, stderr io.Writer) error

// DefaultsHandler runs config-defaults with the format asked for
// (FormatYAML or FormatJSON).
type DefaultsHandler func(ctx context.Context, f *Flags, format string, stdout, stderr io.Writer) error

// Spec describes a service's command line. Run is required; a nil handler
// leaves its command out.
type Spec struct {
	// Name is the service (and binary) name shown in usage and version.
	Name string
	// Version is the service version; "" means the main module's version
	// from the build info.
	Version string
	// Short and Long are the root command's help texts.
	Short, Long string

	// Run runs the service: the root command and "run".
	Run Handler
	// ConfigCheck loads and validates the configuration and prints it.
	ConfigCheck Handler
	// ConfigDefaults prints the defaults of every config section.
	ConfigDefaults DefaultsHandler
	// MetricsManifest prints the manifest of every metric.
	MetricsManifest Handler

	// Commands are the service's own commands, added beside the standard
	// ones. They inherit the standard flags; call Flags.Resolve from them
	// to apply the environment fallbacks (a command with its own
	// PersistentPreRunE replaces the root's, which does it otherwise).
	Commands []*cobra.Command
	// Flags adds the service's own flags, persistent on the root command.
	// The runtime maps each to the config key of its name ('-' becomes
	// '_'), so --server.port sets server.port.
	Flags func(fs *pflag.FlagSet)

	// Getenv reads the environment fallbacks; nil means os.Getenv.
	Getenv func(string) string
	// BuildInfo returns what the version command prints; nil means
	// metrics.ReadBuildInfo.
	BuildInfo func() metrics.BuildInfo
	// KeelVersion returns the version of the keel module the version
	// command prints; nil means KeelVersion.
	KeelVersion func() string
}

// New builds the root command: running it without a command runs the
// service, and it has the commands run, version, config-check,
// config-defaults and metrics-manifest (those with a handler) plus
// Spec.Commands. The standard flags are persistent and resolved against
// their environment fallbacks before any command runs. The returned Flags
// are filled in once the command line is parsed.
//
// Errors are returned, never printed or exited on: SilenceErrors and
// SilenceUsage are set, so the caller decides how to report and which
// exit status to use.
func New(spec Spec) (*cobra.Command, *Flags, error) {
	if spec.Run == nil {
		return nil, nil, ErrNoRun
	}
	name := spec.Name
	if name == "" {
		name = os.Args[0]
	}
	buildInfo := spec.BuildInfo
	if buildInfo == nil {
		buildInfo = metrics.ReadBuildInfo
	}
	keelVersion := spec.KeelVersion
	if keelVersion == nil {
		keelVersion = KeelVersion
	}
	f := &Flags{}
	short := spec.Short
	if short == "" {
		short = name + " service"
	}
	root := &cobra.Command{
		Use:           name,
		Short:         short,
		Long:          spec.Long,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return f.Resolve(cmd.Flags(), spec.Getenv)
		},
	}
	f.Register(root.PersistentFlags())
	if spec.Flags != nil {
		spec.Flags(root.PersistentFlags())
	}
	runE := func(cmd *cobra.Command, _ []string) error {
		return spec.Run(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	root.RunE = runE
	root.AddCommand(&cobra.Command{
		Use:   CommandRun,
		Short: "Run the service (the default when no command is given)",
		Args:  cobra.NoArgs,
		RunE:  runE,
	})
	root.AddCommand(&cobra.Command{
		Use:   CommandVersion,
		Short: "Print the version, commit and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return PrintVersion(cmd.OutOrStdout(), name, spec.Version, buildInfo(), keelVersion())
		},
	})
	if spec.ConfigCheck != nil {
		c := &cobra.Command{
			Use:   CommandConfigCheck,
			Short: "Load and validate the configuration, then print it with every secret redacted",
			Long: "Load the whole configuration cascade (files, environment, flags), decode and validate every " +
				"section, and print the effective configuration as JSON with every secret redacted. " +
				"Exits non-zero with an error naming the bad key otherwise. A key inside a section the " +
				"service reads that matches no setting (a typo) is a warning, or an error with --strict.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return spec.ConfigCheck(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		c.Flags().BoolVar(&f.Strict, FlagStrict, false,
			"fail on a key inside a section the service reads that matches no setting (env "+EnvConfigStrict+"=1)")
		root.AddCommand(c)
	}
	if spec.ConfigDefaults != nil {
		var format string
		c := &cobra.Command{
			Use:   CommandConfigDefaults,
			Short: "Print the default value of every config section",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fm := strings.ToLower(strings.TrimSpace(format))
				if fm != FormatYAML && fm != FormatJSON {
					return fmt.Errorf("%w: --format is %q: use yaml or json", ErrInvalidFlag, format)
				}
				return spec.ConfigDefaults(cmd.Context(), f, fm, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		}
		c.Flags().StringVar(&format, "format", FormatYAML, "output format: yaml or json")
		root.AddCommand(c)
	}
	if spec.MetricsManifest != nil {
		root.AddCommand(&cobra.Command{
			Use:   CommandMetricsManifest,
			Short: "Print the JSON manifest of every metric the service registers",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return spec.MetricsManifest(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
			},
		})
	}
	for _, c := range spec.Commands {
		if c != nil {
			root.AddCommand(c)
		}
	}
	return root, f, nil
}

// PrintVersion writes the version block of the version command: the
// service's version (App.Version), the main module and its version from
// the build info, the version of keel it was built with, the commit and,
// when the build set it (metrics.BuildTimeVar), the build time:
//
//	orders 1.4.2
//	app version:    1.4.2
//	module:         github.com/acme/orders
//	module version: v1.4.2
//	keel version:   v0.9.0
//	commit:         3f2a9c1 (modified)
//	commit time:    2026-01-02T15:04:05Z
//	build time:     2026-01-03T09:00:00Z
//	go:             go1.26.0
//
// An empty version means the build info's module version; values the
// build did not record print as "unknown". Go records the commit time,
// not the build time: the build time line is left out unless the binary
// was linked with -ldflags "-X github.com/keel-go/keel/metrics.buildTime=...".
func PrintVersion(w io.Writer, name, version string, bi metrics.BuildInfo, keelVersion string) error {
	if version == "" {
		version = bi.Version
	}
	commit := orUnknown(bi.Revision)
	if bi.Modified {
		commit += " (modified)"
	}
	_, err := fmt.Fprintf(w, "%s %s\n"+
		"app version:    %s\n"+
		"module:         %s\n"+
		"module version: %s\n"+
		"keel version:   %s\n"+
		"commit:         %s\n"+
		"commit time:    %s\n",
		name, orUnknown(version), orUnknown(version), orUnknown(bi.Module), orUnknown(bi.Version),
		orUnknown(keelVersion), commit, orUnknown(bi.Time))
	if err != nil {
		return err
	}
	if bi.BuildTime != "" {
		if _, err := fmt.Fprintf(w, "build time:     %s\n", bi.BuildTime); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "go:             %s\n", orUnknown(bi.GoVersion))
	return err
}

// KeelModule is the module path of keel.
const KeelModule = "github.com/keel-go/keel"

// KeelVersion returns the version of the keel module the running binary
// was built with: the version of the dependency (with its replacement,
// when go.mod replaces it), or the main module's version when keel is the
// main module (its own commands and tests); "unknown" without build info.
func KeelVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if info.Main.Path == KeelModule {
		return orUnknown(info.Main.Version)
	}
	for _, d := range info.Deps {
		if d.Path != KeelModule {
			continue
		}
		v := orUnknown(d.Version)
		if r := d.Replace; r != nil {
			v += " (replaced by " + strings.TrimSpace(r.Path+" "+r.Version) + ")"
		}
		return v
	}
	return "unknown"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
