package metrics_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCountersUseAppNamespaceAndAreIdempotent(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "shop", NoRuntimeCollectors: true})
	c1 := r.Counter(metrics.Opts{Name: "orders_total", Help: "Orders."})
	c2 := r.Counter(metrics.Opts{Name: "orders_total", Help: "Orders."})
	c1.Inc()
	c2.Inc()
	if got := testutil.ToFloat64(c1); got != 2 {
		t.Fatalf("shared counter = %v, want 2", got)
	}
	body := scrape(t, r.Handler())
	if !strings.Contains(body, "shop_orders_total 2") {
		t.Fatalf("exposition lacks shop_orders_total 2:\n%s", body)
	}
	lib := r.Gauge(metrics.Opts{Namespace: "keel", Subsystem: "engine", Name: "block_bytes", Help: "Bytes."})
	lib.Set(7)
	if body := scrape(t, r.Handler()); !strings.Contains(body, "keel_engine_block_bytes 7") {
		t.Fatalf("library metric not under keel namespace:\n%s", body)
	}
}

func TestConflictingDefinitionPanics(t *testing.T) {
	r := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	r.Counter(metrics.Opts{Name: "x_total", Help: "x"})
	defer func() {
		if recover() == nil {
			t.Fatal("registering x_total as a gauge did not panic")
		}
	}()
	r.Gauge(metrics.Opts{Name: "x_total", Help: "x"})
}

func TestCardinalityOverflowFoldsAndCounts(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "t", CardinalityLimit: 3, NoRuntimeCollectors: true})
	v := r.CounterVec(metrics.Opts{Name: "hits_total", Help: "Hits."}, "user")
	for _, u := range []string{"a", "b", "c", "d", "e", "a"} {
		v.With(u).Inc()
	}
	if n := testutil.CollectAndCount(v); n != 4 {
		t.Fatalf("series = %d, want 3 admitted + 1 overflow", n)
	}
	if got := testutil.ToFloat64(v.With("a")); got != 2 {
		t.Fatalf("a = %v, want 2 (known set stays admitted)", got)
	}
	body := scrape(t, r.Handler())
	if !strings.Contains(body, `t_hits_total{user="__overflow__"} 2`) {
		t.Fatalf("overflow series missing or wrong:\n%s", body)
	}
	if !strings.Contains(body, `keel_metrics_cardinality_overflow_total{metric="t_hits_total"} 2`) {
		t.Fatalf("overflow not counted:\n%s", body)
	}
}

// TestDefaultCardinalityLimit: a registry built without a limit admits
// 1000 label sets per metric; the 1001st folds into the overflow series
// and is counted.
func TestDefaultCardinalityLimit(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "t", NoRuntimeCollectors: true})
	v := r.CounterVec(metrics.Opts{Name: "hits_total", Help: "Hits."}, "user")
	for i := range 1000 {
		v.With(fmt.Sprintf("u%04d", i)).Inc()
	}
	if n := testutil.CollectAndCount(v); n != 1000 {
		t.Fatalf("series = %d after 1000 label sets, want 1000", n)
	}
	overflow := func() float64 {
		return keeltest.MetricValue(t, r.Gatherer(), "keel_metrics_cardinality_overflow_total", map[string]string{"metric": "t_hits_total"})
	}
	if got := overflow(); got != 0 {
		t.Fatalf("overflow counted %v before the limit", got)
	}
	v.With("u1000").Inc()
	v.With("u0999").Inc() // a known set stays admitted
	if n := testutil.CollectAndCount(v); n != 1001 {
		t.Fatalf("series = %d, want 1000 admitted + 1 overflow", n)
	}
	if got := keeltest.MetricValue(t, r.Gatherer(), "t_hits_total", map[string]string{"user": metrics.OverflowLabelValue}); got != 1 {
		t.Fatalf("overflow series = %v, want 1", got)
	}
	if got := keeltest.MetricValue(t, r.Gatherer(), "t_hits_total", map[string]string{"user": "u0999"}); got != 2 {
		t.Fatalf("u0999 = %v, want 2", got)
	}
	if got := overflow(); got != 1 {
		t.Fatalf("overflow counted %v, want 1", got)
	}
}

// TestRuntimeCollectors: a registry with the runtime collectors gathers
// the Go runtime series and, on Linux, the process series.
func TestRuntimeCollectors(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "rt"})
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	want := []string{"go_goroutines", "keel_build_info"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds")
		if rss := keeltest.MetricValue(t, r.Gatherer(), "process_resident_memory_bytes", nil); rss <= 0 {
			t.Errorf("process_resident_memory_bytes = %v, want > 0", rss)
		}
	}
	for _, n := range want {
		if !names[n] {
			t.Errorf("%s not gathered", n)
		}
	}
}

func TestCardinalityCapConcurrent(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "t", CardinalityLimit: 10, NoRuntimeCollectors: true})
	v := r.GaugeVec(metrics.Opts{Name: "g", Help: "g"}, "k")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				v.With(string(rune('a'+w)) + string(rune('a'+i%26))).Set(1)
			}
		}(w)
	}
	wg.Wait()
	if n := testutil.CollectAndCount(v); n != 11 {
		t.Fatalf("series = %d, want 10 + overflow", n)
	}
}

func TestManifestListsEveryMetricAndIsJSON(t *testing.T) {
	r := metrics.New(metrics.Config{Namespace: "svc"})
	r.HistogramVec(metrics.Opts{Name: "latency_seconds", Help: "Latency.", Unit: "seconds", Group: "http"}, nil, "route")
	r.Counter(metrics.Opts{Name: "jobs_total", Help: "Jobs."})
	var m metrics.Manifest
	if err := json.Unmarshal([]byte(scrape(t, r.ManifestHandler())), &m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	byName := map[string]metrics.Descriptor{}
	for _, d := range m.Metrics {
		byName[d.Name] = d
		if d.Help == "" {
			t.Errorf("%s has no help text", d.Name)
		}
	}
	h, ok := byName["svc_latency_seconds"]
	if !ok || h.Type != "histogram" || h.Unit != "seconds" || len(h.Buckets) != len(metrics.LatencyBuckets) || h.Labels[0] != "route" || h.Group != "http" {
		t.Fatalf("histogram descriptor wrong: %+v", h)
	}
	for _, want := range []string{"svc_jobs_total", "keel_build_info", "go_goroutines", "keel_metrics_cardinality_overflow_total"} {
		if _, ok := byName[want]; !ok {
			t.Errorf("manifest lacks %s", want)
		}
	}
	if m.Namespace != "svc" {
		t.Errorf("namespace = %q", m.Namespace)
	}
}

func TestInvalidNamespace(t *testing.T) {
	if err := (metrics.Config{Namespace: "9bad-name"}).Validate(); err == nil || !strings.Contains(err.Error(), "metrics.namespace") {
		t.Fatalf("Validate = %v, want error naming metrics.namespace", err)
	}
	if r := metrics.New(metrics.Config{Namespace: "9bad-name", NoRuntimeCollectors: true}); r.Namespace() != metrics.DefaultNamespace {
		t.Fatalf("invalid namespace kept: %q", r.Namespace())
	}
}

func TestDefaultReplaceable(t *testing.T) {
	old := metrics.Default()
	r := metrics.New(metrics.Config{Namespace: "d", NoRuntimeCollectors: true})
	metrics.SetDefault(r)
	defer metrics.SetDefault(old)
	if metrics.OrDefault(nil) != r || metrics.OrDefault(old) != old {
		t.Fatal("OrDefault does not honour SetDefault")
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func BenchmarkCounterVecWith(b *testing.B) {
	r := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	v := r.CounterVec(metrics.Opts{Name: "b_total", Help: "b"}, "route", "code")
	b.Run("keel", func(b *testing.B) {
		for b.Loop() {
			v.With("/items", "2xx").Inc()
		}
	})
}

func TestContainerCollectorReadsCgroupV2(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/self/cgroup", "0::/\n")
	write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
	write("sys/fs/cgroup/memory.max", "536870912\n")
	write("sys/fs/cgroup/memory.high", "max\n")
	write("sys/fs/cgroup/memory.current", "1048576\n")
	write("sys/fs/cgroup/cpu.max", "150000 100000\n")
	r := metrics.New(metrics.Config{Namespace: "c", Platform: platform.Detector{Root: root, Getenv: func(string) string { return "" }}})
	body := scrape(t, r.Handler())
	for _, want := range []string{
		"keel_container_memory_limit_bytes 5.36870912e+08",
		"keel_container_memory_usage_bytes 1.048576e+06",
		"keel_container_cpu_quota_cores 1.5",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in exposition", want)
		}
	}
	found := false
	for _, d := range r.Manifest().Metrics {
		if d.Name == "keel_container_memory_limit_bytes" && d.Unit == "bytes" {
			found = true
		}
	}
	if !found {
		t.Error("container metrics not in the manifest")
	}
}
