package codec

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/decoder"
)

var (
	// jsonDecoder keeps numbers as json.Number, so integers of any size and
	// the exact text of floats survive a re-encode, and it rejects raw
	// control characters inside strings, as RFC 8259 requires.
	jsonDecoder = sonic.Config{UseNumber: true, ValidateString: true}.Froze()
	// jsonEncoder sorts object keys so equal values encode to equal bytes.
	jsonEncoder = sonic.Config{SortMapKeys: true}.Froze()
)

func parseJSON(data []byte, opts ParseOptions) (*Value, error) {
	i := 0
	for i < len(data) && isJSONSpace(data[i]) {
		i++
	}
	if i == len(data) {
		return nil, newError(ErrEmpty, JSON, 0, "")
	}
	if !startsJSONValue(data[i]) {
		return nil, newError(ErrSyntax, JSON, i, "no JSON value starts with byte 0x"+strconv.FormatUint(uint64(data[i]), 16))
	}
	if limit := opts.maxDepth(); mayExceedJSONDepth(data, limit) {
		if _, err := JSONDepth(data, limit); err != nil {
			return nil, err
		}
	}
	var src string
	if opts.ZeroCopy {
		src = unsafe.String(unsafe.SliceData(data), len(data))
	} else {
		src = string(data)
	}
	v := &Value{format: JSON, raw: data}
	if data[i] == '{' {
		var m map[string]any
		if err := jsonDecoder.UnmarshalFromString(src, &m); err != nil {
			return nil, jsonError(data, err)
		}
		if in := opts.Interner; in != nil {
			// sonic has no hook for keys: move the entries under interned
			// keys. This costs throughput (BENCHMARKS.md) and saves no
			// allocation, because sonic's keys already point into the
			// decode buffer; it only makes equal keys one string.
			im := make(map[string]any, len(m))
			for k, x := range m {
				im[in.Intern(k)] = x
			}
			m = im
		}
		v.root, v.obj = m, m
		return v, nil
	}
	var x any
	if err := jsonDecoder.UnmarshalFromString(src, &x); err != nil {
		return nil, jsonError(data, err)
	}
	v.root = x
	return v, nil
}

// jsonError turns a sonic error into an *Error without quoting the payload
// (sonic's own message shows the bytes around the error).
func jsonError(data []byte, err error) *Error {
	var se decoder.SyntaxError
	if !errors.As(err, &se) {
		return newError(ErrSyntax, JSON, -1, "undecodable value")
	}
	pos := se.Pos
	if ctl := rawControlInString(data); ctl >= 0 && ctl < pos {
		// sonic reports these at the end of the input; find the byte.
		return newError(ErrSyntax, JSON, ctl, "unescaped control character in a string")
	}
	end := jsonValueEnd(data)
	if end >= 0 && pos >= end && jsonDecodes(data[:end]) {
		off := end
		for off < len(data) && isJSONSpace(data[off]) {
			off++
		}
		if off < len(data) {
			return newError(ErrTrailingData, JSON, off, "only whitespace may follow the value")
		}
	}
	if end < 0 && pos >= len(data) {
		return newError(ErrTruncated, JSON, len(data), "unexpected end of input")
	}
	return newError(ErrSyntax, JSON, pos, se.Message())
}

// jsonDecodes reports whether data decodes on its own (error path only).
func jsonDecodes(data []byte) bool {
	var x any
	return jsonDecoder.Unmarshal(data, &x) == nil
}

func startsJSONValue(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return c >= '0' && c <= '9'
}

func encodeJSON(root any) ([]byte, error) {
	out, err := jsonEncoder.Marshal(root)
	if err != nil {
		return nil, newError(ErrEncode, JSON, -1, err.Error())
	}
	return out, nil
}
