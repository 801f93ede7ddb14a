package governor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keel-go/keel/governor"
)

func TestGateEdgesFireOnceEach(t *testing.T) {
	rec := &recorder{}
	g, d := gateOn(t, rec)
	if g.Held() || !g.Admit() {
		t.Fatal("a gate starts open")
	}
	for i := 0; i < 5; i++ {
		if evaluate(t, g) {
			t.Fatal("held at level 0")
		}
	}
	if len(rec.log()) != 0 {
		t.Fatalf("calls without an edge: %v", rec.log())
	}
	d.set(0.9)
	for i := 0; i < 10; i++ {
		if !evaluate(t, g) || !g.Held() || g.Admit() {
			t.Fatalf("evaluation %d at 0.9: not held", i)
		}
	}
	d.set(0.7) // between the thresholds: stays held, calls nothing
	for i := 0; i < 10; i++ {
		if !evaluate(t, g) {
			t.Fatal("released inside the hysteresis band")
		}
	}
	if got := rec.log(); !slices.Equal(got, []string{"pause"}) {
		t.Fatalf("calls while held: %v, want one pause", got)
	}
	d.set(0.1)
	for i := 0; i < 10; i++ {
		if evaluate(t, g) || g.Held() || !g.Admit() {
			t.Fatal("not released at 0.1")
		}
	}
	d.set(0.7) // between the thresholds: stays open
	evaluate(t, g)
	d.set(0.95)
	evaluate(t, g)
	evaluate(t, g)
	d.set(0.65)
	evaluate(t, g)
	if got := rec.log(); !slices.Equal(got, []string{"pause", "resume", "pause", "resume"}) {
		t.Fatalf("calls = %v", got)
	}
	st := g.Stats()
	if st.Pauses != 2 || st.Resumes != 2 || st.Held || st.Errors != 0 || st.Source != "test" || st.Level != 0.65 {
		t.Fatalf("stats %+v", st)
	}
}

func TestGateActuatorErrorIsRetried(t *testing.T) {
	rec := &recorder{}
	g, d := gateOn(t, rec)
	rec.failNext("pause", errActuator)
	d.set(0.9)
	held, err := g.Evaluate(context.Background())
	if !errors.Is(err, errActuator) || held || g.Held() {
		t.Fatalf("failed pause: held %v err %v; the gate must stay open", held, err)
	}
	if !strings.Contains(err.Error(), "pause the test source") {
		t.Fatalf("error %q does not say what failed", err)
	}
	if !evaluate(t, g) {
		t.Fatal("the pause was not retried")
	}
	rec.failNext("resume", errActuator)
	d.set(0)
	if held, err := g.Evaluate(context.Background()); !errors.Is(err, errActuator) || !held {
		t.Fatalf("failed resume: held %v err %v; the gate must stay held", held, err)
	}
	if evaluate(t, g) {
		t.Fatal("the resume was not retried")
	}
	if got := rec.log(); !slices.Equal(got, []string{"pause!", "pause", "resume!", "resume"}) {
		t.Fatalf("calls = %v", got)
	}
	if st := g.Stats(); st.Errors != 2 || st.Pauses != 1 || st.Resumes != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Concurrent evaluators never run the actuator at the same time and never
// reorder its calls: they strictly alternate, starting with pause.
func TestGateConcurrentEvaluatorsKeepEdgesOrdered(t *testing.T) {
	rec := &recorder{}
	g, d := gateOn(t, rec)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := g.Evaluate(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			d.set(0.9)
		} else {
			d.set(0.1)
		}
		if _, err := g.Evaluate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	calls := rec.log()
	if len(calls) != 200 {
		t.Fatalf("%d actuator calls, want 200 (one per edge)", len(calls))
	}
	for i, c := range calls {
		want := "pause"
		if i%2 == 1 {
			want = "resume"
		}
		if c != want {
			t.Fatalf("call %d = %s, want %s: %v", i, c, want, calls[:i+1])
		}
	}
	if rec.overlap.Load() {
		t.Fatal("two actuator calls overlapped")
	}
}

func TestGateWaitAndRun(t *testing.T) {
	paused, resumed := make(chan struct{}), make(chan struct{})
	act := governor.ActuatorFuncs{
		OnPause:  func(context.Context) error { close(paused); return nil },
		OnResume: func(context.Context) error { close(resumed); return nil },
	}
	g, d := gateOn(t, act)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, time.Millisecond) }()

	if err := g.Wait(ctx); err != nil {
		t.Fatalf("Wait on an open gate: %v", err)
	}
	d.set(1)
	<-paused // Run saw the pressure and paused
	waited := make(chan error, 1)
	go func() { waited <- g.Wait(ctx) }()
	d.set(0)
	<-resumed
	if err := <-waited; err != nil {
		t.Fatalf("Wait returned %v after the gate opened", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on cancel, want nil", err)
	}
}

func TestGateWaitHonoursContext(t *testing.T) {
	g, d := gateOn(t, nil)
	d.set(1)
	evaluate(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- g.Wait(ctx) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

// Watch reports the state and a channel closed at the next edge, rising
// or falling, and only at an edge: an evaluation that changes nothing and
// a failed actuator call leave it open.
func TestGateWatchSignalsEdgesOnly(t *testing.T) {
	rec := &recorder{}
	g, d := gateOn(t, rec)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	held, open := g.Watch()
	if held || open == nil || closed(open) {
		t.Fatalf("open gate: held %v, channel closed %v", held, closed(open))
	}
	evaluate(t, g) // level 0: no edge
	rec.failNext("pause", errActuator)
	d.set(0.9)
	if _, err := g.Evaluate(context.Background()); !errors.Is(err, errActuator) {
		t.Fatalf("evaluate: %v", err)
	}
	if closed(open) {
		t.Fatal("the channel closed without an edge")
	}
	evaluate(t, g) // the retried pause: the rising edge
	if !closed(open) {
		t.Fatal("the rising edge did not close the channel")
	}
	held, rise := g.Watch()
	if !held || closed(rise) {
		t.Fatalf("held gate: held %v, fresh channel closed %v", held, closed(rise))
	}
	d.set(0.7) // inside the band: still held, no edge
	evaluate(t, g)
	if closed(rise) {
		t.Fatal("the channel closed while the gate stayed held")
	}
	d.set(0.1)
	evaluate(t, g)
	if !closed(rise) {
		t.Fatal("the falling edge did not close the channel")
	}
	if held, ch := g.Watch(); held || closed(ch) {
		t.Fatal("released gate")
	}
	var nilGate *governor.Gate
	if held, ch := nilGate.Watch(); held || ch != nil {
		t.Fatal("a nil gate must be open with no edge channel")
	}
}

func TestGateRunLogsActuatorErrors(t *testing.T) {
	log, buf := bufferLogger()
	failed := make(chan struct{}, 1)
	act := governor.ActuatorFuncs{OnPause: func(context.Context) error {
		select {
		case failed <- struct{}{}:
		default:
		}
		return errActuator
	}}
	d := newDial("q", false, 1)
	g := governor.NewGate("src", governor.NewPressure(d), nil, act, governor.WithLogger(log))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, time.Millisecond) }()
	<-failed
	<-failed // a second attempt proves the retry
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Count(s, "gate actuator failed") != 1 || !strings.Contains(s, "source=src") {
		t.Fatalf("want exactly one rate-limited warning naming the source, got:\n%s", s)
	}
	if g.Held() || g.Stats().Errors < 2 {
		t.Fatalf("stats %+v", g.Stats())
	}
}

func TestNilGateIsOpen(t *testing.T) {
	var g *governor.Gate
	if held, err := g.Evaluate(context.Background()); held || err != nil || g.Held() || !g.Admit() || g.Wait(context.Background()) != nil {
		t.Fatal("a nil gate must be open")
	}
	if g.Run(context.Background(), time.Millisecond) != nil || g.Source() != "" || g.Latch() != nil || g.Stats() != (governor.GateStats{}) {
		t.Fatal("nil gate accessors")
	}
	// A gate with no pressure never holds; defaults for latch and actuator.
	g = governor.NewGate("", nil, nil, nil)
	if evaluate(t, g) || g.Source() != "inbound" || g.Latch().PauseAt() != 0.80 || g.Latch().ResumeAt() != 0.65 {
		t.Fatal("defaults")
	}
}

func TestObservedActuatorCountsEdgesBySource(t *testing.T) {
	reg := testRegistry()
	log, buf := bufferLogger()
	rec := &recorder{}
	act := governor.ObserveActuator("kafka", rec, governor.WithMetrics(reg), governor.WithLogger(log))
	g, d := gateOn(t, act)
	other := governor.ObserveActuator("http", nil, governor.WithMetrics(reg), governor.WithLogger(quietLogger()))

	pausedKafka := func() float64 { return testutil.ToFloat64(paused(reg, "kafka")) }
	pauses := func(src string) float64 { return testutil.ToFloat64(pausesTotal(reg, src)) }

	d.set(0.9)
	for i := 0; i < 5; i++ {
		evaluate(t, g)
	}
	if pausedKafka() != 1 || pauses("kafka") != 1 {
		t.Fatalf("after one rising edge: paused %v pauses %v", pausedKafka(), pauses("kafka"))
	}
	d.set(0.1)
	for i := 0; i < 5; i++ {
		evaluate(t, g)
	}
	if pausedKafka() != 0 || pauses("kafka") != 1 {
		t.Fatalf("after the falling edge: paused %v pauses %v", pausedKafka(), pauses("kafka"))
	}
	d.set(0.9)
	evaluate(t, g)
	if pauses("kafka") != 2 || pauses("http") != 0 {
		t.Fatalf("labels: kafka %v http %v", pauses("kafka"), pauses("http"))
	}
	// A failed call counts an error and moves nothing.
	rec.failNext("resume", errActuator)
	d.set(0)
	if _, err := g.Evaluate(context.Background()); !errors.Is(err, errActuator) {
		t.Fatalf("err %v", err)
	}
	if pausedKafka() != 1 || testutil.ToFloat64(actuatorErrors(reg, "kafka", "resume")) != 1 {
		t.Fatal("a failed resume must count an error and keep the gauge at 1")
	}
	if err := other.Pause(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	if strings.Count(s, "inbound paused under pressure") != 2 || strings.Count(s, "inbound resumed") != 1 ||
		strings.Count(s, "inbound resume failed") != 1 || !strings.Contains(s, "source=kafka") {
		t.Fatalf("log lines:\n%s", s)
	}
}
