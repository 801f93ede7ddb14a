package background

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrQueueFull is returned by TryPush, and by Push under OverflowDrop,
	// when the queue has no room for the items. They were not taken.
	ErrQueueFull = errors.New("background: queue full")
	// ErrClosed is returned once Close has started. The items were not
	// taken.
	ErrClosed = errors.New("background: sink closed")
	// ErrWriteFailed is matched by the error of a barrier (Flush, Write) or
	// Close when items were dropped after their write attempts failed, or
	// when the drain's Flush failed.
	ErrWriteFailed = errors.New("background: write failed")
	// ErrInvalidConfig is matched by every Validate error.
	ErrInvalidConfig = errors.New("background: invalid config")
	// ErrInvalidArgument reports a nil drain or tick function.
	ErrInvalidArgument = errors.New("background: invalid argument")
)

// ConfigError is one invalid key: its full name and what to do.
type ConfigError struct {
	// Key is the dotted key, e.g. "dlq.batch_size".
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Key + " " + e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// WriteError reports items that did not become durable: Dropped items whose
// write attempts all failed (their last error in Err), or a failed
// Drain.Flush (Dropped 0). It matches ErrWriteFailed and the cause.
type WriteError struct {
	// Sink is the sink's name.
	Sink string
	// Op is "write" or "flush".
	Op string
	// Dropped is the number of items lost.
	Dropped int
	// Attempts is the number of write attempts made for them.
	Attempts int
	// Err is the last cause.
	Err error
}

// Error implements error.
func (e *WriteError) Error() string {
	if e.Op == "flush" {
		return fmt.Sprintf("background sink %s: flush (durability) failed: %v", e.Sink, e.Err)
	}
	return fmt.Sprintf("background sink %s: %d item(s) dropped after %d write attempt(s): %v", e.Sink, e.Dropped, e.Attempts, e.Err)
}

// Unwrap returns ErrWriteFailed and the cause.
func (e *WriteError) Unwrap() []error { return []error{ErrWriteFailed, e.Err} }

// PartialError is returned by a Drain's WriteBatch when only some items
// failed: Failed holds their indices in the batch, ascending. The Sink
// then tries only those again and drops only those when the attempts run
// out. An error with no valid index is treated as a failure of the whole
// batch.
type PartialError struct {
	// Failed are the indices of the failed items in the batch given to
	// WriteBatch.
	Failed []int
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *PartialError) Error() string {
	return fmt.Sprintf("%d item(s) of the batch failed: %v", len(e.Failed), e.Err)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Err }

// keepFailed moves the items of batch at the indices in failed to its
// front, in order, and returns their count. With no usable index (none,
// out of range or not ascending) it returns len(batch): the whole batch
// failed.
func keepFailed[T any](batch []T, failed []int) int {
	if len(failed) == 0 || len(failed) > len(batch) {
		return len(batch)
	}
	prev := -1
	for _, i := range failed {
		if i <= prev || i >= len(batch) {
			return len(batch)
		}
		prev = i
	}
	for k, i := range failed {
		batch[k] = batch[i]
	}
	return len(failed)
}
