package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
)

const (
	// readAhead is how much a scanner reads at once.
	readAhead = 256 << 10
	// keepBuffer is the largest buffer a scanner keeps between frames;
	// a larger one (for a large frame) is dropped after use.
	keepBuffer = 4 << 20
)

// itemKind is what a scanner found at an offset.
type itemKind uint8

const (
	itemEnd     itemKind = iota // no more bytes before the end bound
	itemFrame                   // an intact frame
	itemGarbage                 // a damaged span, up to the next intact frame or the end
)

// item is one result of scanner.next.
type item struct {
	kind itemKind
	off  int64 // where the frame or the damaged span starts
	size int64 // bytes of the frame (header included) or of the span
	seq  uint64
	ts   int64
	// payload is the stored payload. It aliases the scanner's buffer and
	// is valid until the next call.
	payload []byte
	// tail is set on a damaged span that runs to the end bound.
	tail bool
}

// scanner parses frames from a ReaderAt between a start offset and an end
// bound, and resynchronises past damage by looking for the next frame magic
// whose frame is intact. It never trusts a length beyond the end bound or
// HardMaxRecordBytes, so damaged input cannot make it allocate more than
// the bytes that are there.
type scanner struct {
	r      io.ReaderAt
	end    int64
	buf    []byte
	bufOff int64
	// shrunk is set when the underlying file was shorter than end.
	shrunk bool
}

func (sc *scanner) reset(r io.ReaderAt, end int64) {
	sc.r, sc.end, sc.buf, sc.bufOff, sc.shrunk = r, end, sc.buf[:0], 0, false
	if cap(sc.buf) > keepBuffer {
		sc.buf = nil
	}
}

// window returns the bytes [off, off+n), reading them if the buffer does
// not hold them. n must not exceed end-off. A shorter result means the file
// is shorter than the end bound, which is then lowered.
func (sc *scanner) window(off int64, n int) ([]byte, error) {
	if off >= sc.bufOff && off+int64(n) <= sc.bufOff+int64(len(sc.buf)) {
		i := off - sc.bufOff
		return sc.buf[i : i+int64(n)], nil
	}
	size := int64(max(n, readAhead))
	size = min(size, sc.end-off)
	if size < int64(n) {
		size = int64(n)
	}
	if int64(cap(sc.buf)) < size || (cap(sc.buf) > keepBuffer && size <= keepBuffer) {
		sc.buf = make([]byte, size)
	}
	sc.buf = sc.buf[:size]
	m, err := sc.r.ReadAt(sc.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		sc.buf, sc.bufOff = sc.buf[:0], 0
		return nil, err
	}
	sc.buf, sc.bufOff = sc.buf[:m], off
	if int64(m) < size {
		// The file ends before the bound we were given.
		sc.end = off + int64(m)
		sc.shrunk = true
	}
	if m < n {
		return sc.buf[:m], nil
	}
	return sc.buf[:n], nil
}

// frameAt returns the intact frame at off whose sequence number is in
// [minSeq, maxSeq], or ok false.
func (sc *scanner) frameAt(off int64, minSeq, maxSeq uint64) (item, bool, error) {
	if sc.end-off < frameHeaderSize {
		return item{}, false, nil
	}
	h, err := sc.window(off, frameHeaderSize)
	if err != nil || len(h) < frameHeaderSize {
		return item{}, false, err
	}
	if [4]byte(h[0:4]) != frameMagic {
		return item{}, false, nil
	}
	seq := binary.LittleEndian.Uint64(h[8:16])
	ts := int64(binary.LittleEndian.Uint64(h[16:24]))
	n := int64(binary.LittleEndian.Uint32(h[24:28]))
	want := binary.LittleEndian.Uint32(h[4:8])
	if seq < minSeq || seq > maxSeq || n > HardMaxRecordBytes || n > sc.end-off-frameHeaderSize {
		return item{}, false, nil
	}
	b, err := sc.window(off, frameHeaderSize+int(n))
	if err != nil || int64(len(b)) < frameHeaderSize+n {
		return item{}, false, err
	}
	if crc32.Checksum(b[8:], castagnoli) != want {
		return item{}, false, nil
	}
	return item{kind: itemFrame, off: off, size: frameHeaderSize + n, seq: seq, ts: ts, payload: b[frameHeaderSize:]}, true, nil
}

// next returns what is at off: the end, an intact frame with a sequence
// number in [minSeq, maxSeq], or a damaged span up to the next such frame
// (or to the end). The only errors are read errors.
func (sc *scanner) next(off int64, minSeq, maxSeq uint64) (item, error) {
	if off >= sc.end {
		return item{kind: itemEnd, off: off}, nil
	}
	it, ok, err := sc.frameAt(off, minSeq, maxSeq)
	if err != nil {
		return item{}, err
	}
	if ok {
		return it, nil
	}
	// Resynchronise: the next magic whose frame is intact.
	const chunk = 64 << 10
	pos := off + 1
	for pos+int64(len(frameMagic)) <= sc.end {
		n := int(min(int64(chunk), sc.end-pos))
		w, err := sc.window(pos, n)
		if err != nil {
			return item{}, err
		}
		i := bytes.Index(w, frameMagic[:])
		if i < 0 {
			if len(w) < len(frameMagic) {
				break
			}
			// Keep the last bytes: a magic may straddle two chunks.
			pos += int64(len(w) - len(frameMagic) + 1)
			continue
		}
		cand := pos + int64(i)
		if _, ok, err := sc.frameAt(cand, minSeq, maxSeq); err != nil {
			return item{}, err
		} else if ok {
			return item{kind: itemGarbage, off: off, size: cand - off}, nil
		}
		pos = cand + 1
	}
	return item{kind: itemGarbage, off: off, size: sc.end - off, tail: true}, nil
}

// anySeq is the widest sequence range.
const anySeq = math.MaxUint64
