package codec

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Ext is a MessagePack extension value (including the timestamp type, -1),
// kept as its type and raw data so it re-encodes byte for byte. Its field
// kind is KindOther.
type Ext struct {
	// Type is the extension type.
	Type int8
	// Data is the extension body.
	Data []byte
}

// EncodeMsgpack writes the extension with the smallest header that fits.
// It implements msgpack.CustomEncoder.
func (x Ext) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeExtHeader(x.Type, len(x.Data)); err != nil {
		return err
	}
	_, err := enc.Writer().Write(x.Data)
	return err
}

// mpDecoder decodes a MsgPack value that walkMsgPack has already checked,
// using the msgpack library's primitives. The check bounds the recursion
// depth, the container counts and every length, so decoding cannot run out
// of data or stack.
type mpDecoder struct {
	data    []byte
	r       bytes.Reader
	dec     *msgpack.Decoder
	in      *Interner
	scratch []byte
}

// maxScratch bounds the key buffer a pooled decoder keeps.
const maxScratch = 1024

var mpDecoders = sync.Pool{New: func() any {
	return &mpDecoder{dec: msgpack.NewDecoder(nil), scratch: make([]byte, 0, 64)}
}}

func parseMsgPack(data []byte, opts ParseOptions) (*Value, error) {
	if len(data) == 0 {
		return nil, newError(ErrEmpty, MsgPack, 0, "")
	}
	if _, err := MsgPackDepth(data, opts.maxDepth()); err != nil {
		return nil, err
	}
	d := mpDecoders.Get().(*mpDecoder)
	d.data = data
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	d.in = opts.Interner
	root, err := d.value(true)
	off := len(data) - d.r.Len()
	d.in = nil
	d.data = nil
	d.r.Reset(nil)
	d.dec.Reset(nil)
	mpDecoders.Put(d)
	if err != nil {
		if e, ok := err.(*Error); ok {
			return nil, e
		}
		return nil, newError(ErrSyntax, MsgPack, off, "undecodable value")
	}
	v := &Value{format: MsgPack, raw: data, root: root}
	switch m := root.(type) {
	case map[string]any:
		v.obj = m
	case map[any]any:
		v.anyObj = m
	}
	return v, nil
}

func (d *mpDecoder) offset() int { return len(d.data) - d.r.Len() }

// peek returns the next code without going through the decoder's reader
// interface. The walk has checked that a value follows.
func (d *mpDecoder) peek() (byte, error) {
	off := d.offset()
	if off >= len(d.data) {
		return 0, newError(ErrTruncated, MsgPack, off, "expected another value")
	}
	return d.data[off], nil
}

// value decodes the next value. top is true for the payload's top level,
// whose map keys are interned.
func (d *mpDecoder) value(top bool) (any, error) {
	c, err := d.peek()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedNum(c):
		return d.dec.DecodeInt64()
	case msgpcode.IsFixedMap(c):
		return d.mapValue(top)
	case msgpcode.IsFixedArray(c):
		return d.arrayValue()
	case msgpcode.IsFixedString(c):
		return d.dec.DecodeString()
	}
	switch c {
	case msgpcode.Nil:
		return nil, d.dec.DecodeNil()
	case msgpcode.False, msgpcode.True:
		return d.dec.DecodeBool()
	case msgpcode.Float:
		return d.dec.DecodeFloat32()
	case msgpcode.Double:
		return d.dec.DecodeFloat64()
	case msgpcode.Uint8, msgpcode.Uint16, msgpcode.Uint32, msgpcode.Uint64:
		u, err := d.dec.DecodeUint64()
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case msgpcode.Int8, msgpcode.Int16, msgpcode.Int32, msgpcode.Int64:
		return d.dec.DecodeInt64()
	case msgpcode.Str8, msgpcode.Str16, msgpcode.Str32:
		return d.dec.DecodeString()
	case msgpcode.Bin8, msgpcode.Bin16, msgpcode.Bin32:
		return d.dec.DecodeBytes()
	case msgpcode.Array16, msgpcode.Array32:
		return d.arrayValue()
	case msgpcode.Map16, msgpcode.Map32:
		return d.mapValue(top)
	case msgpcode.FixExt1, msgpcode.FixExt2, msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.FixExt16,
		msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		id, n, err := d.dec.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		body := make([]byte, n)
		if err := d.dec.ReadFull(body); err != nil {
			return nil, err
		}
		return Ext{Type: id, Data: body}, nil
	}
	return nil, newError(ErrSyntax, MsgPack, d.offset(), "unknown code 0x"+strconv.FormatUint(uint64(c), 16))
}

func (d *mpDecoder) arrayValue() (any, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	s := make([]any, n)
	for i := range s {
		if s[i], err = d.value(false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// mapValue decodes a map. String and binary keys give a map[string]any;
// once another scalar key (integer, float, bool, nil) appears the map turns
// into a map[any]any.
func (d *mpDecoder) mapValue(top bool) (any, error) {
	n, err := d.dec.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, n)
	for i := 0; i < n; i++ {
		c, err := d.peek()
		if err != nil {
			return nil, err
		}
		if !msgpcode.IsString(c) && !msgpcode.IsBin(c) {
			return d.anyMap(m, n-i)
		}
		k, err := d.key(top)
		if err != nil {
			return nil, err
		}
		if m[k], err = d.value(false); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (d *mpDecoder) anyMap(m map[string]any, left int) (any, error) {
	am := make(map[any]any, len(m)+left)
	for k, v := range m {
		am[k] = v
	}
	for i := 0; i < left; i++ {
		off := d.offset()
		k, err := d.value(false)
		if err != nil {
			return nil, err
		}
		switch k.(type) {
		case nil, bool, int64, uint64, float32, float64, string:
		case []byte:
			k = string(k.([]byte))
		default:
			return nil, newError(ErrUnsupported, MsgPack, off, "map key is not a scalar")
		}
		if am[k], err = d.value(false); err != nil {
			return nil, err
		}
	}
	return am, nil
}

// key reads a string or binary map key, through the interner when asked.
func (d *mpDecoder) key(intern bool) (string, error) {
	if !intern || d.in == nil {
		return d.dec.DecodeString()
	}
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if n <= 0 {
		return d.in.Intern(""), nil
	}
	if n > d.in.maxLen {
		// Too long to intern: hand a fresh buffer over as the string.
		b := make([]byte, n)
		if err := d.dec.ReadFull(b); err != nil {
			return "", err
		}
		return unsafe.String(unsafe.SliceData(b), n), nil
	}
	var b []byte
	switch {
	case n <= cap(d.scratch):
		b = d.scratch[:n]
	case n <= maxScratch:
		d.scratch = make([]byte, n)
		b = d.scratch
	default: // keep the pooled scratch buffer small
		b = make([]byte, n)
	}
	if err := d.dec.ReadFull(b); err != nil {
		return "", err
	}
	return d.in.InternBytes(b), nil
}

// encodeMsgPack encodes a decoded (and possibly modified) tree. Map keys
// are written in sorted order so equal values give equal bytes; integers
// take their smallest encoding.
func encodeMsgPack(root any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	err := encodeMsgPackValue(enc, root)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, newError(ErrEncode, MsgPack, -1, err.Error())
	}
	return buf.Bytes(), nil
}

func encodeMsgPackValue(enc *msgpack.Encoder, v any) error {
	switch x := v.(type) {
	case map[string]any:
		if err := enc.EncodeMapLen(len(x)); err != nil {
			return err
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeMsgPackValue(enc, x[k]); err != nil {
				return err
			}
		}
		return nil
	case map[any]any:
		// Order the entries by the encoding of their keys.
		type entry struct {
			key []byte
			val any
		}
		entries := make([]entry, 0, len(x))
		for k, val := range x {
			kb, err := marshalCompact(k)
			if err != nil {
				return err
			}
			entries = append(entries, entry{kb, val})
		}
		slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		if err := enc.EncodeMapLen(len(entries)); err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := enc.Writer().Write(e.key); err != nil {
				return err
			}
			if err := encodeMsgPackValue(enc, e.val); err != nil {
				return err
			}
		}
		return nil
	case []any:
		if err := enc.EncodeArrayLen(len(x)); err != nil {
			return err
		}
		for _, e := range x {
			if err := encodeMsgPackValue(enc, e); err != nil {
				return err
			}
		}
		return nil
	default:
		return enc.Encode(v)
	}
}

// marshalCompact encodes one value the way encodeMsgPack does.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	return buf.Bytes(), err
}
