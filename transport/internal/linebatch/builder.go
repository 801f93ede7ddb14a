package linebatch

import (
	"fmt"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

// arenaChunk is the size of the blocks record payloads are copied into:
// one allocation holds many lines, and a full block is left as it is (the
// records already point into it) rather than regrown.
const arenaChunk = 64 << 10

// maxFirstArena caps the first arena block of a batch sized after the
// previous batch.
const maxFirstArena = 8 << 20

// minBatchCap is the least starting capacity of a batch's record and
// token slices.
const minBatchCap = 16

// Hint is the size of a batch, kept by a receiver to size the next one:
// exact in a steady stream, small for a trickle. The zero Hint is valid.
type Hint struct {
	// Entries is the number of records and dead letters.
	Entries int
	// Bytes is the payload bytes of the records and dead letters.
	Bytes int
}

// Builder gathers the lines of one Recv into a transport.Batch. Payloads
// of lines are copied into arena blocks, because the framing buffer they
// come from is reused; each copy is capped so that appending to it cannot
// overwrite a neighbour. A dead letter counts as a record toward the
// limits. Every entry carries its token, in order. Slices are allocated
// on the first entry, so a Builder that stays empty allocates nothing.
type Builder struct {
	limits transport.Limits
	hint   Hint
	arena  []byte
	recs   []transport.Record
	dls    []transport.DeadLetter
	toks   []transport.Token
	bytes  int64
}

// New returns a Builder for one batch under limits (normalised here),
// sized after hint, usually the Hint of the previous batch.
func New(limits transport.Limits, hint Hint) Builder {
	return Builder{limits: limits.Normalize(), hint: hint}
}

// Len returns the number of records and dead letters added.
func (b *Builder) Len() int { return len(b.recs) + len(b.dls) }

// Full reports whether the batch must take no more under its limits. It
// is never full while empty.
func (b *Builder) Full() bool { return b.limits.Full(b.Len(), b.bytes) }

// AddLine appends a record of format JSON holding a copy of line, with
// commit token tok.
func (b *Builder) AddLine(line []byte, tok transport.Token) {
	b.grow()
	b.recs = append(b.recs, transport.Record{Payload: b.copyLine(line), Format: codec.JSON})
	b.bytes += int64(len(line))
	b.toks = append(b.toks, tok)
}

// AddDeadLetter appends a dead letter whose record payload is prefix (kept
// as it is, not copied), with the given reason, tok.String() as its
// source and tok as its commit token.
func (b *Builder) AddDeadLetter(prefix []byte, reason string, tok transport.Token) {
	b.grow()
	b.dls = append(b.dls, transport.DeadLetter{
		Record: transport.Record{Payload: prefix, Format: codec.JSON},
		Reason: reason,
		Source: tok.String(),
	})
	b.bytes += int64(len(prefix))
	b.toks = append(b.toks, tok)
}

// Batch stamps every record and dead letter with now and returns the
// batch, with the Hint to size the next one.
func (b *Builder) Batch(now time.Time) (transport.Batch, Hint) {
	for i := range b.recs {
		b.recs[i].Timestamp = now
	}
	for i := range b.dls {
		b.dls[i].Record.Timestamp = now
	}
	return transport.Batch{Records: b.recs, Tokens: b.toks, DeadLetters: b.dls},
		Hint{Entries: len(b.toks), Bytes: int(b.bytes)}
}

// grow sizes the slices and the first arena block on the first entry.
func (b *Builder) grow() {
	if b.toks != nil {
		return
	}
	n := min(b.limits.MaxRecords, max(minBatchCap, b.hint.Entries))
	b.recs = make([]transport.Record, 0, n)
	b.toks = make([]transport.Token, 0, n)
	b.arena = make([]byte, 0, min(max(arenaChunk, b.hint.Bytes), maxFirstArena))
}

// copyLine returns a copy of line in the arena, capped so that appending
// to it cannot overwrite a neighbour.
func (b *Builder) copyLine(line []byte) []byte {
	if cap(b.arena)-len(b.arena) < len(line) {
		b.arena = make([]byte, 0, max(arenaChunk, len(line)))
	}
	start := len(b.arena)
	b.arena = append(b.arena, line...)
	return b.arena[start:len(b.arena):len(b.arena)]
}

// OversizeReason is the dead-letter reason of an Oversize frame: its
// size, the section.max_line_bytes limit, and how much of the line the
// payload holds.
func OversizeReason(fr linesplit.Frame, section string, maxLine int) string {
	return fmt.Sprintf("line of %d bytes exceeds %s.max_line_bytes %d (payload holds its first %d bytes)",
		fr.Size, section, maxLine, len(fr.Line))
}

// OversizeLogInterval is the least time between two warnings about
// oversize lines sent to dead letters; the ones in between are counted
// and reported with the next.
const OversizeLogInterval = 10 * time.Second
