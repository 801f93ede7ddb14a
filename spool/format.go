package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk format (all integers little-endian).
//
// A segment file, named <id>.seg with id a zero-padded decimal, starts with
// a 40-byte header:
//
//	[0:4]   magic F5 'K' 'S' 'G'
//	[4]     format version (1)
//	[5]     codec of every payload in the segment (0 none, 1 zstd)
//	[6:8]   reserved, zero
//	[8:16]  segment id
//	[16:24] sequence number of the first record
//	[24:32] creation time, Unix nanoseconds
//	[32:36] reserved, zero
//	[36:40] CRC32C of bytes [0:36]
//
// followed by frames, one per record, each with a 28-byte header:
//
//	[0:4]   magic F5 'K' 'R' 'C'
//	[4:8]   CRC32C of bytes [8:28] and the payload
//	[8:16]  sequence number
//	[16:24] append time, Unix nanoseconds
//	[24:28] stored payload length
//	[28:]   stored payload (compressed with the segment's codec)
//
// The magic lets a reader that meets a damaged frame scan forward to the
// next intact one (0xF5 never occurs in UTF-8 text). Sequence numbers are
// consecutive within a segment and across the segments of one run.
//
// The ledger file holds two 64-byte slots written alternately; the valid
// slot with the higher generation wins, so a torn write of one slot leaves
// the other:
//
//	[0:4]   magic F5 'K' 'L' 'G'
//	[4]     format version (1)
//	[5:8]   reserved
//	[8:16]  generation
//	[16:24] next sequence number (write position)
//	[24:32] highest sequence number handed to a reader (read position)
//	[32:40] acknowledged: every record up to this one is acknowledged
//	[40:60] reserved
//	[60:64] CRC32C of bytes [0:60]
const (
	segHeaderSize   = 40
	frameHeaderSize = 28
	ledgerSlotSize  = 64
	formatVersion   = 1

	segSuffix     = ".seg"
	corruptSuffix = ".corrupt"
	ledgerName    = "ledger"
	lockName      = "LOCK"
)

var (
	segMagic    = [4]byte{0xF5, 'K', 'S', 'G'}
	frameMagic  = [4]byte{0xF5, 'K', 'R', 'C'}
	ledgerMagic = [4]byte{0xF5, 'K', 'L', 'G'}
	castagnoli  = crc32.MakeTable(crc32.Castagnoli)
)

// codec identifies how the payloads of a segment are stored.
type codec uint8

const (
	codecNone codec = 0
	codecZstd codec = 1
)

// String names the codec as in spool.compression.
func (c codec) String() string {
	switch c {
	case codecNone:
		return string(CompressionNone)
	case codecZstd:
		return string(CompressionZstd)
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

func codecOf(c Compression) codec {
	if c == CompressionZstd {
		return codecZstd
	}
	return codecNone
}

// segHeader is the decoded header of a segment file.
type segHeader struct {
	version uint8
	codec   codec
	id      uint64
	first   uint64
	created int64
}

func (h segHeader) encode() []byte {
	b := make([]byte, segHeaderSize)
	copy(b[0:4], segMagic[:])
	b[4] = h.version
	b[5] = byte(h.codec)
	binary.LittleEndian.PutUint64(b[8:16], h.id)
	binary.LittleEndian.PutUint64(b[16:24], h.first)
	binary.LittleEndian.PutUint64(b[24:32], uint64(h.created))
	binary.LittleEndian.PutUint32(b[36:40], crc32.Checksum(b[0:36], castagnoli))
	return b
}

// decodeSegHeader parses a segment header. It reports an error for a short,
// damaged or unknown header; errUnsupported wraps a valid header of another
// format version or codec.
func decodeSegHeader(b []byte) (segHeader, error) {
	if len(b) < segHeaderSize {
		return segHeader{}, fmt.Errorf("header is %d bytes, want %d", len(b), segHeaderSize)
	}
	if [4]byte(b[0:4]) != segMagic {
		return segHeader{}, fmt.Errorf("bad segment magic % x", b[0:4])
	}
	if got, want := binary.LittleEndian.Uint32(b[36:40]), crc32.Checksum(b[0:36], castagnoli); got != want {
		return segHeader{}, fmt.Errorf("segment header checksum %08x, want %08x", got, want)
	}
	h := segHeader{
		version: b[4],
		codec:   codec(b[5]),
		id:      binary.LittleEndian.Uint64(b[8:16]),
		first:   binary.LittleEndian.Uint64(b[16:24]),
		created: int64(binary.LittleEndian.Uint64(b[24:32])),
	}
	if h.version != formatVersion {
		return h, &unsupportedError{what: fmt.Sprintf("format version %d (this build reads %d)", h.version, formatVersion)}
	}
	if h.codec != codecNone && h.codec != codecZstd {
		return h, &unsupportedError{what: fmt.Sprintf("codec %d (this build knows none=0 and zstd=1)", h.codec)}
	}
	return h, nil
}

// unsupportedError is an intact segment header this build cannot read.
type unsupportedError struct{ what string }

// Error describes what is unsupported.
func (e *unsupportedError) Error() string { return e.what }

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, seq uint64, ts int64, payload []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	h := dst[n : n+frameHeaderSize]
	copy(h[0:4], frameMagic[:])
	binary.LittleEndian.PutUint64(h[8:16], seq)
	binary.LittleEndian.PutUint64(h[16:24], uint64(ts))
	binary.LittleEndian.PutUint32(h[24:28], uint32(len(payload)))
	dst = append(dst, payload...)
	// Header fields and payload are contiguous: one pass.
	binary.LittleEndian.PutUint32(dst[n+4:n+8], crc32.Checksum(dst[n+8:], castagnoli))
	return dst
}

// ledgerState is what the ledger records.
type ledgerState struct {
	gen   uint64
	next  uint64
	read  uint64
	acked uint64
}

func (l ledgerState) encode() []byte {
	b := make([]byte, ledgerSlotSize)
	copy(b[0:4], ledgerMagic[:])
	b[4] = formatVersion
	binary.LittleEndian.PutUint64(b[8:16], l.gen)
	binary.LittleEndian.PutUint64(b[16:24], l.next)
	binary.LittleEndian.PutUint64(b[24:32], l.read)
	binary.LittleEndian.PutUint64(b[32:40], l.acked)
	binary.LittleEndian.PutUint32(b[60:64], crc32.Checksum(b[0:60], castagnoli))
	return b
}

// decodeLedgerSlot parses one slot; ok is false for a damaged or empty one.
func decodeLedgerSlot(b []byte) (ledgerState, bool) {
	if len(b) < ledgerSlotSize || [4]byte(b[0:4]) != ledgerMagic || b[4] != formatVersion {
		return ledgerState{}, false
	}
	if binary.LittleEndian.Uint32(b[60:64]) != crc32.Checksum(b[0:60], castagnoli) {
		return ledgerState{}, false
	}
	l := ledgerState{
		gen:   binary.LittleEndian.Uint64(b[8:16]),
		next:  binary.LittleEndian.Uint64(b[16:24]),
		read:  binary.LittleEndian.Uint64(b[24:32]),
		acked: binary.LittleEndian.Uint64(b[32:40]),
	}
	if l.next == 0 || l.acked >= l.next || l.read >= l.next {
		// A consistent ledger never acknowledges or hands out a record
		// that was not written.
		return ledgerState{}, false
	}
	return l, true
}

// decodeLedger picks the valid slot with the highest generation.
func decodeLedger(b []byte) (ledgerState, bool) {
	var best ledgerState
	found := false
	for off := 0; off+ledgerSlotSize <= len(b) && off < 2*ledgerSlotSize; off += ledgerSlotSize {
		if l, ok := decodeLedgerSlot(b[off : off+ledgerSlotSize]); ok && (!found || l.gen > best.gen) {
			best, found = l, true
		}
	}
	return best, found
}

// segName is the file name of segment id.
func segName(id uint64) string { return fmt.Sprintf("%020d%s", id, segSuffix) }

// parseSegName returns the id of a segment file name (also of a set-aside
// one, with corrupt true).
func parseSegName(name string) (id uint64, corrupt, ok bool) {
	base, corrupt := strings.CutSuffix(name, corruptSuffix)
	base, found := strings.CutSuffix(base, segSuffix)
	if !found || base == "" {
		return 0, false, false
	}
	for _, r := range base {
		if r < '0' || r > '9' {
			return 0, false, false
		}
	}
	id, err := strconv.ParseUint(base, 10, 64)
	if err != nil {
		return 0, false, false
	}
	return id, corrupt, true
}
