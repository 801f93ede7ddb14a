package admin

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Defaults of Config.
const (
	DefaultAddr              = ":9090"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	// DefaultWriteTimeout leaves room for a 30 s CPU profile.
	DefaultWriteTimeout    = 60 * time.Second
	DefaultIdleTimeout     = 120 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures the admin server. The zero value is valid: the
// defaults above, no /config, no profiling.
type Config struct {
	// Addr is the listen address, host:port. Default ":9090"; port 0
	// picks a free port (see Server.Addr).
	Addr string `koanf:"addr"`
	// EnableConfig serves /config from Deps.ConfigJSON. Off by default.
	EnableConfig bool `koanf:"enable_config"`
	// EnablePprof serves /debug/pprof/. Off by default.
	EnablePprof bool `koanf:"enable_pprof"`
	// ReadHeaderTimeout bounds reading request headers. Default 5 s.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 10 s.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// WriteTimeout bounds writing a response, and so the longest CPU
	// profile or trace. Default 60 s.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120 s.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// ShutdownTimeout bounds Shutdown when its context has no earlier
	// deadline. Default 10 s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// Validate reports an address that is not host:port and negative
// durations, naming the key.
func (c Config) Validate() error {
	var errs []error
	if c.Addr != "" {
		_, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("admin.addr %q: %w; use host:port, e.g. \":9090\" or \"127.0.0.1:9090\"", c.Addr, err))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("admin.addr %q: port %q is not a number from 0 to 65535", c.Addr, port))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout},
		{"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("admin.%s is %s; it must be positive (or 0 for the default)", d.key, d.v))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.ShutdownTimeout, DefaultShutdownTimeout)
	return c
}
