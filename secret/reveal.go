package secret

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
)

var (
	stringType        = reflect.TypeFor[String]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// RevealJSON marshals v to JSON with every String in it written as its real
// value. It is the explicit way to round-trip a structure that holds
// secrets (to write a file an operator asked for, say) and is safe to call
// from many goroutines: no global switch is flipped. Struct fields follow
// their json tags (name, "-", omitempty).
func RevealJSON(v any) ([]byte, error) {
	return json.Marshal(reveal(reflect.ValueOf(v)))
}

// Reveal returns a copy of v as plain Go values (maps, slices, scalars) with
// every String replaced by its real value. See RevealJSON.
func Reveal(v any) any { return reveal(reflect.ValueOf(v)) }

func reveal(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type() == stringType {
		return v.Interface().(String).Expose()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return reveal(v.Elem())
	case reflect.Struct:
		if implementsMarshaler(v) {
			return v.Interface()
		}
		out := make(map[string]any, v.NumField())
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, omitEmpty, skip := jsonName(f)
			if skip {
				continue
			}
			fv := v.Field(i)
			if omitEmpty && fv.IsZero() {
				continue
			}
			if f.Anonymous && f.Tag.Get("json") == "" {
				if m, ok := reveal(fv).(map[string]any); ok {
					for k, x := range m {
						if _, exists := out[k]; !exists {
							out[k] = x
						}
					}
					continue
				}
			}
			out[name] = reveal(fv)
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			k := iter.Key()
			var key string
			if k.Kind() == reflect.String {
				key = k.String()
			} else if b, err := json.Marshal(k.Interface()); err == nil {
				key = strings.Trim(string(b), `"`)
			}
			out[key] = reveal(iter.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface()
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = reveal(v.Index(i))
		}
		return out
	default:
		if v.CanInterface() {
			return v.Interface()
		}
		return nil
	}
}

func implementsMarshaler(v reflect.Value) bool {
	t := v.Type()
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(jsonMarshalerType) || pt.Implements(textMarshalerType)
}

func jsonName(f reflect.StructField) (name string, omitEmpty, skip bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false, true
	}
	name = f.Name
	if tag != "" {
		parts := strings.Split(tag, ",")
		if parts[0] != "" {
			name = parts[0]
		}
		for _, p := range parts[1:] {
			if p == "omitempty" || p == "omitzero" {
				omitEmpty = true
			}
		}
	}
	return name, omitEmpty, false
}
