package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Entry is one recorded log record: its attributes by key, the groups
// and attributes added with WithAttrs included, values resolved.
type Entry map[string]any

// Recorder is a slog.Handler that keeps every record it handles, at every
// level. The zero value is ready; it is safe for concurrent use, and the
// handlers derived from it with WithAttrs or WithGroup record into it.
type Recorder struct {
	mu      sync.Mutex
	entries []record
}

type record struct {
	level slog.Level
	msg   string
	attrs Entry
}

// recordingHandler is a Recorder with attributes added by WithAttrs.
type recordingHandler struct {
	rec   *Recorder
	attrs []slog.Attr
}

// Enabled reports true: every level is recorded.
func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }

// Handle records rec.
func (r *Recorder) Handle(ctx context.Context, rec slog.Record) error {
	return recordingHandler{rec: r}.Handle(ctx, rec)
}

// WithAttrs returns a handler that records into r with attrs added.
func (r *Recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return recordingHandler{rec: r}.WithAttrs(attrs)
}

// WithGroup returns r: groups are not kept, attributes are flattened.
func (r *Recorder) WithGroup(string) slog.Handler { return r }

// Find returns the attributes of the records logged at level with
// message msg, in the order they were logged.
func (r *Recorder) Find(level slog.Level, msg string) []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Entry
	for _, e := range r.entries {
		if e.level == level && e.msg == msg {
			out = append(out, e.attrs)
		}
	}
	return out
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	attrs := make(Entry, len(h.attrs)+rec.NumAttrs())
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.Resolve().Any()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.rec.mu.Lock()
	h.rec.entries = append(h.rec.entries, record{level: rec.Level, msg: rec.Message, attrs: attrs})
	h.rec.mu.Unlock()
	return nil
}

func (h recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return recordingHandler{rec: h.rec, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h recordingHandler) WithGroup(string) slog.Handler { return h }
