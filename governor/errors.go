package governor

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every error Config.Validate,
// New and NewLatch return for a bad self_regulation section or bad latch
// thresholds.
var ErrInvalidConfig = errors.New("governor: invalid self_regulation config")

// ConfigError is one problem of the self_regulation section. It matches
// ErrInvalidConfig with errors.Is.
type ConfigError struct {
	// Key is the full config key, for example "self_regulation.pause_at".
	Key string
	// Msg is the whole message: what is wrong with Key, the value found,
	// and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
