package pool

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrClosed is returned (or set as every item's error) when work is handed to
// a Pool after Close or Shutdown began. Build a new Pool to run more work.
var ErrClosed = errors.New("pool: closed; no new work is accepted after Close or Shutdown")

// ErrNilPool is returned by Go and FanOut when they are given a nil *Pool.
// Map accepts a nil *Pool and runs the items sequentially instead.
var ErrNilPool = errors.New("pool: nil *Pool; build one with pool.New")

// ErrItemTimeout is wrapped by the error of an item that ran longer than
// worker_pool.item_timeout. errors.Is(err, context.DeadlineExceeded) also
// holds for such an error.
var ErrItemTimeout = errors.New("pool: item exceeded worker_pool.item_timeout")

// ErrInvalidConfig is matched (errors.Is) by every error that Config.Validate
// and New return for a bad worker_pool section.
var ErrInvalidConfig = errors.New("pool: invalid worker_pool config")

// ErrGoexit is the error of an item whose function called runtime.Goexit
// (for example through t.FailNow) instead of returning.
var ErrGoexit = errors.New("pool: item function called runtime.Goexit instead of returning")

// PanicError is the error of an item whose function panicked. The panic is
// recovered on the goroutine that ran the item, so the other items and the
// Pool carry on.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the panicking goroutine, as runtime/debug.Stack
	// formats it.
	Stack []byte
}

func newPanicError(v any) *PanicError {
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Error describes the panic value; the stack is left out so that the message
// stays one line. Read Stack for it.
func (e *PanicError) Error() string {
	return fmt.Sprintf("pool: item panicked: %v", e.Value)
}

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// ConfigError is one problem found in a worker_pool section. It matches
// ErrInvalidConfig with errors.Is.
type ConfigError struct {
	// Key is the full config key, for example "worker_pool.max_workers".
	Key string
	// Msg is the whole message: what is wrong with Key, the value found, and
	// the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
