package scaling

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel/metrics"
)

var fuzzSeeds = []string{
	"max(cpu, memory) * 100",
	"lag > 0.5 ? 100.0 : cpu * 100.0",
	"lag > 0.5 ? 100 : cpu * 100",
	"clamp(lag * 150, 0, 100)",
	"min(cpu, memory, queue, lag, pool, 1, 2, 3)",
	"abs(cpu - memory) * 100",
	"cpu / queue",
	"0/0",
	"1e308 * 1e308",
	"-9223372036854775808",
	"18446744073709551615u",
	"cpu * * 2",
	"(((((cpu)))))",
	`"x"`,
	`b"\xff"`,
	"cpu > 0.5",
	"{}",
	"[cpu][0]",
	"x.y.z",
	"has(cpu.x)",
	"cpu.exists(x, x)",
	"\n\n  )",
	"clamp(cpu, 1, 0)",
	"max(" + strings.Repeat("cpu,", 9) + "cpu)",
	strings.Repeat("(", 80) + "cpu" + strings.Repeat(")", 80),
	strings.Repeat("cpu + ", 600) + "cpu",
	"custom_a * 100",
	"\x00",
	"cpu ? 1 : 2",
}

// FuzzCompileExpression: compiling any text never panics; a refusal is a
// positioned *ExpressionError (or the length ConfigError); an accepted
// expression evaluates to a finite number or an error, never a panic.
func FuzzCompileExpression(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	names := append(builtinNames(), "custom_a")
	inputs := [][]float64{
		{0, 0, 0, 0, 0, 0},
		{1, 1, 1, 1, 1, 1},
		{0.5, 0.25, 0, 0.75, 0.1, 0.9},
	}
	f.Fuzz(func(t *testing.T, src string) {
		perr := parseExpression(src)
		x, err := compileExpression(src, names, ExpressionCostLimit)
		if err != nil {
			var xe *ExpressionError
			var ce *ConfigError
			switch {
			case errors.As(err, &xe):
				if xe.Line < 1 || xe.Column < 1 || len(xe.Issues) == 0 || xe.Expression != src {
					t.Fatalf("bad ExpressionError %#v", xe)
				}
				_ = xe.Error()
			case errors.As(err, &ce):
				if len(src) <= MaxExpressionLength {
					t.Fatalf("ConfigError for a short expression: %v", err)
				}
			default:
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if perr != nil {
			t.Fatalf("compiled but the syntax check refused it: %v", perr)
		}
		for _, in := range inputs {
			v, err := x.eval(t.Context(), in)
			if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
				t.Fatalf("%q gave %v without an error", src, v)
			}
		}
	})
}

// FuzzPressureSignals: whatever the application reports, the pressure is a
// finite number in [0,100] and the result encodes as JSON.
func FuzzPressureSignals(f *testing.F) {
	f.Add(0.5, 0.2, 0.8, 50_000.0, 1.0, false, "")
	f.Add(math.NaN(), math.Inf(1), math.Inf(-1), -1.0, 1e300, true, "cpu / queue")
	f.Add(0.0, 0.95, 0.0, 0.0, 0.0, false, "max(cpu, memory) * 1000")
	f.Add(-0.0, 0.0, 1.0, 1e9, 0.0, false, "-lag * 100")
	reg := metrics.New(metrics.Config{Namespace: "fuzz", NoRuntimeCollectors: true})
	f.Fuzz(func(t *testing.T, cpu, mem, queue, lag, pool float64, open bool, expr string) {
		p, err := New(Config{Expression: expr}, WithMetrics(reg))
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New error does not match ErrInvalidConfig: %v", err)
			}
			return
		}
		for name, v := range map[string]float64{CPU: cpu, Memory: mem, Queue: queue, Lag: lag, Pool: pool} {
			if err := p.Set(name, v); err != nil {
				t.Fatal(err)
			}
		}
		p.SetCircuitOpen(open)
		r := p.Evaluate()
		if math.IsNaN(r.Value) || r.Value < 0 || r.Value > 100 || math.IsNaN(r.Weighted) || r.Weighted < 0 || r.Weighted > 100 {
			t.Fatalf("value %v weighted %v", r.Value, r.Weighted)
		}
		if open && r.Value != 0 {
			t.Fatalf("circuit open but value %v", r.Value)
		}
		if !open && slices.Contains(r.GatesHeld, GateMemory) && r.Value != 100 {
			t.Fatalf("memory gate held but value %v", r.Value)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("json: %v", err)
		}
	})
}

func TestExpressionCostLimitAtStartup(t *testing.T) {
	_, err := compileExpression("cpu + memory + queue + lag + pool", builtinNames(), 3)
	var xe *ExpressionError
	if !errors.As(err, &xe) || !strings.Contains(err.Error(), "more than the limit 3") {
		t.Fatalf("err = %v", err)
	}
	if _, err := compileExpression("cpu + memory", builtinNames(), ExpressionCostLimit); err != nil {
		t.Fatal(err)
	}
}
