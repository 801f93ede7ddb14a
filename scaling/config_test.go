package scaling_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/scaling"
)

func TestZeroConfigIsValidWithDocumentedDefaults(t *testing.T) {
	var c scaling.Config
	if err := c.Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	d := c.WithDefaults()
	if !d.IsEnabled() || d.MemoryGate != 0.9 || d.LagFull != 100_000 || d.Interval != 5*time.Second || d.Expression != "" {
		t.Fatalf("defaults %+v", d)
	}
	want := map[string]float64{"cpu": 0.20, "memory": 0.10, "queue": 0.25, "lag": 0.35, "pool": 0.10}
	if len(d.Weights) != len(want) {
		t.Fatalf("weights %v", d.Weights)
	}
	sum := 0.0
	for k, v := range want {
		if d.Weights[k] != v {
			t.Errorf("default weight %s = %v, want %v", k, d.Weights[k], v)
		}
		sum += v
	}
	if !near(sum, 1) {
		t.Errorf("default weights sum to %v, want 1", sum)
	}
	p, _ := newPressure(t, c)
	if p.Interval() != scaling.DefaultInterval || !p.Enabled() {
		t.Fatalf("pressure interval %v enabled %v", p.Interval(), p.Enabled())
	}
}

func TestWithDefaultsMergesWeights(t *testing.T) {
	in := scaling.Config{Weights: map[string]float64{"cpu": 0, "errors": 2}}
	d := in.WithDefaults()
	if d.Weights["cpu"] != 0 || d.Weights["errors"] != 2 || d.Weights["lag"] != scaling.DefaultWeightLag {
		t.Fatalf("merged %v", d.Weights)
	}
	if len(in.Weights) != 2 {
		t.Fatalf("WithDefaults changed the caller's map: %v", in.Weights)
	}
}

func TestValidateNamesEachBadKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  scaling.Config
		key  string
		text string
	}{
		{"negative weight", scaling.Config{Weights: map[string]float64{"cpu": -1}}, "scaling.weights.cpu", ">= 0"},
		{"NaN weight", scaling.Config{Weights: map[string]float64{"lag": math.NaN()}}, "scaling.weights.lag", "finite"},
		{"Inf weight", scaling.Config{Weights: map[string]float64{"lag": math.Inf(1)}}, "scaling.weights.lag", "finite"},
		{"bad weight key", scaling.Config{Weights: map[string]float64{"CPU": 1}}, "scaling.weights", "lower-case"},
		{"reserved weight key", scaling.Config{Weights: map[string]float64{"max": 1}}, "scaling.weights", "reserved"},
		{"memory gate above 1", scaling.Config{MemoryGate: 1.5}, "scaling.memory_gate", "(0, 1]"},
		{"memory gate negative", scaling.Config{MemoryGate: -0.1}, "scaling.memory_gate", "(0, 1]"},
		{"memory gate NaN", scaling.Config{MemoryGate: math.NaN()}, "scaling.memory_gate", "(0, 1]"},
		{"lag full negative", scaling.Config{LagFull: -5}, "scaling.lag_full", "> 0"},
		{"lag full Inf", scaling.Config{LagFull: math.Inf(1)}, "scaling.lag_full", "> 0"},
		{"interval negative", scaling.Config{Interval: -time.Second}, "scaling.interval", "at least 100ms"},
		{"interval too short", scaling.Config{Interval: time.Millisecond}, "scaling.interval", "at least 100ms"},
		{"expression too long", scaling.Config{Expression: strings.Repeat("1+", 3000) + "1"}, "scaling.expression", "shorten"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *scaling.ConfigError
			if !errors.Is(err, scaling.ErrInvalidConfig) || !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConfigError", err)
			}
			if ce.Key != tc.key || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v (key %q), want key %q and %q", err, ce.Key, tc.key, tc.text)
			}
			if _, nerr := scaling.New(tc.cfg, newEnv().opts()...); !errors.Is(nerr, scaling.ErrInvalidConfig) {
				t.Fatalf("New accepted the bad config: %v", nerr)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := scaling.Config{MemoryGate: 2, LagFull: -1, Interval: -1}.Validate()
	for _, k := range []string{"scaling.memory_gate", "scaling.lag_full", "scaling.interval"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("joined error %v lacks %s", err, k)
		}
	}
}

func TestValidateChecksExpressionSyntax(t *testing.T) {
	err := scaling.Config{Expression: "cpu * * 2"}.Validate()
	var xe *scaling.ExpressionError
	if !errors.As(err, &xe) || !errors.Is(err, scaling.ErrInvalidConfig) || xe.Line != 1 || xe.Column != 7 {
		t.Fatalf("err = %v", err)
	}
	// Names are checked by New, which knows the custom components.
	if err := (scaling.Config{Expression: "errors * 100"}).Validate(); err != nil {
		t.Fatalf("a syntactically valid expression: %v", err)
	}
}

func TestBoundaryValuesAccepted(t *testing.T) {
	for _, c := range []scaling.Config{
		{MemoryGate: 1}, {MemoryGate: 0.01}, {Interval: scaling.MinInterval}, {LagFull: 1},
		{Weights: map[string]float64{"cpu": 0}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
