package config

import (
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// SectionInfo describes a section registered by Section, with every
// sensitive value redacted.
type SectionInfo struct {
	// Name is the section key, e.g. "kafka".
	Name string `json:"-"`
	// Type is the Go type it decodes into.
	Type string `json:"type"`
	// Defaults is the value the section had before decoding.
	Defaults any `json:"defaults"`
	// Effective is the live decoded value.
	Effective any `json:"effective"`
}

// Sections returns the registered sections sorted by name, redacted.
func (c *Config) Sections() []SectionInfo {
	c.mu.Lock()
	entries := make([]*sectionEntry, 0, len(c.sections))
	for _, k := range sortedKeys(c.sections) {
		entries = append(entries, c.sections[k])
	}
	c.mu.Unlock()
	out := make([]SectionInfo, 0, len(entries))
	for _, e := range entries {
		out = append(out, SectionInfo{
			Name:      e.key,
			Type:      e.typ.String(),
			Defaults:  redactValue(e.defaults, false, 0),
			Effective: redactValue(e.effective, false, 0),
		})
	}
	return out
}

// Effective returns a redacted copy of the whole live configuration as
// nested maps. Values are redacted when their key looks sensitive
// (IsSensitiveKey, applied to every key and inherited by everything under
// it), when a section passed to Section (even one that failed to decode)
// maps them to a secret.String field, and
// the password (or a user name without one) and sensitive query
// parameters of URL-shaped strings.
func (c *Config) Effective() map[string]any {
	st := c.cur.Load()
	c.mu.Lock()
	var patterns [][]string
	for key, paths := range c.secretKeys {
		base := strings.Split(strings.ToLower(key), ".")
		for _, p := range paths {
			patterns = append(patterns, append(append([]string{}, base...), p...))
		}
	}
	c.mu.Unlock()
	m, _ := redactRaw(st.k.Raw(), nil, false, patterns).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// DumpJSON returns the live configuration as JSON for the admin /config
// endpoint and the CLI, with every sensitive value redacted:
//
//	{"effective": {...}, "sections": {"kafka": {"type": "...", "defaults": {...}, "effective": {...}}},
//	 "sources": {"kafka.brokers": "env MYAPP_KAFKA__BROKERS", ...},
//	 "version": 3, "env": "production", "files": [...], "loaded_at": "..."}
func (c *Config) DumpJSON() ([]byte, error) {
	st := c.cur.Load()
	sections := make(map[string]SectionInfo)
	for _, s := range c.Sections() {
		sections[s.Name] = s
	}
	d := struct {
		Effective map[string]any         `json:"effective"`
		Sections  map[string]SectionInfo `json:"sections"`
		Sources   map[string]string      `json:"sources"`
		Version   uint64                 `json:"version"`
		Env       string                 `json:"env"`
		Files     []string               `json:"files"`
		LoadedAt  time.Time              `json:"loaded_at"`
	}{c.Effective(), sections, st.origins, st.version, st.env, st.files, st.loadedAt}
	if d.Files == nil {
		d.Files = []string{}
	}
	return json.Marshal(d)
}

// Redact returns a plain copy of v (maps, slices and scalars, ready for
// JSON) with every secret.String, every value under a sensitive key name
// (IsSensitiveKey) and the password (or a user name without one) of
// URL-shaped strings replaced by [REDACTED]. Struct fields are named by
// their koanf tags.
func Redact(v any) any {
	return redactValue(reflect.ValueOf(v), false, 0)
}

const maxRedactDepth = 64

// redactValue converts a Go value to a plain redacted tree.
func redactValue(v reflect.Value, sensitive bool, depth int) any {
	if !v.IsValid() {
		return nil
	}
	if depth > maxRedactDepth {
		return "(too deep)"
	}
	t := v.Type()
	if t == secretType {
		return secret.Redacted
	}
	if t == durationType {
		if sensitive {
			return secret.Redacted
		}
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return redactValue(v.Elem(), sensitive, depth+1)
	case reflect.Struct:
		if s, ok := marshalText(v); ok {
			return redactScalar(s, sensitive)
		}
		out := make(map[string]any)
		redactStruct(v, sensitive, depth, out)
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			k := fmt.Sprint(it.Key().Interface())
			out[k] = redactValue(it.Value(), sensitive || IsSensitiveKey(k), depth+1)
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return redactScalar(fmt.Sprintf("(%d bytes)", v.Len()), sensitive)
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redactValue(v.Index(i), sensitive, depth+1)
		}
		return out
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return nil
	}
	if !v.CanInterface() {
		return nil
	}
	return redactScalar(v.Interface(), sensitive)
}

func redactStruct(v reflect.Value, sensitive bool, depth int, out map[string]any) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := parseTag(f)
		fv := v.Field(i)
		switch {
		case tag.skip:
		case tag.squash || tag.remain:
			for fv.Kind() == reflect.Pointer && !fv.IsNil() {
				fv = fv.Elem()
			}
			if m, ok := redactValue(fv, sensitive, depth+1).(map[string]any); ok {
				for k, x := range m {
					if _, dup := out[k]; !dup {
						out[k] = x
					}
				}
			}
		default:
			out[tag.name] = redactValue(fv, sensitive || IsSensitiveKey(tag.name), depth+1)
		}
	}
}

// marshalText renders types such as time.Time and net.IP as text.
func marshalText(v reflect.Value) (string, bool) {
	if !v.CanInterface() {
		return "", false
	}
	m, ok := v.Interface().(encoding.TextMarshaler)
	if !ok && v.CanAddr() {
		m, ok = v.Addr().Interface().(encoding.TextMarshaler)
	}
	if !ok {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		m, ok = p.Interface().(encoding.TextMarshaler)
	}
	if !ok {
		return "", false
	}
	b, err := m.MarshalText()
	if err != nil {
		return "", false
	}
	return string(b), true
}

// redactRaw redacts the raw configuration tree. path holds lower-cased
// keys, "*" for list elements.
func redactRaw(v any, path []string, sensitive bool, patterns [][]string) any {
	if !sensitive && len(path) > 0 && matchesSecret(path, patterns) {
		sensitive = true
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redactRaw(e, append(path[:len(path):len(path)], strings.ToLower(k)), sensitive || IsSensitiveKey(k), patterns)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactRaw(e, append(path[:len(path):len(path)], "*"), sensitive, patterns)
		}
		return out
	case nil:
		return nil
	case time.Duration:
		return redactScalar(x.String(), sensitive)
	case string, bool, int, int64, float64:
		return redactScalar(x, sensitive)
	}
	return redactValue(reflect.ValueOf(v), sensitive, 0)
}

// matchesSecret reports whether path is a secret.String location, or a
// list or map that holds only secrets, of any pattern.
func matchesSecret(path []string, patterns [][]string) bool {
next:
	for _, p := range patterns {
		if len(path) > len(p) {
			continue
		}
		for i, s := range path {
			if p[i] != "*" && p[i] != s {
				continue next
			}
		}
		for _, s := range p[len(path):] {
			if s != "*" {
				continue next
			}
		}
		return true
	}
	return false
}

func redactScalar(v any, sensitive bool) any {
	if v == nil {
		return nil
	}
	if sensitive {
		return secret.Redacted
	}
	switch x := v.(type) {
	case string:
		return scrubURL(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Sprint(x)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Sprint(x)
		}
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
	default:
		return scrubURL(fmt.Sprint(x))
	}
	return v
}

// scrubURL redacts the password and sensitive query parameters of a
// URL-shaped string ("postgres://user:pw@host/db?sslpassword=x"), and the
// user info of one that has a user name but no password
// ("https://token@host"), which is often a token.
func scrubURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return secret.Redacted // unparseable but may hold credentials
		}
		return s
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
			changed = true
		} else if u.User.Username() != "" {
			// user info without a password is often a token
			// ("https://ghp_x@github.com")
			u.User = url.User("REDACTED")
			changed = true
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if IsSensitiveKey(k) {
				q.Set(k, "REDACTED")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	return u.String()
}
