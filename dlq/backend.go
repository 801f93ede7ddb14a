package dlq

import (
	"context"
	"time"

	"github.com/keel-go/keel/background"
)

// Backend stores entries. The DLQ calls it from one goroutine at a time
// (the queue's writer), except Maintain, which may run beside it.
type Backend interface {
	// Name identifies the backend in logs, errors and metric labels.
	Name() string
	// Write stores entries, in order. When only some failed it returns a
	// *PartialError naming them, so that only those go on to the next
	// backend or are tried again. It must honour ctx.
	Write(ctx context.Context, entries []Encoded) error
	// Close flushes and releases the backend.
	Close(ctx context.Context) error
}

// Syncer is implemented by a Backend whose writes are not durable when
// Write returns (the file backend: the page cache). Sync makes them
// durable. The DLQ keeps the entries written to such a backend since its
// last Sync, so that a failed Sync hands them on to the other backends.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Maintainer is implemented by a Backend with housekeeping to do on a
// timer (the file backend: closing the file of a finished period,
// compressing it, removing expired files).
type Maintainer interface {
	Maintain(ctx context.Context) error
}

// PartialError is what Backend.Write returns when only some entries
// failed: Failed holds their indices, ascending.
type PartialError = background.PartialError

// Clock tells the time. Tests inject one to drive rotation and retention.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
