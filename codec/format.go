package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// Format is a payload format. The zero value is Auto.
type Format uint8

const (
	// Auto detects the format of each payload with Detect. It is the
	// default.
	Auto Format = iota
	// JSON is RFC 8259 JSON.
	JSON
	// MsgPack is MessagePack.
	MsgPack
)

// String returns "auto", "json" or "msgpack", and "Format(n)" for a value
// outside the enumeration.
func (f Format) String() string {
	switch f {
	case Auto:
		return "auto"
	case JSON:
		return "json"
	case MsgPack:
		return "msgpack"
	default:
		return "Format(" + strconv.Itoa(int(f)) + ")"
	}
}

// Valid reports whether f is Auto, JSON or MsgPack.
func (f Format) Valid() bool { return f <= MsgPack }

// ParseFormat reads a format from config text: "auto", "json" or "msgpack"
// ("messagepack" is accepted too), case-insensitive, surrounding spaces
// ignored. The empty string is Auto, the default. Any other text is an
// error that names the value and wraps ErrUnknownFormat.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "json":
		return JSON, nil
	case "msgpack", "messagepack":
		return MsgPack, nil
	default:
		return Auto, fmt.Errorf("codec: %w %q: use auto, json or msgpack", ErrUnknownFormat, s)
	}
}

// MarshalText writes the name of the format. It fails for a value outside
// the enumeration.
func (f Format) MarshalText() ([]byte, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("codec: %w %d: use auto, json or msgpack", ErrUnknownFormat, uint8(f))
	}
	return []byte(f.String()), nil
}

// UnmarshalText reads a format name with ParseFormat, so config decoders
// that honour encoding.TextUnmarshaler fill a Format field from
// "auto|json|msgpack".
func (f *Format) UnmarshalText(b []byte) error {
	v, err := ParseFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Detect tells the format of a payload from its first bytes, without
// parsing it. The rules, in order:
//
//  1. The first byte is a MsgPack map or array header (0x80–0x8f fixmap,
//     0x90–0x9f fixarray, 0xdc/0xdd array16/32, 0xde/0xdf map16/32): MsgPack.
//     No JSON text starts with a byte above 0x7f. The raw first byte is used
//     here, because the JSON whitespace bytes are themselves valid MsgPack
//     integers.
//  2. The first byte that is not JSON whitespace (space, tab, CR, LF) is
//     '{' or '[': JSON.
//  3. Anything else is undetermined and Detect returns Auto: an empty or
//     whitespace-only payload, a top-level scalar in either format ("abc",
//     42, true, a MsgPack string) and binary data.
//
// Parse with Format Auto treats an undetermined payload as JSON, so JSON
// scalars parse and other bytes fail with ErrSyntax; an empty or
// whitespace-only payload fails with ErrEmpty. A top-level MsgPack scalar
// needs Format MsgPack.
func Detect(data []byte) Format {
	if len(data) == 0 {
		return Auto
	}
	if isMsgPackContainerLead(data[0]) {
		return MsgPack
	}
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[':
			return JSON
		default:
			return Auto
		}
	}
	return Auto
}

func isMsgPackContainerLead(c byte) bool {
	return (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf)
}
