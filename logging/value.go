package logging

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keel-go/keel/secret"
)

// maxDepth bounds how deep the walker descends into nested values
// (structs, maps, slices, pointers, groups). Deeper values print as
// "[MAX_DEPTH]", which also stops cycles.
const maxDepth = 10

const depthMarker = "[MAX_DEPTH]"

const redactedJSON = `"` + secret.Redacted + `"`

var (
	secretType        = reflect.TypeFor[secret.String]()
	timeType          = reflect.TypeFor[time.Time]()
	logValuerType     = reflect.TypeFor[slog.LogValuer]()
	errorType         = reflect.TypeFor[error]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// comma separates members of a JSON object: needed unless the object
// was just opened.
func (s *state) comma() {
	if n := len(s.buf); n > 0 && s.buf[n-1] != '{' {
		s.buf = append(s.buf, ',')
	}
}

func isEmptyAttr(a slog.Attr) bool {
	return a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil
}

// jsonAttr appends a as a member of the current JSON object and reports
// whether anything was written. redact masks the value whatever the key.
func (s *state) jsonAttr(a slog.Attr, redact bool, depth int) bool {
	if isEmptyAttr(a) {
		return false
	}
	if s.m != nil && (redact || s.m.Sensitive(a.Key)) {
		s.comma()
		s.jsonKey(a.Key)
		s.buf = append(s.buf, redactedJSON...)
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
			s.comma()
			s.jsonKey(a.Key)
			s.jsonString(depthMarker)
			return true
		}
		if a.Key == "" {
			written := false
			for _, ga := range attrs {
				written = s.jsonAttr(ga, false, depth+1) || written
			}
			return written
		}
		mark := len(s.buf)
		s.comma()
		s.jsonKey(a.Key)
		s.buf = append(s.buf, '{')
		written := false
		for _, ga := range attrs {
			written = s.jsonAttr(ga, false, depth+1) || written
		}
		if !written {
			s.buf = s.buf[:mark]
			return false
		}
		s.buf = append(s.buf, '}')
		return true
	}
	s.comma()
	s.jsonKey(a.Key)
	s.jsonValue(v, depth)
	return true
}

// jsonValue appends v as a JSON value.
func (s *state) jsonValue(v slog.Value, depth int) {
	switch v.Kind() {
	case slog.KindString:
		s.jsonString(v.String())
	case slog.KindInt64:
		s.buf = strconv.AppendInt(s.buf, v.Int64(), 10)
	case slog.KindUint64:
		s.buf = strconv.AppendUint(s.buf, v.Uint64(), 10)
	case slog.KindFloat64:
		s.buf = appendFloat(s.buf, v.Float64(), 64)
	case slog.KindBool:
		s.buf = strconv.AppendBool(s.buf, v.Bool())
	case slog.KindDuration:
		s.buf = strconv.AppendInt(s.buf, int64(v.Duration()), 10)
	case slog.KindTime:
		s.buf = append(s.buf, '"')
		s.buf = v.Time().AppendFormat(s.buf, time.RFC3339Nano)
		s.buf = append(s.buf, '"')
	case slog.KindGroup:
		if depth > maxDepth {
			s.jsonString(depthMarker)
			return
		}
		s.buf = append(s.buf, '{')
		for _, a := range v.Group() {
			s.jsonAttr(a, false, depth+1)
		}
		s.buf = append(s.buf, '}')
	case slog.KindLogValuer:
		s.jsonValue(v.Resolve(), depth+1)
	case slog.KindAny:
		s.jsonAnyTop(v.Any(), depth)
	}
}

// jsonAnyTop appends an arbitrary value; a panic in a method of the value
// (Error, MarshalJSON, LogValue on a nil receiver, say) is caught and
// printed as the value instead of crashing the caller.
func (s *state) jsonAnyTop(a any, depth int) {
	mark := len(s.buf)
	defer func() {
		if r := recover(); r != nil {
			s.buf = s.buf[:mark]
			s.jsonString(fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	s.jsonAny(a, depth)
}

func (s *state) jsonAny(a any, depth int) {
	if depth > maxDepth {
		s.jsonString(depthMarker)
		return
	}
	switch x := a.(type) {
	case nil:
		s.buf = append(s.buf, "null"...)
	case secret.String:
		s.buf = append(s.buf, redactedJSON...)
	case *secret.String:
		if x == nil {
			s.buf = append(s.buf, "null"...)
			return
		}
		s.buf = append(s.buf, redactedJSON...)
	case string:
		s.jsonString(x)
	case bool:
		s.buf = strconv.AppendBool(s.buf, x)
	case int:
		s.buf = strconv.AppendInt(s.buf, int64(x), 10)
	case int64:
		s.buf = strconv.AppendInt(s.buf, x, 10)
	case uint64:
		s.buf = strconv.AppendUint(s.buf, x, 10)
	case float64:
		s.buf = appendFloat(s.buf, x, 64)
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			s.jsonString(string(x))
			return
		}
		s.buf = append(s.buf, x...)
	case time.Time:
		s.buf = append(s.buf, '"')
		s.buf = x.AppendFormat(s.buf, time.RFC3339Nano)
		s.buf = append(s.buf, '"')
	case time.Duration:
		s.buf = strconv.AppendInt(s.buf, int64(x), 10)
	case []byte:
		if x == nil {
			s.buf = append(s.buf, "null"...)
			return
		}
		s.jsonBytes(x)
	case slog.Value:
		s.jsonValue(x, depth+1)
	case slog.LogValuer:
		if isNilPointer(x) {
			s.buf = append(s.buf, "null"...)
			return
		}
		s.jsonValue(slog.AnyValue(x).Resolve(), depth+1)
	case error:
		if isNilPointer(x) {
			s.buf = append(s.buf, "null"...)
			return
		}
		s.jsonMessage(x.Error())
	case json.Marshaler:
		if isNilPointer(x) {
			s.buf = append(s.buf, "null"...)
			return
		}
		s.jsonMarshaler(x, depth)
	case encoding.TextMarshaler:
		if isNilPointer(x) {
			s.buf = append(s.buf, "null"...)
			return
		}
		b, err := x.MarshalText()
		if err != nil {
			s.jsonString("!ERROR: " + err.Error())
			return
		}
		s.jsonString(string(b))
	default:
		s.jsonReflect(reflect.ValueOf(a), depth)
	}
}

// jsonBytes prints a byte slice as base64, as encoding/json does, after
// masking it like text: base64 hides a secret from the eye, not from a
// reader.
func (s *state) jsonBytes(b []byte) {
	if s.m != nil && mayHoldSecret(b) {
		if masked := s.m.MaskString(string(b)); len(masked) != len(b) || masked != string(b) {
			b = []byte(masked)
		}
	}
	s.buf = appendBase64(s.buf, b)
}

func isNilPointer(a any) bool {
	v := reflect.ValueOf(a)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// jsonMarshaler prints what MarshalJSON returns, decoded and walked again
// so that sensitive keys inside it are masked too.
func (s *state) jsonMarshaler(x json.Marshaler, depth int) {
	raw, err := x.MarshalJSON()
	if err != nil {
		s.jsonString("!ERROR: " + err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		s.jsonString("!ERROR: MarshalJSON returned invalid JSON")
		return
	}
	s.jsonAny(v, depth+1)
}

type typeFlags uint8

const (
	tfSpecial typeFlags = 1 << iota // printed through jsonAny's method cases
)

var typeFlagCache sync.Map // reflect.Type -> typeFlags

func flagsOf(t reflect.Type) typeFlags {
	if f, ok := typeFlagCache.Load(t); ok {
		return f.(typeFlags)
	}
	var f typeFlags
	if t == timeType || t.Implements(logValuerType) || t.Implements(errorType) ||
		t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		f |= tfSpecial
	}
	typeFlagCache.Store(t, f)
	return f
}

// jsonReflect walks v by reflection: structs by their json field names,
// maps with sorted keys, slices and arrays, pointers and interfaces,
// masking sensitive field names and map keys and every secret.String.
func (s *state) jsonReflect(v reflect.Value, depth int) {
	if depth > maxDepth {
		s.jsonString(depthMarker)
		return
	}
	if !v.IsValid() {
		s.buf = append(s.buf, "null"...)
		return
	}
	t := v.Type()
	if t == secretType {
		s.buf = append(s.buf, redactedJSON...)
		return
	}
	k := v.Kind()
	switch k {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if v.IsNil() {
			s.buf = append(s.buf, "null"...)
			return
		}
	}
	if k != reflect.Interface && v.CanInterface() && flagsOf(t)&tfSpecial != 0 {
		s.jsonAny(v.Interface(), depth+1)
		return
	}
	switch k {
	case reflect.Pointer, reflect.Interface:
		s.jsonReflect(v.Elem(), depth+1)
	case reflect.Bool:
		s.buf = strconv.AppendBool(s.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s.buf = strconv.AppendInt(s.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s.buf = strconv.AppendUint(s.buf, v.Uint(), 10)
	case reflect.Float32:
		s.buf = appendFloat(s.buf, v.Float(), 32)
	case reflect.Float64:
		s.buf = appendFloat(s.buf, v.Float(), 64)
	case reflect.String:
		s.jsonString(v.String())
	case reflect.Struct:
		s.jsonStruct(v, depth)
	case reflect.Map:
		s.jsonMap(v, depth)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s.jsonBytes(v.Bytes())
			return
		}
		s.jsonArray(v, depth)
	case reflect.Array:
		s.jsonArray(v, depth)
	default:
		s.jsonString("!UNSUPPORTED: " + t.String())
	}
}

func (s *state) jsonArray(v reflect.Value, depth int) {
	s.buf = append(s.buf, '[')
	for i := 0; i < v.Len(); i++ {
		if i > 0 {
			s.buf = append(s.buf, ',')
		}
		s.jsonReflect(v.Index(i), depth+1)
	}
	s.buf = append(s.buf, ']')
}

func (s *state) jsonStruct(v reflect.Value, depth int) {
	m := s.m
	if m == nil {
		m = defaultMasker // for the field list only; nothing is masked
	}
	s.buf = append(s.buf, '{')
	for _, f := range m.structFields(v.Type()) {
		fv, err := v.FieldByIndexErr(f.index)
		if err != nil { // through a nil embedded pointer
			continue
		}
		if (f.omitEmpty && isEmptyValue(fv)) || (f.omitZero && fv.IsZero()) {
			continue
		}
		s.comma()
		s.jsonKey(f.name)
		if f.sensitive && s.m != nil {
			s.buf = append(s.buf, redactedJSON...)
			continue
		}
		s.jsonReflect(fv, depth+1)
	}
	s.buf = append(s.buf, '}')
}

type mapEntry struct {
	key string
	val reflect.Value
}

func (s *state) jsonMap(v reflect.Value, depth int) {
	entries := make([]mapEntry, 0, v.Len())
	it := v.MapRange()
	for it.Next() {
		entries = append(entries, mapEntry{key: mapKeyString(it.Key()), val: it.Value()})
	}
	slices.SortFunc(entries, func(a, b mapEntry) int { return strings.Compare(a.key, b.key) })
	s.buf = append(s.buf, '{')
	for _, e := range entries {
		s.comma()
		s.jsonKey(e.key)
		if s.sensitive(e.key) {
			s.buf = append(s.buf, redactedJSON...)
			continue
		}
		s.jsonReflect(e.val, depth+1)
	}
	s.buf = append(s.buf, '}')
}

func mapKeyString(k reflect.Value) string {
	if k.Kind() == reflect.Interface && !k.IsNil() {
		k = k.Elem()
	}
	if k.Type() == secretType {
		return secret.Redacted
	}
	if k.Kind() == reflect.String {
		return k.String()
	}
	if k.CanInterface() {
		if tm, ok := k.Interface().(encoding.TextMarshaler); ok {
			if k.Kind() == reflect.Pointer && k.IsNil() {
				return ""
			}
			if b, err := tm.MarshalText(); err == nil {
				return string(b)
			}
		}
	}
	switch k.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10)
	}
	return fmt.Sprint(k)
}

// isEmptyValue is encoding/json's omitempty test.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}
