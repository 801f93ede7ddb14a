package codec

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by Parse is an *Error whose Kind is
// one of the payload sentinels below, so callers branch with errors.Is and
// read the offset with errors.As.
var (
	// ErrEmpty reports a payload that is empty or, for JSON, holds only
	// whitespace.
	ErrEmpty = errors.New("empty payload")
	// ErrSyntax reports a malformed payload. ErrTruncated and
	// ErrTrailingData errors also match ErrSyntax.
	ErrSyntax = errors.New("malformed payload")
	// ErrTruncated reports a payload that ends in the middle of a value.
	ErrTruncated = errors.New("truncated payload")
	// ErrTrailingData reports bytes after a complete value: anything but
	// whitespace after a JSON value, any byte after a MsgPack value.
	ErrTrailingData = errors.New("trailing data after the value")
	// ErrTooDeep reports objects or arrays nested deeper than
	// ParseOptions.MaxDepth.
	ErrTooDeep = errors.New("payload nests too deep")
	// ErrUnsupported reports valid MsgPack that has no value representation
	// here: a map key that is an array, a map or an extension.
	ErrUnsupported = errors.New("unsupported payload value")
	// ErrNotObject reports a field write on a value whose top level is not
	// an object (a JSON object or a MsgPack map).
	ErrNotObject = errors.New("top-level value is not an object")
	// ErrEncode reports a modified value that cannot be re-encoded, for
	// example a NaN float written into a JSON value.
	ErrEncode = errors.New("cannot encode value")
	// ErrUnknownFormat reports a payload format name or number that is not
	// auto, json or msgpack.
	ErrUnknownFormat = errors.New("unknown payload format")
	// ErrInvalidOptions reports invalid ParseOptions, DetectorConfig or
	// InternerConfig.
	ErrInvalidOptions = errors.New("invalid codec options")
	// ErrFormatMismatch reports a payload whose detected format differs from
	// the format a Detector is locked to. The caller dead-letters it.
	ErrFormatMismatch = errors.New("payload format mismatch")
)

// Error is a payload error with its position. Kind is one of the package
// sentinels (ErrEmpty, ErrSyntax, ErrTruncated, ErrTrailingData,
// ErrTooDeep, ErrUnsupported). The message never quotes payload bytes, so it
// is safe to log and to store as a dead-letter reason.
type Error struct {
	// Kind is the sentinel this error matches with errors.Is.
	Kind error
	// Format is the format the payload was parsed as.
	Format Format
	// Offset is the byte offset of the problem in the payload, or -1 when
	// it is not known.
	Offset int
	// Detail says what was found, e.g. "invalid char" or "3 trailing bytes".
	Detail string
}

// Error formats the error as
// "codec: json payload: malformed payload at offset 8: invalid char".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("codec: ")
	b.WriteString(e.Format.String())
	b.WriteString(" payload: ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("error")
	}
	if e.Offset >= 0 {
		b.WriteString(" at offset ")
		b.WriteString(strconv.Itoa(e.Offset))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the Kind, plus ErrSyntax for truncated and trailing-data
// errors, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Kind == ErrTruncated || e.Kind == ErrTrailingData {
		return []error{e.Kind, ErrSyntax}
	}
	return []error{e.Kind}
}

func newError(kind error, f Format, off int, detail string) *Error {
	return &Error{Kind: kind, Format: f, Offset: off, Detail: detail}
}
