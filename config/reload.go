package config

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync/atomic"
)

// Change is what a listener receives after a reload changed its section.
type Change struct {
	// Section is the key the listener subscribed to.
	Section string
	// Version is the new live version.
	Version uint64
	// Value is a pointer to the freshly decoded and validated section, of
	// the type registered with Section (*T), or nil when the section was
	// never registered. Treat it as read-only: listeners share it.
	Value any

	st *state
}

// listener is one OnChange subscription.
type listener struct {
	id   uint64
	fn   func(Change)
	last atomic.Uint64 // highest version delivered
}

// OnChange calls fn after every successful reload that changed the section
// at key: for a registered section when its decoded value differs, for
// any other key when its raw value differs. fn runs outside every lock of
// this package, so it may call any method of c, including OnChange and
// Reload. Notifications for one listener arrive in version order; an
// older one that would arrive after a newer one is dropped. The returned
// func unsubscribes.
func (c *Config) OnChange(key string, fn func(Change)) (stop func()) {
	c.mu.Lock()
	c.nextID++
	l := &listener{id: c.nextID, fn: fn}
	c.listeners[key] = append(c.listeners[key], l)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		ls := c.listeners[key]
		for i, x := range ls {
			if x.id == l.id {
				c.listeners[key] = append(ls[:i:i], ls[i+1:]...)
				return
			}
		}
	}
}

// Subscribe calls fn with the new value of the section at key after every
// reload that changed it (see OnChange). When key was registered with
// Section as T, fn gets the validated value decoded from the registered
// defaults; otherwise the section is decoded into T's zero value, and a
// value that does not decode is logged and skipped.
func Subscribe[T any](c *Config, key string, fn func(T)) (stop func()) {
	return c.OnChange(key, func(ch Change) {
		if p, ok := ch.Value.(*T); ok {
			fn(*p)
			return
		}
		var zero T
		d, err := decodeSection(ch.st, key, reflect.ValueOf(&zero).Elem())
		if err != nil {
			c.logger().Error("config: cannot decode changed section for subscriber", "section", key, "version", ch.Version, "error", err)
			return
		}
		fn(d.val.Interface().(T))
	})
}

// Reload runs the whole cascade again, re-decodes and validates every
// registered section, and only if all of that succeeds swaps the new
// configuration in and notifies listeners of the sections that changed.
// On failure the old configuration stays live and the error says why.
// Either way keel_config_reloads_total counts the attempt.
func (c *Config) Reload(ctx context.Context) error {
	return c.reload(ctx, "manual").Err
}

type notification struct {
	l  *listener
	ch Change
}

func (c *Config) reload(ctx context.Context, trigger string) ReloadResult {
	c.reloadMu.Lock()
	old := c.cur.Load()
	st, err := c.load(ctx)
	var values map[string]reflect.Value
	if err == nil {
		values, err = c.validateAll(st)
	}
	if err != nil {
		c.reloadMu.Unlock()
		c.reloads.With("failure").Inc()
		err = fmt.Errorf("config: reload (%s) rejected, version %d stays live: %w", trigger, old.version, err)
		c.logger().Error("config: reload failed; keeping the current configuration", "trigger", trigger, "version", old.version, "error", err)
		return ReloadResult{Trigger: trigger, Version: old.version, Err: err}
	}
	st.version = old.version + 1
	c.cur.Store(st)

	// Update the registry and work out which sections changed.
	changed := make(map[string]any) // section -> new value (*T) or nil
	c.mu.Lock()
	for key, v := range values {
		e := c.sections[key]
		if e == nil || e.typ != v.Type() {
			continue // re-registered meanwhile with another type
		}
		if !reflect.DeepEqual(e.effective.Interface(), v.Interface()) {
			p := reflect.New(v.Type())
			p.Elem().Set(deepCopy(v))
			changed[key] = p.Interface()
		}
		e.effective = v
	}
	var notes []notification
	for _, key := range sortedKeys(c.listeners) {
		val, isChanged := changed[key]
		if _, registered := values[key]; !registered {
			isChanged = !reflect.DeepEqual(old.k.Get(key), st.k.Get(key))
		}
		if !isChanged {
			continue
		}
		for _, l := range c.listeners[key] {
			notes = append(notes, notification{l: l, ch: Change{Section: key, Version: st.version, Value: val, st: st}})
		}
	}
	c.mu.Unlock()
	c.reloadMu.Unlock()

	c.reloads.With("success").Inc()
	c.lastReload.Set(float64(st.loadedAt.UnixNano()) / 1e9)
	c.version.Set(float64(st.version))
	names := sortedKeys(changed)
	c.logger().Info("config: reloaded", "trigger", trigger, "version", st.version, "changed_sections", names, "files", st.files)

	for _, n := range notes {
		c.notify(n)
	}
	return ReloadResult{Trigger: trigger, Version: st.version, Changed: names}
}

// validateAll re-decodes every registered section from st into a fresh
// copy of its defaults and runs its validators.
func (c *Config) validateAll(st *state) (map[string]reflect.Value, error) {
	c.mu.Lock()
	entries := make([]*sectionEntry, 0, len(c.sections))
	for _, e := range c.sections {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })
	values := make(map[string]reflect.Value, len(entries))
	for _, e := range entries {
		d, err := c.check(st, e.key, e.defaults)
		if err != nil {
			return nil, err
		}
		values[e.key] = d.val
	}
	return values, nil
}

// notify delivers one change, in version order, and survives a panicking
// listener.
func (c *Config) notify(n notification) {
	for {
		last := n.l.last.Load()
		if n.ch.Version <= last {
			return // a newer version was delivered already
		}
		if n.l.last.CompareAndSwap(last, n.ch.Version) {
			break
		}
	}
	defer func() {
		if r := recover(); r != nil {
			c.logger().Error("config: change listener panicked", "section", n.ch.Section, "version", n.ch.Version, "panic", fmt.Sprint(r))
		}
	}()
	n.l.fn(n.ch)
}
