package scaling_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel/scaling"
)

// all five built-ins reported, default weights (they sum to 1):
// 100 × (0.20×0.5 + 0.10×0.2 + 0.25×0.8 + 0.35×0.5 + 0.10×1.0) = 59.5
func TestWeightedDefaultWeightsExact(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{
		scaling.CPU: 0.5, scaling.Memory: 0.2, scaling.Queue: 0.8,
		scaling.Lag: 50_000, scaling.Pool: 1,
	})
	r := p.Evaluate()
	if !near(r.Value, 59.5) || !near(r.Weighted, 59.5) {
		t.Fatalf("value %v weighted %v, want 59.5", r.Value, r.Weighted)
	}
	if r.Method != scaling.MethodWeighted || r.Gate != scaling.GateNone || len(r.GatesHeld) != 0 {
		t.Fatalf("method %q gate %q held %v", r.Method, r.Gate, r.GatesHeld)
	}
	want := map[string][2]float64{ // share, contribution
		scaling.CPU: {0.20, 10}, scaling.Memory: {0.10, 2}, scaling.Queue: {0.25, 20},
		scaling.Lag: {0.35, 17.5}, scaling.Pool: {0.10, 10},
	}
	for name, w := range want {
		c := component(t, r, name)
		if !c.Reported || !near(c.Share, w[0]) || !near(c.Contribution, w[1]) {
			t.Errorf("%s: %+v, want share %v contribution %v", name, c, w[0], w[1])
		}
	}
	if c := component(t, r, scaling.Lag); c.Raw != 50_000 || !near(c.Value, 0.5) {
		t.Errorf("lag raw %v value %v, want 50000 and 0.5", c.Raw, c.Value)
	}
	if got := p.Value(); got != r.Value {
		t.Errorf("Value() = %v, want %v", got, r.Value)
	}
}

// Components never reported stay out of the normalisation.
func TestWeightedOnlyReportedComponentsCount(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.5, scaling.Queue: 1})
	r := p.Evaluate()
	want := 100 * (0.20*0.5 + 0.25*1) / (0.20 + 0.25) // 77.77...
	if !near(r.Value, want) {
		t.Fatalf("value %v, want %v", r.Value, want)
	}
	if c := component(t, r, scaling.Lag); c.Reported || c.Share != 0 || c.Contribution != 0 {
		t.Errorf("unreported lag: %+v", c)
	}
	// NaN clears a component again.
	mustSet(t, p, map[string]float64{scaling.Queue: math.NaN()})
	if r := p.Evaluate(); !near(r.Value, 50) {
		t.Fatalf("after clearing queue: %v, want 50 (cpu alone)", r.Value)
	}
	// Nothing reported: 0.
	mustSet(t, p, map[string]float64{scaling.CPU: math.NaN()})
	if r := p.Evaluate(); r.Value != 0 || r.Weighted != 0 {
		t.Fatalf("nothing reported: %+v", r)
	}
}

func TestWeightsConfiguredAndNormalised(t *testing.T) {
	// Weights 2 and 6 are relative: the same as 0.25 and 0.75.
	p, _ := newPressure(t, scaling.Config{Weights: map[string]float64{
		scaling.CPU: 2, scaling.Queue: 6, scaling.Lag: 0, scaling.Memory: 0, scaling.Pool: 0,
	}})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.4, scaling.Queue: 0.8, scaling.Lag: 1e9, scaling.Pool: 1})
	r := p.Evaluate()
	want := 100 * (0.25*0.4 + 0.75*0.8) // 70
	if !near(r.Value, want) {
		t.Fatalf("value %v, want %v", r.Value, want)
	}
}

func TestWeightZeroRemovesComponent(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Weights: map[string]float64{scaling.CPU: 0}})
	mustSet(t, p, map[string]float64{scaling.CPU: 1, scaling.Queue: 0.2})
	r := p.Evaluate()
	if !near(r.Value, 20) {
		t.Fatalf("value %v, want 20 (queue alone; cpu weight 0)", r.Value)
	}
	c := component(t, r, scaling.CPU)
	if !c.Reported || c.Value != 1 || c.Share != 0 || c.Contribution != 0 || c.Weight != 0 {
		t.Fatalf("cpu with weight 0 must be reported but not counted: %+v", c)
	}
	// Only a zero-weight component reported: the formula has nothing.
	mustSet(t, p, map[string]float64{scaling.Queue: math.NaN()})
	if r := p.Evaluate(); r.Value != 0 {
		t.Fatalf("only zero-weight cpu reported: %v, want 0", r.Value)
	}
}

func TestAllWeightsZeroRefused(t *testing.T) {
	_, err := scaling.New(scaling.Config{Weights: map[string]float64{
		scaling.CPU: 0, scaling.Memory: 0, scaling.Queue: 0, scaling.Lag: 0, scaling.Pool: 0,
	}}, newEnv().opts()...)
	var ce *scaling.ConfigError
	if !errors.As(err, &ce) || ce.Key != "scaling.weights" || !errors.Is(err, scaling.ErrInvalidConfig) {
		t.Fatalf("err = %v, want a ConfigError on scaling.weights", err)
	}
}

func TestLagNormalisedByLagFull(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{LagFull: 1000, Weights: map[string]float64{scaling.Lag: 1}})
	for _, tc := range []struct{ lag, want float64 }{
		{0, 0}, {250, 0.25}, {1000, 1}, {5000, 1}, {-10, 0}, {math.Inf(1), 1},
	} {
		mustSet(t, p, map[string]float64{scaling.Lag: tc.lag})
		r := p.Evaluate()
		if c := component(t, r, scaling.Lag); !near(c.Value, tc.want) || !near(r.Value, 100*tc.want) {
			t.Errorf("lag %v: signal %v pressure %v, want %v / %v", tc.lag, c.Value, r.Value, tc.want, 100*tc.want)
		}
	}
}

func TestSignalsClampedToUnitRange(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Weights: map[string]float64{scaling.CPU: 1, scaling.Queue: 1}})
	for _, tc := range []struct{ cpu, queue, want float64 }{
		{7, 1, 100},             // 7 counts as 1
		{-3, 0.5, 25},           // negative counts as 0 (it does not subtract)
		{math.Inf(1), 0, 50},    // +Inf counts as 1
		{math.Inf(-1), 0.2, 10}, // -Inf counts as 0
	} {
		mustSet(t, p, map[string]float64{scaling.CPU: tc.cpu, scaling.Queue: tc.queue})
		r := p.Evaluate()
		if !near(r.Value, tc.want) {
			t.Errorf("cpu %v queue %v: %v, want %v", tc.cpu, tc.queue, r.Value, tc.want)
		}
		if r.Value < 0 || r.Value > 100 {
			t.Errorf("value %v out of [0,100]", r.Value)
		}
		if c := component(t, r, scaling.CPU); math.IsInf(c.Raw, 0) {
			t.Errorf("raw %v must be finite for JSON", c.Raw)
		}
	}
}

func TestMemoryGateForces100(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 0.1, scaling.Memory: 0.9})
	r := p.Evaluate()
	if r.Value != 100 || r.Gate != scaling.GateMemory || r.Method != scaling.MethodGate ||
		!slices.Equal(r.GatesHeld, []scaling.Gate{scaling.GateMemory}) {
		t.Fatalf("memory at the gate: %+v", r)
	}
	// Just below the gate: the formula decides.
	mustSet(t, p, map[string]float64{scaling.Memory: 0.8999})
	r = p.Evaluate()
	want := 100 * (0.2*0.1 + 0.1*0.8999) / 0.3
	if r.Gate != scaling.GateNone || !near(r.Value, want) {
		t.Fatalf("below the gate: %+v, want %v", r, want)
	}
}

func TestMemoryGateConfigurableAndIndependentOfWeight(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{MemoryGate: 0.5, Weights: map[string]float64{scaling.Memory: 0}})
	mustSet(t, p, map[string]float64{scaling.Memory: 0.5, scaling.CPU: 0})
	if r := p.Evaluate(); r.Value != 100 || r.Gate != scaling.GateMemory || r.Weighted != 0 {
		t.Fatalf("memory 0.5 with gate 0.5 and weight 0: %+v", r)
	}
}

func TestOpenCircuitForces0(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 1, scaling.Queue: 1, scaling.Lag: 1e9})
	p.SetCircuitOpen(true)
	r := p.Evaluate()
	if r.Value != 0 || r.Gate != scaling.GateCircuitOpen || !r.CircuitOpen || r.Weighted != 100 {
		t.Fatalf("circuit open: %+v", r)
	}
	p.SetCircuitOpen(false)
	if r := p.Evaluate(); r.Value != 100 || r.Gate != scaling.GateNone {
		t.Fatalf("circuit closed again: %+v", r)
	}
}

// When both gates hold the open circuit wins (0), and the report says the
// memory gate held too.
func TestGatePrecedenceCircuitBeatsMemory(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Expression: "100"})
	mustSet(t, p, map[string]float64{scaling.Memory: 0.99})
	p.SetCircuitOpen(true)
	r := p.Evaluate()
	if r.Value != 0 || r.Gate != scaling.GateCircuitOpen || r.Method != scaling.MethodGate {
		t.Fatalf("both gates: %+v", r)
	}
	if !slices.Equal(r.GatesHeld, []scaling.Gate{scaling.GateCircuitOpen, scaling.GateMemory}) {
		t.Fatalf("gates held %v", r.GatesHeld)
	}
}

func TestDisabledReports0(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{Enabled: ptr(false)})
	mustSet(t, p, map[string]float64{scaling.CPU: 1, scaling.Memory: 1})
	r := p.Evaluate()
	if r.Value != 0 || r.Gate != scaling.GateDisabled || p.Enabled() {
		t.Fatalf("disabled: %+v", r)
	}
	if p2, _ := newPressure(t, scaling.Config{Enabled: ptr(true)}); !p2.Enabled() {
		t.Fatal("enabled: true must enable")
	}
}

func TestUnknownSignalRejected(t *testing.T) {
	p, _ := newPressure(t, scaling.Config{})
	for _, name := range []string{"bogus", "CPU", "", "cpu ", "lag_messages"} {
		err := p.Set(name, 0.5)
		var use *scaling.UnknownSignalError
		if !errors.Is(err, scaling.ErrUnknownSignal) || !errors.As(err, &use) || use.Name != name {
			t.Errorf("Set(%q): %v, want an UnknownSignalError", name, err)
		}
		if err := p.Source(name, func() float64 { return 1 }); !errors.Is(err, scaling.ErrUnknownSignal) {
			t.Errorf("Source(%q): %v", name, err)
		}
	}
	err := p.Set("bogus", 1)
	if !strings.Contains(err.Error(), "cpu, memory, queue, lag, pool") || !strings.Contains(err.Error(), "WithCustom") {
		t.Errorf("message must list the names and the fix: %v", err)
	}
	for _, c := range p.Evaluate().Components {
		if c.Name == "bogus" {
			t.Fatal("an unknown name must not become a component")
		}
	}
}

func TestWeightForUnknownComponentRefused(t *testing.T) {
	_, err := scaling.New(scaling.Config{Weights: map[string]float64{"bogus": 1}}, newEnv().opts()...)
	var ce *scaling.ConfigError
	if !errors.As(err, &ce) || ce.Key != "scaling.weights.bogus" || !errors.Is(err, scaling.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "WithCustom") {
		t.Fatalf("err = %v", err)
	}
}

func TestCustomComponent(t *testing.T) {
	p, e := newPressure(t, scaling.Config{Weights: map[string]float64{"errors": 3}},
		scaling.WithCustom("errors", 1), scaling.WithCustom("spill", 0.5))
	if got := p.Components(); !slices.Equal(got, []string{"cpu", "memory", "queue", "lag", "pool", "errors", "spill"}) {
		t.Fatalf("components %v", got)
	}
	mustSet(t, p, map[string]float64{"errors": 0.5, "spill": 1, scaling.CPU: 0})
	r := p.Evaluate()
	// weights: cpu 0.2, errors 3 (config overrides 1), spill 0.5
	want := 100 * (0.2*0 + 3*0.5 + 0.5*1) / (0.2 + 3 + 0.5)
	if !near(r.Value, want) {
		t.Fatalf("value %v, want %v", r.Value, want)
	}
	if c := component(t, r, "errors"); !c.Custom || c.Weight != 3 {
		t.Fatalf("custom component %+v", c)
	}
	if v, ok := e.metricValue(t, scaling.MetricComponent, "component", "errors"); !ok || v != 0.5 {
		t.Fatalf("component gauge errors = %v (%v)", v, ok)
	}
}

func TestCustomComponentOptionsValidated(t *testing.T) {
	many := make([]scaling.Option, 0, scaling.MaxCustomComponents+1)
	for i := range scaling.MaxCustomComponents + 1 {
		many = append(many, scaling.WithCustom("c"+strings.Repeat("x", i), 1))
	}
	for name, opts := range map[string][]scaling.Option{
		"upper case":  {scaling.WithCustom("Errors", 1)},
		"empty":       {scaling.WithCustom("", 1)},
		"too long":    {scaling.WithCustom(strings.Repeat("a", 33), 1)},
		"reserved":    {scaling.WithCustom("max", 1)},
		"keyword":     {scaling.WithCustom("in", 1)},
		"built-in":    {scaling.WithCustom("cpu", 1)},
		"duplicate":   {scaling.WithCustom("x", 1), scaling.WithCustom("x", 1)},
		"bad weight":  {scaling.WithCustom("x", -1)},
		"NaN weight":  {scaling.WithCustom("x", math.NaN())},
		"too many":    many,
		"source name": {scaling.WithSource("nope", func() float64 { return 0 })},
	} {
		if _, err := scaling.New(scaling.Config{}, append(newEnv().opts(), opts...)...); !errors.Is(err, scaling.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestSourcesSampledEachEvaluation(t *testing.T) {
	calls := 0
	queue := 0.4
	p, _ := newPressure(t, scaling.Config{Weights: map[string]float64{scaling.Queue: 1}},
		scaling.WithSource(scaling.Queue, func() float64 { calls++; return queue }))
	if r := p.Evaluate(); !near(r.Value, 40) || calls != 1 {
		t.Fatalf("first: %v after %d calls", r.Value, calls)
	}
	queue = 0.9
	if r := p.Evaluate(); !near(r.Value, 90) || calls != 2 {
		t.Fatalf("second: %v after %d calls", r.Value, calls)
	}
	// A source overrides Set.
	mustSet(t, p, map[string]float64{scaling.Queue: 0.1})
	if r := p.Evaluate(); !near(r.Value, 90) {
		t.Fatalf("Set under a source: %v, want the source's 90", r.Value)
	}
	// NaN from the source: no reading.
	queue = math.NaN()
	if r := p.Evaluate(); component(t, r, scaling.Queue).Reported || r.Value != 0 {
		t.Fatalf("NaN source: %+v", r)
	}
	// Removing the source keeps the last value until the next Set.
	if err := p.Source(scaling.Queue, nil); err != nil {
		t.Fatal(err)
	}
	mustSet(t, p, map[string]float64{scaling.Queue: 0.3})
	if r := p.Evaluate(); !near(r.Value, 30) || calls != 4 {
		t.Fatalf("after removal: %v (calls %d)", r.Value, calls)
	}
}

func TestPanickingSourceIsContained(t *testing.T) {
	p, e := newPressure(t, scaling.Config{},
		scaling.WithSource(scaling.CPU, func() float64 { panic("boom") }),
		scaling.WithSource(scaling.Queue, func() float64 { return 0.5 }),
		scaling.WithCircuitSource(func() bool { panic("circuit boom") }))
	r := p.Evaluate()
	if component(t, r, scaling.CPU).Reported || !near(r.Value, 50) || r.CircuitOpen {
		t.Fatalf("panicking source: %+v", r)
	}
	p.Evaluate()
	logs := e.logs.String()
	if strings.Count(logs, "signal source panicked") != 1 {
		t.Fatalf("the panic must be logged once a minute at most, got:\n%s", logs)
	}
}

func TestCircuitSource(t *testing.T) {
	open := true
	p, _ := newPressure(t, scaling.Config{})
	mustSet(t, p, map[string]float64{scaling.CPU: 1})
	p.CircuitSource(func() bool { return open })
	if r := p.Evaluate(); r.Value != 0 || !r.CircuitOpen {
		t.Fatalf("open source: %+v", r)
	}
	open = false
	if r := p.Evaluate(); r.Value != 100 {
		t.Fatalf("closed source: %+v", r)
	}
	p.CircuitSource(nil)
	p.SetCircuitOpen(true)
	if r := p.Evaluate(); r.Value != 0 {
		t.Fatalf("after removing the source, SetCircuitOpen rules: %+v", r)
	}
}

func TestNilPressure(t *testing.T) {
	var p *scaling.Pressure
	if err := p.Set(scaling.CPU, 1); !errors.Is(err, scaling.ErrNilPressure) {
		t.Fatalf("Set: %v", err)
	}
	if err := p.Source(scaling.CPU, nil); !errors.Is(err, scaling.ErrNilPressure) {
		t.Fatalf("Source: %v", err)
	}
	p.SetCircuitOpen(true)
	p.CircuitSource(nil)
	if r := p.Evaluate(); r.Value != 0 || p.Value() != 0 || p.Enabled() {
		t.Fatalf("nil Evaluate: %+v", r)
	}
	if _, ok := p.Last(); ok || p.Components() != nil || p.Interval() != 0 {
		t.Fatal("nil Last / Components / Interval")
	}
}

func TestLastBeforeAndAfterEvaluate(t *testing.T) {
	p, e := newPressure(t, scaling.Config{})
	if _, ok := p.Last(); ok || p.Value() != 0 {
		t.Fatal("no result before the first evaluation")
	}
	mustSet(t, p, map[string]float64{scaling.CPU: 0.25})
	r := p.Evaluate()
	last, ok := p.Last()
	if !ok || last.Value != r.Value || !last.EvaluatedAt.Equal(e.clock.Now()) {
		t.Fatalf("Last %+v ok %v, want %+v", last, ok, r)
	}
	// The stored result does not alias the returned one.
	r.Components[0].Value = 42
	if last2, _ := p.Last(); last2.Components[0].Value == 42 {
		t.Fatal("Last aliases the Result returned by Evaluate")
	}
}
