// Package cli is the standard command line of a keel service, built on
// cobra: the commands and flags every service gets, with environment
// fallbacks, and room for the service's own.
//
// Most services never use it directly: keel.Main builds it for an App.
// A program that wires its own runtime builds it with New:
//
//	root, _, err := cli.New(cli.Spec{
//		Name: "orders",
//		Run: func(ctx context.Context, f *cli.Flags, stdout, stderr io.Writer) error {
//			return serve(ctx, f.ConfigFile, f.Level())
//		},
//	})
//	if err != nil { ... }
//	err = root.ExecuteContext(ctx)
//
// # Commands
//
//	run               run the service; the default when no command is given
//	version           the app version, module and its version, keel's version, commit, commit time,
//	                  build time (when linked with -X github.com/keel-go/keel/metrics.buildTime=...) and Go version
//	config-check      load and validate the configuration, print it redacted;
//	                  --strict (CONFIG_STRICT=1) makes an unknown key in a section an error
//	config-defaults   print the defaults of every config section (--format yaml|json)
//	metrics-manifest  print the JSON manifest of every metric
//
// The package runs the handlers the Spec gives; it prints nothing on
// error and never exits: errors are returned from Execute, so the caller
// chooses the exit status (keel.Main: 0 clean, 1 error, 2 forced).
//
// # Flags
//
// The standard flags are persistent, so every command takes them, and
// each falls back to an environment variable without a service prefix:
//
//	-c, --config FILE      CONFIG_FILE    explicit config file
//	    --log-level LEVEL  LOG_LEVEL      debug, info, warn, error
//	    --log-format FMT   LOG_FORMAT     json, text, auto
//	    --metrics-addr A   METRICS_ADDR   admin listen address (admin.addr)
//	-v, --verbose          LOG_VERBOSE=1  debug logging
//	-q, --quiet            LOG_QUIET=1    warnings and errors only
//
// A flag wins over its variable. The config file variable is CONFIG_FILE
// rather than <PREFIX>_CONFIG because every variable that starts with the
// service prefix is a config key for the cascade. -v and -q win over
// --log-level and exclude each other; LOG_VERBOSE and LOG_QUIET likewise
// win over LOG_LEVEL and exclude each other, and any of -v, -q and
// --log-level on the command line wins over all three variables. A bad
// value is an error naming the flag or the variable it came from.
//
// A service adds its own flags with Spec.Flags (persistent, and mapped by
// the keel runtime to the config key of their name) and its own commands
// with Spec.Commands.
package cli
