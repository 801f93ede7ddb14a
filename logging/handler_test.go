package logging

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
)

func TestJSONLineFields(t *testing.T) {
	cleanEnv(t)
	t.Setenv(EnvPod, "orders-7d9f-abcde")
	t.Setenv(EnvNamespace, "payments")
	t.Setenv(EnvNode, "node-3")
	t.Setenv(EnvService, "from-env")
	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, Service: "orders", Version: "1.4.2", Metrics: testRegistry()})
	before := time.Now().UTC()
	l.Info("order stored", "order_id", 42, "amount", 12.5, "ok", true, "took", 3*time.Millisecond)
	after := time.Now().UTC()
	m := oneJSON(t, buf.String())

	ts, _ := m["timestamp"].(string)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`).MatchString(ts) {
		t.Fatalf("timestamp %q is not RFC 3339 UTC with fractional seconds", ts)
	}
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("timestamp %q: %v", ts, err)
	}
	if parsed.Location() != time.UTC {
		t.Fatalf("timestamp %q is not UTC", ts)
	}
	if parsed.Before(before.Truncate(time.Microsecond)) || parsed.After(after) {
		t.Fatalf("timestamp %v not within [%v, %v]", parsed, before, after)
	}
	want := map[string]any{
		"level": "INFO", "msg": "order stored",
		"service": "orders", "version": "1.4.2", // the option wins over SERVICE_NAME
		"pod": "orders-7d9f-abcde", "namespace": "payments", "node": "node-3",
		"order_id": 42.0, "amount": 12.5, "ok": true, "took": float64(3 * time.Millisecond),
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	src, _ := m["source"].(string)
	if !regexp.MustCompile(`^logging/handler_test\.go:\d+$`).MatchString(src) {
		t.Errorf("source = %q, want logging/handler_test.go:<line>", src)
	}
	if _, ok := m["trace_id"]; ok {
		t.Errorf("trace_id present without a span: %v", m)
	}
}

func TestServiceFromEnvAndSourceOff(t *testing.T) {
	cleanEnv(t)
	t.Setenv(EnvService, "svc-env")
	t.Setenv(EnvVersion, "9.9.9")
	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, AddSource: ptr(false), Metrics: testRegistry()})
	l.Info("x")
	m := oneJSON(t, buf.String())
	if m["service"] != "svc-env" || m["version"] != "9.9.9" {
		t.Fatalf("service/version from env: %v", m)
	}
	for _, k := range []string{"source", "pod", "namespace", "node"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s should be absent: %v", k, m)
		}
	}
}

func TestKubernetesPodName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		opts    Options
		wantPod any
	}{
		{"bare metal: no pod", map[string]string{EnvHostname: "laptop"}, Options{}, nil},
		{"in a pod: HOSTNAME", map[string]string{EnvHostname: "api-5c6b", EnvKubernetesHost: "10.0.0.1"}, Options{}, "api-5c6b"},
		{"POD_NAME wins", map[string]string{EnvHostname: "api-5c6b", EnvKubernetesHost: "10.0.0.1", EnvPod: "api-real"}, Options{}, "api-real"},
		{"option wins", map[string]string{EnvPod: "api-real"}, Options{Pod: "explicit", Namespace: "ns", Node: "n1"}, "explicit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var buf syncBuffer
			o := tc.opts
			o.Format, o.Output, o.Metrics = FormatJSON, &buf, testRegistry()
			New(o).Info("x")
			m := oneJSON(t, buf.String())
			if m["pod"] != tc.wantPod {
				t.Fatalf("pod = %v, want %v", m["pod"], tc.wantPod)
			}
			if o.Namespace != "" && (m["namespace"] != o.Namespace || m["node"] != o.Node) {
				t.Fatalf("namespace/node options not used: %v", m)
			}
		})
	}
}

func spanContext(t *testing.T) (context.Context, string, string) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(context.Background(), sc), tid.String(), sid.String()
}

func TestTraceIDs(t *testing.T) {
	cleanEnv(t)
	ctx, tid, sid := spanContext(t)

	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, Metrics: testRegistry()})
	l.InfoContext(ctx, "with span")
	l.InfoContext(context.Background(), "without span")
	// a span context with no span id is not valid
	bad := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}}))
	l.InfoContext(bad, "invalid span")
	lines := jsonLines(t, buf.String())
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d", len(lines))
	}
	if lines[0]["trace_id"] != tid || lines[0]["span_id"] != sid {
		t.Fatalf("trace ids: %v", lines[0])
	}
	for _, m := range lines[1:] {
		if _, ok := m["trace_id"]; ok {
			t.Fatalf("trace_id without a valid span: %v", m)
		}
	}

	var tbuf syncBuffer
	New(Options{Format: FormatText, Output: &tbuf, Metrics: testRegistry()}).InfoContext(ctx, "with span")
	if !strings.Contains(tbuf.String(), " trace_id="+tid+" span_id="+sid) {
		t.Fatalf("text line lacks trace ids: %q", tbuf.String())
	}
}

// TestSlogConformance runs the standard library's handler test suite
// (groups, inline groups, empty attributes, LogValuer resolution, zero
// time, WithGroup without attributes, ...).
func TestSlogConformance(t *testing.T) {
	cleanEnv(t)
	var buf syncBuffer
	h := NewHandler(Options{Format: FormatJSON, Output: &buf, AddSource: ptr(false), Metrics: testRegistry()})
	results := func() []map[string]any {
		ms := jsonLines(t, buf.String())
		for _, m := range ms {
			if ts, ok := m["timestamp"]; ok {
				m[slog.TimeKey] = ts
				delete(m, "timestamp")
			}
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Fatal(err)
	}
}

type plainStruct struct {
	Name   string            `json:"name"`
	Count  int               `json:"count,omitempty"`
	Skip   string            `json:"-"`
	Tags   []string          `json:"tags"`
	Labels map[string]string `json:"labels"`
	Nested *plainStruct      `json:"nested,omitempty"`
	When   time.Time         `json:"when"`
	Raw    []byte            `json:"raw"`
	F32    float32           `json:"f32"`
	Big    float64           `json:"big"`
	Small  float64           `json:"small"`
}

// TestJSONMatchesSlog logs the same records through keel's handler
// (masking on, keys not sensitive) and slog's JSONHandler and compares
// everything but the fields keel names differently or adds.
func TestJSONMatchesSlog(t *testing.T) {
	cleanEnv(t)
	when := time.Date(2026, 3, 4, 5, 6, 7, 891000000, time.FixedZone("X", 3600))
	cases := map[string]func(l *slog.Logger){
		"scalars": func(l *slog.Logger) {
			l.Info("m", "s", "str\"quoted\"\n\t<>&\u2028", "i", -3, "u", uint64(1<<63), "f", 1e21, "g", 1e-7, "h", 123.456,
				"b", false, "d", 90*time.Second, "t", when, "nil", nil, "bad", "\xff\xfe")
		},
		"groups": func(l *slog.Logger) {
			l.With("a", 1).WithGroup("g").With("b", 2).WithGroup("h").Info("m", "c", 3, slog.Group("i", "d", 4), slog.Group("", "inline", 5))
		},
		"empty groups": func(l *slog.Logger) {
			l.WithGroup("g").WithGroup("h").Info("m")
			l.WithGroup("g").Info("m", slog.Group("e"))
			l.WithGroup("g").Info("m", slog.Any("", nil))
			l.WithGroup("g").Info("m", slog.Group("e", slog.Any("", nil)))
			l.WithGroup("g").With(slog.Any("", nil)).Info("m")
			l.WithGroup("g").With("x", 1).WithGroup("h").Info("m")
		},
		"any values": func(l *slog.Logger) {
			l.Info("m", "struct", plainStruct{Name: "n", Skip: "x", Tags: []string{"a", "b"}, Labels: map[string]string{"z": "1", "a": "2"},
				Nested: &plainStruct{Name: "inner"}, When: when, Raw: []byte("bytes"), F32: 0.1, Big: 1e300, Small: 5e-324},
				"slice", []int{1, 2, 3}, "map", map[int]string{2: "b", 1: "a"}, "err", errors.New("boom"), "nilptr", (*plainStruct)(nil))
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			var kb, sb syncBuffer
			fn(New(Options{Format: FormatJSON, Output: &kb, AddSource: ptr(false), Metrics: testRegistry()}))
			fn(slog.New(slog.NewJSONHandler(&sb, nil)))
			k, s := jsonLines(t, kb.String()), jsonLines(t, sb.String())
			if len(k) != len(s) {
				t.Fatalf("line counts differ: keel %d, slog %d", len(k), len(s))
			}
			for i := range k {
				delete(k[i], "timestamp")
				delete(s[i], "time")
				kj, _ := json.Marshal(k[i])
				sj, _ := json.Marshal(s[i])
				if string(kj) != string(sj) {
					t.Errorf("line %d differs\nkeel: %s\nslog: %s", i, kj, sj)
				}
			}
		})
	}
}

func TestTextFormat(t *testing.T) {
	cleanEnv(t)
	var buf syncBuffer
	l := New(Options{Format: FormatText, Output: &buf, Color: ptr(false), Service: "svc", Metrics: testRegistry()})
	l.With("component", "db").WithGroup("req").Warn("slow\nquery", "took", 1500*time.Millisecond, "sql", "select 1", "n", 3)
	line := buf.String()
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN  slow\\nquery service=svc component=db req\.took=1\.5s req\.sql="select 1" req\.n=3 source=logging/handler_test\.go:\d+\n$`)
	if !re.MatchString(line) {
		t.Fatalf("text line %q does not match %s", line, re)
	}
	if strings.Contains(line, "\x1b[") {
		t.Fatal("colour codes with colours off")
	}

	buf = syncBuffer{}
	New(Options{Format: FormatText, Output: &buf, Color: ptr(true), Metrics: testRegistry()}).Error("failed", "n", 1)
	line = buf.String()
	for _, part := range []string{"\x1b[1;31mERROR\x1b[0m", "\x1b[2mn=\x1b[0m1", " failed "} {
		if !strings.Contains(line, part) {
			t.Errorf("coloured line %q lacks %q", line, part)
		}
	}
}

func TestLevelFilteringAndLineMetrics(t *testing.T) {
	cleanEnv(t)
	var buf syncBuffer
	reg := testRegistry()
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	l := New(Options{Format: FormatJSON, Output: &buf, Level: lv, Metrics: reg})
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	lv.Set(slog.LevelDebug)
	l.Debug("d2")
	var msgs []string
	for _, m := range jsonLines(t, buf.String()) {
		msgs = append(msgs, m["msg"].(string))
	}
	if strings.Join(msgs, ",") != "w,e,d2" {
		t.Fatalf("lines written: %v", msgs)
	}
	vec := reg.CounterVec(linesMetric, "level")
	for level, want := range map[string]float64{"debug": 1, "info": 0, "warn": 1, "error": 1} {
		if got := testutil.ToFloat64(vec.With(level)); got != want {
			t.Errorf("keel_logging_lines_total{level=%q} = %v, want %v", level, got, want)
		}
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteErrorReturned(t *testing.T) {
	cleanEnv(t)
	h := NewHandler(Options{Format: FormatJSON, Output: failingWriter{}, Metrics: testRegistry()})
	err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", 0))
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("Handle error = %v, want %v", err, errDiskFull)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	cleanEnv(t)
	var buf syncBuffer
	l := New(Options{Format: FormatJSON, Output: &buf, Metrics: testRegistry()})
	const workers, per = 8, 200
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			wl := l.With("worker", w)
			for i := range per {
				wl.Info("tick", "i", i, "password", "hunter2")
			}
		}()
	}
	for range workers {
		<-done
	}
	lines := jsonLines(t, buf.String())
	if len(lines) != workers*per {
		t.Fatalf("got %d lines, want %d", len(lines), workers*per)
	}
	if strings.Contains(buf.String(), "hunter2") {
		t.Fatal("secret leaked under concurrency")
	}
}

// TestZeroAllocations: a line with ten non-sensitive attributes and one
// through a With logger allocate nothing in the handler.
func TestZeroAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items on purpose")
	}
	cleanEnv(t)
	h := NewHandler(Options{Format: FormatJSON, Output: discard{}, Metrics: testRegistry()})
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request handled", callerPC())
	r.Add(tenAttrs()...)
	ctx, _, _ := spanContext(t)
	hw := h.WithAttrs([]slog.Attr{slog.String("component", "api"), slog.Int("shard", 3)}).WithGroup("req")
	for name, fn := range map[string]func(){
		"ten attrs":   func() { _ = h.Handle(ctx, r) },
		"with + attr": func() { _ = hw.Handle(ctx, r) },
	} {
		fn() // warm the source cache and buffer pool
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %v allocations per line, want 0", name, n)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func callerPC() uintptr {
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:])
	return pcs[0]
}

// TestSourceNamesThePackage: the source attribute is the package (the last
// element of the function's import path, before a major version) and the
// file's base name, wherever the code was checked out.
func TestSourceNamesThePackage(t *testing.T) {
	for _, tc := range []struct {
		function, file string
		want           string
	}{
		{"github.com/keel-go/keel.(*Runtime).shutdown", "/work/main/shutdown.go", "keel/shutdown.go:123"},
		{"github.com/keel-go/keel.Main.func1", `C:/src/checkout/keel.go`, "keel/keel.go:123"},
		{"github.com/keel-go/keel/logging.(*Handler).Handle", "/tmp/x/logging/handler.go", "logging/handler.go:123"},
		{"main.main", "/home/dev/orders/cmd/orders/main.go", "main/main.go:123"},
		{"github.com/knadh/koanf/v2.(*Koanf).Load", "/go/pkg/mod/github.com/knadh/koanf/v2@v2.4.1/koanf.go", "koanf/koanf.go:123"},
		{"gopkg.in/yaml%2ev3.Marshal", "/go/pkg/mod/gopkg.in/yaml.v3@v3.0.1/yaml.go", "yaml.v3/yaml.go:123"},
		{"example.com/m/pkg.Map[...].Get", "/src/m/pkg/map.go", "pkg/map.go:123"},
		{"", "/src/m/pkg/map.go", "pkg/map.go:123"},
		{"", "map.go", "map.go:123"},
	} {
		if got := sourceName(tc.function, tc.file, 123); got != tc.want {
			t.Errorf("sourceName(%q, %q) = %q, want %q", tc.function, tc.file, got, tc.want)
		}
	}

	// Real frames: math/rand/v2 lives in a directory named v2.
	cleanEnv(t)
	var buf syncBuffer
	h := NewHandler(Options{Format: FormatJSON, Output: &buf, Metrics: testRegistry()})
	for _, fn := range []any{rand.IntN, sourceName} {
		// a function's entry, as a return address into it
		pc := reflect.ValueOf(fn).Pointer() + 1
		_ = h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "x", pc))
	}
	lines := jsonLines(t, buf.String())
	for i, re := range []string{`^rand/rand\.go:\d+$`, `^logging/handler\.go:\d+$`} {
		if src, _ := lines[i]["source"].(string); !regexp.MustCompile(re).MatchString(src) {
			t.Errorf("source = %q, want %s", src, re)
		}
	}
}
