package governor_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/keel-go/keel/governor"
)

func TestLatchInclusiveBoundaries(t *testing.T) {
	l, err := governor.NewLatch(0.80, 0.65)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		level float64
		held  bool
	}{
		{0.5, false},
		{0.7999999, false},
		{0.80, true}, // exactly pause_at engages
		{0.70, true}, // in between keeps the state
		{0.6500001, true},
		{0.65, false}, // exactly resume_at releases
		{0.70, false}, // in between keeps the released state
		{0.85, true},  // re-arms cleanly
		{0.60, false},
		{math.NaN(), false},
		{0.85, true},
		{math.NaN(), false}, // NaN is no pressure: it releases
	}
	for i, s := range steps {
		if got := l.Update(s.level); got != s.held || l.Held() != s.held {
			t.Fatalf("step %d: Update(%v) = %v (Held %v), want %v", i, s.level, got, l.Held(), s.held)
		}
	}
	if l.PauseAt() != 0.80 || l.ResumeAt() != 0.65 {
		t.Fatal("thresholds")
	}
}

func TestLatchValidation(t *testing.T) {
	cases := []struct {
		name          string
		pause, resume float64
		keys          []string
	}{
		{"resume_equal_pause", 0.8, 0.8, []string{"self_regulation.resume_at"}},
		{"resume_above_pause", 0.6, 0.7, []string{"self_regulation.resume_at"}},
		{"pause_zero", 0, 0.5, []string{"self_regulation.pause_at"}},
		{"pause_above_one", 1.2, 0.5, []string{"self_regulation.pause_at"}},
		{"resume_negative", 0.8, -0.1, []string{"self_regulation.resume_at"}},
		{"both_nan", math.NaN(), math.NaN(), []string{"self_regulation.pause_at", "self_regulation.resume_at"}},
		{"inf", math.Inf(1), 0.5, []string{"self_regulation.pause_at"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := governor.NewLatch(c.pause, c.resume)
			if err == nil || l != nil {
				t.Fatalf("NewLatch(%v, %v) accepted", c.pause, c.resume)
			}
			if !errors.Is(err, governor.ErrInvalidConfig) {
				t.Fatalf("err %v does not match ErrInvalidConfig", err)
			}
			for _, k := range c.keys {
				if !strings.Contains(err.Error(), k) {
					t.Fatalf("err %q does not name %s", err, k)
				}
			}
		})
	}
	if _, err := governor.NewLatch(1, 0.99); err != nil {
		t.Fatalf("pause 1, resume 0.99 is valid: %v", err)
	}
}
