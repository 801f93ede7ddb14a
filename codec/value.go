package codec

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Kind is the kind of a top-level field.
type Kind uint8

const (
	// KindMissing means the field is absent, or the top level is not an
	// object.
	KindMissing Kind = iota
	// KindNull is JSON null or MsgPack nil.
	KindNull
	// KindBool is a boolean.
	KindBool
	// KindInt is an integer that fits in an int64.
	KindInt
	// KindFloat is a floating-point number, or an integer outside the
	// int64 range (a JSON literal or a MsgPack uint64 above MaxInt64).
	KindFloat
	// KindString is a string.
	KindString
	// KindOther is an object, an array, MsgPack binary data or an
	// extension.
	KindOther
)

// String returns the lower-case name of the kind.
func (k Kind) String() string {
	switch k {
	case KindMissing:
		return "missing"
	case KindNull:
		return "null"
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindString:
		return "string"
	case KindOther:
		return "other"
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

// Field is a top-level field read with Value.Field. It reads the same for a
// JSON and a MsgPack encoding of the same object. The zero Field is
// missing.
type Field struct {
	kind Kind
	b    bool
	i    int64
	f    float64
	s    string
	raw  any
}

// Kind returns the kind of the field.
func (f Field) Kind() Kind { return f.kind }

// Exists reports whether the field is present (null counts as present).
func (f Field) Exists() bool { return f.kind != KindMissing }

// Str returns the value of a string field; ok is false for any other kind.
func (f Field) Str() (s string, ok bool) { return f.s, f.kind == KindString }

// Int returns the value of an integer field; ok is false for any other
// kind, floats included.
func (f Field) Int() (i int64, ok bool) { return f.i, f.kind == KindInt }

// Float returns the value of a numeric field: a float, or an integer
// converted to float64. ok is false for the other kinds.
func (f Field) Float() (x float64, ok bool) {
	switch f.kind {
	case KindFloat:
		return f.f, true
	case KindInt:
		return float64(f.i), true
	}
	return 0, false
}

// Bool returns the value of a boolean field; ok is false for any other
// kind.
func (f Field) Bool() (b bool, ok bool) { return f.b, f.kind == KindBool }

// Interface returns the decoded value as stored: nil, bool, string,
// json.Number (JSON numbers), int64, uint64, float32, float64, []byte,
// Ext, map[string]any, map[any]any or []any, or whatever Set stored.
func (f Field) Interface() any { return f.raw }

// fieldOf classifies a decoded or user-set value.
func fieldOf(v any) Field {
	switch x := v.(type) {
	case nil:
		return Field{kind: KindNull}
	case string:
		return Field{kind: KindString, s: x, raw: v}
	case bool:
		return Field{kind: KindBool, b: x, raw: v}
	case json.Number:
		return numberField(string(x), v)
	case int64:
		return Field{kind: KindInt, i: x, raw: v}
	case float64:
		return Field{kind: KindFloat, f: x, raw: v}
	case uint64:
		return uintField(x, v)
	case float32:
		return Field{kind: KindFloat, f: float64(x), raw: v}
	case int:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case int8:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case int16:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case int32:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case uint:
		return uintField(uint64(x), v)
	case uint8:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case uint16:
		return Field{kind: KindInt, i: int64(x), raw: v}
	case uint32:
		return Field{kind: KindInt, i: int64(x), raw: v}
	default:
		return Field{kind: KindOther, raw: v}
	}
}

func uintField(x uint64, raw any) Field {
	if x > math.MaxInt64 {
		return Field{kind: KindFloat, f: float64(x), raw: raw}
	}
	return Field{kind: KindInt, i: int64(x), raw: raw}
}

// numberField classifies a JSON number literal: an integer literal that
// fits in an int64 is an Int, everything else a Float.
func numberField(s string, raw any) Field {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Field{kind: KindInt, i: i, raw: raw}
		}
	}
	// A literal out of float64 range parses to ±Inf, which is its value.
	f, _ := strconv.ParseFloat(s, 64)
	return Field{kind: KindFloat, f: f, raw: raw}
}

// Value is a parsed payload. It keeps the original bytes, so an unmodified
// record is forwarded exactly as it came, and it re-encodes in the format it
// was parsed from once a field is changed. There is no conversion between
// formats.
//
// A Value is not safe for concurrent use when one goroutine modifies it;
// concurrent reads are safe.
type Value struct {
	format   Format
	raw      []byte
	root     any
	obj      map[string]any // the top level, when it is a string-keyed object
	anyObj   map[any]any    // the top level, when it is a MsgPack map with other keys
	modified bool
	encoded  []byte
}

// Format returns the format the value was parsed as: JSON or MsgPack.
func (v *Value) Format() Format { return v.format }

// Raw returns the original payload bytes, modified or not. They are the
// caller's bytes, not a copy.
func (v *Value) Raw() []byte { return v.raw }

// Modified reports whether Set or Delete changed the value since it was
// parsed.
func (v *Value) Modified() bool { return v.modified }

// IsObject reports whether the top level is an object (a JSON object or a
// MsgPack map), the only shape whose fields Field, Set and Delete reach.
func (v *Value) IsObject() bool { return v.obj != nil || v.anyObj != nil }

// Interface returns the decoded tree. Treat it as read-only: changes made
// through it are not seen by Modified, so Bytes would forward the original.
func (v *Value) Interface() any { return v.root }

// Len returns the number of top-level fields, or 0 when the top level is
// not an object.
func (v *Value) Len() int {
	if v.obj != nil {
		return len(v.obj)
	}
	return len(v.anyObj)
}

// Field looks up a top-level field by name. It returns a Field of kind
// KindMissing when the field is absent or the top level is not an object.
func (v *Value) Field(name string) Field {
	var x any
	var ok bool
	switch {
	case v.obj != nil:
		x, ok = v.obj[name]
	case v.anyObj != nil:
		x, ok = v.anyObj[name]
	}
	if !ok {
		return Field{}
	}
	return fieldOf(x)
}

// Set adds or replaces a top-level field and marks the value modified. The
// new value must be encodable in the value's format; Bytes reports it if it
// is not. Set returns an *Error of kind ErrNotObject when the top level is
// not an object.
func (v *Value) Set(name string, x any) error {
	switch {
	case v.obj != nil:
		v.obj[name] = x
	case v.anyObj != nil:
		v.anyObj[name] = x
	default:
		return newError(ErrNotObject, v.format, -1, "cannot set field "+strconv.Quote(name))
	}
	v.modified = true
	v.encoded = nil
	return nil
}

// Delete removes a top-level field and reports whether it was present. The
// value is marked modified only when it was.
func (v *Value) Delete(name string) bool {
	switch {
	case v.obj != nil:
		if _, ok := v.obj[name]; !ok {
			return false
		}
		delete(v.obj, name)
	case v.anyObj != nil:
		if _, ok := v.anyObj[name]; !ok {
			return false
		}
		delete(v.anyObj, name)
	default:
		return false
	}
	v.modified = true
	v.encoded = nil
	return true
}

// Bytes returns the payload to forward: the original bytes when the value
// is unmodified (the same slice, no copy), otherwise a new encoding in the
// value's own format (JSON with sonic, MsgPack with msgpack), object keys in
// sorted order so equal values encode to equal bytes. The encoding is kept
// until the next change. It fails, wrapping ErrEncode, when a value stored
// with Set cannot be encoded.
func (v *Value) Bytes() ([]byte, error) {
	if !v.modified {
		return v.raw, nil
	}
	if v.encoded != nil {
		return v.encoded, nil
	}
	var out []byte
	var err error
	switch v.format {
	case JSON:
		out, err = encodeJSON(v.root)
	case MsgPack:
		out, err = encodeMsgPack(v.root)
	default:
		return nil, newError(ErrEncode, v.format, -1, "value has no format")
	}
	if err != nil {
		return nil, err
	}
	v.encoded = out
	return out, nil
}
