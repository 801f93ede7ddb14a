package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// sectionEntry is a section some component decoded, kept so a reload can
// re-decode and validate it, and so the admin dump can show it.
type sectionEntry struct {
	key       string
	typ       reflect.Type
	defaults  reflect.Value // private deep copy, never handed out
	effective reflect.Value // private deep copy of the last good decode
}

// validator checks a decoded section. It runs only when the section's
// registered type is typ.
type validator struct {
	id  uint64
	typ reflect.Type
	fn  func(v reflect.Value) error
}

// Section decodes the section at key (a dotted path such as "kafka" or
// "transport.kafka") into dst, a non-nil pointer to a struct (or map).
// The value *dst holds before the call is the section's defaults: an
// absent section leaves it as is, and an absent (or null) key keeps its
// default. Struct fields are matched by `koanf:"name"` tags (see TagName).
//
// Values are converted to the field's type: "8080" to an int, "true" to a
// bool, "a, b" to a list, "1m30s" or a bare number of seconds to a
// time.Duration, strings into encoding.TextUnmarshaler types such as
// secret.String.
//
// A value that cannot be converted is an error (a *DecodeError per bad
// value, joined) naming the full key, the Go field, the bad value
// (redacted for secret.String fields and sensitive key names) and the
// layer it came from; *dst is then left unchanged. Keys that match no
// field are logged as a warning, or returned as an *UnknownKeysError when
// Options.Strict is set. Validators added with AddValidator run last.
//
// On success the section is registered: DumpJSON shows its defaults and
// effective value, and every reload re-decodes and validates it before
// the new configuration goes live.
func (c *Config) Section(key string, dst any) error {
	rv := reflect.ValueOf(dst)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: Section(%q): dst must be a non-nil pointer, got %T", key, dst)
	}
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
		return fmt.Errorf("config: Section(%q): key must be a dotted section name such as \"kafka\"", key)
	}
	defaults := deepCopy(rv.Elem())
	secrets := secretPaths(defaults.Type())
	if len(secrets) > 0 {
		// Remembered even if decoding fails, so the dump still redacts
		// these keys by type.
		c.mu.Lock()
		c.secretKeys[key] = mergePaths(c.secretKeys[key], secrets)
		c.mu.Unlock()
	}
	// Holding reloadMu keeps a concurrent reload from swapping in a state
	// this section was not decoded from (and validated against).
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	st := c.cur.Load()
	d, err := c.check(st, key, defaults)
	if err != nil {
		return err
	}
	rv.Elem().Set(deepCopy(d.val))

	e := &sectionEntry{
		key:       key,
		typ:       defaults.Type(),
		defaults:  defaults,
		effective: d.val,
	}
	c.mu.Lock()
	if old, ok := c.sections[key]; ok && old.typ != e.typ {
		c.logger().Warn("config: section decoded again with another type; the registry keeps the last one", "section", key, "old_type", old.typ.String(), "new_type", e.typ.String())
	}
	c.sections[key] = e
	c.mu.Unlock()
	return nil
}

// check decodes one section from st into a copy of defaults, reports or
// refuses unknown keys and runs the section's validators.
func (c *Config) check(st *state, key string, defaults reflect.Value) (decoded, error) {
	d, err := decodeSection(st, key, defaults)
	if err != nil {
		return d, err
	}
	if len(d.unknown) > 0 {
		uerr := &UnknownKeysError{Section: key, Keys: d.unknown, Valid: validKeys(defaults.Type())}
		if c.opts.Strict {
			return d, uerr
		}
		c.logger().Warn("config: unknown keys in section (typo?)", "section", key, "keys", d.unknown, "valid_keys", uerr.Valid)
	}
	c.mu.Lock()
	vs := append([]*validator(nil), c.validators[key]...)
	c.mu.Unlock()
	var errs []error
	for _, v := range vs {
		if v.typ != d.val.Type() {
			errs = append(errs, fmt.Errorf("config: validator for section %q expects %s but the section is decoded as %s", key, v.typ, d.val.Type()))
			continue
		}
		if err := v.fn(d.val); err != nil {
			errs = append(errs, fmt.Errorf("config: section %s is invalid: %w", key, err))
		}
	}
	return d, errors.Join(errs...)
}

// AddValidator adds a check for section key that runs whenever the section
// is decoded: in Section and, once Section has registered it, on every
// reload, where an error rejects the new configuration and keeps the old
// one live. T must be the type passed to Section (the struct, not the
// pointer). fn runs while the configuration is being loaded: it must not
// call Section or Reload on c (it would deadlock). The returned func removes
// the validator.
func AddValidator[T any](c *Config, key string, fn func(T) error) (remove func()) {
	c.mu.Lock()
	c.nextID++
	v := &validator{id: c.nextID, typ: reflect.TypeFor[T](), fn: func(rv reflect.Value) error { return fn(rv.Interface().(T)) }}
	c.validators[key] = append(c.validators[key], v)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		vs := c.validators[key]
		for i, x := range vs {
			if x.id == v.id {
				c.validators[key] = append(vs[:i:i], vs[i+1:]...)
				return
			}
		}
	}
}

// mergePaths adds the paths of b missing from a.
func mergePaths(a, b [][]string) [][]string {
next:
	for _, p := range b {
		for _, q := range a {
			if slices.Equal(p, q) {
				continue next
			}
		}
		a = append(a, p)
	}
	return a
}
