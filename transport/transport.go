package transport

import "context"

// Receiver is the source side of a transport.
type Receiver interface {
	// Recv returns the next batch under limits. It blocks until at least
	// one record or token is available, ctx is done, or the source ends.
	// When ctx is cancelled it returns what it has already gathered (or
	// keeps it buffered for the next call) and never drops a record taken
	// from the source. At the end of a finite source it returns ErrClosed
	// (wrapped) once every record has been returned.
	Recv(ctx context.Context, limits Limits) (Batch, error)
	// Commit acknowledges tokens returned by Recv. Ordered sources commit
	// cumulatively (the highest position per partition). A failed commit
	// is returned so the caller stops. Tokens of another receiver's type
	// are ignored.
	Commit(ctx context.Context, tokens []Token) error
	// Close releases the receiver. Uncommitted records are re-delivered by
	// the source on the next start, where the source can do so.
	Close(ctx context.Context) error
	// Health returns nil while the receiver can make progress, or an error
	// saying why not. It must be cheap.
	Health(ctx context.Context) error
	// Name identifies the backend in logs and metrics ("kafka", "file").
	Name() string
}

// Sender is the sink side of a transport.
type Sender interface {
	// Send delivers one record. See SendBatch for the meaning of the error.
	Send(ctx context.Context, rec Record) error
	// SendBatch delivers records. It returns nil when every record was
	// accepted; otherwise an error that Classify maps to an Outcome, often
	// a *BatchError naming the failed indices. It is not atomic: records
	// before a failure may have been delivered, so the caller retries the
	// whole batch (duplicates, never loss).
	SendBatch(ctx context.Context, records []Record) error
	// Close flushes what the sender buffers and releases it, within ctx.
	Close(ctx context.Context) error
	// Health returns nil while the sender can deliver, or why not.
	Health(ctx context.Context) error
	// Name identifies the backend.
	Name() string
}
