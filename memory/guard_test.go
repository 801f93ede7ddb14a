package memory

import (
	"math"
	"testing"
)

// The engine's accountant, restated here: the guard must satisfy it.
var _ interface {
	Add(n int64)
	Release(n int64)
} = (*Guard)(nil)

// The method set the governor samples.
var _ interface {
	Name() string
	PressureRatio() float64
	Hard() bool
} = (*Guard)(nil)

func TestTryReserveWithinAndOverTheLimit(t *testing.T) {
	g := limited(t, 100)
	if !g.TryReserve(90) || g.Current() != 90 {
		t.Fatalf("reserve 90 of 100: current %d", g.Current())
	}
	if g.TryReserve(20) {
		t.Fatal("reserve 20 more admitted: 110 > 100")
	}
	if g.Current() != 90 || g.Accounted() != 90 {
		t.Fatalf("a refused reservation changed the count: %d", g.Current())
	}
	if g.RefusedTotal() != 1 || !g.UnderPressure() {
		t.Fatalf("after a refusal: refused %d, under pressure %v", g.RefusedTotal(), g.UnderPressure())
	}
	if !g.TryReserve(10) || g.Current() != 100 {
		t.Fatalf("landing exactly on the limit must be admitted: current %d", g.Current())
	}
	if g.Level() != Critical || g.PressureRatio() != 1 {
		t.Fatalf("at the limit: level %v ratio %v", g.Level(), g.PressureRatio())
	}
	if g.TryReserve(1) || g.Current() != 100 || g.RefusedTotal() != 2 {
		t.Fatalf("one byte over the limit: current %d refused %d", g.Current(), g.RefusedTotal())
	}
	g.Release(100)
	if g.Current() != 0 || g.UnderPressure() {
		t.Fatalf("after releasing everything: current %d pressure %v", g.Current(), g.UnderPressure())
	}
}

func TestRefusalSetsPressureUntilItFits(t *testing.T) {
	g := limited(t, 100)
	if !g.TryReserve(50) || g.UnderPressure() {
		t.Fatalf("50%% of the limit is not pressure (threshold 0.8): %v", g.UnderPressure())
	}
	if g.TryReserve(60) {
		t.Fatal("60 more admitted with 50 of 100 in use")
	}
	if g.Current() != 50 {
		t.Fatalf("refusal changed the count: %d", g.Current())
	}
	if !g.UnderPressure() {
		t.Fatal("a refused reservation must put the guard under pressure")
	}
	g.Release(5) // 45 in use: 60 still does not fit
	if !g.UnderPressure() {
		t.Fatal("pressure lifted before the refused reservation fits")
	}
	g.Release(5) // 40 in use: 60 fits
	if g.UnderPressure() {
		t.Fatal("pressure stuck after the refused reservation fits")
	}
	if !g.TryReserve(60) {
		t.Fatal("60 refused with 40 of 100 in use")
	}
}

func TestOversizedRefusalIsNotPressure(t *testing.T) {
	g := limited(t, 100)
	if g.TryReserve(101) {
		t.Fatal("a reservation larger than the limit was admitted")
	}
	if g.UnderPressure() || g.RefusedTotal() != 1 {
		t.Fatalf("a request that can never fit must be refused without pressure: pressure %v refused %d", g.UnderPressure(), g.RefusedTotal())
	}
}

func TestReleaseFloorsAtZero(t *testing.T) {
	g := limited(t, 100)
	g.Add(10)
	g.Release(25)
	if g.Current() != 0 {
		t.Fatalf("over-release: current %d, want 0", g.Current())
	}
	g.Release(math.MaxInt64)
	if g.Current() != 0 {
		t.Fatalf("huge release: current %d, want 0", g.Current())
	}
	// Had the count gone to -15, 115 bytes would now fit.
	if g.TryReserve(101) {
		t.Fatal("over-release left a negative count: 101 admitted under a limit of 100")
	}
	if !g.TryReserve(100) {
		t.Fatal("the full limit does not fit after the count was clamped at zero")
	}
}

func TestAddGoesOverTheLimit(t *testing.T) {
	g := limited(t, 100)
	g.Add(150)
	if g.Current() != 150 || g.PressureRatio() != 1.5 || g.Level() != Critical || !g.UnderPressure() {
		t.Fatalf("after Add(150): current %d ratio %v level %v", g.Current(), g.PressureRatio(), g.Level())
	}
	if g.TryReserve(1) {
		t.Fatal("reservation admitted while over the limit")
	}
	g.Release(100)
	if !g.TryReserve(1) || g.Current() != 51 {
		t.Fatalf("after releasing 100: current %d", g.Current())
	}
}

func TestAddSaturates(t *testing.T) {
	g := limited(t, 100)
	g.Add(math.MaxInt64)
	g.Add(math.MaxInt64)
	if g.Current() != math.MaxInt64 {
		t.Fatalf("Add overflowed: current %d", g.Current())
	}
	if g.TryReserve(1) {
		t.Fatal("admitted with a saturated count")
	}
}

func TestNonPositiveAmountsChangeNothing(t *testing.T) {
	g := limited(t, 100)
	g.Add(40)
	if !g.TryReserve(0) {
		t.Fatal("TryReserve(0) refused")
	}
	if g.TryReserve(-5) {
		t.Fatal("TryReserve(-5) admitted")
	}
	g.Add(-5)
	g.Release(-5)
	g.Release(0)
	if g.Current() != 40 || g.RefusedTotal() != 0 || g.UnderPressure() {
		t.Fatalf("non-positive amounts changed state: current %d refused %d pressure %v", g.Current(), g.RefusedTotal(), g.UnderPressure())
	}
}

func TestLevelsAndThreshold(t *testing.T) {
	cases := []struct {
		threshold float64
		bytes     int64
		level     Level
		pressure  bool
	}{
		{0, 0, Normal, false},
		{0, 499, Normal, false},
		{0, 500, Elevated, false},
		{0, 799, Elevated, false},
		{0, 800, High, true},
		{0, 999, High, true},
		{0, 1000, Critical, true},
		{0, 1500, Critical, true},
		// A threshold below 0.5 leaves no room for Elevated.
		{0.4, 399, Normal, false},
		{0.4, 400, High, true},
		// A threshold of 1 brakes only at the limit.
		{1, 999, Elevated, false},
		{1, 1000, Critical, true},
	}
	for _, c := range cases {
		g := newGuard(t, Config{LimitBytes: 1000, PressureThreshold: c.threshold}, nil)
		g.Add(c.bytes)
		if g.Level() != c.level || g.UnderPressure() != c.pressure {
			t.Errorf("threshold %v, %d of 1000: level %v pressure %v; want %v %v", c.threshold, c.bytes, g.Level(), g.UnderPressure(), c.level, c.pressure)
		}
		if want := float64(c.bytes) / 1000; g.PressureRatio() != want {
			t.Errorf("ratio %v, want %v", g.PressureRatio(), want)
		}
	}
}

func TestLevelText(t *testing.T) {
	for l := Normal; l <= Critical; l++ {
		b, err := l.MarshalText()
		if err != nil || string(b) != l.String() {
			t.Fatalf("MarshalText(%v) = %q, %v", l, b, err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != l {
			t.Fatalf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	if Level(7).String() != "level(7)" {
		t.Fatalf("unknown level prints %q", Level(7).String())
	}
	if _, err := Level(-1).MarshalText(); err == nil {
		t.Fatal("MarshalText accepted an unknown level")
	}
	var l Level
	if err := l.UnmarshalText([]byte("panic")); err == nil {
		t.Fatal("UnmarshalText accepted an unknown name")
	}
}

func TestLeaseIsIdempotent(t *testing.T) {
	g := limited(t, 1000)
	g.Add(100)
	release := g.Lease(40)
	if g.Current() != 140 {
		t.Fatalf("lease: current %d", g.Current())
	}
	release()
	release()
	if g.Current() != 100 {
		t.Fatalf("double release of a lease: current %d, want 100", g.Current())
	}

	rel, ok := g.TryLease(900)
	if !ok || g.Current() != 1000 {
		t.Fatalf("TryLease within the limit: ok %v current %d", ok, g.Current())
	}
	rel2, ok2 := g.TryLease(1)
	if ok2 || rel2 == nil {
		t.Fatalf("TryLease over the limit: ok %v release nil %v", ok2, rel2 == nil)
	}
	rel2() // a refused lease's release does nothing
	if g.Current() != 1000 {
		t.Fatalf("releasing a refused lease changed the count: %d", g.Current())
	}
	rel()
	rel()
	if g.Current() != 100 {
		t.Fatalf("after TryLease release: current %d", g.Current())
	}
}

func TestDisabledGuardCountsButNeverRefuses(t *testing.T) {
	g := newGuard(t, Config{Enabled: ptr(false)}, cgroupV2("1073741824", "max"))
	if g.Enabled() || g.Limit() != 0 || g.Limits().Source != SourceDisabled {
		t.Fatalf("disabled guard: enabled %v limit %d source %s", g.Enabled(), g.Limit(), g.Limits().Source)
	}
	if !g.TryReserve(4*gib) || g.Accounted() != 4*gib {
		t.Fatalf("disabled guard refused or did not count: %d", g.Accounted())
	}
	if g.PressureRatio() != 0 || g.UnderPressure() || g.Level() != Normal || g.Hard() {
		t.Fatal("disabled guard reports pressure")
	}
	g.Release(4 * gib)
	if g.Accounted() != 0 {
		t.Fatalf("release on a disabled guard: %d", g.Accounted())
	}
}

func TestPressureSourceMethods(t *testing.T) {
	g := limited(t, 1000)
	if g.Name() != "memory" || !g.Hard() {
		t.Fatalf("Name %q Hard %v", g.Name(), g.Hard())
	}
	g.Add(850)
	if g.PressureRatio() != 0.85 {
		t.Fatalf("ratio %v", g.PressureRatio())
	}
	if g.Threshold() != 0.8 || !g.Enabled() {
		t.Fatalf("threshold %v enabled %v", g.Threshold(), g.Enabled())
	}
}
