package scaling_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keel-go/keel/scaling"
)

func TestExpressionValues(t *testing.T) {
	signals := map[string]float64{
		scaling.CPU: 0.5, scaling.Memory: 0.7, scaling.Queue: 0.25, scaling.Lag: 60_000, scaling.Pool: 0.1,
	}
	for _, tc := range []struct {
		expr string
		want float64
	}{
		{"max(cpu, memory) * 100", 70},
		{"lag > 0.5 ? 100.0 : cpu * 100.0", 100},
		{"lag > 0.7 ? 100.0 : cpu * 100.0", 50},
		{"lag > 0.5 ? 100 : cpu * 100", 100}, // integer literals read as doubles
		{"min(cpu, memory, queue) * 100", 25},
		{"max(cpu, memory, queue, lag, pool, 0.05, 0.01, 0) * 100", 70},
		{"(cpu + memory) / 2 * 100", 60},
		{"abs(queue - memory) * 100", 45},
		{"clamp(lag * 200, 0, 50)", 50},
		{"cpu == 0.5 && !(memory < 0.5) ? 42 : 0", 42},
		{"cpu != 0 || false ? 7u : 0", 7},
		{"-cpu * -100", 50},
		{"12.5", 12.5},
		{"lag * 100", 60}, // lag normalised by lag_full
		{"\n  cpu\n  * 100\n", 50},
		// clamped to [0,100]
		{"cpu * 1000", 100},
		{"-50", 0},
		{"memory - 1", 0},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			p, _ := newPressure(t, scaling.Config{Expression: tc.expr})
			mustSet(t, p, signals)
			r := p.Evaluate()
			if r.Method != scaling.MethodExpression || r.Error != "" || r.Expression != tc.expr {
				t.Fatalf("method %q error %q expr %q", r.Method, r.Error, r.Expression)
			}
			if !near(r.Value, tc.want) {
				t.Fatalf("%s = %v, want %v", tc.expr, r.Value, tc.want)
			}
		})
	}
}

func TestExpressionUsesCustomComponentsAndZeroForUnreported(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Expression: "errors * 100 + cpu * 10"}, scaling.WithCustom("errors", 1))
	mustSet(t, p, map[string]float64{"errors": 0.3})
	if r := p.Evaluate(); !near(r.Value, 30) {
		t.Fatalf("value %v, want 30 (unreported cpu is 0)", r.Value)
	}
}

func TestExpressionGatesComeFirst(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Expression: "50"})
	p.SetCircuitOpen(true)
	if r := p.Evaluate(); r.Value != 0 || r.Gate != scaling.GateCircuitOpen {
		t.Fatalf("circuit: %+v", r)
	}
	p.SetCircuitOpen(false)
	mustSet(t, p, map[string]float64{scaling.Memory: 0.95})
	if r := p.Evaluate(); r.Value != 100 || r.Gate != scaling.GateMemory {
		t.Fatalf("memory: %+v", r)
	}
}

func TestExpressionSyntaxErrorPosition(t *testing.T) {
	for _, tc := range []struct {
		expr      string
		line, col int
		text      string
	}{
		{"cpu * * 2", 1, 7, "Syntax error"},
		{"max(cpu,\n  memory", 2, 9, "Syntax error"},
		{"cpu +\n\n   )", 3, 4, "Syntax error"},
		{"(cpu", 1, 5, "Syntax error"},
		{"\n  foo * 100", 2, 3, "undeclared reference to 'foo'"},
		{"cpu * 100 + bogus", 1, 13, "undeclared reference to 'bogus'"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := scaling.New(scaling.Config{Expression: tc.expr}, newEnv().opts()...)
			var xe *scaling.ExpressionError
			if !errors.As(err, &xe) || !errors.Is(err, scaling.ErrInvalidExpression) || !errors.Is(err, scaling.ErrInvalidConfig) {
				t.Fatalf("err = %v, want an ExpressionError", err)
			}
			if xe.Line != tc.line || xe.Column != tc.col {
				t.Fatalf("position %d:%d, want %d:%d (%v)", xe.Line, xe.Column, tc.line, tc.col, err)
			}
			msg := err.Error()
			pos := strings.Contains(msg, xe.Issues[0].String())
			if !strings.HasPrefix(msg, "scaling.expression: ") || !pos || !strings.Contains(msg, tc.text) ||
				!strings.Contains(msg, strings.ReplaceAll(tc.expr, "\n", `\n`)) {
				t.Fatalf("message must name the key, the position, the problem and the expression: %v", msg)
			}
		})
	}
}

func TestExpressionMustYieldANumber(t *testing.T) {
	for _, expr := range []string{`"x"`, "cpu > 0.5", "true", "null", "{}", "[cpu]", `b"x"`, `cpu > 0 ? "a" : "b"`} {
		t.Run(expr, func(t *testing.T) {
			_, err := scaling.New(scaling.Config{Expression: expr}, newEnv().opts()...)
			var xe *scaling.ExpressionError
			if !errors.As(err, &xe) || xe.Line != 1 || xe.Column < 1 {
				t.Fatalf("err = %v, want an ExpressionError with a position", err)
			}
			if !strings.Contains(err.Error(), "number") && !strings.Contains(err.Error(), "no matching overload") {
				t.Fatalf("message must say a number is needed: %v", err)
			}
		})
	}
	_, err := scaling.New(scaling.Config{Expression: `"x"`}, newEnv().opts()...)
	if err == nil || !strings.Contains(err.Error(), "1:1: the expression yields string, not a number") {
		t.Fatalf(`"x": %v`, err)
	}
}

// Only the small numeric language exists: no strings functions, regular
// expressions, macros, time or conversion functions.
func TestExpressionFunctionSetIsRestricted(t *testing.T) {
	for _, expr := range []string{
		`size("abc") * 1.0`,
		`"abc".matches("a") ? 1.0 : 0.0`,
		`[1.0, 2.0].exists(x, x > 1.0) ? 1.0 : 0.0`,
		`has(cpu.x) ? 1.0 : 0.0`,
		`double("1")`,
		`int(cpu)`,
		`timestamp("2020-01-01T00:00:00Z") > timestamp("2019-01-01T00:00:00Z") ? 1.0 : 0.0`,
		`duration("1s") > duration("0s") ? 1.0 : 0.0`,
		`"a" + "b" == "ab" ? 1.0 : 0.0`,
		`[1.0] + [2.0] == [1.0, 2.0] ? 1.0 : 0.0`,
		`[cpu, memory][0] * 100`,
		`7 % 2`,
		`max(cpu)`,
		`max(1, 2, 3, 4, 5, 6, 7, 8, 9)`,
		`dyn(cpu) * 100`,
	} {
		if _, err := scaling.New(scaling.Config{Expression: expr}, newEnv().opts()...); !errors.Is(err, scaling.ErrInvalidExpression) {
			t.Errorf("%s: err = %v, want ErrInvalidExpression", expr, err)
		}
	}
}

// A run-time failure (here a division by zero, which has no finite result)
// falls back to the weighted formula, is counted, and is logged at most
// once a minute.
func TestExpressionRuntimeErrorFallsBack(t *testing.T) {
	p, e := newPressure(t, scaling.Config{Expression: "cpu / queue * 100"})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.6, scaling.Queue: 0.5})
	if r := p.Evaluate(); r.Method != scaling.MethodExpression || !near(r.Value, 100) {
		t.Fatalf("valid evaluation: %+v", r)
	}
	mustSet(t, p, map[string]float64{scaling.Queue: 0})
	r := p.Evaluate()
	want := 100 * (0.2 * 0.6) / (0.2 + 0.25)
	if r.Method != scaling.MethodFallback || !near(r.Value, want) || !near(r.Weighted, want) ||
		!strings.Contains(r.Error, "not a finite number") {
		t.Fatalf("fallback: %+v, want value %v", r, want)
	}
	p.Evaluate()
	if n, _ := e.metricValue(t, "keel_scaling_expression_errors_total"); n != 2 {
		t.Fatalf("expression errors counted %v, want 2", n)
	}
	if n, _ := e.metricValue(t, "keel_scaling_evaluations_total", "method", "fallback"); n != 2 {
		t.Fatalf("fallback evaluations %v, want 2", n)
	}
	logs := e.logs.String()
	if c := strings.Count(logs, "expression failed"); c != 1 {
		t.Fatalf("logged %d times in one minute, want 1:\n%s", c, logs)
	}
	if !strings.Contains(logs, `"expression":"cpu / queue * 100"`) {
		t.Fatalf("log line must name the expression: %s", logs)
	}
	// A minute later the next failure is logged again, with the count of
	// the lines held back.
	e.clock.Advance(scaling.DefaultInterval * 13)
	p.Evaluate()
	logs = e.logs.String()
	if c := strings.Count(logs, "expression failed"); c != 2 || !strings.Contains(logs, `"suppressed":1`) {
		t.Fatalf("after a minute: %d lines:\n%s", c, logs)
	}
	// 0/0 is NaN: also a fallback, never a NaN pressure.
	mustSet(t, p, map[string]float64{scaling.CPU: 0})
	if r := p.Evaluate(); r.Method != scaling.MethodFallback || r.Value != 0 {
		t.Fatalf("0/0: %+v", r)
	}
}

func TestClampWithBadBoundsIsARuntimeError(t *testing.T) {
	p, e := newPressure(t, scaling.Config{Expression: "clamp(cpu, 1, 0) * 100"})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.5})
	r := p.Evaluate()
	if r.Method != scaling.MethodFallback || !strings.Contains(r.Error, "lo") || !near(r.Value, 50) {
		t.Fatalf("%+v", r)
	}
	if n, _ := e.metricValue(t, "keel_scaling_expression_errors_total"); n != 1 {
		t.Fatalf("counted %v", n)
	}
}
