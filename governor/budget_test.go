package governor_test

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/governor"
)

const ms = time.Millisecond

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func newTestBudget(t *testing.T, over governor.BudgetConfig, opts ...governor.Option) *governor.Budget {
	t.Helper()
	opts = append([]governor.Option{governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger())}, opts...)
	return governor.NewBudget(governor.ProfileThroughput, over, opts...)
}

// The AIMD arithmetic, step by step, with alpha 0.3, target rho 0.7 and
// decrease factor 0.5.
func TestBudgetAIMDStepByStep(t *testing.T) {
	reg := testRegistry()
	b := governor.NewBudget(governor.ProfileThroughput, governor.BudgetConfig{
		StartBytes: 20000, MinBytes: 1024, MaxBytes: 40000, StepBytes: 5000, RecordCap: 7,
	}, governor.WithMetrics(reg), governor.WithLogger(quietLogger()))
	if b.Bytes() != 20000 || b.RecordCap() != 7 || testutil.ToFloat64(budgetGauge(reg)) != 20000 {
		t.Fatalf("start: bytes %d cap %d", b.Bytes(), b.RecordCap())
	}
	type step struct {
		process, ingest time.Duration
		emaP, emaI      float64 // expected, seconds
		bytes           int64
	}
	var p, i float64
	ema := func(prev, x float64) float64 { return 0.3*x + 0.7*prev }
	steps := []step{}
	add := func(proc, ing time.Duration, want int64) {
		if len(steps) == 0 {
			p, i = proc.Seconds(), ing.Seconds() // the first observation seeds both
		} else {
			p, i = ema(p, proc.Seconds()), ema(i, ing.Seconds())
		}
		steps = append(steps, step{proc, ing, p, i, want})
	}
	add(10*ms, 100*ms, 25000)  // seed: rho 0.1, slack: +5000
	add(10*ms, 100*ms, 30000)  // ema_p 0.01: slack
	add(200*ms, 100*ms, 35000) // ema_p 0.3×0.2+0.7×0.01 = 0.067: rho 0.67 <= 0.7, slack
	add(200*ms, 100*ms, 17500) // ema_p 0.1069: rho 1.069 > 0.7, halve
	add(200*ms, 100*ms, 8750)
	add(200*ms, 100*ms, 4375)
	add(200*ms, 100*ms, 2187) // floor(2187.5)
	add(200*ms, 100*ms, 1093) // floor(1093.5)
	add(200*ms, 100*ms, 1024) // 546 is below the floor
	add(200*ms, 100*ms, 1024) // stays at the floor
	add(0, 1000*ms, 6024)     // ema_i jumps to 0.37: rho < 0.7, one step up from the floor
	add(0, 1000*ms, 11024)
	add(0, 1000*ms, 16024)
	add(0, 1000*ms, 21024)
	add(0, 1000*ms, 26024)
	add(0, 1000*ms, 31024)
	add(0, 1000*ms, 36024)
	add(0, 1000*ms, 40000) // capped at the ceiling
	add(0, 1000*ms, 40000)
	for n, s := range steps {
		b.Observe(int64(n+1)*100, s.process, s.ingest)
		st := b.Stats()
		if !near(st.ProcessEMA, s.emaP) || !near(st.IngestEMA, s.emaI) {
			t.Fatalf("step %d: ema_p %.15g ema_i %.15g, want %.15g %.15g", n, st.ProcessEMA, st.IngestEMA, s.emaP, s.emaI)
		}
		if b.Bytes() != s.bytes || st.Bytes != s.bytes {
			t.Fatalf("step %d: budget %d, want %d (rho %.4f)", n, b.Bytes(), s.bytes, st.Rho)
		}
		if got := testutil.ToFloat64(budgetGauge(reg)); got != float64(s.bytes) {
			t.Fatalf("step %d: gauge %v", n, got)
		}
		if got := testutil.ToFloat64(blockGauge(reg)); got != float64(n+1)*100 {
			t.Fatalf("step %d: block gauge %v", n, got)
		}
	}
	st := b.Stats()
	if st.Observations != 19 || st.Increases != 12 || st.DecreasesBehind != 7 || st.DecreasesPressure != 0 {
		t.Fatalf("stats %+v", st)
	}
	if testutil.ToFloat64(decreases(reg, "behind")) != 7 || testutil.ToFloat64(decreases(reg, "pressure")) != 0 {
		t.Fatal("decrease counters")
	}
	if !near(st.Rho, st.ProcessEMA/st.IngestEMA) {
		t.Fatalf("rho %v", st.Rho)
	}
}

// With alpha 1 each observation replaces the averages: the envelope walk
// is exact.
func TestBudgetAlphaOneEnvelope(t *testing.T) {
	b := newTestBudget(t, governor.BudgetConfig{StartBytes: 8 * kib, MinBytes: 1024, MaxBytes: 16 * kib, StepBytes: 2 * kib, EMAAlpha: 1})
	for _, want := range []int64{10 * kib, 12 * kib, 14 * kib, 16 * kib, 16 * kib} {
		b.Observe(1, 10*ms, 100*ms)
		if b.Bytes() != want {
			t.Fatalf("grow: %d, want %d", b.Bytes(), want)
		}
	}
	for _, want := range []int64{8 * kib, 4 * kib, 2 * kib, 1024, 1024} {
		b.Observe(1, 90*ms, 100*ms)
		if b.Bytes() != want {
			t.Fatalf("shrink: %d, want %d", b.Bytes(), want)
		}
	}
	b.Observe(1, 10*ms, 100*ms)
	if b.Bytes() != 1024+2*kib {
		t.Fatalf("one slack step from the floor: %d, want %d", b.Bytes(), 1024+2*kib)
	}
}

func TestBudgetZeroIngestInterval(t *testing.T) {
	// Work with a zero interval (blocks back to back, or the first block):
	// behind, and no division by zero.
	b := newTestBudget(t, governor.BudgetConfig{StartBytes: 64 * kib, MinBytes: 1024, MaxBytes: 128 * kib, StepBytes: kib})
	b.Observe(1000, 5*ms, 0)
	if b.Bytes() != 32*kib {
		t.Fatalf("zero interval with work: %d, want %d", b.Bytes(), 32*kib)
	}
	if st := b.Stats(); !math.IsInf(st.Rho, 1) || st.IngestEMA != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Negative durations count as zero.
	b2 := newTestBudget(t, governor.BudgetConfig{StartBytes: 64 * kib, MinBytes: 1024, MaxBytes: 128 * kib, StepBytes: kib})
	b2.Observe(0, -5*ms, -time.Second)
	b2.Observe(0, 0, 0)
	if b2.Bytes() != 66*kib {
		t.Fatalf("both zero is slack: %d, want %d", b2.Bytes(), 66*kib)
	}
	if st := b2.Stats(); st.Rho != 0 || st.DecreasesBehind != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBudgetPressureForcesDecrease(t *testing.T) {
	reg := testRegistry()
	var pressured atomic.Bool
	pressured.Store(true)
	b := governor.NewBudget(governor.ProfileThroughput,
		governor.BudgetConfig{StartBytes: 20000, MinBytes: 3000, MaxBytes: 40000, StepBytes: 1000},
		governor.WithMetrics(reg), governor.WithLogger(quietLogger()), governor.WithPressureSignal(pressured.Load))
	// Slack timings (rho 0.1) would grow the budget; pressure shrinks it.
	for _, want := range []int64{10000, 5000, 3000, 3000} {
		b.Observe(1, 10*ms, 100*ms)
		if b.Bytes() != want {
			t.Fatalf("under pressure: %d, want %d", b.Bytes(), want)
		}
	}
	pressured.Store(false)
	b.Observe(1, 10*ms, 100*ms)
	if b.Bytes() != 4000 {
		t.Fatalf("pressure gone: %d, want 4000", b.Bytes())
	}
	st := b.Stats()
	if st.DecreasesPressure != 4 || st.Increases != 1 || testutil.ToFloat64(decreases(reg, "pressure")) != 4 {
		t.Fatalf("stats %+v", st)
	}
	// The averages still learn under pressure.
	if !near(st.ProcessEMA, 0.01) || !near(st.IngestEMA, 0.1) {
		t.Fatalf("emas %+v", st)
	}
}

func TestBudgetNeverZero(t *testing.T) {
	var pressured atomic.Bool
	pressured.Store(true)
	b := newTestBudget(t, governor.BudgetConfig{StartBytes: 3, MinBytes: 1, MaxBytes: 5, StepBytes: 1, DecreaseFactor: 0.1},
		governor.WithPressureSignal(pressured.Load))
	for i := 0; i < 10; i++ {
		b.Observe(1, time.Second, 0)
		if b.Bytes() < 1 {
			t.Fatalf("budget %d", b.Bytes())
		}
	}
	if b.Bytes() != 1 {
		t.Fatalf("floor: %d", b.Bytes())
	}
}

func TestProfilesEnvelopes(t *testing.T) {
	cases := []struct {
		p                     governor.Profile
		start, min, max, step int64
		recordCap             int
	}{
		{governor.ProfileThroughput, 16 * mib, 256 * kib, 128 * mib, 512 * kib, 2000},
		{governor.ProfileBalanced, 8 * mib, 64 * kib, 64 * mib, 256 * kib, 1000},
		{governor.ProfileLowLatency, 1 * mib, 4 * kib, 8 * mib, 64 * kib, 500},
		{"", 16 * mib, 256 * kib, 128 * mib, 512 * kib, 2000},
	}
	for _, c := range cases {
		t.Run(c.p.String(), func(t *testing.T) {
			env := c.p.Budget()
			want := governor.BudgetConfig{StartBytes: c.start, MinBytes: c.min, MaxBytes: c.max, StepBytes: c.step,
				RecordCap: c.recordCap, TargetRho: 0.7, DecreaseFactor: 0.5, EMAAlpha: 0.3}
			if env != want {
				t.Fatalf("envelope %+v, want %+v", env, want)
			}
			b := governor.NewBudget(c.p, governor.BudgetConfig{}, governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()))
			if b.Config() != want || b.Bytes() != c.start || b.RecordCap() != c.recordCap {
				t.Fatalf("budget %+v bytes %d", b.Config(), b.Bytes())
			}
		})
	}
	if len(governor.Profiles()) != 3 || governor.Profiles()[0] != governor.DefaultProfile {
		t.Fatal("profiles")
	}
}

func TestBudgetSanitisation(t *testing.T) {
	low := governor.ProfileLowLatency.Budget()
	cases := []struct {
		name    string
		profile governor.Profile
		over    governor.BudgetConfig
		want    governor.BudgetConfig
		keys    []string // keys the warnings must name; none means no warning
	}{
		{"zero_means_profile", governor.ProfileLowLatency, governor.BudgetConfig{}, low, nil},
		{"negative", governor.ProfileLowLatency,
			governor.BudgetConfig{StartBytes: -1, MinBytes: -5, MaxBytes: -1, StepBytes: -1, RecordCap: -3},
			low, []string{"budget.start_bytes", "budget.min_bytes", "budget.max_bytes", "budget.step_bytes", "budget.record_cap"}},
		{"nan", governor.ProfileLowLatency,
			governor.BudgetConfig{TargetRho: math.NaN(), DecreaseFactor: math.NaN(), EMAAlpha: math.NaN()},
			low, []string{"budget.target_rho", "budget.decrease_factor", "budget.ema_alpha"}},
		{"out_of_range", governor.ProfileLowLatency,
			governor.BudgetConfig{TargetRho: 5, DecreaseFactor: 2, EMAAlpha: 1.5},
			low, []string{"budget.target_rho", "budget.decrease_factor", "budget.ema_alpha"}},
		{"open_bounds", governor.ProfileLowLatency,
			governor.BudgetConfig{TargetRho: 1, DecreaseFactor: -0.5, EMAAlpha: math.Inf(1)},
			low, []string{"budget.target_rho", "budget.decrease_factor", "budget.ema_alpha"}},
		{"alpha_one_is_valid", governor.ProfileLowLatency,
			governor.BudgetConfig{EMAAlpha: 1, TargetRho: 0.9, DecreaseFactor: 0.25},
			withF(low, func(c *governor.BudgetConfig) { c.EMAAlpha, c.TargetRho, c.DecreaseFactor = 1, 0.9, 0.25 }), nil},
		{"floor_above_max", governor.ProfileLowLatency,
			governor.BudgetConfig{MinBytes: 4 * mib, MaxBytes: 1 * mib},
			withF(low, func(c *governor.BudgetConfig) { c.MinBytes, c.MaxBytes, c.StartBytes = 4*kib, 1*mib, 1*mib }),
			[]string{"budget.min_bytes"}},
		{"profile_floor_above_max", governor.ProfileLowLatency,
			governor.BudgetConfig{MaxBytes: 2 * kib},
			withF(low, func(c *governor.BudgetConfig) { c.MinBytes, c.MaxBytes, c.StartBytes = 2*kib, 2*kib, 2*kib }),
			[]string{"budget.min_bytes"}},
		{"start_above_max", governor.ProfileLowLatency,
			governor.BudgetConfig{StartBytes: 100 * mib},
			withF(low, func(c *governor.BudgetConfig) { c.StartBytes = 8 * mib }), []string{"budget.start_bytes"}},
		{"start_below_min", governor.ProfileLowLatency,
			governor.BudgetConfig{StartBytes: 10, MinBytes: 100},
			withF(low, func(c *governor.BudgetConfig) { c.StartBytes, c.MinBytes = 100, 100 }), []string{"budget.start_bytes"}},
		{"profile_start_clamped_silently", governor.ProfileThroughput,
			governor.BudgetConfig{MaxBytes: 4 * mib},
			withF(governor.ProfileThroughput.Budget(), func(c *governor.BudgetConfig) { c.StartBytes, c.MaxBytes = 4*mib, 4*mib }), nil},
		{"unknown_profile", "turbo", governor.BudgetConfig{}, governor.ProfileThroughput.Budget(), []string{"self_regulation.profile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log, buf := bufferLogger()
			b := governor.NewBudget(c.profile, c.over, governor.WithMetrics(testRegistry()), governor.WithLogger(log))
			if got := b.Config(); got != c.want {
				t.Fatalf("envelope %+v\nwant     %+v", got, c.want)
			}
			if b.Bytes() != c.want.StartBytes || b.Bytes() < 1 || b.RecordCap() < 1 {
				t.Fatalf("bytes %d cap %d", b.Bytes(), b.RecordCap())
			}
			logs := buf.String()
			if len(c.keys) == 0 && logs != "" {
				t.Fatalf("unexpected warnings:\n%s", logs)
			}
			if got := strings.Count(logs, "level=WARN"); got != len(c.keys) {
				t.Fatalf("%d warnings, want %d:\n%s", got, len(c.keys), logs)
			}
			for _, k := range c.keys {
				if !strings.Contains(logs, "key=self_regulation."+strings.TrimPrefix(k, "self_regulation.")) {
					t.Fatalf("no warning names %s:\n%s", k, logs)
				}
			}
		})
	}
}

func withF(c governor.BudgetConfig, f func(*governor.BudgetConfig)) governor.BudgetConfig {
	f(&c)
	return c
}

func TestNilBudgetImposesNoLimit(t *testing.T) {
	var b *governor.Budget
	b.Observe(1, time.Second, 0)
	if b.Bytes() != math.MaxInt64 || b.RecordCap() != 0 || b.Config() != (governor.BudgetConfig{}) || b.Stats().Bytes != math.MaxInt64 {
		t.Fatal("nil budget")
	}
}

// Concurrent observers never take the budget out of its envelope and
// every observation is counted.
func TestBudgetConcurrentObserve(t *testing.T) {
	b := newTestBudget(t, governor.BudgetConfig{StartBytes: 64 * kib, MinBytes: kib, MaxBytes: 128 * kib, StepBytes: kib})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if (i+w)%3 == 0 {
					b.Observe(1, 90*ms, 100*ms)
				} else {
					b.Observe(1, 1*ms, 100*ms)
				}
				if v := b.Bytes(); v < kib || v > 128*kib {
					t.Errorf("budget %d out of its envelope", v)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if st := b.Stats(); st.Observations != 2000 || st.Increases+st.DecreasesBehind != 2000 {
		t.Fatalf("stats %+v", st)
	}
}

// With a memory-risk signal, a behind block shrinks the budget only while
// the signal is true; otherwise it grows the budget by a step and is
// counted as behind without risk. The averages learn either way.
func TestBudgetBehindShrinksOnlyAtRisk(t *testing.T) {
	reg := testRegistry()
	var risk atomic.Bool
	calls := 0
	b := governor.NewBudget(governor.ProfileThroughput,
		governor.BudgetConfig{StartBytes: 20000, MinBytes: 1024, MaxBytes: 40000, StepBytes: 5000, EMAAlpha: 1},
		governor.WithMetrics(reg), governor.WithLogger(quietLogger()),
		governor.WithMemoryRisk(func() bool { calls++; return risk.Load() }))
	steps := []struct {
		process, ingest time.Duration
		risk            bool
		want            int64
	}{
		{95 * ms, 100 * ms, false, 25000},  // rho 0.95, behind, no risk: one step up
		{95 * ms, 100 * ms, false, 30000},  // still behind, still no risk
		{5 * ms, 0, false, 35000},          // back to back with work: behind, no risk
		{95 * ms, 100 * ms, true, 17500},   // behind at risk: halved
		{95 * ms, 100 * ms, true, 8750},    // and again
		{10 * ms, 100 * ms, true, 13750},   // slack at risk: one step up
		{95 * ms, 100 * ms, false, 18750},  // behind, risk gone: one step up
		{95 * ms, 100 * ms, true, 9375},    // behind at risk
		{100 * ms, 100 * ms, false, 14375}, // rho 1, no risk
	}
	for n, s := range steps {
		risk.Store(s.risk)
		b.Observe(1, s.process, s.ingest)
		if b.Bytes() != s.want {
			t.Fatalf("step %d (risk %v): budget %d, want %d", n, s.risk, b.Bytes(), s.want)
		}
		if st := b.Stats(); !near(st.ProcessEMA, s.process.Seconds()) || !near(st.IngestEMA, s.ingest.Seconds()) {
			t.Fatalf("step %d: averages %+v", n, st)
		}
	}
	st := b.Stats()
	if st.Observations != 9 || st.DecreasesBehind != 3 || st.BehindNotAtRisk != 5 || st.Increases != 6 || st.DecreasesPressure != 0 {
		t.Fatalf("stats %+v", st)
	}
	if testutil.ToFloat64(decreases(reg, "behind")) != 3 {
		t.Fatal("behind decrease counter")
	}
	if calls != 9 {
		t.Fatalf("the risk signal was read %d times, want once per Observe (9)", calls)
	}
}

// The pressure signal forces the decrease whatever the risk signal says.
func TestBudgetPressureOverridesRisk(t *testing.T) {
	b := newTestBudget(t, governor.BudgetConfig{StartBytes: 8 * kib, MinBytes: kib, MaxBytes: 16 * kib, StepBytes: kib},
		governor.WithPressureSignal(func() bool { return true }), governor.WithMemoryRisk(func() bool { return false }))
	b.Observe(1, 10*ms, 100*ms)
	if st := b.Stats(); b.Bytes() != 4*kib || st.DecreasesPressure != 1 || st.BehindNotAtRisk != 0 {
		t.Fatalf("budget %d, stats %+v", b.Bytes(), st)
	}
}
