package transport

import (
	"errors"
	"fmt"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport/internal/linesplit"
)

// SplitNDJSON slices blob into lines with the same framing as the file
// and pipe transports: split on '\n', strip one trailing '\r', skip lines
// that are empty or ASCII whitespace only. Nothing else is trimmed, so a
// line keeps its leading and trailing spaces and reads back as written.
// The lines alias blob; it never parses and never fails.
func SplitNDJSON(blob []byte) [][]byte {
	out := make([][]byte, 0, 16)
	for len(blob) > 0 {
		var line []byte
		i := indexByte(blob, '\n')
		if i < 0 {
			line, blob = blob, nil
		} else {
			line, blob = blob[:i], blob[i+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if !linesplit.IsBlank(line) {
			out = append(out, line)
		}
	}
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// Framing errors of SplitJSONArray; a *FramingError wraps one of them.
var (
	ErrNotAnArray      = errors.New("not a JSON array")
	ErrUnexpectedEnd   = errors.New("unexpected end of input")
	ErrEmptyElement    = errors.New("empty array element")
	ErrUnbalanced      = errors.New("unbalanced brackets")
	ErrTrailingGarbage = errors.New("trailing data after array")
)

// FramingError is a framing failure at a byte offset.
type FramingError struct {
	Kind   error
	Offset int
}

// Error implements error.
func (e *FramingError) Error() string {
	return fmt.Sprintf("json array framing: %v at byte %d", e.Kind, e.Offset)
}

// Unwrap returns the kind.
func (e *FramingError) Unwrap() error { return e.Kind }

// SplitJSONArray slices a top-level JSON array into its elements, each a
// trimmed sub-slice of blob. It tracks strings, escapes and nesting but
// does not validate element bodies; "[]" gives no elements. Errors:
// ErrNotAnArray, ErrUnexpectedEnd, ErrEmptyElement (leading, trailing or
// doubled comma), ErrUnbalanced, ErrTrailingGarbage.
func SplitJSONArray(blob []byte) ([][]byte, error) {
	i := 0
	for i < len(blob) && isSpace(blob[i]) {
		i++
	}
	if i == len(blob) {
		return nil, &FramingError{Kind: ErrUnexpectedEnd, Offset: i}
	}
	if blob[i] != '[' {
		return nil, &FramingError{Kind: ErrNotAnArray, Offset: i}
	}
	i++
	var out [][]byte
	var stack []byte // open brackets inside the top-level array
	start := i
	inStr, esc := false, false
	sawElement := false
	for ; i < len(blob); i++ {
		c := blob[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			stack = append(stack, c)
		case '}':
			if len(stack) == 0 || stack[len(stack)-1] != '{' {
				return nil, &FramingError{Kind: ErrUnbalanced, Offset: i}
			}
			stack = stack[:len(stack)-1]
		case ']':
			if len(stack) > 0 {
				if stack[len(stack)-1] != '[' {
					return nil, &FramingError{Kind: ErrUnbalanced, Offset: i}
				}
				stack = stack[:len(stack)-1]
				continue
			}
			el := trimSpace(blob[start:i])
			if len(el) == 0 {
				if sawElement {
					return nil, &FramingError{Kind: ErrEmptyElement, Offset: i}
				}
			} else {
				out = append(out, el)
			}
			for j := i + 1; j < len(blob); j++ {
				if !isSpace(blob[j]) {
					return nil, &FramingError{Kind: ErrTrailingGarbage, Offset: j}
				}
			}
			return out, nil
		case ',':
			if len(stack) > 0 {
				continue
			}
			el := trimSpace(blob[start:i])
			if len(el) == 0 {
				return nil, &FramingError{Kind: ErrEmptyElement, Offset: i}
			}
			out = append(out, el)
			sawElement = true
			start = i + 1
		}
	}
	return nil, &FramingError{Kind: ErrUnexpectedEnd, Offset: len(blob)}
}

// BatchFromNDJSON frames blob as NDJSON records of format JSON, with no
// tokens.
func BatchFromNDJSON(blob []byte) Batch {
	lines := SplitNDJSON(blob)
	recs := make([]Record, len(lines))
	for i, l := range lines {
		recs[i] = Record{Payload: l, Format: codec.JSON}
	}
	return Batch{Records: recs}
}

// BatchFromJSONArray frames a top-level JSON array as records of format
// JSON, with no tokens.
func BatchFromJSONArray(blob []byte) (Batch, error) {
	els, err := SplitJSONArray(blob)
	if err != nil {
		return Batch{}, err
	}
	recs := make([]Record, len(els))
	for i, e := range els {
		recs[i] = Record{Payload: e, Format: codec.JSON}
	}
	return Batch{Records: recs}, nil
}
