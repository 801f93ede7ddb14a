package file

import "bytes"

// deadLetterPrefixBytes caps the part of an oversize line kept as the
// payload of its dead letter: enough to recognise the record, never the
// whole line.
const deadLetterPrefixBytes = 4096

// minReadBuffer is the initial size of the framer buffer; it grows up to
// the line limit plus a terminator when a long line needs it.
const minReadBuffer = 64 << 10

// frameKind says what framer.next found.
type frameKind uint8

const (
	// frameNone: no complete line is buffered; feed more input.
	frameNone frameKind = iota
	// frameLine: a line within the limit, without its terminator.
	frameLine
	// frameBlank: an empty or whitespace-only line, consumed.
	frameBlank
	// frameOversize: a line over the limit, consumed without being held.
	frameOversize
)

// frame is one framed line. line aliases the framer buffer and stays valid
// only until the next call to space; end is the stream offset just past
// the line's terminator (the commit position of the line).
type frame struct {
	kind frameKind
	line []byte // frameLine: the content; frameOversize: a copied prefix
	end  int64
	size int64 // frameOversize: the content length in bytes
}

// framer splits a byte stream into NDJSON lines with bounded memory.
//
// Input is written into the slice returned by space and announced with
// wrote; next then returns complete lines one at a time. A line is framed
// only when its '\n' has arrived (a partial last line stays buffered), a
// trailing '\r' is stripped, and whitespace-only lines are reported as
// blank. A line longer than max bytes is never held whole: once more than
// max+1 bytes are buffered without a newline, the framer keeps a short
// prefix, discards the rest as it arrives, and reports the line as
// oversize when its newline appears. The buffer never exceeds max+2 bytes.
type framer struct {
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

func newFramer(maxLine int) *framer {
	return &framer{buf: make([]byte, min(minReadBuffer, maxLine+2)), max: maxLine}
}

// reset drops all buffered input and restarts framing at stream offset off.
func (f *framer) reset(off int64) {
	f.r, f.w, f.scanned = 0, 0, 0
	f.off = off
	f.skipping = false
	f.prefix = nil
}

// pending returns how many input bytes are buffered but not yet framed.
func (f *framer) pending() int { return f.w - f.r }

// readOffset returns the stream offset just past the last byte fed in.
func (f *framer) readOffset() int64 { return f.off + int64(f.w-f.r) }

// space returns a non-empty slice to read input into, compacting or growing
// the buffer as needed. Call next until it returns frameNone first, so
// that a full buffer always holds part of a line that may still fit.
func (f *framer) space() []byte {
	if f.r == f.w {
		f.r, f.w = 0, 0
	}
	if f.r > 0 && len(f.buf)-f.w < len(f.buf)/4 {
		n := copy(f.buf, f.buf[f.r:f.w])
		f.r, f.w = 0, n
	}
	if f.w == len(f.buf) {
		// The buffer holds one partial line of at most max+1 bytes (next
		// would have switched to skipping beyond that), so growing to
		// max+2 always makes room.
		nb := make([]byte, min(max(2*len(f.buf), minReadBuffer), f.max+2))
		f.w = copy(nb, f.buf[f.r:f.w])
		f.r = 0
		f.buf = nb
	}
	return f.buf[f.w:]
}

// wrote records that n bytes were written into the slice from space.
func (f *framer) wrote(n int) { f.w += n }

// next frames the next buffered line, or returns frameNone when more input
// is needed.
func (f *framer) next() frame {
	if f.skipping {
		i := bytes.IndexByte(f.buf[f.r:f.w], '\n')
		if i < 0 {
			if f.w > f.r {
				f.skipLast = f.buf[f.w-1]
			}
			f.off += int64(f.w - f.r)
			f.r = f.w
			return frame{kind: frameNone}
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
		return frame{kind: frameOversize, line: p, end: f.off, size: size}
	}
	i := bytes.IndexByte(f.buf[f.r+f.scanned:f.w], '\n')
	if i < 0 {
		f.scanned = f.w - f.r
		if f.scanned > f.max+1 {
			// Over the limit whatever follows: keep a prefix, drop the rest.
			f.skipping = true
			f.skipStart = f.off
			f.prefix = bytes.Clone(f.buf[f.r : f.r+min(deadLetterPrefixBytes, f.max, f.scanned)])
			f.skipLast = f.buf[f.w-1]
			f.off += int64(f.w - f.r)
			f.r = f.w
			f.scanned = 0
		}
		return frame{kind: frameNone}
	}
	n := f.scanned + i
	line := f.buf[f.r : f.r+n]
	f.r += n + 1
	f.off += int64(n + 1)
	f.scanned = 0
	return f.classify(line)
}

// finish frames the unterminated rest of the input as a last line, for a
// stream that has ended. It returns frameNone when nothing is left.
func (f *framer) finish() frame {
	if f.skipping {
		size := f.off - f.skipStart
		if f.skipLast == '\r' {
			size--
		}
		f.skipping = false
		p := f.prefix
		f.prefix = nil
		return frame{kind: frameOversize, line: p, end: f.off, size: size}
	}
	if f.r == f.w {
		return frame{kind: frameNone}
	}
	line := f.buf[f.r:f.w]
	f.off += int64(f.w - f.r)
	f.r = f.w
	f.scanned = 0
	return f.classify(line)
}

// classify turns a complete line (terminator removed) into a frame ending
// at the current offset.
func (f *framer) classify(line []byte) frame {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > f.max {
		return frame{
			kind: frameOversize,
			line: bytes.Clone(line[:min(deadLetterPrefixBytes, f.max)]),
			end:  f.off,
			size: int64(len(line)),
		}
	}
	if isBlank(line) {
		return frame{kind: frameBlank, end: f.off}
	}
	return frame{kind: frameLine, line: line, end: f.off}
}

// isBlank reports a line of ASCII whitespace only.
func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\f', '\v':
		default:
			return false
		}
	}
	return true
}
