package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"

	"github.com/keel-go/keel/secret"
)

// TagName is the struct tag Section reads: `koanf:"snake_name"`. Options
// after the name: ",squash" merges an embedded struct's keys into its
// parent, ",remain" collects unknown keys into a map field; "-" skips the
// field. An untagged field matches its Go name, ignoring case.
const TagName = "koanf"

var (
	durationType        = reflect.TypeFor[time.Duration]()
	secretType          = reflect.TypeFor[secret.String]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodeHook converts values from YAML, the environment and flags to the
// target field's type. Order matters: durations first (a bare number means
// seconds, not nanoseconds), then scalar-to-string for string and
// text-unmarshalled fields (secret.String), then text unmarshalling, then
// string-to-scalar parsing and comma-separated lists.
var decodeHook = mapstructure.ComposeDecodeHookFunc(
	durationHook,
	floatToIntHook,
	scalarToStringHook,
	mapstructure.TextUnmarshallerHookFunc(),
	stringToScalarHook,
	stringToSliceHook,
)

func durationHook(_ reflect.Type, t reflect.Type, data any) (any, error) {
	if t != durationType {
		return data, nil
	}
	return toDuration(data)
}

func floatToIntHook(f reflect.Type, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.Float64 && f.Kind() != reflect.Float32 {
		return data, nil
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return toInt64(data)
	}
	return data, nil
}

func scalarToStringHook(f reflect.Type, t reflect.Type, data any) (any, error) {
	textTarget := t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(textUnmarshalerType)
	if textTarget && (f.Kind() == reflect.Map || f.Kind() == reflect.Slice) {
		// Without this a mapping would decode field by field into a type
		// such as secret.String and silently leave it empty.
		return nil, fmt.Errorf("expected a string for %s, got %s", t, kindOf(data))
	}
	switch f.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
	default:
		return data, nil
	}
	if t.Kind() == reflect.String || textTarget {
		return toString(data)
	}
	return data, nil
}

func stringToScalarHook(f reflect.Type, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		s = reflect.ValueOf(data).String()
	}
	switch t.Kind() {
	case reflect.Bool:
		return parseBool(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("not an integer that fits %s", t.Kind())
		}
		return n, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, t.Bits())
		if err != nil {
			return nil, fmt.Errorf("not a non-negative integer that fits %s", t.Kind())
		}
		return n, nil
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(s), t.Bits())
		if err != nil {
			return nil, errors.New("not a number")
		}
		return n, nil
	}
	return data, nil
}

func stringToSliceHook(f reflect.Type, t reflect.Type, data any) (any, error) {
	if f.Kind() != reflect.String || t.Kind() != reflect.Slice || t.Elem().Kind() == reflect.Uint8 {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		s = reflect.ValueOf(data).String()
	}
	return splitList(s), nil
}

// decoded is the result of decoding one section.
type decoded struct {
	val     reflect.Value // addressable value of the section's type
	unknown []string      // full keys that matched no field
}

// decodeSection decodes the section at key of st into a deep copy of
// defaults. The defaults are never modified.
func decodeSection(st *state, key string, defaults reflect.Value) (decoded, error) {
	typ := defaults.Type()
	out := reflect.New(typ)
	out.Elem().Set(deepCopy(defaults))
	res := decoded{val: out.Elem()}
	raw := st.k.Get(key)
	if raw == nil {
		return res, nil // absent or null: the defaults
	}
	if _, isMap := raw.(map[string]any); !isMap && isStructLike(typ) {
		return res, &DecodeError{
			Key: key, Field: typeName(typ), Value: showValue(raw, sensitivePath(key, typ)),
			Source: st.source(key), Err: fmt.Errorf("expected a section (mapping), got %s", kindOf(raw)),
		}
	}
	md := &mapstructure.Metadata{}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: decodeHook,
		Metadata:   md,
		Result:     out.Interface(),
		TagName:    TagName,
		Squash:     true,
	})
	if err != nil {
		return res, fmt.Errorf("config: section %s: cannot decode into %s: %w", key, typ, err)
	}
	if err := dec.Decode(raw); err != nil {
		var errs []error
		for _, de := range decodeErrors(err) {
			errs = append(errs, convertError(st, key, typ, raw, de))
		}
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("config: section %s: %w", key, err))
		}
		return res, errors.Join(errs...)
	}
	for _, u := range md.Unused {
		res.unknown = append(res.unknown, key+"."+u)
	}
	sort.Strings(res.unknown)
	return res, nil
}

func isStructLike(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return (t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)) || t.Kind() == reflect.Map
}

// decodeErrors flattens mapstructure's joined errors into their leaves.
func decodeErrors(err error) []*mapstructure.DecodeError {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*mapstructure.DecodeError
		for _, e := range j.Unwrap() {
			out = append(out, decodeErrors(e)...)
		}
		return out
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		if _, multi := de.Unwrap().(interface{ Unwrap() []error }); multi {
			return decodeErrors(de.Unwrap())
		}
		return []*mapstructure.DecodeError{de}
	}
	if u := errors.Unwrap(err); u != nil {
		return decodeErrors(u) // "decoding failed due to the following error(s)"
	}
	return nil
}

// convertError turns a mapstructure error into a DecodeError naming the
// full key, the Go field, the value (redacted when sensitive) and its
// source.
func convertError(st *state, section string, typ reflect.Type, raw any, de *mapstructure.DecodeError) *DecodeError {
	segs := splitDecodeName(de.Name())
	full := section
	display := section
	for _, s := range segs {
		if s.index {
			display += "[" + s.name + "]"
		} else {
			display += "." + s.name
		}
		full += "." + s.name
	}
	field, leaf := fieldPath(typ, segs)
	sensitive := IsSensitiveKey(full) || containsSecret(leaf)
	value := lookupPath(raw, segs)
	cause := de.Unwrap()
	if sensitive && cause != nil {
		cause = scrubbed(cause, value)
	}
	return &DecodeError{Key: display, Field: field, Value: showValue(value, sensitive), Source: st.source(full), Err: cause}
}

// scrubbed returns err with any text of value replaced by [REDACTED].
func scrubbed(err error, value any) error {
	msg := err.Error()
	if s, ok := value.(string); ok && s != "" {
		msg = strings.ReplaceAll(msg, s, secret.Redacted)
	} else if value != nil {
		if s := fmt.Sprint(value); s != "" {
			msg = strings.ReplaceAll(msg, s, secret.Redacted)
		}
	}
	return errors.New(msg)
}

type pathSeg struct {
	name  string
	index bool // a list index or map key, written [x]
}

// splitDecodeName parses mapstructure's field names: "tls.ca_file",
// "brokers[1]", "labels[env]".
func splitDecodeName(name string) []pathSeg {
	var out []pathSeg
	for name != "" {
		switch name[0] {
		case '.':
			name = name[1:]
		case '[':
			end := strings.IndexByte(name, ']')
			if end < 0 {
				return append(out, pathSeg{name: name[1:], index: true})
			}
			out = append(out, pathSeg{name: name[1:end], index: true})
			name = name[end+1:]
		default:
			end := strings.IndexAny(name, ".[")
			if end < 0 {
				end = len(name)
			}
			out = append(out, pathSeg{name: name[:end]})
			name = name[end:]
		}
	}
	return out
}

// lookupPath finds the raw value for segs, or nil.
func lookupPath(v any, segs []pathSeg) any {
	for _, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			nv, ok := x[s.name]
			if !ok {
				for k, e := range x { // mapstructure matches names ignoring case
					if strings.EqualFold(k, s.name) {
						nv, ok = e, true
						break
					}
				}
			}
			if !ok {
				return nil
			}
			v = nv
		case []any:
			i, err := strconv.Atoi(s.name)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		case string: // a comma-separated list from the environment
			items := splitList(x)
			i, err := strconv.Atoi(s.name)
			if !s.index || err != nil || i < 0 || i >= len(items) {
				return nil
			}
			v = items[i]
		default:
			return nil
		}
	}
	return v
}

// fieldPath resolves the Go field path for segs in typ ("KafkaConfig.TLS.CAFile",
// "KafkaConfig.Brokers[1]") and returns the type at the end.
func fieldPath(typ reflect.Type, segs []pathSeg) (string, reflect.Type) {
	path := typeName(typ)
	t := typ
	for _, s := range segs {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case s.index && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map):
			path += "[" + s.name + "]"
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			f, ok := findField(t, s.name)
			if !ok {
				return strings.TrimPrefix(path+"."+s.name, "."), nil
			}
			path += "." + f.Name
			t = f.Type
		case t.Kind() == reflect.Map:
			path += "[" + s.name + "]"
			t = t.Elem()
		default:
			return strings.TrimPrefix(path, "."), t
		}
	}
	return strings.TrimPrefix(path, "."), t
}

// findField finds the field of struct t that key name decodes into,
// following squashed embedded structs.
func findField(t reflect.Type, name string) (reflect.StructField, bool) {
	var fold *reflect.StructField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := parseTag(f)
		if tag.skip {
			continue
		}
		if tag.squash {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if sf, ok := findField(ft, name); ok {
					return sf, true
				}
			}
			continue
		}
		if tag.name == name {
			return f, true
		}
		if fold == nil && strings.EqualFold(tag.name, name) {
			fc := f
			fold = &fc
		}
	}
	if fold != nil {
		return *fold, true
	}
	return reflect.StructField{}, false
}

type fieldTag struct {
	name   string
	squash bool
	remain bool
	skip   bool
}

func parseTag(f reflect.StructField) fieldTag {
	parts := strings.Split(f.Tag.Get(TagName), ",")
	tag := fieldTag{name: parts[0]}
	if tag.name == "-" {
		return fieldTag{skip: true}
	}
	for _, p := range parts[1:] {
		switch p {
		case "squash":
			tag.squash = true
		case "remain":
			tag.remain = true
		}
	}
	ft := f.Type
	for ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if f.Anonymous && tag.name == "" && ft.Kind() == reflect.Struct {
		tag.squash = true // mapstructure squashes embedded structs (Squash: true)
	}
	if tag.name == "" {
		tag.name = f.Name
	}
	return tag
}

// validKeys lists the keys a struct type accepts at its top level.
func validKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := parseTag(f)
		switch {
		case tag.skip, tag.remain:
		case tag.squash:
			out = append(out, validKeys(f.Type)...)
		default:
			out = append(out, tag.name)
		}
	}
	sort.Strings(out)
	return out
}

// typeName names t for messages; an unnamed struct gives "".
func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" || t.Kind() == reflect.Struct {
		return t.Name()
	}
	return t.String()
}

// containsSecret reports whether values of t are, or hold, secret.String.
func containsSecret(t reflect.Type) bool {
	return t != nil && len(secretPaths(t)) > 0
}

// sensitivePath reports whether a value at key of type t must be redacted.
func sensitivePath(key string, t reflect.Type) bool {
	return IsSensitiveKey(key) || containsSecret(t)
}

// maxShown bounds how much of a bad value an error quotes.
const maxShown = 64

// showValue renders a value for an error message, or [REDACTED].
func showValue(v any, sensitive bool) string {
	if sensitive {
		return secret.Redacted
	}
	var s string
	switch x := v.(type) {
	case string:
		if len(x) > maxShown {
			x = truncate(x, maxShown) + "..."
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	case map[string]any:
		return "(a section)"
	case []any:
		return fmt.Sprintf("(a list of %d)", len(x))
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > maxShown {
		s = truncate(s, maxShown) + "..."
	}
	return s
}

func truncate(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// secretPaths lists the key paths inside t that hold a secret.String;
// "*" stands for any list index or map key. A nil path (the empty slice)
// means t itself is a secret.
func secretPaths(t reflect.Type) [][]string {
	var out [][]string
	walkSecrets(t, nil, 0, &out)
	return out
}

const maxTypeDepth = 16

func walkSecrets(t reflect.Type, prefix []string, depth int, out *[][]string) {
	if depth > maxTypeDepth {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == secretType {
		*out = append(*out, append([]string{}, prefix...))
		return
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		walkSecrets(t.Elem(), append(prefix, "*"), depth+1, out)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := parseTag(f)
			switch {
			case tag.skip:
			case tag.squash:
				walkSecrets(f.Type, prefix, depth+1, out)
			case tag.remain:
				walkSecrets(f.Type, prefix, depth+1, out) // a map of the unknown keys
			default:
				walkSecrets(f.Type, append(prefix, strings.ToLower(tag.name)), depth+1, out)
			}
		}
	}
}

// deepCopy returns an addressable copy of v that shares no map, slice or
// pointer with it, so decoding into the copy never changes v. Unexported
// fields are copied by value.
func deepCopy(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	copyInto(out, v, 0)
	return out
}

const maxCopyDepth = 64

func copyInto(dst, src reflect.Value, depth int) {
	if depth > maxCopyDepth {
		dst.Set(src)
		return
	}
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.Set(src)
			return
		}
		p := reflect.New(src.Type().Elem())
		copyInto(p.Elem(), src.Elem(), depth+1)
		dst.Set(p)
	case reflect.Interface:
		if src.IsNil() {
			dst.Set(src)
			return
		}
		dst.Set(deepCopy(src.Elem()))
	case reflect.Struct:
		dst.Set(src)
		for i := 0; i < src.NumField(); i++ {
			if df := dst.Field(i); df.CanSet() {
				copyInto(df, src.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.Set(src)
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			copyInto(s.Index(i), src.Index(i), depth+1)
		}
		dst.Set(s)
	case reflect.Array:
		for i := 0; i < src.Len(); i++ {
			copyInto(dst.Index(i), src.Index(i), depth+1)
		}
	case reflect.Map:
		if src.IsNil() {
			dst.Set(src)
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			e := reflect.New(src.Type().Elem()).Elem()
			copyInto(e, it.Value(), depth+1)
			m.SetMapIndex(it.Key(), e)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
