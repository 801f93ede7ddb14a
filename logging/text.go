package logging

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/keel-go/keel/secret"
)

// textKey appends " prefix+key=", dimmed when colours are on.
func (s *state) textKey(prefix, key string) {
	s.buf = append(s.buf, ' ')
	if s.color {
		s.buf = append(s.buf, ansiDim...)
	}
	switch {
	case prefix == "":
		s.buf = appendTextString(s.buf, key)
	case needsQuoting(prefix) || needsQuoting(key):
		s.buf = strconv.AppendQuote(s.buf, prefix+key)
	default:
		s.buf = append(s.buf, prefix...)
		s.buf = append(s.buf, key...)
	}
	s.buf = append(s.buf, '=')
	if s.color {
		s.buf = append(s.buf, ansiReset...)
	}
}

// textAttr appends a as " key=value"; groups flatten to "group.key=value".
func (s *state) textAttr(a slog.Attr, prefix string, redact bool, depth int) bool {
	if isEmptyAttr(a) {
		return false
	}
	if s.m != nil && (redact || s.m.Sensitive(a.Key)) {
		s.textKey(prefix, a.Key)
		s.buf = append(s.buf, secret.Redacted...)
		return true
	}
	v := a.Value
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
	}
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		if len(attrs) == 0 {
			return false
		}
		if depth > maxDepth {
			s.textKey(prefix, a.Key)
			s.buf = append(s.buf, depthMarker...)
			return true
		}
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		written := false
		for _, ga := range attrs {
			written = s.textAttr(ga, p, false, depth+1) || written
		}
		return written
	}
	s.textKey(prefix, a.Key)
	s.textValue(v)
	return true
}

// textValue appends a scalar as text; structured values (maps, structs,
// slices) print as masked JSON.
func (s *state) textValue(v slog.Value) {
	switch v.Kind() {
	case slog.KindString:
		s.buf = appendTextString(s.buf, s.mask(v.String()))
	case slog.KindInt64:
		s.buf = strconv.AppendInt(s.buf, v.Int64(), 10)
	case slog.KindUint64:
		s.buf = strconv.AppendUint(s.buf, v.Uint64(), 10)
	case slog.KindFloat64:
		s.buf = strconv.AppendFloat(s.buf, v.Float64(), 'g', -1, 64)
	case slog.KindBool:
		s.buf = strconv.AppendBool(s.buf, v.Bool())
	case slog.KindDuration:
		s.buf = append(s.buf, v.Duration().String()...)
	case slog.KindTime:
		s.buf = v.Time().AppendFormat(s.buf, time.RFC3339Nano)
	case slog.KindAny:
		s.textAny(v.Any())
	default: // a LogValuer that resolved to another LogValuer chain too long
		s.jsonValue(v, 0)
	}
}

func (s *state) textAny(a any) {
	mark := len(s.buf)
	defer func() {
		if r := recover(); r != nil {
			s.buf = s.buf[:mark]
			s.buf = appendTextString(s.buf, s.mask(fmt.Sprintf("!PANIC: %v", r)))
		}
	}()
	switch x := a.(type) {
	case nil:
		s.buf = append(s.buf, "<nil>"...)
	case secret.String, *secret.String:
		s.buf = append(s.buf, secret.Redacted...)
	case error:
		if isNilPointer(x) {
			s.buf = append(s.buf, "<nil>"...)
			return
		}
		s.buf = appendTextString(s.buf, s.message(x.Error()))
	case []byte:
		s.buf = appendTextString(s.buf, s.mask(string(x)))
	case json.Marshaler:
		s.jsonAny(x, 0)
	case encoding.TextMarshaler:
		if isNilPointer(x) {
			s.buf = append(s.buf, "<nil>"...)
			return
		}
		b, err := x.MarshalText()
		if err != nil {
			s.buf = appendTextString(s.buf, s.mask("!ERROR: "+err.Error()))
			return
		}
		s.buf = appendTextString(s.buf, s.mask(string(b)))
	default:
		s.jsonAny(a, 0)
	}
}
