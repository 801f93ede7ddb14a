package pool

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/metrics"
)

// scriptCPU is a CPUSampler whose next reading the test sets. Every Sample
// is also sent on calls, when that channel is set.
type scriptCPU struct {
	mu    sync.Mutex
	v     float64
	err   error
	n     int
	calls chan time.Time
}

func (s *scriptCPU) set(v float64, err error) {
	s.mu.Lock()
	s.v, s.err = v, err
	s.mu.Unlock()
}

func (s *scriptCPU) Sample() (float64, error) {
	s.mu.Lock()
	v, err, ch := s.v, s.err, s.calls
	s.n++
	s.mu.Unlock()
	if ch != nil {
		ch <- time.Now()
	}
	return v, err
}

func (s *scriptCPU) samples() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// fixedMemory is a MemoryPressure the test sets.
type fixedMemory struct {
	mu sync.Mutex
	v  float64
}

func (m *fixedMemory) set(v float64) { m.mu.Lock(); m.v = v; m.mu.Unlock() }

func (m *fixedMemory) PressureRatio() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.v
}

// scaleEvents reads keel_pool_scale_events_total{pool="t",direction=d}.
func scaleEvents(t *testing.T, reg *metrics.Registry, d Direction) float64 {
	t.Helper()
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keel_pool_scale_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelValue(m, "pool") == "t" && labelValue(m, "direction") == string(d) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("keel_pool_scale_events_total{direction=%q} not found", d)
	return 0
}

func newTestScaler(t *testing.T, cfg Config, opts ...ScalerOption) (*Scaler, *Pool, *metrics.Registry) {
	t.Helper()
	p, reg := newTestPool(t, cfg)
	s, err := NewScaler(p, opts...)
	if err != nil {
		t.Fatalf("NewScaler: %v", err)
	}
	return s, p, reg
}

func TestScalerTickMovesThePoolTarget(t *testing.T) {
	cpu := &scriptCPU{}
	mem := &fixedMemory{}
	s, p, reg := newTestScaler(t, Config{MinWorkers: 2, MaxWorkers: 8, InitialWorkers: 4},
		WithCPUSampler(cpu), WithMemoryPressure(mem))

	steps := []struct {
		cpu, mem float64
		dir      Direction
		target   int
	}{
		{0.10, 0, DirectionUp, 6},
		{0.20, 0.5, DirectionUp, 8},
		{0.30, 0, DirectionUp, 8}, // at max: fires, moves nothing
		{0.70, 0, DirectionSteady, 8},
		{0.90, 0, DirectionDown, 7},
		{0.99, 0, DirectionEmergencyDown, 5},
		{0.10, 0.80, DirectionUp, 7}, // memory at the cap is not capped
		{0.10, 0.81, DirectionMemoryCap, 2},
		{0.10, 0.95, DirectionMemoryCap, 2}, // held at min: no second event
		{0.10, 0.10, DirectionUp, 4},
	}
	events := map[Direction]float64{}
	for i, st := range steps {
		cpu.set(st.cpu, nil)
		mem.set(st.mem)
		from := p.Target()
		d := s.Tick()
		if d.Direction != st.dir || d.Target != st.target || d.From != from {
			t.Fatalf("step %d (cpu %v mem %v): decision %s %d -> %d, want %s %d -> %d",
				i, st.cpu, st.mem, d.Direction, d.From, d.Target, st.dir, from, st.target)
		}
		if got := p.Target(); got != st.target {
			t.Fatalf("step %d: Pool.Target() = %d after Tick, want %d", i, got, st.target)
		}
		if d.Changed() {
			events[d.Direction]++
		}
		if got := metricValue(t, reg, "keel_pool_target_workers", "t"); got != float64(st.target) {
			t.Fatalf("step %d: keel_pool_target_workers = %v, want %d", i, got, st.target)
		}
		if got, want := metricValue(t, reg, "keel_pool_saturation_ratio", "t"), float64(st.target)/8; got != want {
			t.Fatalf("step %d: keel_pool_saturation_ratio = %v, want %v", i, got, want)
		}
		if got := metricValue(t, reg, "keel_pool_cpu_utilisation_ratio", "t"); got != st.cpu {
			t.Fatalf("step %d: keel_pool_cpu_utilisation_ratio = %v, want %v", i, got, st.cpu)
		}
		if got := metricValue(t, reg, "keel_pool_memory_utilisation_ratio", "t"); got != st.mem {
			t.Fatalf("step %d: keel_pool_memory_utilisation_ratio = %v, want %v", i, got, st.mem)
		}
		if last, ok := s.Last(); !ok || last != d {
			t.Fatalf("step %d: Last() = %+v, %v; want the decision just made", i, last, ok)
		}
	}
	want := map[Direction]float64{DirectionUp: 4, DirectionDown: 1, DirectionEmergencyDown: 1, DirectionMemoryCap: 1}
	for _, d := range []Direction{DirectionUp, DirectionDown, DirectionEmergencyDown, DirectionMemoryCap} {
		if got := scaleEvents(t, reg, d); got != want[d] || got != events[d] {
			t.Errorf("keel_pool_scale_events_total{direction=%s} = %v, want %v", d, got, want[d])
		}
	}
	if got := metricValue(t, reg, "keel_pool_active_workers", "t"); got != 0 {
		t.Errorf("keel_pool_active_workers = %v on an idle pool, want 0", got)
	}
}

func TestScalerEventLabelsAreBounded(t *testing.T) {
	_, _, reg := newTestScaler(t, Config{}, WithCPUSampler(&scriptCPU{}))
	mfs, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, mf := range mfs {
		if mf.GetName() == "keel_pool_scale_events_total" {
			for _, m := range mf.GetMetric() {
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("fresh counter %s = %v", labelValue(m, "direction"), v)
				}
				dirs = append(dirs, labelValue(m, "direction"))
			}
		}
	}
	if got := strings.Join(dirs, ","); got != "down,emergency_down,memory_cap,up" {
		t.Fatalf("scale event series = %q, want the four moving directions, present from the start", got)
	}
}

func TestScalerWithoutCPUReadingHoldsSteady(t *testing.T) {
	cpu := &scriptCPU{}
	h := &recordHandler{}
	p, reg := newTestPool(t, Config{MinWorkers: 1, MaxWorkers: 6, InitialWorkers: 3})
	p.log = slogNew(h)
	s, err := NewScaler(p, WithCPUSampler(cpu))
	if err != nil {
		t.Fatal(err)
	}

	cpu.set(0, ErrCPUBaseline)
	if d := s.Tick(); d.Direction != DirectionSteady || d.Target != 3 || !math.IsNaN(d.CPU) {
		t.Fatalf("baseline reading: %+v, want steady at 3 with CPU NaN", d)
	}
	for _, r := range h.all() {
		if r["msg"] != "" && strContains(r["msg"], "cannot read CPU") {
			t.Fatalf("ErrCPUBaseline was logged as a failure: %v", r)
		}
	}

	boom := errors.New("getrusage: EFAULT")
	cpu.set(0.01, boom) // the value is ignored with an error
	for range 3 {
		if d := s.Tick(); d.Direction != DirectionSteady || d.Target != 3 {
			t.Fatalf("failed reading: %+v, want steady at 3", d)
		}
	}
	warns := 0
	for _, r := range h.all() {
		if strContains(r["msg"], "cannot read CPU") {
			warns++
			if r["error"] != boom.Error() || r["pool"] != "t" {
				t.Fatalf("warning lacks the error or the pool: %v", r)
			}
		}
	}
	if warns != 1 {
		t.Fatalf("%d warnings for 3 failed readings within a minute, want 1 (rate-limited)", warns)
	}
	for _, d := range []Direction{DirectionUp, DirectionDown, DirectionEmergencyDown, DirectionMemoryCap} {
		if got := scaleEvents(t, reg, d); got != 0 {
			t.Fatalf("events{%s} = %v after steady ticks", d, got)
		}
	}

	// Memory still caps without a CPU reading.
	mem := &fixedMemory{v: 0.9}
	s2, _ := NewScaler(p, WithCPUSampler(cpu), WithMemoryPressure(mem))
	if d := s2.Tick(); d.Direction != DirectionMemoryCap || p.Target() != 1 {
		t.Fatalf("memory above cap without CPU: %+v, target %d; want memory_cap to 1", d, p.Target())
	}
}

func TestScalerLogsMemoryCapEdges(t *testing.T) {
	h := &recordHandler{}
	p, _ := newTestPool(t, Config{MinWorkers: 1, MaxWorkers: 4})
	p.log = slogNew(h)
	mem := &fixedMemory{}
	cpu := &scriptCPU{v: 0.7}
	s, _ := NewScaler(p, WithCPUSampler(cpu), WithMemoryPressure(mem))
	for _, v := range []float64{0.5, 0.9, 0.95, 0.85, 0.3, 0.3, 0.99} {
		mem.set(v)
		s.Tick()
	}
	var warns, infos int
	for _, r := range h.all() {
		switch {
		case strContains(r["msg"], "dropped to min_workers"):
			warns++
		case strContains(r["msg"], "back under"):
			infos++
		}
	}
	if warns != 2 || infos != 1 {
		t.Fatalf("memory cap logged %d warnings and %d recoveries, want 2 and 1 (once per edge)", warns, infos)
	}
}

func TestScalerWithAMemoryGuard(t *testing.T) {
	p, reg := newTestPool(t, Config{MinWorkers: 1, MaxWorkers: 8, InitialWorkers: 6})
	g, err := memory.New(memory.Config{LimitBytes: 1000}, memory.WithMetrics(reg), memory.WithLogger(quietLogger()))
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	cpu := &scriptCPU{v: 0.7}
	s, err := NewScaler(p, WithCPUSampler(cpu), WithMemoryPressure(g))
	if err != nil {
		t.Fatal(err)
	}
	g.Add(800) // exactly at the 0.80 cap: not capped
	if d := s.Tick(); d.Direction != DirectionSteady || p.Target() != 6 {
		t.Fatalf("guard at the cap: %+v, target %d; want steady at 6", d, p.Target())
	}
	g.Add(1) // 0.801
	if d := s.Tick(); d.Direction != DirectionMemoryCap || p.Target() != 1 || d.Memory != 0.801 {
		t.Fatalf("guard above the cap: %+v, target %d; want memory_cap to 1 at 0.801", d, p.Target())
	}
	g.Release(801)
	cpu.set(0.1, nil)
	if d := s.Tick(); d.Direction != DirectionUp || p.Target() != 3 {
		t.Fatalf("guard released: %+v, target %d; want up to 3", d, p.Target())
	}
}

func TestScalerNilSources(t *testing.T) {
	if s, err := NewScaler(nil); s != nil || !errors.Is(err, ErrNilPool) {
		t.Fatalf("NewScaler(nil) = %v, %v; want ErrNilPool", s, err)
	}
	p, _ := newTestPool(t, Config{MinWorkers: 1, MaxWorkers: 4, InitialWorkers: 2})
	var g *memory.Guard // a typed nil would panic on PressureRatio
	var c *CPUMeter
	s, err := NewScaler(p, WithMemoryPressure(g), WithCPUSampler(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := s.Tick() // real CPU meter, no memory source
	if d.Memory != 0 {
		t.Fatalf("memory without a source = %v, want 0", d.Memory)
	}
	if math.IsNaN(d.CPU) || d.CPU < 0 || d.CPU > 1 {
		t.Fatalf("real CPU meter reading = %v, want a ratio in [0, 1]", d.CPU)
	}
	if d.Target < 1 || d.Target > 4 || p.Target() != d.Target {
		t.Fatalf("decision %+v, pool target %d", d, p.Target())
	}
}

func TestScalerReadsTheSection(t *testing.T) {
	off := false
	cfg := Config{
		MaxWorkers: 4, ScalingEnabled: &off, ScaleInterval: 2 * time.Second,
		GrowBelow: 0.3, ShrinkAbove: 0.5, EmergencyAbove: 0.9, MemoryPressureCap: 0.6,
	}
	s, p, _ := newTestScaler(t, cfg, WithCPUSampler(&scriptCPU{v: 0.4}))
	if s.Enabled() || s.Interval() != 2*time.Second {
		t.Fatalf("Enabled %v Interval %v, want false and 2s", s.Enabled(), s.Interval())
	}
	want := Thresholds{GrowBelow: 0.3, ShrinkAbove: 0.5, EmergencyAbove: 0.9, MemoryPressureCap: 0.6}
	if s.Thresholds() != want {
		t.Fatalf("Thresholds() = %+v, want %+v", s.Thresholds(), want)
	}
	p.SetTarget(2)
	// 0.4 grows with the defaults but is steady with grow_below 0.3.
	if d := s.Tick(); d.Direction != DirectionSteady {
		t.Fatalf("cpu 0.4 with grow_below 0.3: %s, want steady", d.Direction)
	}

	d, _, _ := newTestScaler(t, Config{})
	if !d.Enabled() || d.Interval() != DefaultScaleInterval || d.Thresholds() != (Thresholds{}).WithDefaults() {
		t.Fatalf("defaults: enabled %v interval %v thresholds %+v", d.Enabled(), d.Interval(), d.Thresholds())
	}
	if _, ok := d.Last(); ok {
		t.Fatal("Last() reports a decision before any Tick")
	}
}

func TestScalerRunTicksEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cpu := &scriptCPU{v: 0.1, calls: make(chan time.Time)}
		s, p, _ := newTestScaler(t, Config{MinWorkers: 1, MaxWorkers: 16, InitialWorkers: 1}, WithCPUSampler(cpu))
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()

		for i := 1; i <= 3; i++ {
			at := <-cpu.calls
			if want := start.Add(time.Duration(i) * DefaultScaleInterval); !at.Equal(want) {
				t.Fatalf("tick %d at %v, want %v (one interval apart, none at start)", i, at.Sub(start), want.Sub(start))
			}
			synctest.Wait() // the tick has applied its decision
			if got := p.Target(); got != 1+2*i {
				t.Fatalf("after tick %d target = %d, want %d", i, got, 1+2*i)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
		if n := cpu.samples(); n != 3 {
			t.Fatalf("%d samples, want 3", n)
		}
	})
}

func TestScalerRunStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cpu := &scriptCPU{v: 0.99}
		s, p, _ := newTestScaler(t, Config{MinWorkers: 1, MaxWorkers: 4}, WithCPUSampler(cpu))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait() // Run is parked on its ticker

		if err := s.Run(ctx); !errors.Is(err, ErrScalerRunning) {
			t.Fatalf("second Run = %v, want ErrScalerRunning", err)
		}
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v, want nil on cancel", err)
			}
		default:
			t.Fatal("Run still running after its ctx was cancelled")
		}
		if n := cpu.samples(); n != 0 {
			t.Fatalf("%d samples before the first interval, want 0", n)
		}
		if p.Target() != 4 {
			t.Fatalf("target moved to %d without a tick", p.Target())
		}

		// A stopped scaler can run again.
		calls := make(chan time.Time)
		cpu.mu.Lock()
		cpu.calls = calls
		cpu.mu.Unlock()
		ctx2, cancel2 := context.WithCancel(t.Context())
		go func() { done <- s.Run(ctx2) }()
		<-calls
		synctest.Wait() // the tick has applied its decision
		cancel2()
		if err := <-done; err != nil {
			t.Fatalf("second Run = %v", err)
		}
		if n := cpu.samples(); n != 1 || p.Target() != 2 {
			t.Fatalf("after one interval: %d samples, target %d; want 1 and 2", n, p.Target())
		}
	})
}

func TestScalerRunDisabledReturnsAtOnce(t *testing.T) {
	off := false
	cpu := &scriptCPU{v: 0.1}
	s, p, _ := newTestScaler(t, Config{MinWorkers: 1, MaxWorkers: 8, InitialWorkers: 2, ScalingEnabled: &off}, WithCPUSampler(cpu))
	// ctx is never cancelled: a disabled Run must not wait for it.
	if err := s.Run(context.Background()); err != nil {
		t.Fatalf("disabled Run = %v, want nil", err)
	}
	if cpu.samples() != 0 || p.Target() != 2 {
		t.Fatalf("disabled Run sampled %d times and left target %d; want 0 and 2", cpu.samples(), p.Target())
	}
	if d := s.Tick(); d.Target != 4 || p.Target() != 4 {
		t.Fatalf("explicit Tick on a disabled scaler: %+v; want it applied (4)", d)
	}
}

func TestPoolUsableAfterScalerStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cpu := &scriptCPU{v: 0.1, calls: make(chan time.Time)}
		s, p, _ := newTestScaler(t, Config{MinWorkers: 1, MaxWorkers: 4, InitialWorkers: 1}, WithCPUSampler(cpu))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		<-cpu.calls
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if p.Target() != 3 {
			t.Fatalf("target after one tick = %d, want 3", p.Target())
		}
		items := make([]int, 100)
		for i := range items {
			items[i] = i
		}
		out, errs := Map(context.Background(), p, items, func(_ context.Context, _ int, v int) (int, error) { return v * 2, nil })
		if errs != nil {
			t.Fatalf("Map after the scaler stopped: %v", errs)
		}
		for i, v := range out {
			if v != 2*i {
				t.Fatalf("out[%d] = %d", i, v)
			}
		}
		if p.Target() != 3 {
			t.Fatalf("target moved to %d after the scaler stopped", p.Target())
		}
	})
}

func TestScalerTickIsSafeConcurrently(t *testing.T) {
	cpu := &scriptCPU{v: 0.1}
	s, p, reg := newTestScaler(t, Config{MinWorkers: 1, MaxWorkers: 64, InitialWorkers: 1}, WithCPUSampler(cpu))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 {
				s.Tick()
			}
		})
	}
	wg.Wait()
	// 32 serialised up-steps of 2 from 1, capped at 64.
	if p.Target() != 64 {
		t.Fatalf("target = %d after 32 concurrent up ticks, want 64", p.Target())
	}
	if got := scaleEvents(t, reg, DirectionUp); got != 32 {
		t.Fatalf("up events = %v, want 32 (each tick moved the target)", got)
	}
}
