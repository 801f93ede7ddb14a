package logging

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

type node struct {
	Name string
	Next *node
}

type panicky struct{}

func (*panicky) Error() string { panic("boom password=leak1") }

type badJSON struct{}

func (badJSON) MarshalJSON() ([]byte, error) { return []byte("{not json"), nil }

type failingJSON struct{}

func (failingJSON) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot marshal") }

type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

type withUnexported struct {
	Visible string
	hidden  string
	*Inner
	Chan   chan int
	Func   func()
	Empty  string    `json:",omitempty"`
	Zero   time.Time `json:",omitzero"`
	Iface  any
	Floats []float64
}

type Inner struct{ InnerField string }

func logOne(t *testing.T, format string, args ...any) string {
	t.Helper()
	var out syncBuffer
	New(Options{Format: format, Output: &out, AddSource: ptr(false), Metrics: testRegistry()}).Info("v", args...)
	return out.String()
}

func TestWalkerEdgeCases(t *testing.T) {
	cleanEnv(t)
	cyc := &node{Name: "a"}
	cyc.Next = &node{Name: "b", Next: cyc}

	out := logOne(t, FormatJSON, "cycle", cyc)
	m := oneJSON(t, out)
	if !strings.Contains(out, depthMarker) {
		t.Fatalf("cycle not cut at the depth bound: %s", out)
	}
	if m["cycle"].(map[string]any)["Name"] != "a" {
		t.Fatalf("cycle head lost: %v", m)
	}

	out = logOne(t, FormatJSON, "p", &panicky{}, "bad", badJSON{}, "fail", failingJSON{}, "nilerr", (*nilErr)(nil),
		"w", withUnexported{Visible: "v", hidden: "h", Chan: make(chan int), Func: func() {}, Floats: []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.5}},
		"iface", []any{nil, 1, "x", map[string]any{"token": "t"}})
	m = oneJSON(t, out)
	if p, _ := m["p"].(string); !strings.HasPrefix(p, "!PANIC: boom") || strings.Contains(out, "leak1") {
		t.Errorf("panicking Error: %v (the panic text must be masked too)", m["p"])
	}
	if m["bad"] != "!ERROR: MarshalJSON returned invalid JSON" || m["fail"] != "!ERROR: cannot marshal" || m["nilerr"] != nil {
		t.Errorf("marshaler errors: bad=%v fail=%v nilerr=%v", m["bad"], m["fail"], m["nilerr"])
	}
	w := m["w"].(map[string]any)
	if w["Visible"] != "v" || w["hidden"] != nil || w["InnerField"] != nil && w["InnerField"] != "" {
		t.Errorf("struct walk: %v", w)
	}
	if _, ok := w["Empty"]; ok {
		t.Errorf("omitempty ignored: %v", w)
	}
	if _, ok := w["Zero"]; ok {
		t.Errorf("omitzero ignored: %v", w)
	}
	if !strings.HasPrefix(w["Chan"].(string), "!UNSUPPORTED") || !strings.HasPrefix(w["Func"].(string), "!UNSUPPORTED") {
		t.Errorf("chan/func: %v %v", w["Chan"], w["Func"])
	}
	if f := w["Floats"].([]any); f[0] != "NaN" || f[1] != "+Inf" || f[2] != "-Inf" || f[3] != 0.5 {
		t.Errorf("floats: %v", f)
	}
	if ia := m["iface"].([]any); ia[0] != nil || ia[3].(map[string]any)["token"] != "[REDACTED]" {
		t.Errorf("interfaces: %v", ia)
	}

	// deep groups stop at the bound too
	g := slog.Group("leaf", "x", 1)
	for range maxDepth + 5 {
		g = slog.Group("g", g)
	}
	if out := logOne(t, FormatJSON, g); !strings.Contains(out, depthMarker) {
		t.Errorf("deep group not bounded: %s", out)
	}
	if out := logOne(t, FormatText, g); !strings.Contains(out, depthMarker) {
		t.Errorf("deep text group not bounded: %s", out)
	}
}

func TestTextValues(t *testing.T) {
	cleanEnv(t)
	out := logOne(t, FormatText, "s", "plain", "q", "has space", "e", "", "n", nil, "err", errors.New("it failed"),
		"b", []byte("raw"), "m", map[string]int{"a": 1}, "t", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		"f", 0.25, "u", uint64(9), "p", &panicky{}, "nilerr", (*nilErr)(nil))
	for _, want := range []string{` s=plain `, ` q="has space" `, ` e="" `, ` n=<nil> `, ` err="it failed" `, ` b=raw `,
		` m={"a":1} `, ` t=2026-01-02T03:04:05Z `, ` f=0.25 `, ` u=9 `, ` p="!PANIC: boom password=[REDACTED]"`, ` nilerr=<nil>`} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}
