package tiered

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
)

// recordVersion is the first byte of a spooled record.
const recordVersion = 1

// ErrBadRecord is matched by the error of DecodeRecord for bytes that are not
// a record written by EncodeRecord.
var ErrBadRecord = errors.New("tiered: undecodable spooled record")

// EncodeRecord appends the spooled form of rec to dst: a version byte,
// the payload format, the timestamp, the key, the headers and the payload.
// DecodeRecord reads it back.
func EncodeRecord(dst []byte, rec transport.Record) []byte {
	dst = append(dst, recordVersion, byte(rec.Format))
	var ts int64
	if !rec.Timestamp.IsZero() {
		ts = rec.Timestamp.UnixNano()
	}
	dst = binary.AppendVarint(dst, ts)
	if rec.Key == nil {
		dst = binary.AppendUvarint(dst, 0)
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(rec.Key))+1)
		dst = append(dst, rec.Key...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(rec.Headers)))
	for _, h := range rec.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
		dst = append(dst, h.Value...)
	}
	return append(dst, rec.Payload...)
}

func encodedSize(rec transport.Record) int {
	n := 2 + binary.MaxVarintLen64*2 + len(rec.Key) + len(rec.Payload)
	for _, h := range rec.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
	}
	return n
}

// DecodeRecord reads a record written by EncodeRecord. The payload, key and
// header values of the result alias b. Bytes that are not such a record give
// an error matching ErrBadRecord; it never panics.
func DecodeRecord(b []byte) (transport.Record, error) {
	var rec transport.Record
	bad := func(what string) (transport.Record, error) {
		return transport.Record{}, fmt.Errorf("%w: %s", ErrBadRecord, what)
	}
	if len(b) < 2 {
		return bad("shorter than its header")
	}
	if b[0] != recordVersion {
		return bad(fmt.Sprintf("unknown version %d", b[0]))
	}
	rec.Format = codec.Format(b[1])
	if !rec.Format.Valid() {
		return bad(fmt.Sprintf("unknown payload format %d", b[1]))
	}
	b = b[2:]
	ts, n := binary.Varint(b)
	if n <= 0 {
		return bad("bad timestamp")
	}
	b = b[n:]
	if ts != 0 {
		rec.Timestamp = time.Unix(0, ts)
	}
	klen, n := binary.Uvarint(b)
	if n <= 0 || klen > uint64(len(b)-n)+1 {
		return bad("bad key length")
	}
	b = b[n:]
	if klen > 0 {
		rec.Key = b[: klen-1 : klen-1]
		b = b[klen-1:]
	}
	hcount, n := binary.Uvarint(b)
	// Every header takes at least two bytes.
	if n <= 0 || hcount > uint64(len(b)-n)/2 {
		return bad("bad header count")
	}
	b = b[n:]
	if hcount > 0 {
		rec.Headers = make([]transport.Header, hcount)
		for i := range rec.Headers {
			var k, v []byte
			var ok bool
			if k, b, ok = lenPrefixed(b); !ok {
				return bad("bad header key")
			}
			if v, b, ok = lenPrefixed(b); !ok {
				return bad("bad header value")
			}
			rec.Headers[i] = transport.Header{Key: string(k), Value: v}
		}
	}
	rec.Payload = b
	return rec, nil
}

func lenPrefixed(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	b = b[n:]
	return b[:l:l], b[l:], true
}
