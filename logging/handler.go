package logging

import (
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/metrics"

	"github.com/keel-go/keel/internal/jsonstr"
)

// Handler is keel's slog.Handler: JSON or text lines with masking, the
// service and Kubernetes fields, trace ids and optional flood control.
// Create it with NewHandler; it is safe for concurrent use, and the
// handlers returned by WithAttrs and WithGroup share its output, lock and
// counters.
type Handler struct {
	c *core
	// pre holds the attributes added by WithAttrs, already encoded in the
	// handler's format; for JSON it may end inside open groups.
	pre []byte
	// groups are the names given to WithGroup, outermost first.
	groups []string
	// nOpen is how many of groups are already opened in pre (JSON).
	nOpen int
	// prefix is the text-format key prefix, "g1.g2.".
	prefix string
	// redactAll is set under a group whose name is sensitive.
	redactAll bool
}

// core is what all the handlers derived from one NewHandler share.
type core struct {
	mu        sync.Mutex
	w         io.Writer
	level     slog.Leveler
	json      bool
	color     bool
	addSource bool
	masker    *Masker // nil when masking is off
	cfgMasker *Masker // the configured names, also when masking is off
	fixedJSON []byte  // ,"service":...,"node":...
	fixedText []byte  // service=... node=...
	flood     *flood  // nil when off

	lines      [4]prometheus.Counter // debug, info, warn, error
	suppressed prometheus.Counter
}

// NewHandler returns a handler configured by opts and the environment
// (see Options). Settings it cannot use (an unknown LOG_LEVEL or
// LOG_FORMAT, an unknown Format, negative flood-control numbers) are
// replaced by their defaults and reported in one warning line written
// through the new handler; NewHandler never fails.
func NewHandler(opts Options) *Handler {
	st := opts.resolve()
	c := &core{
		w:         st.out,
		level:     st.level,
		json:      st.json,
		color:     st.color,
		addSource: st.addSource,
		cfgMasker: defaultMasker,
	}
	if len(opts.ExtraSensitiveKeys) > 0 {
		c.cfgMasker = NewMasker(opts.ExtraSensitiveKeys...)
	}
	if !opts.DisableMasking {
		c.masker = c.cfgMasker
	}
	fixed := []slog.Attr{}
	for _, kv := range [...][2]string{
		{"service", st.service}, {"version", st.version},
		{"pod", st.pod}, {"namespace", st.namespace}, {"node", st.node},
	} {
		if kv[1] != "" {
			fixed = append(fixed, slog.String(kv[0], kv[1]))
		}
	}
	s := state{m: c.masker}
	if c.json {
		s.buf = []byte{'x'}
		for _, a := range fixed {
			s.jsonAttr(a, false, 0)
		}
		c.fixedJSON = slices.Clone(s.buf[1:])
	} else {
		for _, a := range fixed {
			s.color = c.color
			s.textAttr(a, "", false, 0)
		}
		c.fixedText = slices.Clone(s.buf)
	}
	if st.flood.enabled() {
		c.flood = newFlood(st.flood)
	}

	reg := metrics.OrDefault(opts.Metrics)
	lines := reg.CounterVec(linesMetric, "level")
	for i, name := range [...]string{"debug", "info", "warn", "error"} {
		c.lines[i] = lines.With(name)
	}
	c.suppressed = reg.Counter(suppressedMetric)

	h := &Handler{c: c}
	if len(st.problems) > 0 {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "invalid logging settings, using defaults", 0)
		r.AddAttrs(st.problems...)
		r.AddAttrs(slog.String("fix", "LOG_LEVEL must be debug, info, warn or error; LOG_FORMAT json, text or auto; flood-control numbers must not be negative"))
		_ = h.Handle(context.Background(), r)
	}
	return h
}

var (
	linesMetric = metrics.Opts{
		Namespace: "keel", Subsystem: "logging", Name: "lines_total",
		Help:  "Log lines written, by level (debug, info, warn, error).",
		Group: "logging",
	}
	suppressedMetric = metrics.Opts{
		Namespace: "keel", Subsystem: "logging", Name: "suppressed_total",
		Help:  "Log lines dropped by flood control.",
		Group: "logging",
	}
	auditMetric = metrics.Opts{
		Namespace: "keel", Subsystem: "logging", Name: "audit_events_total",
		Help:  "Security audit events, by event type and outcome.",
		Group: "logging",
	}
)

// New returns a logger over NewHandler(opts).
func New(opts Options) *slog.Logger { return slog.New(NewHandler(opts)) }

// Setup builds a logger from opts and the environment, installs it as
// slog's default (which also routes the standard log package through it)
// and returns it. Calling it again replaces the default.
func Setup(opts Options) *slog.Logger {
	l := New(opts)
	slog.SetDefault(l)
	return l
}

// Enabled reports whether records at level are written.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.c.level.Level()
}

// Suppressed returns the number of lines flood control has dropped in
// this handler and the ones derived from it.
func (h *Handler) Suppressed() uint64 {
	if h.c.flood == nil {
		return 0
	}
	return h.c.flood.total.Load()
}

// Masker returns the masker built from the handler's sensitive names, for
// masking text by hand (Masker.MaskString) with the same rules.
func (h *Handler) Masker() *Masker { return h.c.cfgMasker }

// WithAttrs returns a handler whose lines carry attrs, encoded once here.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	s := state{m: h.c.masker, color: h.c.color}
	h2 := *h
	if h.c.json {
		s.buf = append(append(make([]byte, 0, len(h.pre)+64), 'x'), h.pre...)
		for _, g := range h.groups[h.nOpen:] {
			s.comma()
			s.jsonKey(g)
			s.buf = append(s.buf, '{')
		}
		written := false
		for _, a := range attrs {
			written = s.jsonAttr(a, h.redactAll, 0) || written
		}
		if !written {
			return h
		}
		h2.pre = s.buf[1:]
		h2.nOpen = len(h.groups)
		return &h2
	}
	s.buf = append(make([]byte, 0, len(h.pre)+64), h.pre...)
	written := false
	for _, a := range attrs {
		written = s.textAttr(a, h.prefix, h.redactAll, 0) || written
	}
	if !written {
		return h
	}
	h2.pre = s.buf
	return &h2
}

// WithGroup returns a handler that nests later attributes under name. A
// group whose name is sensitive has all its values redacted.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = append(slices.Clip(h.groups), name)
	h2.prefix = h.prefix + name + "."
	if h.c.masker != nil && h.c.masker.Sensitive(name) {
		h2.redactAll = true
	}
	return &h2
}

// Handle writes r as one line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	c := h.c
	var suppressed uint64
	if c.flood != nil && !floodExempt(ctx) {
		now := r.Time
		if now.IsZero() {
			now = time.Now()
		}
		ok, n := c.flood.allow(r.Message, now.UnixNano())
		if !ok {
			c.suppressed.Inc()
			return nil
		}
		suppressed = n
	}
	bp := getBuf()
	s := state{buf: (*bp)[:0], m: c.masker, color: c.color}
	if c.json {
		h.appendJSON(&s, ctx, &r, suppressed)
	} else {
		h.appendText(&s, ctx, &r, suppressed)
	}
	c.mu.Lock()
	_, err := c.w.Write(s.buf)
	c.mu.Unlock()
	*bp = s.buf
	putBuf(bp)
	c.lineCounter(r.Level).Inc()
	return err
}

func (c *core) lineCounter(l slog.Level) prometheus.Counter {
	switch {
	case l < slog.LevelInfo:
		return c.lines[0]
	case l < slog.LevelWarn:
		return c.lines[1]
	case l < slog.LevelError:
		return c.lines[2]
	}
	return c.lines[3]
}

func (h *Handler) appendJSON(s *state, ctx context.Context, r *slog.Record, suppressed uint64) {
	c := h.c
	s.buf = append(s.buf, '{')
	if !r.Time.IsZero() {
		s.buf = append(s.buf, `"timestamp":"`...)
		s.buf = appendTimestamp(s.buf, r.Time, 6)
		s.buf = append(s.buf, `",`...)
	}
	s.buf = append(s.buf, `"level":"`...)
	s.buf = append(s.buf, r.Level.String()...)
	s.buf = append(s.buf, `","msg":`...)
	s.jsonMessage(r.Message)
	if c.addSource && r.PC != 0 {
		if src := sourceOf(r.PC); src != "" {
			s.buf = append(s.buf, `,"source":"`...)
			s.buf = jsonstr.AppendEscaped(s.buf, src)
			s.buf = append(s.buf, '"')
		}
	}
	s.buf = append(s.buf, c.fixedJSON...)
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			tid, sid := sc.TraceID(), sc.SpanID()
			s.buf = append(s.buf, `,"trace_id":"`...)
			s.buf = hex.AppendEncode(s.buf, tid[:])
			s.buf = append(s.buf, `","span_id":"`...)
			s.buf = hex.AppendEncode(s.buf, sid[:])
			s.buf = append(s.buf, '"')
		}
	}
	if suppressed > 0 {
		s.buf = append(s.buf, `,"suppressed":`...)
		s.buf = strconv.AppendUint(s.buf, suppressed, 10)
	}
	s.buf = append(s.buf, h.pre...)
	opened := h.nOpen
	if r.NumAttrs() > 0 {
		mark := len(s.buf)
		for _, g := range h.groups[h.nOpen:] {
			s.comma()
			s.jsonKey(g)
			s.buf = append(s.buf, '{')
		}
		written := false
		r.Attrs(func(a slog.Attr) bool {
			written = s.jsonAttr(a, h.redactAll, 0) || written
			return true
		})
		if written {
			opened = len(h.groups)
		} else {
			s.buf = s.buf[:mark]
		}
	}
	for range opened {
		s.buf = append(s.buf, '}')
	}
	s.buf = append(s.buf, '}', '\n')
}

// ANSI styles for the text format
const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
)

func levelStyle(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "\x1b[34m" // blue
	case l < slog.LevelWarn:
		return "\x1b[32m" // green
	case l < slog.LevelError:
		return "\x1b[33m" // yellow
	}
	return "\x1b[1;31m" // bold red
}

func (h *Handler) appendText(s *state, ctx context.Context, r *slog.Record, suppressed uint64) {
	c := h.c
	if !r.Time.IsZero() {
		if s.color {
			s.buf = append(s.buf, ansiDim...)
		}
		s.buf = appendTimestamp(s.buf, r.Time, 3)
		if s.color {
			s.buf = append(s.buf, ansiReset...)
		}
		s.buf = append(s.buf, ' ')
	}
	if s.color {
		s.buf = append(s.buf, levelStyle(r.Level)...)
	}
	lvl := r.Level.String()
	s.buf = append(s.buf, lvl...)
	if s.color {
		s.buf = append(s.buf, ansiReset...)
	}
	for i := len(lvl); i < 5; i++ {
		s.buf = append(s.buf, ' ')
	}
	s.buf = append(s.buf, ' ')
	s.buf = appendTextMessage(s.buf, s.message(r.Message))
	s.buf = append(s.buf, c.fixedText...)
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			tid, sid := sc.TraceID(), sc.SpanID()
			s.textKey("", "trace_id")
			s.buf = hex.AppendEncode(s.buf, tid[:])
			s.textKey("", "span_id")
			s.buf = hex.AppendEncode(s.buf, sid[:])
		}
	}
	if suppressed > 0 {
		s.textKey("", "suppressed")
		s.buf = strconv.AppendUint(s.buf, suppressed, 10)
	}
	s.buf = append(s.buf, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		s.textAttr(a, h.prefix, h.redactAll, 0)
		return true
	})
	if c.addSource && r.PC != 0 {
		if src := sourceOf(r.PC); src != "" {
			s.buf = append(s.buf, ' ')
			if s.color {
				s.buf = append(s.buf, ansiDim...)
			}
			s.buf = append(s.buf, "source="...)
			s.buf = appendTextString(s.buf, src)
			if s.color {
				s.buf = append(s.buf, ansiReset...)
			}
		}
	}
	s.buf = append(s.buf, '\n')
}

// floodExemptKey marks a context whose records bypass flood control.
type floodExemptKey struct{}

func withFloodExempt(ctx context.Context) context.Context {
	return context.WithValue(ctx, floodExemptKey{}, true)
}

func floodExempt(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	v, _ := ctx.Value(floodExemptKey{}).(bool)
	return v
}

// compile-time check
var _ slog.Handler = (*Handler)(nil)

// sourceOf returns "pkg/file.go:line" for a program counter. Results are
// kept in a small lock-free cache: call sites are few and fixed, so after
// warm-up a record's source costs one atomic load.
func sourceOf(pc uintptr) string {
	slot := &sourceCache[(uint64(pc)*0x9E3779B97F4A7C15)>>(64-sourceCacheBits)]
	if e := slot.Load(); e != nil && e.pc == pc {
		return e.src
	}
	fs := runtime.CallersFrames([]uintptr{pc})
	f, _ := fs.Next()
	if f.File == "" {
		return ""
	}
	src := sourceName(f.Function, f.File, f.Line)
	slot.Store(&sourceEntry{pc: pc, src: src})
	return src
}

const sourceCacheBits = 10

type sourceEntry struct {
	pc  uintptr
	src string
}

// sourceCache maps program counters to their source position. It only
// caches immutable facts of the running binary.
var sourceCache [1 << sourceCacheBits]atomic.Pointer[sourceEntry]

// sourceName returns "pkg/file.go:line": the last element of the import
// path of the function (as runtime.Frame.Function spells it, such as
// "github.com/keel-go/keel.(*Runtime).shutdown"), the file's base name and
// the line. It does not depend on the directory the code was built in;
// without a function name it falls back to the file's directory.
func sourceName(function, file string, line int) string {
	pkg := packageOf(function)
	if pkg == "" {
		pkg = lastElem(dirOf(file))
	}
	base := lastElem(file)
	if pkg != "" {
		base = pkg + "/" + base
	}
	return base + ":" + strconv.Itoa(line)
}

// packageOf returns the last element of the import path of a function
// name, the element before it when it is a major version: "keel" for
// "github.com/keel-go/keel.(*Runtime).shutdown", "main" for "main.main",
// "rand" for "math/rand/v2.IntN", "yaml.v3" for "gopkg.in/yaml%2ev3.Marshal".
func packageOf(function string) string {
	if i := strings.IndexByte(function, '['); i >= 0 { // type arguments
		function = function[:i]
	}
	dir := dirOf(function)
	elem := function[len(dir):]
	elem = strings.TrimPrefix(elem, "/")
	if i := strings.IndexByte(elem, '.'); i >= 0 {
		elem = elem[:i]
	}
	if isMajorVersion(elem) && dir != "" {
		elem = lastElem(dir)
	}
	// the toolchain escapes '.' (and a few other bytes) in the last
	// element of an import path
	return strings.ReplaceAll(elem, "%2e", ".")
}

// isMajorVersion reports a major-version path element: v2, v3, ...
func isMajorVersion(elem string) bool {
	if len(elem) < 2 || elem[0] != 'v' {
		return false
	}
	for i := 1; i < len(elem); i++ {
		if elem[i] < '0' || elem[i] > '9' {
			return false
		}
	}
	return true
}

func lastElem(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return ""
}
