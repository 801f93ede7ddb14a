package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/keel-go/keel/logging"
)

// Names of the standard flags.
const (
	FlagConfig      = "config"
	FlagLogLevel    = "log-level"
	FlagLogFormat   = "log-format"
	FlagMetricsAddr = "metrics-addr"
	FlagVerbose     = "verbose"
	FlagQuiet       = "quiet"
	// FlagStrict is config-check's --strict: unknown keys are errors.
	FlagStrict = "strict"
)

// Environment variables read when the matching flag is not given. They
// carry no service prefix, so the same deployment conventions work for
// every keel service, and none of them starts with a service's config
// prefix, so they never leak into the config tree as keys.
const (
	// EnvConfigFile names the explicit config file (-c/--config).
	EnvConfigFile = "CONFIG_FILE"
	// EnvLogLevel is the log level (--log-level): debug, info, warn, error.
	EnvLogLevel = "LOG_LEVEL"
	// EnvLogFormat is the log format (--log-format): json, text, auto.
	EnvLogFormat = "LOG_FORMAT"
	// EnvMetricsAddr is the admin listen address (--metrics-addr).
	EnvMetricsAddr = "METRICS_ADDR"
	// EnvVerbose asks for debug logging (-v/--verbose) when true (1,
	// true; 0 or false is off).
	EnvVerbose = "LOG_VERBOSE"
	// EnvQuiet asks for warnings and errors only (-q/--quiet) when true
	// (1, true; 0 or false is off).
	EnvQuiet = "LOG_QUIET"
	// EnvConfigStrict makes config-check strict (--strict) when true (1,
	// true; 0 or false is off).
	EnvConfigStrict = "CONFIG_STRICT"
)

// ErrInvalidFlag is matched (errors.Is) by every error Flags.Resolve
// returns for a bad flag or environment value.
var ErrInvalidFlag = errors.New("cli: invalid flag")

// Flags are the standard flags every keel service takes, resolved against
// their environment fallbacks. A flag given on the command line wins over
// its environment variable; both win over the config files (the runtime
// passes them to the config cascade as its top layer).
//
//	-c, --config FILE      explicit config file        (CONFIG_FILE)
//	    --log-level LEVEL  debug, info, warn, error    (LOG_LEVEL)
//	    --log-format FMT   json, text, auto            (LOG_FORMAT)
//	    --metrics-addr A   admin listen address        (METRICS_ADDR)
//	-v, --verbose          debug logging               (LOG_VERBOSE=1)
//	-q, --quiet            warnings and errors only    (LOG_QUIET=1)
//
// -v and -q win over --log-level, and LOG_VERBOSE and LOG_QUIET over
// LOG_LEVEL; any of -v, -q and --log-level given on the command line wins
// over all three variables.
type Flags struct {
	// ConfigFile is the explicit config file; "" means none.
	ConfigFile string
	// LogLevel is the log level asked for; "" means the config's.
	LogLevel string
	// LogFormat is the log format asked for; "" means the config's.
	LogFormat string
	// MetricsAddr overrides admin.addr; "" means the config's.
	MetricsAddr string
	// Verbose asks for debug logging.
	Verbose bool
	// Quiet asks for warnings and errors only.
	Quiet bool
	// Strict (config-check --strict, or CONFIG_STRICT) makes a key inside
	// a section the service reads that matches no setting (a typo) an
	// error naming the key instead of a warning.
	Strict bool
	// Set is the parsed flag set of the command that runs (standard,
	// service and command flags together), for config.Options.Flags. It
	// is nil before Resolve.
	Set *pflag.FlagSet
	// Sources says where each resolved standard value came from, by flag
	// name: "flag --log-level" or "env LOG_LEVEL". Values left at their
	// default have no entry.
	Sources map[string]string
}

// Register adds the standard flags to fs (the root command's persistent
// flags, so that every command takes them).
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.ConfigFile, FlagConfig, "c", "", "explicit config file, merged over settings.yaml (env "+EnvConfigFile+")")
	fs.StringVar(&f.LogLevel, FlagLogLevel, "", "log level: debug, info, warn, error (env "+EnvLogLevel+"; default info)")
	fs.StringVar(&f.LogFormat, FlagLogFormat, "", "log format: json, text, auto (env "+EnvLogFormat+"; default auto)")
	fs.StringVar(&f.MetricsAddr, FlagMetricsAddr, "", "admin server listen address host:port (env "+EnvMetricsAddr+"; default :9090)")
	fs.BoolVarP(&f.Verbose, FlagVerbose, "v", false, "debug logging (env "+EnvVerbose+"=1)")
	fs.BoolVarP(&f.Quiet, FlagQuiet, "q", false, "log warnings and errors only (env "+EnvQuiet+"=1)")
}

// Resolve fills the standard values that were not given as flags from
// their environment variables (getenv; nil means os.Getenv), records fs
// as Set, and checks the values: -v with -q (or LOG_VERBOSE with
// LOG_QUIET), an unknown level or format, a malformed address and a
// LOG_VERBOSE or LOG_QUIET that is not a boolean are errors naming the
// flag or the variable.
func (f *Flags) Resolve(fs *pflag.FlagSet, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	f.Set = fs
	f.Sources = make(map[string]string)
	envErr := errors.Join(f.resolveVerbosity(fs, getenv), f.resolveStrict(fs, getenv))
	for _, s := range []struct {
		flag, env string
		dst       *string
	}{
		{FlagConfig, EnvConfigFile, &f.ConfigFile},
		{FlagLogLevel, EnvLogLevel, &f.LogLevel},
		{FlagLogFormat, EnvLogFormat, &f.LogFormat},
		{FlagMetricsAddr, EnvMetricsAddr, &f.MetricsAddr},
	} {
		if changed(fs, s.flag) {
			f.Sources[s.flag] = "flag --" + s.flag
			continue
		}
		if v := strings.TrimSpace(getenv(s.env)); v != "" {
			*s.dst = v
			f.Sources[s.flag] = "env " + s.env
		}
	}
	return errors.Join(envErr, f.validate())
}

// resolveVerbosity fills Verbose and Quiet from LOG_VERBOSE and LOG_QUIET
// unless the command line gave -v, -q or --log-level, and records where
// each came from.
func (f *Flags) resolveVerbosity(fs *pflag.FlagSet, getenv func(string) string) error {
	levelGiven := changed(fs, FlagVerbose) || changed(fs, FlagQuiet) || changed(fs, FlagLogLevel)
	var errs []error
	for _, s := range []struct {
		flag, env string
		dst       *bool
	}{
		{FlagVerbose, EnvVerbose, &f.Verbose},
		{FlagQuiet, EnvQuiet, &f.Quiet},
	} {
		if changed(fs, s.flag) {
			f.Sources[s.flag] = "flag --" + s.flag
			continue
		}
		v := strings.TrimSpace(getenv(s.env))
		if v == "" || levelGiven {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: env %s is %q: use 1 or true to turn it on, 0 or false to turn it off", ErrInvalidFlag, s.env, v))
			continue
		}
		*s.dst = on
		if on {
			f.Sources[s.flag] = "env " + s.env
		}
	}
	return errors.Join(errs...)
}

// resolveStrict fills Strict from CONFIG_STRICT unless --strict was
// given, for the command that has the flag (config-check).
func (f *Flags) resolveStrict(fs *pflag.FlagSet, getenv func(string) string) error {
	if fs == nil || fs.Lookup(FlagStrict) == nil {
		return nil
	}
	if changed(fs, FlagStrict) {
		f.Sources[FlagStrict] = "flag --" + FlagStrict
		return nil
	}
	v := strings.TrimSpace(getenv(EnvConfigStrict))
	if v == "" {
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("%w: env %s is %q: use 1 or true to turn it on, 0 or false to turn it off", ErrInvalidFlag, EnvConfigStrict, v)
	}
	f.Strict = on
	f.Sources[FlagStrict] = "env " + EnvConfigStrict
	return nil
}

func changed(fs *pflag.FlagSet, name string) bool {
	if fs == nil {
		return false
	}
	fl := fs.Lookup(name)
	return fl != nil && fl.Changed
}

func (f *Flags) source(flag string) string {
	if s, ok := f.Sources[flag]; ok {
		return s
	}
	return "flag --" + flag
}

// switchSource names where the boolean flag name was set: its short and
// long flag, or its environment variable.
func (f *Flags) switchSource(flag, short string) string {
	if s := f.Sources[flag]; strings.HasPrefix(s, "env ") {
		return s
	}
	return short + "/--" + flag
}

func (f *Flags) validate() error {
	var errs []error
	if f.Verbose && f.Quiet {
		errs = append(errs, fmt.Errorf("%w: %s and %s exclude each other; give one",
			ErrInvalidFlag, f.switchSource(FlagVerbose, "-v"), f.switchSource(FlagQuiet, "-q")))
	}
	if f.LogLevel != "" {
		if _, err := logging.ParseLevel(f.LogLevel); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s is %q: use debug, info, warn or error", ErrInvalidFlag, f.source(FlagLogLevel), f.LogLevel))
		}
	}
	if f.LogFormat != "" {
		if _, err := logging.ParseFormat(f.LogFormat); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s is %q: use json, text or auto", ErrInvalidFlag, f.source(FlagLogFormat), f.LogFormat))
		}
	}
	if f.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s is %q: use host:port, such as :9090 or 127.0.0.1:9090", ErrInvalidFlag, f.source(FlagMetricsAddr), f.MetricsAddr))
		}
	}
	return errors.Join(errs...)
}

// Level returns the log level asked for: "debug" with -v (or
// LOG_VERBOSE), "warn" with -q (or LOG_QUIET), else LogLevel ("" when
// neither the flag nor LOG_LEVEL was given).
func (f *Flags) Level() string {
	switch {
	case f.Verbose:
		return "debug"
	case f.Quiet:
		return "warn"
	default:
		return f.LogLevel
	}
}

// IsStandard reports whether name is one of the standard flags (or
// cobra's help flag): the runtime maps those to config keys itself, and
// every other flag of Set to the key of its name.
func IsStandard(name string) bool {
	switch name {
	case FlagConfig, FlagLogLevel, FlagLogFormat, FlagMetricsAddr, FlagVerbose, FlagQuiet, FlagStrict, "help":
		return true
	}
	return false
}
