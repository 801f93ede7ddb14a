package memory

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every error that Config.Validate,
// Resolve and New return for a bad memory section or a malformed GOMEMLIMIT.
var ErrInvalidConfig = errors.New("memory: invalid memory config")

// ConfigError is one problem found in the memory section (or in the
// GOMEMLIMIT environment variable). It matches ErrInvalidConfig with
// errors.Is.
type ConfigError struct {
	// Key is the full config key, for example "memory.headroom_fraction",
	// or "GOMEMLIMIT" for the environment variable.
	Key string
	// Msg is the whole message: what is wrong with Key, the value found,
	// and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
