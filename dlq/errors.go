package dlq

import (
	"errors"
	"strconv"
	"strings"

	"github.com/keel-go/keel/background"
)

// Sentinel errors. ErrQueueFull, ErrClosed and ErrWriteFailed are the
// background sink's, so errors.Is matches either name.
var (
	// ErrInvalidConfig is matched by every error of Config.Validate and
	// New's configuration checks.
	ErrInvalidConfig = errors.New("dlq: invalid dlq config")
	// ErrDisabled is returned when entries are handed to a DLQ built with
	// dlq.enabled false: nothing is dropped silently. Enable the DLQ or use
	// the engine's discard policy.
	ErrDisabled = errors.New("dlq: dead-letter queue is disabled (dlq.enabled false); enable it or choose another dead-letter policy")
	// ErrQueueFull reports entries refused because the queue was full.
	// They were not taken.
	ErrQueueFull = background.ErrQueueFull
	// ErrClosed reports entries refused after Close began.
	ErrClosed = background.ErrClosed
	// ErrWriteFailed is matched by a barrier's (Flush, Write) or Close's
	// error when entries were lost or not made durable.
	ErrWriteFailed = background.ErrWriteFailed
	// ErrAllBackendsFailed is matched by a write that no backend took.
	ErrAllBackendsFailed = errors.New("dlq: every backend failed")
	// ErrMalformedEntry is matched by every Decode and Reader error about
	// the content of a line.
	ErrMalformedEntry = errors.New("dlq: malformed entry")
	// ErrBackend marks an error of one backend (file, kafka, http, redis).
	ErrBackend = errors.New("dlq: backend error")
)

// ConfigError is one invalid key of the dlq section.
type ConfigError struct {
	// Key is the dotted key, e.g. "dlq.kafka.brokers".
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Key + " " + e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// BackendError is a failure of one backend.
type BackendError struct {
	// Backend is the backend's name.
	Backend string
	// Op is what failed: "write", "sync", "open", "rotate", "close".
	Op string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *BackendError) Error() string {
	return "dlq backend " + e.Backend + ": " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns ErrBackend and the cause.
func (e *BackendError) Unwrap() []error { return []error{ErrBackend, e.Err} }

// AllBackendsFailedError reports entries that no backend took, with each
// backend's error in the order tried.
type AllBackendsFailedError struct {
	// Entries is the number of entries not written.
	Entries int
	// Errs are the backends' errors.
	Errs []error
}

// Error implements error.
func (e *AllBackendsFailedError) Error() string {
	var b strings.Builder
	b.WriteString("dlq: every backend failed for ")
	b.WriteString(strconv.Itoa(e.Entries))
	b.WriteString(" entr")
	if e.Entries == 1 {
		b.WriteString("y")
	} else {
		b.WriteString("ies")
	}
	for i, err := range e.Errs {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns ErrAllBackendsFailed and the backends' errors.
func (e *AllBackendsFailedError) Unwrap() []error {
	return append([]error{ErrAllBackendsFailed}, e.Errs...)
}
