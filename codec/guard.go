package codec

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// DefaultMaxDepth is the nesting limit Parse applies when
// ParseOptions.MaxDepth is zero.
const DefaultMaxDepth = 64

// MaxDepthLimit is the largest accepted ParseOptions.MaxDepth. It keeps
// the recursive decoders well inside their limits (the JSON parser refuses
// 4096 levels on its own); no record of a data pipeline nests deeper.
const MaxDepthLimit = 1024

// JSONDepth reports how deeply objects and arrays nest in data, scanning
// the bytes once without recursion. It follows strings and their escapes, so
// brackets and escaped quotes inside strings do not count. It stops at the
// first '{' or '[' that would open level limit+1 and returns an *Error of
// kind ErrTooDeep with that bracket's offset. A scalar has depth 0, "[]" has
// depth 1.
//
// JSONDepth does not validate JSON: on malformed input it returns a depth
// that the parser will reject anyway (an unmatched closer is ignored, an
// unterminated string ends the scan). It never panics. A negative limit
// means no limit.
func JSONDepth(data []byte, limit int) (int, error) {
	depth, maxDepth := 0, 0
	n := len(data)
	for i := 0; i < n; i++ {
		switch data[i] {
		case '"':
			end := skipJSONString(data, i+1)
			if end < 0 {
				return maxDepth, nil
			}
			i = end
		case '{', '[':
			depth++
			if depth > maxDepth {
				maxDepth = depth
				if limit >= 0 && depth > limit {
					return depth, tooDeep(JSON, i, limit)
				}
			}
		case '}', ']':
			if depth > 0 {
				depth--
			}
		}
	}
	return maxDepth, nil
}

// skipJSONString returns the index of the quote that closes the string whose
// contents start at i, or -1 when the string is not terminated. A quote is
// escaped when an odd number of backslashes precede it.
func skipJSONString(data []byte, i int) int {
	for {
		j := bytes.IndexByte(data[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		bs := 0
		for k := q - 1; k >= i && data[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// mayExceedJSONDepth is a quick, conservative test: the nesting depth can
// never exceed the number of '{' and '[' bytes, wherever they stand.
// bytes.Count runs vectorised, so a typical record skips the full scan.
func mayExceedJSONDepth(data []byte, limit int) bool {
	if len(data) <= limit {
		return false
	}
	opens := bytes.Count(data, []byte{'{'})
	if opens > limit {
		return true
	}
	return opens+bytes.Count(data, []byte{'['}) > limit
}

// jsonValueEnd returns the offset just past the first JSON value in data
// (after leading whitespace), or -1 when that value is not complete. It
// follows the same string rules as JSONDepth and does not validate.
func jsonValueEnd(data []byte) int {
	i := 0
	for i < len(data) && isJSONSpace(data[i]) {
		i++
	}
	if i == len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		end := skipJSONString(data, i+1)
		if end < 0 {
			return -1
		}
		return end + 1
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				end := skipJSONString(data, i+1)
				if end < 0 {
					return -1
				}
				i = end
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		for ; i < len(data); i++ {
			switch data[i] {
			case ' ', '\t', '\n', '\r', ',', ':', '"', '{', '}', '[', ']':
				return i
			}
		}
		return i
	}
}

// rawControlInString returns the offset of the first unescaped control
// character (below 0x20) inside a JSON string, or -1.
func rawControlInString(data []byte) int {
	in := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case !in:
			in = c == '"'
		case c == '\\':
			i++
		case c == '"':
			in = false
		case c < 0x20:
			return i
		}
	}
	return -1
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func tooDeep(f Format, off, limit int) *Error {
	return newError(ErrTooDeep, f, off,
		"more than "+strconv.Itoa(limit)+" nested levels (raise ParseOptions.MaxDepth if such records are legitimate)")
}

// MsgPackDepth walks exactly one MessagePack value in data without
// recursion and reports how deeply maps and arrays nest in it. It reads
// every header (nil, bool, all integer and float widths, fixstr, str8/16/32,
// bin8/16/32, fixext1–16, ext8/16/32, fixarray, array16/32, fixmap,
// map16/32) and checks each declared length against the bytes left. The
// errors are *Error values of kind:
//
//   - ErrEmpty: data is empty;
//   - ErrTooDeep: a map or array would open level limit+1 (offset of its
//     header);
//   - ErrTruncated: a header or body runs past the end of data (offset of
//     the value that is cut);
//   - ErrSyntax: the never-used code 0xc1;
//   - ErrTrailingData: bytes follow the value (offset of the first one).
//
// An extension's body is opaque and adds no depth. A scalar has depth 0. It
// never panics; the work is linear in len(data). A negative limit means no
// limit.
func MsgPackDepth(data []byte, limit int) (int, error) {
	end, depth, err := walkMsgPack(data, limit)
	if err != nil {
		return depth, err
	}
	if end < len(data) {
		return depth, newError(ErrTrailingData, MsgPack, end,
			strconv.Itoa(len(data)-end)+" bytes after the value")
	}
	return depth, nil
}

// walkMsgPack returns the offset just past the first value and its depth.
func walkMsgPack(data []byte, limit int) (end, maxDepth int, err error) {
	if len(data) == 0 {
		return 0, 0, newError(ErrEmpty, MsgPack, 0, "")
	}
	var stackBuf [16]uint64
	stack := stackBuf[:0] // items left in each enclosing container
	left := uint64(1)     // items left in the current container
	pos := 0
	n := len(data)
	for {
		for left == 0 {
			if len(stack) == 0 {
				return pos, maxDepth, nil
			}
			left = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		}
		if pos >= n {
			return pos, maxDepth, newError(ErrTruncated, MsgPack, pos, "expected another value")
		}
		start := pos
		c := data[pos]
		pos++
		left--

		var hdr int        // length-field bytes after the code
		var body uint64    // body bytes after the header
		var items uint64   // container items (a map counts keys and values)
		container := false // map or array
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			container, items = true, 2*uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			container, items = true, uint64(c&0x0f)
		case c <= 0xbf: // fixstr
			body = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				return start, maxDepth, newError(ErrSyntax, MsgPack, start, "never-used code 0xc1")
			case 0xc4, 0xd9: // bin8, str8
				hdr = 1
			case 0xc5, 0xda: // bin16, str16
				hdr = 2
			case 0xc6, 0xdb: // bin32, str32
				hdr = 4
			case 0xc7: // ext8: len, type
				hdr = 1
				body = 1
			case 0xc8: // ext16
				hdr = 2
				body = 1
			case 0xc9: // ext32
				hdr = 4
				body = 1
			case 0xca: // float32
				body = 4
			case 0xcb: // float64
				body = 8
			case 0xcc, 0xd0: // uint8, int8
				body = 1
			case 0xcd, 0xd1: // uint16, int16
				body = 2
			case 0xce, 0xd2: // uint32, int32
				body = 4
			case 0xcf, 0xd3: // uint64, int64
				body = 8
			case 0xd4: // fixext1: type + 1
				body = 2
			case 0xd5: // fixext2
				body = 3
			case 0xd6: // fixext4
				body = 5
			case 0xd7: // fixext8
				body = 9
			case 0xd8: // fixext16
				body = 17
			case 0xdc: // array16
				container, hdr = true, 2
			case 0xdd: // array32
				container, hdr = true, 4
			case 0xde: // map16
				container, hdr = true, 2
			case 0xdf: // map32
				container, hdr = true, 4
			}
		}
		if hdr > 0 {
			if n-pos < hdr {
				return start, maxDepth, newError(ErrTruncated, MsgPack, start, "length field cut short")
			}
			var l uint64
			switch hdr {
			case 1:
				l = uint64(data[pos])
			case 2:
				l = uint64(binary.BigEndian.Uint16(data[pos:]))
			case 4:
				l = uint64(binary.BigEndian.Uint32(data[pos:]))
			}
			pos += hdr
			switch {
			case container && c >= 0xde: // map16/32
				items = 2 * l
			case container:
				items = l
			default:
				body += l
			}
		}
		if body > 0 {
			if uint64(n-pos) < body {
				return start, maxDepth, newError(ErrTruncated, MsgPack, start,
					"value needs "+strconv.FormatUint(body, 10)+" bytes, "+strconv.Itoa(n-pos)+" left")
			}
			pos += int(body)
		}
		if container {
			d := len(stack) + 1
			if d > maxDepth {
				maxDepth = d
				if limit >= 0 && d > limit {
					return start, d, tooDeep(MsgPack, start, limit)
				}
			}
			// Every item takes at least one byte: a count larger than what
			// is left is truncated, and checking here keeps the walk linear.
			if items > uint64(n-pos) {
				return start, maxDepth, newError(ErrTruncated, MsgPack, start,
					"container declares "+strconv.FormatUint(items, 10)+" items, "+strconv.Itoa(n-pos)+" bytes left")
			}
			if items > 0 {
				stack = append(stack, left)
				left = items
			}
		}
	}
}
