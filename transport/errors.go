package transport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The error taxonomy. Backends wrap these (usually through *Error) so
// callers branch with errors.Is.
var (
	// ErrConfig is invalid transport configuration.
	ErrConfig = errors.New("transport config error")
	// ErrConnection is a failure to reach the backend.
	ErrConnection = errors.New("transport connection error")
	// ErrSend is a failure to deliver records.
	ErrSend = errors.New("transport send error")
	// ErrRecv is a failure to receive records.
	ErrRecv = errors.New("transport receive error")
	// ErrCommit is a failure to acknowledge tokens.
	ErrCommit = errors.New("transport commit error")
	// ErrClosed is returned after Close, or at the end of a finite source.
	ErrClosed = errors.New("transport closed")
	// ErrTimeout is an operation that ran out of time (retryable).
	ErrTimeout = errors.New("transport timeout")
	// ErrBackpressure is a sink that cannot take more now (retryable).
	ErrBackpressure = errors.New("transport backpressure")
	// ErrDeadLettered marks records an outbound filter routed to the
	// dead-letter path instead of delivering them. The caller routes them;
	// it must not retry them.
	ErrDeadLettered = errors.New("record dead-lettered by filter")
)

// Error is a transport error with its kind (one of the Err* sentinels),
// the operation, the backend and the cause.
type Error struct {
	Kind      error
	Transport string
	Op        string
	Err       error
}

// NewError returns an *Error.
func NewError(kind error, transport, op string, cause error) *Error {
	return &Error{Kind: kind, Transport: transport, Op: op, Err: cause}
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Transport != "" {
		b.WriteString(e.Transport)
		b.WriteString(": ")
	}
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		if e.Kind != nil {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// IsRetryable reports a timeout or backpressure: the same call may
// succeed later.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrBackpressure)
}

// Outcome is how a send ended.
type Outcome uint8

const (
	// OK means every record was accepted.
	OK Outcome = iota
	// Backpressure means the sink is full or slow; retry later.
	Backpressure
	// DeadLettered means an outbound filter routed records to the
	// dead-letter path; route them, do not retry them.
	DeadLettered
	// Fatal means the records were not delivered and retrying the same
	// call is not expected to help.
	Fatal
)

// String returns the outcome name.
func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Backpressure:
		return "backpressure"
	case DeadLettered:
		return "dead_lettered"
	default:
		return "fatal"
	}
}

// Classify maps the error of a send to its Outcome. A *BatchError is
// classified by its worst entry (fatal over backpressure over
// dead-lettered).
func Classify(err error) Outcome {
	if err == nil {
		return OK
	}
	var be *BatchError
	if errors.As(err, &be) {
		worst := OK
		for _, f := range be.Failed {
			if o := Classify(f.Err); o == Fatal {
				return Fatal
			} else if o == Backpressure || (o == DeadLettered && worst == OK) {
				worst = o
			}
		}
		if worst != OK {
			return worst
		}
	}
	switch {
	case errors.Is(err, ErrBackpressure), errors.Is(err, ErrTimeout):
		return Backpressure
	case errors.Is(err, ErrDeadLettered):
		return DeadLettered
	default:
		return Fatal
	}
}

// FailedRecord is one failed index of a batch send.
type FailedRecord struct {
	Index int
	Err   error
}

// BatchError reports which records of a SendBatch failed. Indices not
// listed were accepted.
type BatchError struct {
	Failed []FailedRecord
}

// Error implements error.
func (e *BatchError) Error() string {
	if len(e.Failed) == 0 {
		return "batch send failed"
	}
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(e.Failed)))
	b.WriteString(" record(s) failed; first at index ")
	b.WriteString(strconv.Itoa(e.Failed[0].Index))
	b.WriteString(": ")
	b.WriteString(fmt.Sprint(e.Failed[0].Err))
	return b.String()
}

// Unwrap returns the distinct causes, so errors.Is(err, ErrBackpressure)
// works on a batch error.
func (e *BatchError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, f := range e.Failed {
		out = append(out, f.Err)
	}
	return out
}

// Indices returns the failed indices in order.
func (e *BatchError) Indices() []int {
	out := make([]int, len(e.Failed))
	for i, f := range e.Failed {
		out[i] = f.Index
	}
	return out
}
