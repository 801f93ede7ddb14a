package governor_test

import (
	"math"
	"sync"
	"testing"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
)

func TestClampRatio(t *testing.T) {
	cases := []struct{ in, want float64 }{
		{math.NaN(), 0}, {math.Inf(-1), 0}, {-0.5, 0}, {0, 0}, {0.25, 0.25}, {1, 1}, {1.7, 1}, {math.Inf(1), 1},
	}
	for _, c := range cases {
		if got := governor.ClampRatio(c.in); got != c.want {
			t.Errorf("ClampRatio(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestLevelIsMaxOfHardAndWeightedSoft(t *testing.T) {
	hard := newDial("memory", true, 0.5)
	soft := newDial("queue", false, 1.0)
	p := &governor.Pressure{}
	p.AddHard(hard)
	p.AddSoft(soft, 0.5)

	// A saturated soft source of weight 0.5 and a hard source at 0.5:
	// level 0.5, under the pause threshold.
	if got := p.Level(); got != 0.5 {
		t.Fatalf("level = %v, want 0.5", got)
	}
	l, _ := governor.NewLatch(0.80, 0.65)
	if l.Update(p.Level()) {
		t.Fatal("level 0.5 engaged the latch")
	}
	// The hard source dominates and is never weighted down.
	hard.set(0.85)
	if got := p.Level(); got != 0.85 || !l.Update(got) {
		t.Fatalf("hard 0.85: level %v, latch %v", got, l.Held())
	}
	// A hard source above 1 (the guard after unconditional adds) counts as 1.
	hard.set(3)
	if got := p.Level(); got != 1 {
		t.Fatalf("hard 3: level %v, want 1", got)
	}
	// A NaN hard source is no pressure; the soft one remains.
	hard.set(math.NaN())
	if got := p.Level(); got != 0.5 {
		t.Fatalf("hard NaN: level %v, want 0.5 (the soft source)", got)
	}
	s := p.Snapshot()
	if s.Level != 0.5 || s.HardMax != 0 || s.SoftMax != 0.5 || len(s.Sources) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	if !math.IsNaN(s.Sources[0].Raw) || s.Sources[0].Ratio != 0 || !s.Sources[0].Hard || s.Sources[1].Effective != 0.5 || s.Sources[1].Weight != 0.5 {
		t.Fatalf("snapshot sources %+v", s.Sources)
	}
}

func TestSoftWeightsAreClamped(t *testing.T) {
	cases := []struct {
		name   string
		weight float64
		want   float64 // level of a source at 0.8
	}{
		{"nan_is_one", math.NaN(), 0.8},
		{"plus_inf_is_one", math.Inf(1), 0.8},
		{"above_one_is_one", 2, 0.8},
		{"negative_is_zero", -1, 0},
		{"minus_inf_is_zero", math.Inf(-1), 0},
		{"half", 0.5, 0.4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &governor.Pressure{}
			p.AddSoft(newDial("s", false, 0.8), c.weight)
			if got := p.Level(); math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("level = %v, want %v", got, c.want)
			}
			if got := p.Snapshot().Sources[0].Effective; math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("snapshot effective %v, want %v (the same clamped weight as Level)", got, c.want)
			}
		})
	}
}

func TestNoSourcesAndNilPressureAreZero(t *testing.T) {
	var nilP *governor.Pressure
	if nilP.Level() != 0 || nilP.Len() != 0 || (&governor.Pressure{}).Level() != 0 || nilP.HardLevel() != 0 {
		t.Fatal("a pressure without sources must be 0")
	}
	nilP.AddHard(newDial("x", true, 1)) // must not panic
	p := governor.NewPressure(nil, governor.FuncSource("nilfunc", nil))
	if p.Len() != 1 || p.Level() != 0 {
		t.Fatalf("nil source ignored, nil func reads 0: len %d level %v", p.Len(), p.Level())
	}
}

func TestNewPressureSortsHardAndSoft(t *testing.T) {
	hard := newDial("memory", true, 0.3)
	notHard := newDial("cpu", false, 0.9) // implements Hard() but says false
	p := governor.NewPressure(hard, notHard)
	s := p.Snapshot()
	if !s.Sources[0].Hard || s.Sources[1].Hard || p.HardLevel() != 0.3 || p.Level() != 0.9 {
		t.Fatalf("snapshot %+v hard level %v", s, p.HardLevel())
	}
	if governor.IsHard(governor.FuncSource("f", nil)) {
		t.Fatal("a source without Hard is soft")
	}
}

func TestMemoryGuardIsTheHardSource(t *testing.T) {
	g, err := memory.New(memory.Config{LimitBytes: 1000}, memory.WithMetrics(testRegistry()), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if !governor.IsHard(g) {
		t.Fatal("an enabled guard with a limit must be hard")
	}
	p := governor.NewPressure(g)
	g.Add(850)
	if got := p.Level(); got != 0.85 {
		t.Fatalf("level = %v, want 0.85", got)
	}
	g.Add(10000) // far over the limit: clamped
	if got := p.Level(); got != 1 {
		t.Fatalf("level = %v, want 1", got)
	}
	g.Release(10850)
	if got := p.Level(); got != 0 {
		t.Fatalf("level = %v, want 0", got)
	}
}

func TestAddWhileReading(t *testing.T) {
	p := &governor.Pressure{}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			p.AddSoft(newDial("s", false, 0.5), 1)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			if l := p.Level(); l != 0 && l != 0.5 {
				t.Errorf("level %v", l)
				return
			}
		}
	}()
	wg.Wait()
	if p.Len() != 200 {
		t.Fatalf("len %d, want 200", p.Len())
	}
}
