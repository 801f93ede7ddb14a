package governor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

// The memory guard is the governor's hard source. The engine's interfaces
// (ByteBudget, MemoryAccountant) are checked by package transport/gated's
// tests: the governor sits below the engine and the transports, and
// neither its code nor its tests import them.
var _ governor.HardSource = (*memory.Guard)(nil)

func newGovernor(t *testing.T, cfg governor.Config, opts ...governor.Option) (*governor.Governor, *metrics.Registry) {
	t.Helper()
	reg := testRegistry()
	opts = append([]governor.Option{governor.WithMetrics(reg), governor.WithLogger(quietLogger())}, opts...)
	g, err := governor.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if g == nil {
		t.Fatal("New returned a nil governor for an enabled config")
	}
	return g, reg
}

func gathered(t *testing.T, reg *metrics.Registry, prefix string) []string {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), prefix) {
			names = append(names, mf.GetName())
		}
	}
	return names
}

func TestDisabledBuildsNothing(t *testing.T) {
	reg := testRegistry()
	log, buf := bufferLogger()
	// Even an invalid section builds nothing when disabled.
	g, err := governor.New(governor.Config{Enabled: ptr(false), PauseAt: 7},
		governor.WithMetrics(reg), governor.WithLogger(log), governor.WithSource(newDial("m", true, 1)))
	if g != nil || err != nil {
		t.Fatalf("New(disabled) = %v, %v; want nil, nil", g, err)
	}
	if names := gathered(t, reg, "keel_self_regulation"); len(names) != 0 {
		t.Fatalf("a disabled governor registered metrics: %v", names)
	}
	if !strings.Contains(buf.String(), "self_regulation.enabled is false") {
		t.Fatalf("log: %s", buf.String())
	}
	// Every method of the nil governor is safe and neutral.
	if g.Budget() != nil || g.Gate() != nil || g.NewGate("x", nil) != nil || g.Pressure() != nil || g.Level() != 0 ||
		g.Enabled() || g.Config().Enabled != nil || g.Stats().Enabled {
		t.Fatal("nil governor accessors")
	}
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsAnInvalidSection(t *testing.T) {
	g, err := governor.New(governor.Config{PauseAt: 0.5, ResumeAt: 0.6}, governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()))
	if g != nil || !errors.Is(err, governor.ErrInvalidConfig) || !strings.Contains(err.Error(), "self_regulation.resume_at") {
		t.Fatalf("New = %v, %v", g, err)
	}
}

func TestNewWiresSourcesAndWeights(t *testing.T) {
	log, buf := bufferLogger()
	reg := testRegistry()
	hard := newDial("memory", true, 0.2)
	queue := newDial("queue", false, 1)
	lag := newDial("lag", false, 0.3)
	g, err := governor.New(governor.Config{Weights: map[string]float64{"queue": 0.5, "memory": 0.1, "typo": 1}},
		governor.WithMetrics(reg), governor.WithLogger(log),
		governor.WithSource(hard), governor.WithSource(queue), governor.WithSource(lag), governor.WithSource(nil), governor.WithMemory(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := g.Stats().Pressure
	if len(s.Sources) != 3 || !s.Sources[0].Hard || s.Sources[0].Weight != 1 || s.Sources[1].Weight != 0.5 || s.Sources[2].Weight != 1 {
		t.Fatalf("sources %+v", s.Sources)
	}
	// max(hard 0.2, queue 1×0.5, lag 0.3×1) = 0.5; the weight given to the
	// hard source is ignored.
	if g.Level() != 0.5 || s.Level != 0.5 {
		t.Fatalf("level %v", g.Level())
	}
	logs := buf.String()
	for _, want := range []string{"key=self_regulation.weights.memory", "key=self_regulation.weights.typo", "self-regulation on"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "no hard pressure source") {
		t.Fatal("warned about a missing hard source")
	}
	// Without a hard source, New says so.
	log2, buf2 := bufferLogger()
	if _, err := governor.New(governor.Config{}, governor.WithMetrics(testRegistry()), governor.WithLogger(log2)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf2.String(), "no hard pressure source") {
		t.Fatalf("log: %s", buf2.String())
	}
}

func TestPressureRatioGauge(t *testing.T) {
	d := newDial("memory", true, 0.42)
	_, reg := newGovernor(t, governor.Config{}, governor.WithSource(d))
	read := func() float64 {
		mfs, err := reg.Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "keel_self_regulation_pressure_ratio" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("keel_self_regulation_pressure_ratio not registered")
		return 0
	}
	if v := read(); v != 0.42 {
		t.Fatalf("gauge %v", v)
	}
	d.set(0.9)
	if v := read(); v != 0.9 {
		t.Fatalf("gauge %v: it must be read at scrape time", v)
	}
	for _, name := range []string{"keel_self_regulation_byte_budget_bytes", "keel_self_regulation_recv_block_bytes"} {
		found := false
		for _, n := range gathered(t, reg, name) {
			found = found || n == name
		}
		if !found {
			t.Fatalf("%s not registered", name)
		}
	}
}

// The gate and the budget share one pressure: high memory holds the gate
// and shrinks the budget even when the utilisation is slack, and pressure
// seen while a block was in flight still shrinks the next block after the
// block's memory was released.
func TestGateAndBudgetSharePressure(t *testing.T) {
	mem := newDial("memory", true, 0)
	g, _ := newGovernor(t, governor.Config{Budget: governor.BudgetConfig{StartBytes: 64 * kib, MinBytes: kib, MaxBytes: 128 * kib, StepBytes: kib}},
		governor.WithSource(mem))
	b := g.Budget()
	ctx := context.Background()
	slack := func() { b.Observe(1000, 10*ms, 100*ms) } // rho 0.1

	slack()
	if b.Bytes() != 65*kib {
		t.Fatalf("slack: %d", b.Bytes())
	}
	mem.set(0.9)
	if held, err := g.Gate().Evaluate(ctx); !held || err != nil {
		t.Fatalf("memory 0.9: held %v err %v", held, err)
	}
	slack()
	if b.Bytes() != 65*kib/2 {
		t.Fatalf("held gate: budget %d, want %d", b.Bytes(), 65*kib/2)
	}
	// Pressure in flight: the gate engages and releases between two
	// observations; the next observation still decreases.
	mem.set(0.1)
	if held, _ := g.Gate().Evaluate(ctx); held {
		t.Fatal("not released")
	}
	mem.set(0.95)
	if held, _ := g.Gate().Evaluate(ctx); !held {
		t.Fatal("not held")
	}
	mem.set(0)
	if held, _ := g.Gate().Evaluate(ctx); held {
		t.Fatal("not released")
	}
	slack()
	if b.Bytes() != 65*kib/4 {
		t.Fatalf("pressure seen in flight: budget %d, want %d", b.Bytes(), 65*kib/4)
	}
	slack()
	if b.Bytes() != 65*kib/4+kib {
		t.Fatalf("pressure gone: budget %d, want %d", b.Bytes(), 65*kib/4+kib)
	}
	// A level at pause_at at observation time decreases even before any
	// gate evaluation saw it.
	mem.set(0.8)
	slack()
	if b.Bytes() != (65*kib/4+kib)/2 {
		t.Fatalf("level at pause_at: budget %d", b.Bytes())
	}
	st := g.Stats()
	if st.Budget.DecreasesPressure != 3 || len(st.Gates) != 1 || st.Gates[0].Pauses != 2 || st.Gates[0].Resumes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRunEvaluatesEveryGate(t *testing.T) {
	mem := newDial("memory", true, 0)
	type edges struct{ paused, resumed chan struct{} }
	mk := func() (edges, governor.Actuator) {
		e := edges{make(chan struct{}), make(chan struct{})}
		var once1, once2 sync.Once
		return e, governor.ActuatorFuncs{
			OnPause:  func(context.Context) error { once1.Do(func() { close(e.paused) }); return nil },
			OnResume: func(context.Context) error { once2.Do(func() { close(e.resumed) }); return nil },
		}
	}
	kafka, kafkaAct := mk()
	http, httpAct := mk()
	g, reg := newGovernor(t, governor.Config{Interval: time.Millisecond}, governor.WithSource(mem), governor.WithActuator("kafka", kafkaAct))
	hg := g.NewGate("http", httpAct)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	mem.set(0.9)
	<-kafka.paused
	<-http.paused
	// Evaluate is serialised with Run's evaluations: once it returns, the
	// evaluations that paused have finished recording their edge.
	if _, err := g.Gate().Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := hg.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	if !g.Gate().Held() || !hg.Held() || g.Gate().Admit() || g.Gate().Source() != "kafka" {
		t.Fatal("gates not held")
	}
	if testutil.ToFloat64(paused(reg, "kafka")) != 1 || testutil.ToFloat64(paused(reg, "http")) != 1 ||
		testutil.ToFloat64(pausesTotal(reg, "kafka")) != 1 {
		t.Fatal("paused gauges")
	}
	mem.set(0.2)
	<-kafka.resumed
	<-http.resumed
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g.Gate().Held() || hg.Held() || testutil.ToFloat64(paused(reg, "kafka")) != 0 {
		t.Fatal("gates still held")
	}
}

// Only hard pressure forces the budget down. A saturated soft source of
// weight 1 holds the gate, so it brakes intake, but with slack timings the
// budget grows; a hard source at the same level shrinks it, and keeps
// shrinking it while the hard level stays inside the hysteresis band after
// a hold.
func TestOnlyHardPressureForcesDecrease(t *testing.T) {
	mem := newDial("memory", true, 0)
	queue := newDial("queue", false, 0)
	g, reg := newGovernor(t, governor.Config{
		Budget:  governor.BudgetConfig{StartBytes: 64 * kib, MinBytes: kib, MaxBytes: 128 * kib, StepBytes: kib},
		Weights: map[string]float64{"queue": 1},
	}, governor.WithSource(mem), governor.WithSource(queue))
	b := g.Budget()
	ctx := context.Background()
	slack := func() { b.Observe(1000, 10*ms, 100*ms) } // rho 0.1

	queue.set(1)
	if held, err := g.Gate().Evaluate(ctx); !held || err != nil {
		t.Fatalf("saturated soft source: held %v err %v, want the gate held", held, err)
	}
	slack()
	slack()
	if b.Bytes() != 66*kib {
		t.Fatalf("soft pressure: budget %d, want %d (two steps up)", b.Bytes(), 66*kib)
	}
	if st := g.Stats().Budget; st.DecreasesPressure != 0 || testutil.ToFloat64(decreases(reg, "pressure")) != 0 {
		t.Fatalf("soft pressure forced a decrease: %+v", st)
	}

	// The same level from the hard source forces the decrease.
	queue.set(0)
	mem.set(1)
	if held, _ := g.Gate().Evaluate(ctx); !held {
		t.Fatal("hard pressure: gate not held")
	}
	slack()
	if b.Bytes() != 33*kib {
		t.Fatalf("hard pressure: budget %d, want %d", b.Bytes(), 33*kib)
	}
	// Inside the band (resume_at < 0.7 < pause_at) a hard-driven hold
	// still forces the decrease; at resume_at it ends.
	mem.set(0.7)
	slack()
	if b.Bytes() != 33*kib/2 {
		t.Fatalf("hard hold in the band: budget %d, want %d", b.Bytes(), 33*kib/2)
	}
	mem.set(0.65)
	slack()
	if b.Bytes() != 33*kib/2+kib {
		t.Fatalf("hard hold released: budget %d, want %d", b.Bytes(), 33*kib/2+kib)
	}
	// A soft source in the band after a hard hold does not keep it.
	queue.set(0.7)
	mem.set(0.9)
	slack()
	mem.set(0)
	slack()
	if want := (33*kib/2+kib)/2 + kib; b.Bytes() != want {
		t.Fatalf("soft level in the band after a hard hold: budget %d, want %d", b.Bytes(), want)
	}
	if st := g.Stats().Budget; st.DecreasesPressure != 3 || testutil.ToFloat64(decreases(reg, "pressure")) != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// A backlog at low memory pressure: every block is behind (the receive
// interval holds the previous block's processing, so rho is about 1), but
// the hard level is under resume_at, so the budget climbs to its ceiling
// instead of falling to its floor. At or above resume_at, at Observe or at
// a gate evaluation while the block was in flight, behind shrinks it.
func TestBacklogAtLowPressureKeepsTheBudget(t *testing.T) {
	mem := newDial("memory", true, 0.2)
	g, reg := newGovernor(t, governor.Config{
		Budget: governor.BudgetConfig{StartBytes: 8 * kib, MinBytes: kib, MaxBytes: 12 * kib, StepBytes: kib},
	}, governor.WithSource(mem))
	b := g.Budget()
	ctx := context.Background()
	backlog := func() { b.Observe(8*kib, 99*ms, 100*ms) } // rho 0.99

	for _, want := range []int64{9 * kib, 10 * kib, 11 * kib, 12 * kib, 12 * kib} {
		backlog()
		if b.Bytes() != want {
			t.Fatalf("backlog at level 0.2: budget %d, want %d", b.Bytes(), want)
		}
	}
	if st := g.Stats().Budget; st.DecreasesBehind != 0 || st.BehindNotAtRisk != 5 || testutil.ToFloat64(decreases(reg, "behind")) != 0 {
		t.Fatalf("stats %+v", st)
	}

	mem.set(0.65) // resume_at, inclusive
	backlog()
	if b.Bytes() != 6*kib {
		t.Fatalf("backlog at resume_at: budget %d, want %d", b.Bytes(), 6*kib)
	}
	// A level seen by a gate evaluation while the block was in flight
	// counts at the next Observe, once.
	mem.set(0.7)
	if held, _ := g.Gate().Evaluate(ctx); held {
		t.Fatal("0.7 held the gate")
	}
	mem.set(0.1)
	backlog()
	if b.Bytes() != 3*kib {
		t.Fatalf("level in flight: budget %d, want %d", b.Bytes(), 3*kib)
	}
	backlog()
	if b.Bytes() != 4*kib {
		t.Fatalf("the peak was not consumed: budget %d, want %d", b.Bytes(), 4*kib)
	}
	if st := g.Stats().Budget; st.DecreasesBehind != 2 || st.DecreasesPressure != 0 || st.BehindNotAtRisk != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// Without a hard source the governor cannot tell whether memory is at
// risk, and a behind block shrinks the budget as in the reference design.
func TestBacklogWithoutHardSourceShrinks(t *testing.T) {
	g, _ := newGovernor(t, governor.Config{
		Budget: governor.BudgetConfig{StartBytes: 8 * kib, MinBytes: kib, MaxBytes: 12 * kib, StepBytes: kib},
	}, governor.WithSource(newDial("queue", false, 0)))
	b := g.Budget()
	b.Observe(8*kib, 99*ms, 100*ms)
	if st := g.Stats().Budget; b.Bytes() != 4*kib || st.DecreasesBehind != 1 {
		t.Fatalf("budget %d, stats %+v", b.Bytes(), st)
	}
}
