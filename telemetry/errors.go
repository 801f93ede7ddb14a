package telemetry

import "errors"

// ErrInvalidConfig is matched (errors.Is) by every error that Config.Validate
// and Setup return for a bad telemetry section or a malformed OTEL_*
// environment variable.
var ErrInvalidConfig = errors.New("telemetry: invalid telemetry config")

// ConfigError is one problem found in the telemetry section or in one of the
// OTEL_* environment variables. It matches ErrInvalidConfig with errors.Is.
// Neither Key nor Msg ever holds the value of a header: headers carry
// credentials.
type ConfigError struct {
	// Key is the full config key, for example "telemetry.protocol", or the
	// environment variable, for example "OTEL_TRACES_SAMPLER_ARG".
	Key string
	// Msg is the whole message: what is wrong with Key, the value found
	// (unless it is secret), and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
