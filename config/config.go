package config

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Config is a loaded configuration cascade. It is safe for concurrent use:
// readers see one immutable snapshot, and Reload or Watch swap in a new
// one atomically, only after it validated.
type Config struct {
	opts resolved

	cur atomic.Pointer[state]

	reloadMu sync.Mutex // serialises loads; guards dotenv
	dotenv   dotenv

	mu         sync.Mutex // guards the maps below
	sections   map[string]*sectionEntry
	secretKeys map[string][][]string // section -> secret.String paths of every type decoded there
	listeners  map[string][]*listener
	validators map[string][]*validator
	nextID     uint64

	watching     atomic.Bool
	watchStarted chan struct{} // tests: closed once Watch is listening

	reloads    *metrics.CounterVec
	lastReload prometheus.Gauge
	version    prometheus.Gauge
}

// Load runs the cascade once and returns the Config. Layers, lowest
// priority first, each later one winning key by key (deep merge):
//
//  1. Options.Defaults (values from code);
//  2. defaults.yaml, 3. settings.yaml, 4. settings.<env>.yaml, each
//     discovered in every search directory (./, ./config/, /config/,
//     <user config dir>/<app>/, Options.ExtraDirs) and all merged in that
//     order, .yml then .yaml;
//  5. Options.ConfigFile (--config);
//  6. environment variables PREFIX_SECTION__KEY (after .env was loaded
//     into the environment without overriding it);
//  7. Options.Overrides, then the changed flags of Options.Flags.
//
// A malformed file, a missing --config file or conflicting environment
// variables are errors. Sections are decoded with Section.
func Load(ctx context.Context, opts Options) (*Config, error) {
	r, err := opts.resolve()
	if err != nil {
		return nil, fmt.Errorf("config: resolve options: %w", err)
	}
	c := &Config{
		opts:       r,
		sections:   make(map[string]*sectionEntry),
		secretKeys: make(map[string][][]string),
		listeners:  make(map[string][]*listener),
		validators: make(map[string][]*validator),
	}
	reg := metrics.OrDefault(opts.Metrics)
	c.reloads = reg.CounterVec(metrics.Opts{
		Namespace: "keel", Subsystem: "config", Name: "reloads_total", Group: "config",
		Help: "Configuration reload attempts by result (success: the new configuration is live; failure: it was rejected and the old one kept).",
	}, "result")
	c.reloads.With("success").Add(0)
	c.reloads.With("failure").Add(0)
	c.lastReload = reg.Gauge(metrics.Opts{
		Namespace: "keel", Subsystem: "config", Name: "last_reload_success_timestamp_seconds", Group: "config", Unit: "seconds",
		Help: "Unix time of the last successful configuration load or reload.",
	})
	c.version = reg.Gauge(metrics.Opts{
		Namespace: "keel", Subsystem: "config", Name: "version", Group: "config",
		Help: "Version of the live configuration: 1 after start-up, +1 on each successful reload.",
	})

	c.reloadMu.Lock()
	st, err := c.load(ctx)
	c.reloadMu.Unlock()
	if err != nil {
		return nil, err
	}
	st.version = 1
	c.cur.Store(st)
	c.lastReload.Set(float64(st.loadedAt.UnixNano()) / 1e9)
	c.version.Set(1)
	c.logger().Info("config: loaded", "env", st.env, "files", st.files, "dotenv", st.dotenvs, "env_prefix", r.prefix)
	return c, nil
}

func (c *Config) logger() *slog.Logger {
	if c.opts.Logger != nil {
		return c.opts.Logger
	}
	return slog.Default()
}

// AppEnv returns the application environment the live configuration was
// loaded for ("development" by default).
func (c *Config) AppEnv() string { return c.cur.Load().env }

// EnvPrefix returns the environment variable prefix in use ("" when the
// environment layer is off).
func (c *Config) EnvPrefix() string { return c.opts.prefix }

// Files returns the YAML files merged into the live configuration, lowest
// priority first.
func (c *Config) Files() []string { return append([]string(nil), c.cur.Load().files...) }

// Version returns the live version: 1 after Load, +1 on each successful
// reload.
func (c *Config) Version() uint64 { return c.cur.Load().version }

// LoadedAt returns when the live configuration was loaded.
func (c *Config) LoadedAt() time.Time { return c.cur.Load().loadedAt }

// Keys returns every leaf key of the live configuration, sorted.
func (c *Config) Keys() []string { return c.cur.Load().k.Keys() }

// Source returns which layer set key in the live configuration
// (`file "/etc/app/settings.yaml"`, "env MYAPP_KAFKA__PORT", "flag
// --kafka.port", "defaults", "overrides"), or "" when the key is not set.
func (c *Config) Source(key string) string { return c.cur.Load().source(key) }

// source finds the layer of key, or of the nearest parent leaf (a list
// element's key has its list as the leaf).
func (st *state) source(key string) string {
	for k := key; k != ""; {
		if s, ok := st.origins[k]; ok {
			return s
		}
		i := lastDot(k)
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
