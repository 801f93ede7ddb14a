package secrets

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/keel-go/keel/secret"
)

// maxResolveDepth bounds the walk of ResolveStruct.
const maxResolveDepth = 32

var secretType = reflect.TypeFor[secret.String]()

// ResolveStruct walks v, a pointer to a configuration section decoded by
// config.Section, and replaces every secret.String field whose value is a
// reference ("vault:secret/data/kafka#password", "aws:prod/db#password",
// "file:/var/run/secrets/token", "env:DB_PASSWORD", or a custom provider's
// scheme) with the secret it points to. It follows nested structs,
// pointers, slices, arrays, maps and interfaces; fields are named by their
// koanf tags, so errors name the configuration key.
//
// A value that does not start with a known provider scheme is left as it
// is. A value starting with LiteralPrefix ("literal:") is taken literally,
// without the prefix: the way to write a password that looks like a
// reference. Call it once per decode.
//
// Every reference that does not resolve is a *ResolveError naming the key
// (section.field...) and the reference, never a secret value; they are
// returned joined, and the fields that did resolve are set. Use it at
// start-up right after Section, and in the config.Subscribe callback after
// a reload:
//
//	var kc KafkaConfig
//	if err := cfg.Section("kafka", &kc); err != nil { return err }
//	if err := secrets.ResolveStruct(ctx, mgr, "kafka", &kc); err != nil { return err }
//
// m may be nil only when v holds no reference.
func ResolveStruct(ctx context.Context, m *Manager, section string, v any) error {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: ResolveStruct needs a non-nil pointer, got %T", ErrConfig, v)
	}
	w := &resolver{ctx: ctx, m: m, seen: map[uintptr]bool{}}
	w.walk(rv.Elem(), section, 0)
	return errors.Join(w.errs...)
}

type resolver struct {
	ctx  context.Context
	m    *Manager
	errs []error
	seen map[uintptr]bool
}

// isRef reports whether s is a reference the resolver must resolve.
func (w *resolver) isRef(s string) bool {
	if w.m != nil {
		return w.m.IsReference(s)
	}
	scheme, _, ok := splitScheme(s)
	if !ok {
		return false
	}
	switch canonicalProvider(scheme) {
	case ProviderFile, ProviderEnv, ProviderVault, ProviderAWS:
		return true
	}
	return false
}

// walk resolves the references under v, which is settable or not; it
// returns whether it changed anything, so callers holding copies (map
// values, interfaces) write them back.
func (w *resolver) walk(v reflect.Value, key string, depth int) bool {
	if depth > maxResolveDepth || !v.IsValid() {
		return false
	}
	if v.Type() == secretType {
		return w.resolveField(v, key)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return false
		}
		ptr := v.Pointer()
		if w.seen[ptr] {
			return false
		}
		w.seen[ptr] = true
		return w.walk(v.Elem(), key, depth+1)
	case reflect.Interface:
		if v.IsNil() {
			return false
		}
		elem := v.Elem()
		if elem.Kind() == reflect.Pointer {
			return w.walk(elem, key, depth+1)
		}
		if !v.CanSet() {
			return false
		}
		cp := reflect.New(elem.Type()).Elem()
		cp.Set(elem)
		if w.walk(cp, key, depth+1) {
			v.Set(cp)
			return true
		}
		return false
	case reflect.Struct:
		changed := false
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			// The exported fields of an unexported embedded struct are
			// promoted, settable and decoded: walk it too.
			if !f.IsExported() && !(f.Anonymous && f.Type.Kind() == reflect.Struct) {
				continue
			}
			name, squash, skip := koanfName(f)
			if skip {
				continue
			}
			k := key
			if !squash {
				k = joinKey(key, name)
			}
			if w.walk(v.Field(i), k, depth+1) {
				changed = true
			}
		}
		return changed
	case reflect.Slice, reflect.Array:
		changed := false
		for i := 0; i < v.Len(); i++ {
			if w.walk(v.Index(i), fmt.Sprintf("%s[%d]", key, i), depth+1) {
				changed = true
			}
		}
		return changed
	case reflect.Map:
		if v.IsNil() {
			return false
		}
		changed := false
		iter := v.MapRange()
		type upd struct{ k, v reflect.Value }
		var updates []upd
		for iter.Next() {
			cp := reflect.New(iter.Value().Type()).Elem()
			cp.Set(iter.Value())
			if w.walk(cp, joinKey(key, fmt.Sprint(iter.Key().Interface())), depth+1) {
				updates = append(updates, upd{iter.Key(), cp})
			}
		}
		for _, u := range updates {
			v.SetMapIndex(u.k, u.v)
			changed = true
		}
		return changed
	}
	return false
}

func (w *resolver) resolveField(v reflect.Value, key string) bool {
	if !v.CanSet() {
		return false
	}
	raw := v.Interface().(secret.String).Expose()
	if rest, ok := strings.CutPrefix(raw, LiteralPrefix); ok {
		v.Set(reflect.ValueOf(secret.New(rest)))
		return true
	}
	if !w.isRef(raw) {
		return false
	}
	if w.m == nil {
		w.errs = append(w.errs, &ResolveError{Key: key, Ref: raw, Err: fmt.Errorf("%w: no secrets manager to resolve it", ErrProviderNotConfigured)})
		return false
	}
	val, err := w.m.Resolve(w.ctx, raw)
	if err != nil {
		w.errs = append(w.errs, &ResolveError{Key: key, Ref: raw, Err: err})
		return false
	}
	v.Set(reflect.ValueOf(val))
	return true
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// koanfName reads a field's koanf tag the way config.Section does: the
// name (the Go name when untagged), ",squash" (and untagged embedded
// structs) merging into the parent, "-" skipping.
func koanfName(f reflect.StructField) (name string, squash, skip bool) {
	parts := strings.Split(f.Tag.Get("koanf"), ",")
	name = parts[0]
	if name == "-" {
		return "", false, true
	}
	for _, p := range parts[1:] {
		if p == "squash" {
			squash = true
		}
	}
	ft := f.Type
	for ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
		squash = true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, squash, false
}
