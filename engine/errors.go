package engine

import (
	"errors"
	"strconv"
)

// Sentinel errors. The loop's terminal errors are typed (*StageError and
// *ParseError) and also match one of these with errors.Is, so callers can
// branch on the stage without a type switch.
var (
	// ErrInvalidConfig is matched by every error of Config.Validate and New.
	ErrInvalidConfig = errors.New("engine: invalid batch_processing config")
	// ErrSinkManagedUnsupported is returned at start by RunStreaming, and by
	// RunGoverned with a budget, under CommitSinkManaged: their sub-blocks
	// carry no tokens, so a sink could never commit them.
	ErrSinkManagedUnsupported = errors.New("engine: sink-managed commit is not supported on the streaming and governed paths; use batch_processing.commit_mode auto or the Run/RunParsed paths")
	// ErrDeadLettersRejected reports dead letters met under the reject
	// policy. Configure batch_processing.dead_letter_policy (route or
	// discard) to handle them.
	ErrDeadLettersRejected = errors.New("engine: dead letters rejected; set batch_processing.dead_letter_policy to route (with a route) or discard")
	// ErrRecv marks a terminal receive error.
	ErrRecv = errors.New("engine: receive failed")
	// ErrProcess marks an error returned by the process function.
	ErrProcess = errors.New("engine: process failed")
	// ErrRoute marks a dead-letter routing failure.
	ErrRoute = errors.New("engine: dead-letter routing failed")
	// ErrSink marks an error returned by the sink.
	ErrSink = errors.New("engine: sink failed")
	// ErrCommit marks a failed commit of input tokens.
	ErrCommit = errors.New("engine: commit failed")
	// ErrParseBatch marks a block failed by parse_error_action fail_batch.
	ErrParseBatch = errors.New("engine: block failed on a parse error (parse_error_action fail_batch)")
	// ErrNilArgument reports a nil receiver, process or sink function.
	ErrNilArgument = errors.New("engine: nil argument")
	// ErrDrainTimeout is the cause (context.Cause) of the context a block
	// runs under once batch_processing.drain_timeout passed after the run
	// context was cancelled: the block in flight was not committed and
	// comes again from the source. The loop itself returns nil then.
	ErrDrainTimeout = errors.New("engine: batch_processing.drain_timeout passed after shutdown began; the block in flight was not committed")
)

// Stage names a step of the block loop.
type Stage string

// The stages a terminal error can come from.
const (
	// StageRecv is a receive error other than the end of the source.
	StageRecv Stage = "recv"
	// StageProcess is an error returned by the process function.
	StageProcess Stage = "process"
	// StageRoute is a dead-letter routing error, or dead letters rejected.
	StageRoute Stage = "route"
	// StageSink is an error returned by the sink.
	StageSink Stage = "sink"
	// StageCommit is a failed commit of the input tokens.
	StageCommit Stage = "commit"
	// StageParse is a parse failure under parse_error_action fail_batch.
	StageParse Stage = "parse"
)

// sentinel returns the stage's sentinel error.
func (s Stage) sentinel() error {
	switch s {
	case StageRecv:
		return ErrRecv
	case StageProcess:
		return ErrProcess
	case StageRoute:
		return ErrRoute
	case StageSink:
		return ErrSink
	case StageCommit:
		return ErrCommit
	case StageParse:
		return ErrParseBatch
	default:
		return nil
	}
}

// StageError is a terminal error of the loop: the stage that failed, the
// receiver, the block's record and token counts, and the cause. Nothing of
// the block was committed and nothing later was received. It matches the
// stage's sentinel (ErrSink, ErrCommit, ...) and its cause with errors.Is.
type StageError struct {
	// Stage is the step that failed.
	Stage Stage
	// Receiver is the receiver's Name.
	Receiver string
	// Records and Tokens describe the block (or sub-block) that failed.
	Records, Tokens int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *StageError) Error() string {
	msg := "engine: " + string(e.Stage) + " failed"
	if e.Receiver != "" {
		msg += " (receiver " + e.Receiver + ")"
	}
	if e.Stage != StageRecv {
		msg += " on a block of " + strconv.Itoa(e.Records) + " record(s) and " + strconv.Itoa(e.Tokens) +
			" token(s); nothing of it was committed and the loop stopped"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the stage sentinel and the cause.
func (e *StageError) Unwrap() []error {
	out := make([]error, 0, 2)
	if s := e.Stage.sentinel(); s != nil {
		out = append(out, s)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// ParseError is a record that failed to parse under fail_batch: it fails
// its whole block. It matches ErrParseBatch and the codec error with
// errors.Is.
type ParseError struct {
	// Index is the record's position in the block.
	Index int
	// Err is the codec error.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return "engine: record " + strconv.Itoa(e.Index) + " of the block failed to parse (parse_error_action fail_batch): " + e.Err.Error()
}

// Unwrap returns ErrParseBatch and the cause.
func (e *ParseError) Unwrap() []error { return []error{ErrParseBatch, e.Err} }

// DeadLetterError reports dead letters refused under the reject policy.
// It matches ErrDeadLettersRejected.
type DeadLetterError struct {
	// Count is the number of dead letters.
	Count int
	// FirstReason is the reason of the first one.
	FirstReason string
}

// Error implements error.
func (e *DeadLetterError) Error() string {
	return ErrDeadLettersRejected.Error() + " (" + strconv.Itoa(e.Count) + " dead letter(s), first: " + e.FirstReason + ")"
}

// Unwrap returns ErrDeadLettersRejected.
func (e *DeadLetterError) Unwrap() error { return ErrDeadLettersRejected }

// ConfigError is one problem of a batch_processing section. It matches
// ErrInvalidConfig.
type ConfigError struct {
	// Key is the full key, e.g. "batch_processing.max_chunk_size".
	Key string
	// Msg says what is wrong and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
