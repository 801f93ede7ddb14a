package keel_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
	"github.com/keel-go/keel/transport/inmem"
)

// eventually waits until cond holds, checking it every millisecond, or
// fails the test when ctx ends first. It waits for a state another
// goroutine reaches (a gate evaluated by the governor's loop); it asserts
// nothing about time.
func eventually(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitApp receives from ch, or fails the test when Run returned first
// (the app failed) or ctx ended.
func waitApp[T any](t testing.TB, ctx context.Context, ch <-chan T, done <-chan error, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case err := <-done:
		t.Fatalf("Run returned before %s: %v", what, err)
	case <-ctx.Done():
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// level is a soft pressure source the test sets.
type level struct{ bits atomic.Uint64 }

func (l *level) set(v float64) { l.bits.Store(math.Float64bits(v)) }
func (l *level) get() float64  { return math.Float64frombits(l.bits.Load()) }

// TestSelfRegulationOnByDefault: without a self_regulation section the
// runtime builds a governor, gives its byte budget to the engine, brakes
// an inmem receiver with the governor's gate (Recv waits while the gate
// is held and receives once it opens), and runs the gate loop in the
// background.
func TestSelfRegulationOnByDefault(t *testing.T) {
	ctx := testCtx(t)
	var pressure level
	held := make(chan struct{})
	released := make(chan struct{})
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	var gov *governor.Governor
	var gr *gated.Receiver
	var q *inmem.Transport
	app := keel.App{
		Name:     "keeltest",
		Defaults: map[string]any{"transport.type": "inmem", "out.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			gov = rt.Governor()
			if gov == nil {
				return errors.New("no governor with self-regulation on by default")
			}
			gov.Pressure().AddSoft(governor.FuncSource("test", pressure.get), 1)
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			var ok bool
			if gr, ok = in.(*gated.Receiver); !ok {
				return errors.New("an inmem receiver is not braked by the governor's gate")
			}
			q = queue(in)
			out, err := rt.Sender(ctx, "out")
			if err != nil {
				return err
			}
			if err := q.InjectPayloads(ctx, []byte(`{"a":1}`)); err != nil {
				return err
			}
			pressure.set(1)
			go func() {
				b, err := in.Recv(ctx, transport.Limits{})
				got <- result{len(b.Records), err}
			}()
			close(held)
			<-released
			if r := <-got; r.err != nil || r.n != 1 {
				return errors.New("the braked receive did not return the record once the gate opened")
			}
			if err := q.InjectPayloads(ctx, []byte(`{"a":2}`), []byte(`{"a":3}`)); err != nil {
				return err
			}
			q.CloseInput()
			// The engine's governed loop runs on the governor's budget.
			return rt.Engine().RunGoverned(ctx, in, passThrough, rt.Engine().SinkTo(out))
		},
	}
	done := make(chan error, 1)
	go func() {
		done <- keel.Run(ctx, app, isolated(t, &syncBuffer{}, map[string]any{"self_regulation.interval": "2ms"})...)
	}()
	waitApp(t, ctx, held, done, "the app")
	// The receive waits on the held gate: it found the gate held and
	// returned nothing.
	eventually(t, ctx, "the receive to wait on the held gate", func() bool { return gr.Waits() > 0 && gr.Gate().Held() })
	select {
	case r := <-got:
		t.Fatalf("a receive returned %d records while the gate was held (%v)", r.n, r.err)
	default:
	}
	pressure.set(0)
	close(released)
	if err := wait(t, ctx, done, "Run"); err != nil {
		t.Fatal(err)
	}
	if q.Committed() != 3 {
		t.Fatalf("committed %d, want 3", q.Committed())
	}
	b, ok := gov.Budget().(*governor.Budget)
	if !ok || b.Stats().Observations == 0 {
		t.Fatal("RunGoverned did not run on the governor's byte budget")
	}
	st := gov.Stats()
	if len(st.Gates) == 0 || st.Gates[0].Pauses == 0 || st.Gates[0].Resumes == 0 {
		t.Fatalf("the governor's gate did not pause and resume: %+v", st.Gates)
	}
}

// TestSelfRegulationDisabled: self_regulation.enabled false builds no
// governor; receivers are returned unwrapped and RunGoverned runs as Run.
func TestSelfRegulationDisabled(t *testing.T) {
	var q *inmem.Transport
	err := runWith(t, map[string]any{"self_regulation.enabled": false, "transport.type": "inmem", "out.type": "inmem"},
		func(ctx context.Context, rt *keel.Runtime) error {
			if rt.Governor() != nil {
				return errors.New("a governor was built with self_regulation.enabled false")
			}
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			var ok bool
			if q, ok = in.(*inmem.Transport); !ok {
				return errors.New("the receiver was wrapped with self-regulation off")
			}
			out, err := rt.Sender(ctx, "out")
			if err != nil {
				return err
			}
			if err := feedRecords(ctx, q, 2); err != nil {
				return err
			}
			return rt.Engine().RunGoverned(ctx, in, passThrough, rt.Engine().SinkTo(out))
		})
	if err != nil {
		t.Fatal(err)
	}
	if q.Committed() != 2 {
		t.Fatalf("committed %d", q.Committed())
	}
	// A bad section is a start-up error naming the key.
	err = runWith(t, map[string]any{"self_regulation.resume_at": 0.9}, func(context.Context, *keel.Runtime) error { return nil })
	var se *keel.SectionError
	if !errors.As(err, &se) || se.Key != "self_regulation" || !strings.Contains(err.Error(), "self_regulation.resume_at") {
		t.Fatalf("bad self_regulation: %v", err)
	}
}

const (
	envSecret  = "env-secret-7d1e-never-print"
	fileSecret = "file-secret-4c2a-never-print"
	busSecret  = "bus-secret-91f0-never-print"
)

// dbSection is an app section with a secret.
type dbSection struct {
	Host     string        `koanf:"host"`
	Password secret.String `koanf:"password"`
}

// TestSecretReferencesResolve: env: and file: references in an app
// section, in a transport sub-section and in the secrets section itself
// resolve before the app runs; the values never reach the logs, /config
// or config-check.
func TestSecretReferencesResolve(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "db-password")
	if err := os.WriteFile(pwFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REFTEST_TOKEN", envSecret)
	t.Setenv("REFTEST_BUS", busSecret)
	// "env:REFTEST_K" is shorter than a valid encryption key: only its
	// secret makes the secrets section valid.
	t.Setenv("REFTEST_K", "cache-key-0123456789abcdef-never-print")
	path := writeFile(t, "refs.yaml", `
work:
  workers: 2
  api_token: env:REFTEST_TOKEN
database:
  host: db.internal
  password: file:`+pwFile+`
input:
  type: bus
  bus:
    password: env:REFTEST_BUS
secrets:
  cache:
    encryption_key: env:REFTEST_K
    directory: `+filepath.Join(dir, "cache")+`
logging:
  level: debug
  format: json
admin:
  enable_config: true
`)
	work := &appSection{Workers: 1}
	db := &dbSection{}
	var busPassword string
	bus := keel.TransportBuilder{Receiver: func(_ context.Context, tc keel.TransportContext) (transport.Receiver, error) {
		var s struct {
			Password secret.String `koanf:"password"`
		}
		if err := tc.Decode(&s); err != nil {
			return nil, err
		}
		busPassword = s.Password.Expose()
		return inmem.New(inmem.Config{}), nil
	}}
	var configBody string
	app := keel.App{
		Name:     "keeltest",
		Sections: map[string]any{"work": work, "database": db},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			if rt.Secrets() == nil || !slices.Contains(rt.Health().Names(), keel.HealthCheckSecrets) {
				return errors.New("no secrets manager or no secrets health check")
			}
			if _, err := rt.Receiver(ctx, "input"); err != nil {
				return err
			}
			rt.Logger().Info("sections decoded", "work", work.APIToken, "db_password", db.Password, "database", db)
			var err error
			_, configBody, err = fetch(rt.Admin().Addr(), "/config")
			return err
		},
	}
	logs := &syncBuffer{}
	opts := append(isolated(t, logs, nil), keel.WithConfigFile(path), keel.WithTransport("bus", bus))
	if err := keel.Run(testCtx(t), app, opts...); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if work.APIToken.Expose() != envSecret || db.Password.Expose() != fileSecret || busPassword != busSecret {
		t.Fatal("a reference did not resolve to its secret")
	}
	if db.Host != "db.internal" {
		t.Fatalf("host %q", db.Host)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "cache")); err != nil || len(entries) == 0 {
		t.Fatalf("the disk cache keyed by a resolved reference was not used (%v)", err)
	}
	contains(t, configBody, `"password"`, "/config")
	stdout, stderr, err := runCommand(t, app, nil, "config-check", "-c", path)
	if err != nil {
		t.Fatalf("config-check: %v\n%s", err, stderr)
	}
	for _, text := range []string{logs.String(), configBody, stdout, stderr} {
		for _, v := range []string{envSecret, fileSecret, busSecret, "cache-key-0123456789abcdef"} {
			if strings.Contains(text, v) {
				t.Fatalf("a resolved secret was printed:\n%s", text)
			}
		}
	}
}

// TestSecretReferenceUnresolvable: a reference that does not resolve is
// a start-up error naming the key and the reference; the app never runs.
func TestSecretReferenceUnresolvable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-secret")
	for name, c := range map[string]struct {
		overrides map[string]any
		key, ref  string
	}{
		"env":     {map[string]any{"work.api_token": "env:REFTEST_UNSET_42"}, "work.api_token", "env:REFTEST_UNSET_42"},
		"file":    {map[string]any{"work.api_token": "file:" + missing}, "work.api_token", "file:" + missing},
		"secrets": {map[string]any{"secrets.cache.encryption_key": "env:REFTEST_UNSET_43"}, "secrets.cache.encryption_key", "env:REFTEST_UNSET_43"},
	} {
		t.Run(name, func(t *testing.T) {
			var ran atomic.Bool
			app := keel.App{
				Name:     "keeltest",
				Sections: map[string]any{"work": &appSection{Workers: 1}},
				Run:      func(context.Context, *keel.Runtime) error { ran.Store(true); return nil },
			}
			err := keel.Run(testCtx(t), app, isolated(t, &syncBuffer{}, c.overrides)...)
			var se *keel.SectionError
			if !errors.As(err, &se) {
				t.Fatalf("Run: %v, want a *SectionError", err)
			}
			contains(t, err.Error(), c.key, "the error")
			contains(t, err.Error(), c.ref, "the error")
			if ran.Load() {
				t.Fatal("the app ran with an unresolved secret")
			}
		})
	}
}

// otlpReceiver is an in-process OTLP/HTTP trace collector.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans = append(o.spans, s.GetName())
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.spans)
}

// TestTelemetryFlushedLast: with an endpoint, spans are exported to the
// collector by the flush at shutdown, which runs after the app, its
// shutdown hooks, the transports and its final hooks, so their spans are
// in it too.
func TestTelemetryFlushedLast(t *testing.T) {
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(v, "")
	}
	rec := &otlpReceiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	span := func(rt *keel.Runtime, name string) {
		_, s := rt.Telemetry().Tracer().Start(context.Background(), name)
		s.End()
	}
	var enabled bool
	app := keel.App{
		Name:     "keeltest",
		Defaults: map[string]any{"transport.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			enabled = rt.Telemetry().TracesEnabled()
			in, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			span(rt, "app")
			if err := rt.OnShutdown("hook", func(context.Context) error { span(rt, "shutdown-hook"); return nil }); err != nil {
				return err
			}
			return rt.OnShutdownLast("final", func(ctx context.Context) error {
				if in.Health(ctx) == nil {
					return errors.New("the receiver is still open in the final hooks")
				}
				span(rt, "final-hook")
				return nil
			})
		},
	}
	logs := &syncBuffer{}
	// A final hook given as an option, through the global tracer Setup
	// installed: it runs before the flush too.
	optHook := keel.WithFinalShutdownHook("option", func(ctx context.Context) error {
		_, s := otel.Tracer("keeltest").Start(ctx, "option-final-hook")
		s.End()
		return nil
	})
	err := keel.Run(testCtx(t), app, append(isolated(t, logs, map[string]any{
		"telemetry.endpoint": srv.URL, "telemetry.protocol": "http/protobuf",
	}), optHook)...)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	if !enabled {
		t.Fatal("traces not enabled with an endpoint")
	}
	got := rec.names()
	for _, want := range []string{"app", "shutdown-hook", "final-hook", "option-final-hook"} {
		if !slices.Contains(got, want) {
			t.Fatalf("span %q not exported by the shutdown flush (got %v)", want, got)
		}
	}
}

// TestTelemetryOffWithoutEndpoint: without an endpoint the pipeline
// exports nothing and leaves no goroutine behind.
func TestTelemetryOffWithoutEndpoint(t *testing.T) {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_METRICS_EXPORTER"} {
		t.Setenv(v, "")
	}
	before := goleak.IgnoreCurrent()
	var traces, metricsOn bool
	err := runWith(t, nil, func(_ context.Context, rt *keel.Runtime) error {
		traces, metricsOn = rt.Telemetry().TracesEnabled(), rt.Telemetry().MetricsEnabled()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if traces || metricsOn {
		t.Fatalf("telemetry exports without an endpoint: traces %v, metrics %v", traces, metricsOn)
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t, before)
	// A bad section is a start-up error naming the key.
	err = runWith(t, map[string]any{"telemetry.protocol": "carrier_pigeon"}, func(context.Context, *keel.Runtime) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "telemetry.protocol") {
		t.Fatalf("bad telemetry.protocol: %v", err)
	}
}
