package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fixed(s Status, msg string) CheckFunc {
	return func(context.Context) (Status, string) { return s, msg }
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newReg() *Registry { return New(Config{Logger: quiet()}) }

func TestEmptyRegistry(t *testing.T) {
	r := newReg()
	ctx := context.Background()
	if r.Ready(ctx) {
		t.Fatal("ready before MarkStarted")
	}
	if !r.Live() {
		t.Fatal("not live")
	}
	r.MarkStarted()
	if !r.Started() || !r.Ready(ctx) {
		t.Fatal("empty started registry must be ready")
	}
	rep := r.Report(ctx)
	if rep.Status != Healthy || !rep.Ready || rep.Checks == nil || len(rep.Checks) != 0 {
		t.Fatalf("report = %+v", rep)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"checks":[]`) {
		t.Fatalf("empty checks must marshal as []: %s", b)
	}
}

func TestReadinessRules(t *testing.T) {
	tests := []struct {
		name    string
		checks  []Status
		overall Status
		ready   bool
	}{
		{"all healthy", []Status{Healthy, Healthy}, Healthy, true},
		{"degraded stays ready", []Status{Healthy, Degraded}, Degraded, true},
		{"one unhealthy fails", []Status{Degraded, Unhealthy, Healthy}, Unhealthy, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReg()
			r.MarkStarted()
			for i, s := range tt.checks {
				if err := r.Register(string(rune('a'+i)), fixed(s, "")); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.Ready(context.Background()); got != tt.ready {
				t.Fatalf("Ready = %v, want %v", got, tt.ready)
			}
			rep := r.Report(context.Background())
			if rep.Status != tt.overall || rep.Ready != tt.ready {
				t.Fatalf("report status %v ready %v, want %v %v", rep.Status, rep.Ready, tt.overall, tt.ready)
			}
		})
	}
}

func TestDynamicStateChange(t *testing.T) {
	r := newReg()
	r.MarkStarted()
	var st atomic.Int64
	_ = r.Register("db", func(context.Context) (Status, string) { return Status(st.Load()), "" })
	ctx := context.Background()
	if !r.Ready(ctx) {
		t.Fatal("healthy: not ready")
	}
	st.Store(int64(Unhealthy))
	if r.Ready(ctx) {
		t.Fatal("unhealthy: ready")
	}
	st.Store(int64(Degraded))
	if !r.Ready(ctx) {
		t.Fatal("degraded: not ready")
	}
}

func TestDrainingFailsReadinessWithoutRunningChecks(t *testing.T) {
	r := newReg()
	r.MarkStarted()
	var calls atomic.Int64
	_ = r.Register("c", func(context.Context) (Status, string) { calls.Add(1); return Healthy, "" })
	r.SetDraining()
	if r.Ready(context.Background()) {
		t.Fatal("draining registry is ready")
	}
	if calls.Load() != 0 {
		t.Fatal("Ready ran checks while draining")
	}
	if !r.Live() || !r.Draining() {
		t.Fatal("draining must not affect liveness")
	}
	rep := r.Report(context.Background())
	if rep.Ready || !rep.Draining || rep.Status != Healthy || calls.Load() != 1 {
		t.Fatalf("report while draining = %+v (calls %d)", rep, calls.Load())
	}
}

func TestTimeoutIsUnhealthy(t *testing.T) {
	r := New(Config{Timeout: 20 * time.Millisecond, Logger: quiet()})
	r.MarkStarted()
	var hadDeadline atomic.Bool
	_ = r.Register("slow", func(ctx context.Context) (Status, string) {
		_, ok := ctx.Deadline()
		hadDeadline.Store(ok)
		<-ctx.Done()
		return Healthy, "too late"
	})
	_ = r.Register("fast", fixed(Healthy, "ok"))
	rep := r.Report(context.Background())
	if rep.Ready || rep.Status != Unhealthy {
		t.Fatalf("report = %+v", rep)
	}
	slow := rep.Checks[0]
	if slow.Name != "slow" || slow.Status != Unhealthy || !slow.TimedOut || !strings.Contains(slow.Message, "20ms") {
		t.Fatalf("slow result = %+v", slow)
	}
	if rep.Checks[1].Status != Healthy || rep.Checks[1].Message != "ok" {
		t.Fatalf("fast result = %+v", rep.Checks[1])
	}
	if !hadDeadline.Load() {
		t.Fatal("check context had no deadline")
	}
}

func TestPerCheckTimeout(t *testing.T) {
	r := New(Config{Timeout: time.Hour, Logger: quiet()})
	r.MarkStarted()
	_ = r.Register("slow", func(ctx context.Context) (Status, string) {
		<-ctx.Done()
		return Healthy, ""
	}, WithTimeout(10*time.Millisecond))
	if r.Ready(context.Background()) {
		t.Fatal("check past its own timeout counted as ready")
	}
}

// TestChecksRunConcurrently: every check waits until all have started. Run
// one after another, the first would wait forever (until its timeout) and
// report unhealthy.
func TestChecksRunConcurrently(t *testing.T) {
	const n = 8
	r := New(Config{Timeout: time.Minute, Logger: quiet()})
	r.MarkStarted()
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	for i := range n {
		_ = r.Register(string(rune('a'+i)), func(ctx context.Context) (Status, string) {
			arrived.Done()
			select {
			case <-all:
				return Healthy, ""
			case <-ctx.Done():
				return Unhealthy, "not concurrent"
			}
		})
	}
	rep := r.Report(context.Background())
	if !rep.Ready {
		t.Fatalf("checks did not run concurrently: %+v", rep)
	}
	for i, res := range rep.Checks {
		if res.Name != string(rune('a'+i)) {
			t.Fatalf("results not in registration order: %+v", rep.Checks)
		}
	}
}

func TestPanicIsUnhealthyAndRecovered(t *testing.T) {
	var logs bytes.Buffer
	r := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	r.MarkStarted()
	_ = r.Register("boom", func(context.Context) (Status, string) { panic("kaboom") })
	_ = r.Register("err", func(context.Context) (Status, string) { panic(errors.New("nil map")) })
	_ = r.Register("ok", fixed(Healthy, ""))
	for range 3 { // a panic every time must not wedge the check
		rep := r.Report(context.Background())
		if rep.Ready || rep.Checks[0].Status != Unhealthy || rep.Checks[0].Message != "panic: kaboom" ||
			rep.Checks[1].Message != "panic: nil map" || rep.Checks[2].Status != Healthy {
			t.Fatalf("report = %+v", rep)
		}
	}
	if !strings.Contains(logs.String(), "health check panicked") || !strings.Contains(logs.String(), "check=boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
	// Three probes, two panicking checks: each panic streak is logged once.
	if n := strings.Count(logs.String(), "health check panicked"); n != 2 {
		t.Fatalf("panic logged %d times, want once per check:\n%s", n, logs.String())
	}
}

func TestInvalidStatusIsUnhealthy(t *testing.T) {
	r := newReg()
	r.MarkStarted()
	_ = r.Register("weird", fixed(Status(9), "eh"))
	rep := r.Report(context.Background())
	if rep.Ready || rep.Checks[0].Status != Unhealthy || !strings.Contains(rep.Checks[0].Message, "invalid status 9") {
		t.Fatalf("report = %+v", rep)
	}
}

// TestHungCheckIsNotRestarted: a check that ignores its context keeps one
// goroutine until it returns; probes in the meantime report it unhealthy
// without starting it again.
func TestHungCheckIsNotRestarted(t *testing.T) {
	r := New(Config{Timeout: 5 * time.Millisecond, Logger: quiet()})
	r.MarkStarted()
	release := make(chan struct{})
	var calls atomic.Int64
	_ = r.Register("hung", func(context.Context) (Status, string) {
		if calls.Add(1) == 1 {
			<-release // ignores ctx
		}
		return Healthy, ""
	})
	for range 5 {
		rep := r.Report(context.Background())
		if rep.Ready || !rep.Checks[0].TimedOut {
			t.Fatalf("report = %+v", rep)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("hung check started %d times, want 1", n)
	}
	close(release)
	// Once the hung run returns, the next probe runs the check afresh.
	deadline := time.Now().Add(10 * time.Second)
	for !r.Ready(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatal("check never recovered after its hung run returned")
		}
		time.Sleep(time.Millisecond)
	}
	if calls.Load() < 2 {
		t.Fatal("check was not run again")
	}
}

func TestConcurrentProbesShareARun(t *testing.T) {
	r := New(Config{Timeout: time.Minute, Logger: quiet()})
	r.MarkStarted()
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int64
	_ = r.Register("shared", func(context.Context) (Status, string) {
		if calls.Add(1) == 1 {
			close(entered)
		}
		<-release
		return Degraded, "one replica down"
	})
	var wg sync.WaitGroup
	results := make(chan Report, 4)
	wg.Add(1)
	go func() { defer wg.Done(); results <- r.Report(context.Background()) }()
	<-entered
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); results <- r.Report(context.Background()) }()
	}
	// Wait until the three joiners wait on the same run, then let it finish.
	c := r.snapshot()[0]
	c.mu.Lock()
	rn := c.inflight
	c.mu.Unlock()
	for rn.joined.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(results)
	for rep := range results {
		if rep.Checks[0].Status != Degraded || rep.Checks[0].Message != "one replica down" || !rep.Ready {
			t.Fatalf("report = %+v", rep)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("check ran %d times for concurrent probes, want 1", n)
	}
}

func TestCallerCancellation(t *testing.T) {
	r := New(Config{Timeout: time.Minute, Logger: quiet()})
	r.MarkStarted()
	_ = r.Register("waits", func(ctx context.Context) (Status, string) {
		<-ctx.Done()
		return Healthy, ""
	}, WithTimeout(50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := r.Report(ctx)
	if rep.Ready || rep.Checks[0].Status != Unhealthy || !strings.Contains(rep.Checks[0].Message, "canceled") {
		t.Fatalf("report = %+v", rep)
	}
}

func TestRegisterValidationAndReplacement(t *testing.T) {
	r := newReg()
	if err := r.Register("", fixed(Healthy, "")); !errors.Is(err, ErrInvalidCheck) {
		t.Fatalf("empty name: %v", err)
	}
	if err := r.Register("x", nil); !errors.Is(err, ErrInvalidCheck) || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("nil fn: %v", err)
	}
	_ = r.Register("a", fixed(Unhealthy, "old"))
	_ = r.Register("b", fixed(Healthy, ""))
	_ = r.Register("a", fixed(Healthy, "new"))
	if got := r.Names(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("names = %v", got)
	}
	r.MarkStarted()
	rep := r.Report(context.Background())
	if !rep.Ready || rep.Checks[0].Message != "new" {
		t.Fatalf("replacement not used: %+v", rep)
	}
	if !r.Unregister("a") || r.Unregister("a") {
		t.Fatal("Unregister result wrong")
	}
	if got := r.Names(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("names after unregister = %v", got)
	}
}

func TestCheckMayRegisterFromInside(t *testing.T) {
	r := newReg()
	r.MarkStarted()
	_ = r.Register("self", func(context.Context) (Status, string) {
		_ = r.Register("added", fixed(Healthy, ""))
		r.Unregister("gone")
		return Healthy, ""
	})
	_ = r.Register("gone", fixed(Healthy, ""))
	if !r.Ready(context.Background()) {
		t.Fatal("not ready")
	}
	if got := strings.Join(r.Names(), ","); got != "self,added" {
		t.Fatalf("names = %s", got)
	}
}

func TestStatusLoggedOncePerTransition(t *testing.T) {
	var logs bytes.Buffer
	r := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var st atomic.Int64
	_ = r.Register("db", func(context.Context) (Status, string) { return Status(st.Load()), "msg" })
	ctx := context.Background()
	r.Report(ctx) // healthy first: nothing to say
	if logs.Len() != 0 {
		t.Fatalf("healthy first result logged: %s", logs.String())
	}
	st.Store(int64(Unhealthy))
	for range 3 {
		r.Report(ctx)
	}
	st.Store(int64(Healthy))
	r.Report(ctx)
	r.Report(ctx)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "from=healthy to=unhealthy") ||
		!strings.Contains(lines[1], "level=INFO") || !strings.Contains(lines[1], "from=unhealthy to=healthy") {
		t.Fatalf("want exactly two transition lines, got:\n%s", logs.String())
	}
}

func TestReportJSON(t *testing.T) {
	r := newReg()
	r.MarkStarted()
	_ = r.Register("kafka", fixed(Degraded, "1 of 3 brokers down"))
	_ = r.Register("db", fixed(Healthy, ""))
	b, err := json.Marshal(r.Report(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Status   string `json:"status"`
		Ready    bool   `json:"ready"`
		Started  bool   `json:"started"`
		Draining bool   `json:"draining"`
		Checks   []struct {
			Name     string   `json:"name"`
			Status   string   `json:"status"`
			Message  *string  `json:"message"`
			Duration *float64 `json:"duration_seconds"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "degraded" || !got.Ready || !got.Started || got.Draining || len(got.Checks) != 2 ||
		got.Checks[0].Name != "kafka" || got.Checks[0].Status != "degraded" || got.Checks[0].Message == nil ||
		*got.Checks[0].Message != "1 of 3 brokers down" || got.Checks[0].Duration == nil || *got.Checks[0].Duration < 0 ||
		got.Checks[1].Message != nil {
		t.Fatalf("json = %s", b)
	}
}

func TestStatusText(t *testing.T) {
	for _, s := range []Status{Healthy, Degraded, Unhealthy} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Status
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("round trip %v: %v %v", s, back, err)
		}
	}
	if _, err := Status(7).MarshalText(); err == nil {
		t.Fatal("invalid status marshalled")
	}
	var s Status
	if err := s.UnmarshalText([]byte("ok")); err == nil {
		t.Fatal("unknown status text accepted")
	}
	if Status(7).String() != "invalid(7)" {
		t.Fatal(Status(7).String())
	}
}

func TestDefault(t *testing.T) {
	orig := Default()
	if Default() != orig || OrDefault(nil) != orig {
		t.Fatal("Default not stable")
	}
	mine := newReg()
	SetDefault(mine)
	defer SetDefault(orig)
	if Default() != mine || OrDefault(nil) != mine {
		t.Fatal("SetDefault not applied")
	}
	SetDefault(nil)
	if Default() != mine {
		t.Fatal("SetDefault(nil) replaced the default")
	}
	other := newReg()
	if OrDefault(other) != other {
		t.Fatal("OrDefault ignored its argument")
	}
}
