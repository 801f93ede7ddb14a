package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

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
	args := append([]string{"--data-dir", d.dataDir, "--admin-addr", "127.0.0.1:0", "--rate", "1000",
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
	n, err := countRoutes(outPattern(dataDir))
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
	if code != http.StatusOK || !strings.Contains(body, "keel_") {
		t.Fatalf("/metrics: status %d, body without keel_ metrics:\n%.500s", code, body)
	}
	waitFor(t, "/readyz 200", func() bool { c, _ := get(t, base+"/readyz"); return c == http.StatusOK })
	if c, body := get(t, base+"/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz: status %d, want 200: %s", c, body)
	}
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

func TestDemoProcessesServesProbesAndBalancesOnSIGTERM(t *testing.T) {
	d := startDemo(t)
	checkServing(t, d.addr, d.dataDir)
	if !strings.Contains(d.out.String(), "(in-process cluster)") {
		t.Errorf("without --brokers the demo did not start its in-process cluster:\n%s", d.out)
	}

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
}

func TestDemoRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--rate", "0"},
		{"--progress", "0s"},
		{"--duration", "-1s"},
		{"stray"},
		{"--no-such-flag"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut, runHooks{}); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
		if errOut.Len() == 0 {
			t.Errorf("%v: no message on stderr", args)
		}
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
		_, _, reason := enrich(event(i), "now")
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
