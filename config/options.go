package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/keel-go/keel/metrics"
)

// Options configures Load. The zero value is valid: no app name (so no
// environment layer and no per-user directory), the current directory as
// the working directory, /config as the system directory and .env loaded
// from the working directory.
type Options struct {
	// AppName names the application. It gives the default EnvPrefix and
	// the per-user directory <UserConfigDir>/<AppName>/. Default: the
	// APP_NAME environment variable.
	AppName string

	// EnvPrefix is the environment variable prefix, without the trailing
	// underscore ("MYAPP" reads MYAPP_LOG_LEVEL and MYAPP_DATABASE__HOST).
	// It is normalised with EnvPrefix. Default: EnvPrefix(AppName). With
	// neither set, the environment layer is skipped.
	EnvPrefix string

	// Env is the application environment that picks settings.<env>.yaml.
	// Default: APP_ENV, else ENVIRONMENT, else ENV, else "development".
	Env string

	// ConfigFile is the explicit file given with --config. It is merged
	// after settings.<env>.yaml and before the environment. A missing file
	// is an error (errors.Is(err, fs.ErrNotExist)). When empty and Flags
	// has a changed "config" flag, that flag's value is used. A relative
	// path is taken from WorkDir.
	ConfigFile string

	// Defaults is the lowest layer: values from code, as a nested map or
	// with dotted keys ({"server.port": 8080}).
	Defaults map[string]any

	// Overrides are CLI overrides applied above the environment, as a
	// nested map or with dotted keys.
	Overrides map[string]any

	// Flags is a parsed flag set whose changed flags are the top layer
	// (above Overrides). Unchanged flags never override anything. A flag
	// "--server.port" sets server.port; '-' in a name becomes '_'
	// ("--log-level" sets log_level). The "config" flag is not a key: see
	// ConfigFile.
	Flags *pflag.FlagSet

	// FlagKey maps a flag to a config key; return "" to ignore the flag.
	// Default: the rule described at Flags.
	FlagKey func(f *pflag.Flag) string

	// WorkDir is the directory searched as "./" and "./config/", and where
	// .env is read. Default: the current working directory.
	WorkDir string

	// SystemDir is the system-wide directory. Default "/config"; it is
	// searched only when it exists.
	SystemDir string
	// SkipSystemDir leaves SystemDir out of the search.
	SkipSystemDir bool

	// UserConfigDir is the per-user base directory; <UserConfigDir>/<AppName>/
	// is searched. Default: os.UserConfigDir(). Skipped without an AppName.
	UserConfigDir string
	// SkipUserConfigDir leaves the per-user directory out of the search.
	SkipUserConfigDir bool

	// ExtraDirs are searched after all the others, in order.
	ExtraDirs []string

	// SkipDotEnv disables reading <WorkDir>/.env.
	SkipDotEnv bool
	// HomeDotEnv also reads <HomeDir>/.env, after the project .env (so the
	// project file wins). Neither file overrides a variable already set.
	HomeDotEnv bool
	// HomeDir is the home directory for HomeDotEnv. Default: os.UserHomeDir().
	HomeDir string

	// Strict makes Section (and every reload) fail on keys inside a section
	// that match no struct field. Without it such keys are logged as a
	// warning.
	Strict bool

	// Logger receives load, reload and warning messages. Default:
	// slog.Default() at the time of each message.
	Logger *slog.Logger

	// Metrics is the registry for keel_config_* metrics. Default:
	// metrics.Default().
	Metrics *metrics.Registry
}

// resolved holds Options with every default applied.
type resolved struct {
	Options
	prefix  string
	dirs    []string // search directories, in merge order, deduplicated
	dotenvs []string // .env files, in priority order
}

func (o Options) resolve() (resolved, error) {
	r := resolved{Options: o}
	if r.AppName == "" {
		r.AppName = os.Getenv("APP_NAME")
	}
	if r.EnvPrefix != "" {
		r.prefix = EnvPrefix(r.EnvPrefix)
	} else {
		r.prefix = EnvPrefix(r.AppName)
	}
	if r.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return r, err
		}
		r.WorkDir = wd
	}
	if r.ConfigFile == "" && r.Flags != nil {
		if f := r.Flags.Lookup("config"); f != nil && f.Changed {
			r.ConfigFile = f.Value.String()
		}
	}
	if r.ConfigFile != "" && !filepath.IsAbs(r.ConfigFile) {
		r.ConfigFile = filepath.Join(r.WorkDir, r.ConfigFile)
	}

	dirs := []string{r.WorkDir, filepath.Join(r.WorkDir, "config")}
	if !r.SkipSystemDir {
		sys := r.SystemDir
		if sys == "" {
			sys = "/config"
		}
		dirs = append(dirs, sys)
	}
	if !r.SkipUserConfigDir && r.AppName != "" {
		base := r.UserConfigDir
		if base == "" {
			base, _ = os.UserConfigDir() // no per-user dir (no $HOME): skipped
		}
		if base != "" {
			dirs = append(dirs, filepath.Join(base, r.AppName))
		}
	}
	dirs = append(dirs, r.ExtraDirs...)
	seen := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(r.WorkDir, d)
		}
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			r.dirs = append(r.dirs, d)
		}
	}

	if !r.SkipDotEnv {
		r.dotenvs = append(r.dotenvs, filepath.Join(r.WorkDir, ".env"))
	}
	if r.HomeDotEnv {
		home := r.HomeDir
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		if home != "" {
			r.dotenvs = append(r.dotenvs, filepath.Join(home, ".env"))
		}
	}
	return r, nil
}

// flagKey is the default FlagKey.
func flagKey(f *pflag.Flag) string {
	if f.Name == "config" {
		return ""
	}
	return strings.ReplaceAll(f.Name, "-", "_")
}

// WatchOptions configures Watch. The zero value gives the defaults.
type WatchOptions struct {
	// PollInterval is how often the files are checked. Default 2s;
	// negative disables file polling.
	PollInterval time.Duration
	// Debounce is how long after the first trigger the reload runs;
	// triggers in between are folded into it, so a burst of writes causes
	// one reload. Default 250ms; negative reloads at once.
	Debounce time.Duration
	// Period, when positive, also reloads on this period.
	Period time.Duration
	// DisableSIGHUP stops SIGHUP from triggering a reload (it is on by
	// default).
	DisableSIGHUP bool
	// OnReload, when set, is called after every reload attempt that Watch
	// makes, outside any lock.
	OnReload func(ReloadResult)
}

// Defaults for WatchOptions.
const (
	DefaultPollInterval = 2 * time.Second
	DefaultDebounce     = 250 * time.Millisecond
)

func (o WatchOptions) withDefaults() WatchOptions {
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Debounce == 0 {
		o.Debounce = DefaultDebounce
	}
	return o
}

// ReloadResult describes one reload attempt.
type ReloadResult struct {
	// Trigger is what caused it: "file", "sighup", "period" or "manual".
	Trigger string
	// Version is the live version after the attempt (unchanged on failure).
	Version uint64
	// Changed lists the sections whose value changed (success only).
	Changed []string
	// Err is nil on success; on failure the old configuration stays live.
	Err error
}
