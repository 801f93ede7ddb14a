package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// startedDemo is a demo running in-process.
type startedDemo struct {
	out, log *syncBuffer
	signals  chan os.Signal
	preStop  chan time.Time
	addr     string
	exit     chan int
	dataDir  string
}

func startDemo(t *testing.T, extra ...string) *startedDemo {
	t.Helper()
	d := &startedDemo{
		out: &syncBuffer{}, log: &syncBuffer{},
		signals: make(chan os.Signal, 2),
		preStop: make(chan time.Time),
		exit:    make(chan int, 1),
		dataDir: t.TempDir(),
	}
	addrs := make(chan string, 1)
	args := append([]string{"--data-dir", d.dataDir, "--metrics-addr", "127.0.0.1:0", "--rate", "1000",
		"--progress", "200ms", "--log-level", "warn"}, extra...)
	hooks := runHooks{
		signals: d.signals,
		started: func(addr string) { addrs <- addr },
		preStop: func(time.Duration) <-chan time.Time { return d.preStop },
	}
	go func() { d.exit <- run(context.Background(), args, d.out, d.log, hooks) }()
	select {
	case d.addr = <-addrs:
	case code := <-d.exit:
		t.Fatalf("the demo exited with %d before it started\nstdout:\n%s\nlog:\n%s", code, d.out, d.log)
	case <-time.After(20 * time.Second):
		t.Fatalf("the demo did not start\nlog:\n%s", d.log)
	}
	return d
}

// waitFor polls cond until it holds or the test's bound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var summaryRE = regexp.MustCompile(`summary: generated=(\d+) delivered=(\d+) dead_lettered=(\d+) spooled=(\d+) .* (balanced|NOT balanced.*)\n`)

type counts struct{ generated, delivered, dead, spooled int64 }

func parseSummary(t *testing.T, out string) counts {
	t.Helper()
	m := summaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in the output:\n%s", out)
	}
	n := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return counts{n(m[1]), n(m[2]), n(m[3]), n(m[4])}
}

// outPattern is the demo's output path template under dataDir.
func outPattern(dataDir string) string {
	return filepath.Join(dataDir, "out", routePlaceholder+".ndjson")
}

// routeLines counts the lines of each route file under dataDir, by route.
func routeLines(t *testing.T, dataDir string) map[string]int64 {
	t.Helper()
	n, err := countRoutes(outPattern(dataDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// delivered counts the lines of every route file under dataDir.
func delivered(t *testing.T, dataDir string) int64 {
	t.Helper()
	var sum int64
	for _, n := range routeLines(t, dataDir) {
		sum += n
	}
	return sum
}

func (d *startedDemo) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-d.exit:
		return code
	case <-time.After(25 * time.Second):
		t.Fatalf("the demo did not exit\nlog:\n%s", d.log)
		return -1
	}
}

// checkServing waits until the demo at the admin address addr delivered at
// least 200 records to the route files under dataDir (so that at least one
// malformed event, the 50th of every 100, was generated), then checks
// /metrics, the startup probe, readiness and liveness.
func checkServing(t *testing.T, addr, dataDir string) {
	t.Helper()
	base := "http://" + addr
	waitFor(t, "delivered records", func() bool { return delivered(t, dataDir) >= 200 })
	for _, probe := range []string{"/startupz", "/healthz/startup"} {
		if c, body := get(t, base+probe); c != http.StatusOK {
			t.Fatalf("%s once started: status %d, want 200: %s", probe, c, body)
		}
	}
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d:\n%.500s", code, body)
	}
	if n := metricValue(t, body, "keel_engine_records_received_total"); n <= 0 {
		t.Fatalf("/metrics: keel_engine_records_received_total is %v after records were delivered", n)
	}
	waitFor(t, "/readyz 200", func() bool { c, _ := get(t, base+"/readyz"); return c == http.StatusOK })
	if c, body := get(t, base+"/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz: status %d, want 200: %s", c, body)
	}
}

// metricValue parses the Prometheus text exposition of /metrics and returns
// the value of the metric name, summed over its series.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%.500s", err, text)
	}
	return keeltest.MetricValue(t, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return slices.Collect(maps.Values(mfs)), nil
	}), name, nil)
}

// waitDraining waits until the demo at addr answers /readyz with 503
// because it is draining; liveness must still hold meanwhile.
func waitDraining(t *testing.T, addr string) {
	t.Helper()
	base := "http://" + addr
	waitFor(t, "/readyz 503 (draining) after SIGTERM", func() bool {
		c, body := get(t, base+"/readyz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, `"reason":"draining"`)
	})
	if c, body := get(t, base+"/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz while draining: status %d, want 200: %s", c, body)
	}
}

// checkSummary checks the output of a demo run that delivered records: a
// progress line, and a summary that balances, has dead letters and whose
// delivered count is the number of lines in the route files under
// dataDir; the events went to more than one route file, each event to the
// file of its route.
func checkSummary(t *testing.T, out, dataDir string) counts {
	t.Helper()
	if !strings.Contains(out, "progress: in ") {
		t.Errorf("no progress line in the output:\n%s", out)
	}
	c := parseSummary(t, out)
	if c.generated == 0 || c.delivered == 0 {
		t.Fatalf("nothing generated or delivered: %+v\n%s", c, out)
	}
	if c.dead == 0 {
		t.Errorf("no dead letters among %d generated events (every 100th is malformed, from the 50th): %+v", c.generated, c)
	}
	if c.generated != c.delivered+c.dead+c.spooled {
		t.Fatalf("summary does not balance: %+v\n%s", c, out)
	}
	routes := routeLines(t, dataDir)
	var sum int64
	var used []string
	for route, n := range routes {
		sum += n
		if n > 0 {
			used = append(used, route)
		}
	}
	if sum != c.delivered {
		t.Fatalf("the route files hold %d lines (%v), the summary says %d delivered", sum, routes, c.delivered)
	}
	if len(used) < 2 {
		t.Fatalf("events delivered to %d route file(s) %v, want several (orders, billing, analytics, misc)", len(used), routes)
	}
	for _, route := range used {
		checkRouteFile(t, strings.ReplaceAll(outPattern(dataDir), routePlaceholder, route), route)
		if !regexp.MustCompile(`summary: delivered by route: .*\b` + route + `=` + strconv.FormatInt(routes[route], 10) + `\b`).MatchString(out) {
			t.Errorf("the summary does not report %d delivered to route %s:\n%s", routes[route], route, out)
		}
	}
	return c
}

// checkRouteFile checks that every line of the route file at path is an
// event enriched with that route.
func checkRouteFile(t *testing.T, path, route string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(`"route":"` + route + `"`)
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if !bytes.Contains(line, want) {
			t.Fatalf("line %d of %s is not an event of route %s: %s", i+1, path, route, line)
		}
	}
}

var progressLagRE = regexp.MustCompile(`progress: .* lag (\d+) .* consumed (\d+) generated (\d+)`)

func TestDemoProcessesServesProbesAndBalancesOnSIGTERM(t *testing.T) {
	d := startDemo(t)
	checkServing(t, d.addr, d.dataDir)
	if !strings.Contains(d.out.String(), "(in-process cluster)") {
		t.Errorf("without --brokers the demo did not start its in-process cluster:\n%s", d.out)
	}
	// The progress line reports the consumer group's lag once the Kafka
	// consumer read it, beside this run's consumed and generated events.
	waitFor(t, "a progress line with the consumer lag", func() bool { return progressLagRE.MatchString(d.out.String()) })

	// SIGTERM: readiness turns 503 first, while the admin server still
	// answers (the pre-stop delay is held open by the test).
	d.signals <- syscall.SIGTERM
	waitDraining(t, d.addr)
	close(d.preStop)

	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nlog:\n%s", code, d.out, d.log)
	}
	checkSummary(t, d.out.String(), d.dataDir)
}

// TestDemoWithBrokersUsesThem: with --brokers the demo starts no cluster
// of its own; the generator and the service use the brokers given, and
// the summary balances.
func TestDemoWithBrokersUsesThem(t *testing.T) {
	const topic = "demo-events"
	cluster := kafkatest.Start(t, kfake.SeedTopics(2, topic))
	addrs := strings.Join(cluster.Addrs(), ",")
	d := startDemo(t, "--brokers", addrs, "--topic", topic)
	checkServing(t, d.addr, d.dataDir)
	d.signals <- syscall.SIGTERM
	close(d.preStop)
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nlog:\n%s", code, d.out, d.log)
	}
	out := d.out.String()
	if !strings.Contains(out, "keel-demo: brokers "+addrs+" (--brokers), topic "+topic) {
		t.Fatalf("the demo did not use --brokers %s:\n%s", addrs, out)
	}
	if strings.Contains(out, "in-process cluster") {
		t.Fatalf("the demo started its in-process cluster despite --brokers:\n%s", out)
	}
	c := checkSummary(t, out, d.dataDir)
	// Every generated event is in the topic of the cluster given.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if got := len(cluster.ReadAll(ctx, t, topic, int(c.generated))); int64(got) < c.generated {
		t.Fatalf("the cluster given holds %d events, %d were generated", got, c.generated)
	}
}

// TestDemoReusedTopicBalancesForThisRun: the topic already holds events of
// an earlier run; the demo consumes and delivers them too, but its summary
// counts only this run's events, balances, and reports the others apart.
func TestDemoReusedTopicBalancesForThisRun(t *testing.T) {
	const (
		topic   = "reused-events"
		earlier = 300
		prevRun = "fedcba9876543210"
	)
	cluster := kafkatest.Start(t, kfake.SeedTopics(2, topic))
	recs := make([]*kgo.Record, earlier)
	var earlierValid int64
	for i := range recs {
		recs[i] = &kgo.Record{Value: event(prevRun, int64(i+1))}
		if _, _, reason := enrich(recs[i].Value, "now"); reason == "" {
			earlierValid++
		}
	}
	cluster.Produce(t, topic, recs...)

	d := startDemo(t, "--brokers", strings.Join(cluster.Addrs(), ","), "--topic", topic)
	waitFor(t, "this run's records delivered", func() bool { return delivered(t, d.dataDir) >= earlierValid+200 })
	d.signals <- syscall.SIGTERM
	close(d.preStop)
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nlog:\n%s", code, d.out, d.log)
	}
	out := d.out.String()
	c := parseSummary(t, out)
	if c.generated == 0 || c.generated != c.delivered+c.dead+c.spooled {
		t.Fatalf("this run's summary does not balance: %+v\n%s", c, out)
	}
	if want := fmt.Sprintf("other runs' events: %d consumed from topic %s", earlier, topic); !strings.Contains(out, want) {
		t.Fatalf("the summary does not report %q:\n%s", want, out)
	}
	// The route files hold this run's deliveries and the earlier run's
	// valid events.
	if got := delivered(t, d.dataDir); got != c.delivered+earlierValid {
		t.Fatalf("the route files hold %d lines, want this run's %d + the earlier run's %d", got, c.delivered, earlierValid)
	}
}

func TestDemoFailSinkSpillsToSpoolAndBalances(t *testing.T) {
	d := startDemo(t, "--fail-sink")
	waitFor(t, "spooled records", func() bool {
		m := regexp.MustCompile(`spool_depth (\d+)`).FindAllStringSubmatch(d.out.String(), -1)
		if len(m) == 0 {
			return false
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n >= 200
	})
	d.signals <- syscall.SIGTERM
	close(d.preStop)
	if code := d.waitExit(t); code != 0 {
		t.Fatalf("exit status %d, want 0\nstdout:\n%s\nlog:\n%s", code, d.out, d.log)
	}
	c := parseSummary(t, d.out.String())
	if c.delivered != 0 || c.spooled == 0 {
		t.Fatalf("with the sink failing, want nothing delivered and records spooled: %+v", c)
	}
	if c.generated != c.delivered+c.dead+c.spooled {
		t.Fatalf("summary does not balance: %+v\n%s", c, d.out)
	}

	// A second run on the same --data-dir finds the first run's records in
	// the spool and delivers them, but counts only its own events.
	again := startDemo(t, "--data-dir", d.dataDir)
	waitFor(t, "the spool replayed and new records delivered", func() bool { return delivered(t, d.dataDir) >= c.spooled+200 })
	again.signals <- syscall.SIGTERM
	close(again.preStop)
	if code := again.waitExit(t); code != 0 {
		t.Fatalf("second run: exit status %d, want 0\nstdout:\n%s\nlog:\n%s", code, again.out, again.log)
	}
	out := again.out.String()
	c2 := parseSummary(t, out)
	if c2.generated == 0 || c2.generated != c2.delivered+c2.dead+c2.spooled {
		t.Fatalf("second run: summary does not balance: %+v\n%s", c2, out)
	}
	if want := fmt.Sprintf("the spool held %d records of earlier runs at start", c.spooled); !strings.Contains(out, want) {
		t.Fatalf("second run: the summary does not report %q:\n%s", want, out)
	}
	if got := delivered(t, d.dataDir); got <= c2.delivered {
		t.Fatalf("the route files hold %d lines, no more than the second run's %d: the first run's spooled records were not delivered", got, c2.delivered)
	}
}

func TestDemoRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the message on stderr
	}{
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--progress", "0s"}, "--progress"},
		{[]string{"--duration", "-1s"}, "--duration"},
		{[]string{"--partitions", "0"}, "--partitions"},
		{[]string{"config-check", "--rate", "-5"}, "--rate"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--metrics-addr", "9090"}, "--metrics-addr"},
		{[]string{"stray"}, "stray"},
		{[]string{"--no-such-flag"}, "--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errOut, runHooks{}); code != keel.ExitError {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, keel.ExitError, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: stderr %q does not name %s", tc.args, errOut.String(), tc.want)
		}
		if strings.Contains(out.String(), "keel-demo: brokers") {
			t.Errorf("%v: the demo started despite the bad command line:\n%s", tc.args, out.String())
		}
	}
}

// TestDemoStandardCommands: the demo has the commands of every keel
// service; none of them starts the pipeline.
func TestDemoStandardCommands(t *testing.T) {
	const planted = "sasl-pass-never-print"
	cfg := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(cfg, []byte("input:\n  kafka:\n    sasl_mechanism: plain\n    security_protocol: sasl_ssl\n    sasl_username: demo\n    sasl_password: "+planted+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	exec := func(args ...string) (stdout, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut, runHooks{}); code != 0 {
			t.Fatalf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out.String(), errOut.String())
		}
		if strings.Contains(out.String(), "keel-demo: brokers") {
			t.Fatalf("%v started the pipeline:\n%s", args, out.String())
		}
		if strings.Contains(out.String()+errOut.String(), planted) {
			t.Fatalf("%v printed a secret:\n%s\n%s", args, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}

	stdout, stderr := exec("config-check", "-c", cfg, "--brokers", "kafka-1:9092,kafka-2:9092", "--data-dir", dataDir, "--metrics-addr", "127.0.0.1:9191")
	if !strings.Contains(stderr, "configuration is valid") || !strings.Contains(stderr, "127.0.0.1:9191") {
		t.Errorf("config-check stderr lacks the verdict or the --metrics-addr:\n%s", stderr)
	}
	var dump struct {
		Effective struct {
			Input struct {
				Type  string `json:"type"`
				Kafka struct {
					Brokers      []string `json:"brokers"`
					SASLPassword string   `json:"sasl_password"`
				} `json:"kafka"`
			} `json:"input"`
			Output struct {
				File struct {
					Path string `json:"path"`
				} `json:"file"`
			} `json:"output"`
		} `json:"effective"`
	}
	if err := json.Unmarshal([]byte(stdout), &dump); err != nil {
		t.Fatalf("config-check stdout is not the JSON dump: %v\n%s", err, stdout)
	}
	in := dump.Effective.Input
	if in.Type != keel.TransportKafka || !slices.Equal(in.Kafka.Brokers, []string{"kafka-1:9092", "kafka-2:9092"}) || in.Kafka.SASLPassword == "" {
		t.Errorf("config-check: input %+v, want kafka with the --brokers and a redacted password", in)
	}
	if want := outPattern(dataDir); dump.Effective.Output.File.Path != want {
		t.Errorf("config-check: output.file.path %q, want %q", dump.Effective.Output.File.Path, want)
	}
	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) != 0 {
		t.Errorf("config-check wrote into --data-dir: %v %v", entries, err)
	}

	stdout, _ = exec("version")
	if !strings.HasPrefix(stdout, "keel-demo ") || !strings.Contains(stdout, "keel version:") || !strings.Contains(stdout, "go:") {
		t.Errorf("version:\n%s", stdout)
	}
	stdout, _ = exec("config-defaults", "--format", "json")
	if !strings.Contains(stdout, `"input"`) || !strings.Contains(stdout, `"auto_offset_reset": "earliest"`) {
		t.Errorf("config-defaults lacks the demo's input defaults:\n%.2000s", stdout)
	}
	stdout, _ = exec("metrics-manifest")
	if !strings.Contains(stdout, "keel_engine_records_received_total") {
		t.Errorf("metrics-manifest lacks the engine's metrics:\n%.2000s", stdout)
	}
}

func TestEnrich(t *testing.T) {
	out, route, reason := enrich([]byte(`{"id":1,"type":"order","amount":12.34}`), "now")
	if reason != "" || route != "orders" {
		t.Fatalf("valid order: route %q reason %q", route, reason)
	}
	for _, want := range []string{`"route":"orders"`, `"amount_cents":1234`, `"processed_at":"now"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("enriched %s lacks %s", out, want)
		}
	}
	if _, route, reason := enrich([]byte(`{"type":"signup","amount":3}`), "now"); reason != "" || route != defaultRoute {
		t.Errorf("unknown type with an integer amount: route %q reason %q", route, reason)
	}
	if _, _, reason := enrich([]byte(`{"id":1,"type":"order","amount":`), "now"); !strings.HasPrefix(reason, "malformed") {
		t.Errorf("truncated JSON: reason %q", reason)
	}
	if _, _, reason := enrich([]byte(`[1,2]`), "now"); !strings.HasPrefix(reason, "malformed") {
		t.Errorf("JSON array: reason %q", reason)
	}
	if _, route, reason := enrich([]byte(`{"type":"payment","amount":"NaN"}`), "now"); !strings.HasPrefix(reason, "poison") || route != "billing" {
		t.Errorf("poison: route %q reason %q", route, reason)
	}
}

func TestGeneratedEventsMix(t *testing.T) {
	var malformed, poison, ok int
	for i := int64(1); i <= 20000; i++ {
		_, _, reason := enrich(event("0123456789abcdef", i), "now")
		switch {
		case strings.HasPrefix(reason, "malformed"):
			malformed++
		case strings.HasPrefix(reason, "poison"):
			poison++
		case reason == "":
			ok++
		default:
			t.Fatalf("event %d: unexpected reason %q", i, reason)
		}
	}
	if malformed != 20000/malformedEvery || poison != 20000/poisonEvery || ok != 20000-malformed-poison {
		t.Fatalf("mix of 20000 events: %d valid, %d malformed, %d poison", ok, malformed, poison)
	}
}
