package linesplit

import "bytes"

// DeadLetterPrefixBytes caps the part of an oversize line kept as the
// payload of its dead letter: enough to recognise the record, never the
// whole line.
const DeadLetterPrefixBytes = 4096

// MinReadBuffer is the initial size of the Framer buffer; it grows up to
// the line limit plus a terminator when a long line needs it.
const MinReadBuffer = 64 << 10

// Kind says what Framer.Next or Framer.Finish found.
type Kind uint8

const (
	// None: no complete line is buffered; feed more input.
	None Kind = iota
	// Line: a line within the limit, without its terminator.
	Line
	// Blank: an empty or whitespace-only line, consumed.
	Blank
	// Oversize: a line over the limit, consumed without being held.
	Oversize
)

// Frame is one framed line.
type Frame struct {
	// Kind says what was framed.
	Kind Kind
	// Line is the content of a Line frame, without its terminator; it
	// aliases the Framer buffer and stays valid only until the next call
	// to Space. For an Oversize frame it is a copied prefix of at most
	// DeadLetterPrefixBytes (and at most the line limit), which the caller
	// may keep.
	Line []byte
	// End is the stream offset just past the line's terminator: the
	// commit position of the line.
	End int64
	// Size is the content length in bytes of an Oversize line, without
	// its terminator.
	Size int64
}

// Framer splits a byte stream into NDJSON lines with bounded memory.
//
// Input is written into the slice returned by Space and announced with
// Wrote; Next then returns complete lines one at a time. A line is framed
// only when its '\n' has arrived (a partial last line stays buffered), a
// trailing '\r' is stripped, and whitespace-only lines are reported as
// Blank. A line longer than the limit is never held whole: once more than
// limit+1 bytes are buffered without a newline, the Framer keeps a short
// prefix, discards the rest as it arrives, and reports the line as
// Oversize when its newline appears. The buffer never exceeds limit+2
// bytes. A Framer is not safe for concurrent use.
type Framer struct {
	buf     []byte
	r, w    int   // unconsumed input is buf[r:w]
	scanned int   // buf[r:r+scanned] holds no '\n'
	off     int64 // stream offset of buf[r]
	max     int

	skipping  bool   // inside an oversize line
	skipStart int64  // stream offset where the oversize line began
	skipLast  byte   // last byte discarded, to leave a '\r' out of the size
	prefix    []byte // copied head of the oversize line
}

// New returns a Framer for lines of at most maxLine bytes (without their
// terminator), starting at stream offset 0. maxLine must be positive.
func New(maxLine int) *Framer {
	return &Framer{buf: make([]byte, min(MinReadBuffer, maxLine+2)), max: maxLine}
}

// Reset drops all buffered input and restarts framing at stream offset
// off.
func (f *Framer) Reset(off int64) {
	f.r, f.w, f.scanned = 0, 0, 0
	f.off = off
	f.skipping = false
	f.prefix = nil
}

// Pending returns how many input bytes are buffered but not yet framed.
func (f *Framer) Pending() int { return f.w - f.r }

// Offset returns the stream offset just past the input consumed so far:
// framed lines and discarded oversize bytes, not what is still pending.
func (f *Framer) Offset() int64 { return f.off }

// ReadOffset returns the stream offset just past the last byte fed in.
func (f *Framer) ReadOffset() int64 { return f.off + int64(f.w-f.r) }

// BufferSize returns the size of the Framer's input buffer: the memory a
// receiver holds for framing, which never exceeds the line limit plus 2.
func (f *Framer) BufferSize() int { return len(f.buf) }

// Space returns a non-empty slice to read input into, compacting or
// growing the buffer as needed. Call Next until it returns a None frame
// first, so that a full buffer always holds part of a line that may still
// fit.
func (f *Framer) Space() []byte {
	if f.r == f.w {
		f.r, f.w = 0, 0
	}
	if f.r > 0 && len(f.buf)-f.w < len(f.buf)/4 {
		n := copy(f.buf, f.buf[f.r:f.w])
		f.r, f.w = 0, n
	}
	if f.w == len(f.buf) {
		// The buffer holds one partial line of at most max+1 bytes (Next
		// would have switched to skipping beyond that), so growing to
		// max+2 always makes room.
		nb := make([]byte, min(max(2*len(f.buf), MinReadBuffer), f.max+2))
		f.w = copy(nb, f.buf[f.r:f.w])
		f.r = 0
		f.buf = nb
	}
	return f.buf[f.w:]
}

// Wrote records that n bytes were written into the slice from Space.
func (f *Framer) Wrote(n int) { f.w += n }

// Next frames the next buffered line, or returns a None frame when more
// input is needed.
func (f *Framer) Next() Frame {
	if f.skipping {
		i := bytes.IndexByte(f.buf[f.r:f.w], '\n')
		if i < 0 {
			if f.w > f.r {
				f.skipLast = f.buf[f.w-1]
			}
			f.off += int64(f.w - f.r)
			f.r = f.w
			return Frame{Kind: None}
		}
		last := f.skipLast
		if i > 0 {
			last = f.buf[f.r+i-1]
		}
		size := f.off + int64(i) - f.skipStart
		if last == '\r' {
			size--
		}
		f.off += int64(i + 1)
		f.r += i + 1
		f.skipping = false
		p := f.prefix
		f.prefix = nil
		return Frame{Kind: Oversize, Line: p, End: f.off, Size: size}
	}
	i := bytes.IndexByte(f.buf[f.r+f.scanned:f.w], '\n')
	if i < 0 {
		f.scanned = f.w - f.r
		if f.scanned > f.max+1 {
			// Over the limit whatever follows: keep a prefix, drop the rest.
			f.skipping = true
			f.skipStart = f.off
			f.prefix = bytes.Clone(f.buf[f.r : f.r+min(DeadLetterPrefixBytes, f.max, f.scanned)])
			f.skipLast = f.buf[f.w-1]
			f.off += int64(f.w - f.r)
			f.r = f.w
			f.scanned = 0
		}
		return Frame{Kind: None}
	}
	n := f.scanned + i
	line := f.buf[f.r : f.r+n]
	f.r += n + 1
	f.off += int64(n + 1)
	f.scanned = 0
	return f.classify(line)
}

// Finish frames the unterminated rest of the input as a last line, for a
// stream that has ended. It returns a None frame when nothing is left.
func (f *Framer) Finish() Frame {
	if f.skipping {
		size := f.off - f.skipStart
		if f.skipLast == '\r' {
			size--
		}
		f.skipping = false
		p := f.prefix
		f.prefix = nil
		return Frame{Kind: Oversize, Line: p, End: f.off, Size: size}
	}
	if f.r == f.w {
		return Frame{Kind: None}
	}
	line := f.buf[f.r:f.w]
	f.off += int64(f.w - f.r)
	f.r = f.w
	f.scanned = 0
	return f.classify(line)
}

// classify turns a complete line (terminator removed) into a frame ending
// at the current offset.
func (f *Framer) classify(line []byte) Frame {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > f.max {
		return Frame{
			Kind: Oversize,
			Line: bytes.Clone(line[:min(DeadLetterPrefixBytes, f.max)]),
			End:  f.off,
			Size: int64(len(line)),
		}
	}
	if IsBlank(line) {
		return Frame{Kind: Blank, End: f.off}
	}
	return Frame{Kind: Line, Line: line, End: f.off}
}

// IsBlank reports a line of ASCII whitespace only (an empty line
// included): the Framer reports such a line as Blank.
func IsBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\f', '\v':
		default:
			return false
		}
	}
	return true
}
