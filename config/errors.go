package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned (wrapped) by the typed getters when a key is not
// set or is set to null. Test for it with errors.Is.
var ErrNotFound = errors.New("config: key not set")

// ErrAlreadyWatching is returned by Watch when another Watch on the same
// Config is still running.
var ErrAlreadyWatching = errors.New("config: Watch is already running on this Config")

// DecodeError reports a value that cannot be converted to the type its
// field or getter asks for. It names the full dotted key, the Go field (for
// Section), the offending value (redacted when the field is a secret.String
// or the key looks sensitive) and where the value came from.
type DecodeError struct {
	// Key is the full dotted key, e.g. "kafka.port" or "kafka.brokers[1]".
	Key string
	// Field is the Go field path, e.g. "KafkaConfig.Port"; empty for
	// getters.
	Field string
	// Value is the offending value as text, or "[REDACTED]".
	Value string
	// Source says which layer set the value: `file "/etc/app/settings.yaml"`,
	// "env MYAPP_KAFKA__PORT", "flag --kafka.port", "defaults", "overrides".
	Source string
	// Err is the underlying reason. It never holds a sensitive value.
	Err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Key)
	if e.Field != "" {
		b.WriteString(" (field ")
		b.WriteString(e.Field)
		b.WriteString(")")
	}
	b.WriteString(": invalid value ")
	b.WriteString(e.Value)
	if e.Source != "" {
		b.WriteString(" from ")
		b.WriteString(e.Source)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Source != "" {
		b.WriteString(" (fix it in ")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the underlying reason.
func (e *DecodeError) Unwrap() error { return e.Err }

// UnknownKeysError reports keys inside a decoded section that match no
// field of the target struct: usually a typo. Section returns it when
// Options.Strict is set and logs a warning with the same text otherwise.
type UnknownKeysError struct {
	// Section is the section key passed to Section.
	Section string
	// Keys are the full dotted keys that matched no field, sorted.
	Keys []string
	// Valid lists the keys the section's struct accepts at its top level.
	Valid []string
}

// Error implements error.
func (e *UnknownKeysError) Error() string {
	msg := fmt.Sprintf("config: section %q has unknown keys %s (check the spelling", e.Section, strings.Join(e.Keys, ", "))
	if len(e.Valid) > 0 {
		msg += "; valid keys: " + strings.Join(e.Valid, ", ")
	}
	return msg + ")"
}

// FileError reports a configuration or .env file that exists but cannot be
// read or parsed. The message carries the parser's line number when it
// gives one.
type FileError struct {
	// Path is the file.
	Path string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *FileError) Error() string {
	return fmt.Sprintf("config: file %s: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }
