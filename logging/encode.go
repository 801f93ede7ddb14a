package logging

import (
	"encoding/base64"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keel-go/keel/internal/jsonstr"
)

// state is the per-line encoder: the output buffer and the masker (nil
// when masking is off).
type state struct {
	buf   []byte
	m     *Masker
	color bool // text format: ANSI styles on
}

func (s *state) mask(str string) string {
	if s.m == nil {
		return str
	}
	return s.m.MaskString(str)
}

func (s *state) sensitive(key string) bool {
	return s.m != nil && s.m.Sensitive(key)
}

// message masks a log message or an error text (see Masker.maskMessage).
func (s *state) message(msg string) string {
	if s.m == nil {
		return msg
	}
	return s.m.maskMessage(msg)
}

// jsonMessage appends a log message or an error text as a quoted JSON
// string, masked.
func (s *state) jsonMessage(msg string) {
	s.buf = append(s.buf, '"')
	s.buf = jsonstr.AppendEscaped(s.buf, s.message(msg))
	s.buf = append(s.buf, '"')
}

// jsonString appends str as a quoted JSON string, masked.
func (s *state) jsonString(str string) {
	s.buf = append(s.buf, '"')
	s.buf = jsonstr.AppendEscaped(s.buf, s.mask(str))
	s.buf = append(s.buf, '"')
}

// jsonKey appends "key": (keys are not masked; their values are).
func (s *state) jsonKey(key string) {
	s.buf = append(s.buf, '"')
	s.buf = jsonstr.AppendEscaped(s.buf, key)
	s.buf = append(s.buf, '"', ':')
}

const hexDigits = "0123456789abcdef"

// appendFloat formats f as encoding/json does; NaN and infinities, which
// JSON cannot hold, become the strings "NaN", "+Inf" and "-Inf".
func appendFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Inf"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	buf = strconv.AppendFloat(buf, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(buf)
		if n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}

func appendBase64(buf []byte, b []byte) []byte {
	buf = append(buf, '"')
	buf = base64.StdEncoding.AppendEncode(buf, b)
	return append(buf, '"')
}

// appendTimestamp appends t in UTC as RFC 3339 with microseconds
// ("2006-01-02T15:04:05.000000Z"), without allocating.
func appendTimestamp(buf []byte, t time.Time, digits int) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(buf, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	buf = appendInt(buf, year, 4)
	buf = append(buf, '-')
	buf = appendInt(buf, int(month), 2)
	buf = append(buf, '-')
	buf = appendInt(buf, day, 2)
	buf = append(buf, 'T')
	buf = appendInt(buf, hour, 2)
	buf = append(buf, ':')
	buf = appendInt(buf, minute, 2)
	buf = append(buf, ':')
	buf = appendInt(buf, sec, 2)
	buf = append(buf, '.')
	frac := t.Nanosecond()
	for i := digits; i < 9; i++ {
		frac /= 10
	}
	buf = appendInt(buf, frac, digits)
	return append(buf, 'Z')
}

// appendInt appends v zero-padded to width digits.
func appendInt(buf []byte, v, width int) []byte {
	var tmp [12]byte
	i := len(tmp)
	for v >= 10 || width > 1 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	tmp[i] = byte('0' + v)
	return append(buf, tmp[i:]...)
}

// needsQuoting reports whether a text-format value must be quoted: empty,
// or holding blanks, '=', '"', control or non-printing characters, or
// invalid UTF-8.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b <= ' ' || b == '=' || b == '"' || b == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendTextString appends s for the text format: bare when safe, quoted
// Go-style otherwise.
func appendTextString(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

// appendTextMessage appends a message without quotes but with control
// characters escaped, so that one record stays one line.
func appendTextMessage(buf []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != 0x7f {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch b {
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'x', hexDigits[b>>4], hexDigits[b&0xF])
		}
		start = i + 1
	}
	return append(buf, s[start:]...)
}

// buffer pool for lines
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
