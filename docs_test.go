package keel_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/internal/docgen"
	"github.com/keel-go/keel/metrics"
)

// docsCtx bounds one generation.
func docsCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// firstDiff describes the first line where got and want differ, or ""
// when they are equal.
func firstDiff(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, w, g)
		}
	}
	return "the files differ in their line endings"
}

// staleReport lists the generated pages whose committed copy under root
// differs from pages, with the first difference of each.
func staleReport(root string, pages map[string][]byte) []string {
	var stale []string
	for _, name := range []string{docgen.ConfigurationFile, docgen.MetricsFile} {
		committed, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		if err != nil {
			stale = append(stale, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		if d := firstDiff(committed, pages[name]); d != "" {
			stale = append(stale, name+": "+d)
		}
	}
	return stale
}

// TestDocs fails when docs/configuration.md or docs/metrics.md is not what
// the code generates; KEEL_UPDATE_DOCS=1 rewrites them instead.
func TestDocs(t *testing.T) {
	ctx := docsCtx(t)
	if os.Getenv("KEEL_UPDATE_DOCS") == "1" {
		if err := docgen.Write(ctx, "."); err != nil {
			t.Fatal(err)
		}
	}
	pages, err := docgen.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stale := staleReport(".", pages); len(stale) > 0 {
		t.Fatalf("generated docs are stale:\n  %s\nregenerate them with `%s` or `KEEL_UPDATE_DOCS=1 go test -run TestDocs .` and commit the result",
			strings.Join(stale, "\n  "), docgen.UpdateCommand)
	}

	t.Run("stale detection", func(t *testing.T) {
		dir := t.TempDir()
		for name, body := range pages {
			path := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if stale := staleReport(dir, pages); len(stale) != 0 {
			t.Fatalf("fresh copies reported stale: %v", stale)
		}
		edited := bytes.Replace(pages[docgen.ConfigurationFile], []byte("shutdown_timeout: 30s"), []byte("shutdown_timeout: 31s"), 1)
		if bytes.Equal(edited, pages[docgen.ConfigurationFile]) {
			t.Fatal("configuration.md has no lifecycle shutdown_timeout: 30s to edit")
		}
		if err := os.WriteFile(filepath.Join(dir, "docs", "configuration.md"), edited, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "docs", "metrics.md")); err != nil {
			t.Fatal(err)
		}
		stale := staleReport(dir, pages)
		if len(stale) != 2 || !strings.Contains(stale[0], "31s") || !strings.Contains(stale[1], "metrics.md") {
			t.Fatalf("an edited and a missing page were not both reported: %v", stale)
		}
	})
}

// TestDocsDeterministic proves the pages depend neither on the number of
// CPUs nor on the environment of the machine that generates them.
func TestDocsDeterministic(t *testing.T) {
	ctx := docsCtx(t)
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	one, err := docgen.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GOMAXPROCS(7)
	t.Setenv("KEEL_LOGGING__LEVEL", "debug")
	t.Setenv("KEEL_WORKER_POOL__MAX_WORKERS", "3")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	t.Setenv("APP_ENV", "production")
	t.Setenv("LOG_LEVEL", "debug")
	seven, err := docgen.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name := range one {
		if d := firstDiff(one[name], seven[name]); d != "" {
			t.Errorf("%s depends on the machine: %s", name, d)
		}
	}
}

// TestDocsCoverRuntime checks the pages against the code they come from:
// every runtime section has a heading and a YAML block, every metric of
// the runtime's manifest (but the standard Go and process collectors) is
// in the table, and nothing machine-dependent slipped through.
func TestDocsCoverRuntime(t *testing.T) {
	ctx := docsCtx(t)
	pages, err := docgen.Generate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(pages[docgen.ConfigurationFile])
	for _, s := range []string{keel.SectionLogging, keel.SectionLifecycle, keel.SectionAdmin, keel.SectionMemory,
		keel.SectionPool, keel.SectionScaling, keel.SectionEngine, keel.SectionSecrets, keel.SectionTelemetry,
		keel.SectionSelfRegulation, keel.SectionDLQ} {
		if !strings.Contains(conf, "\n## "+s+"\n\n```yaml\n"+s+":\n") {
			t.Errorf("configuration.md has no YAML block for section %s", s)
		}
	}
	for _, typ := range docgen.TransportTypes {
		if !strings.Contains(conf, "\n### transport type "+typ+"\n\n```yaml\ntransport:\n") || !strings.Contains(conf, "  type: "+typ+"\n") {
			t.Errorf("configuration.md has no block for transport type %s", typ)
		}
	}
	for _, machine := range []string{os.TempDir(), "keel-docgen-"} {
		if strings.Contains(conf, machine) {
			t.Errorf("configuration.md holds the machine-dependent %q", machine)
		}
	}

	stdout, _, err := runCommand(t, keel.App{Name: "keel", Run: func(context.Context, *keel.Runtime) error { return nil }}, nil, "metrics-manifest")
	if err != nil {
		t.Fatal(err)
	}
	var m metrics.Manifest
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	met := string(pages[docgen.MetricsFile])
	listed := 0
	for _, d := range m.Metrics {
		if strings.HasPrefix(d.Name, "go_") || strings.HasPrefix(d.Name, "process_") || strings.HasPrefix(d.Name, "promhttp_") {
			if strings.Contains(met, "| `"+d.Name+"` |") {
				t.Errorf("metrics.md lists the machine-dependent collector metric %s", d.Name)
			}
			continue
		}
		listed++
		if !strings.Contains(met, "| `"+d.Name+"` | "+d.Type+" |") {
			t.Errorf("metrics.md does not list %s (%s)", d.Name, d.Type)
		}
	}
	if listed < 50 {
		t.Fatalf("the runtime manifest has only %d keel metrics", listed)
	}
	for _, name := range []string{"keel_dlq_dropped_total", "keel_tiered_dropped_records_total", "keel_spool_", "keel_breaker_state", "keel_file_lines_read_total", "keel_pipe_lines_read_total"} {
		if !strings.Contains(met, "| `"+name) {
			t.Errorf("metrics.md lists no component metric %s", name)
		}
	}
}

// TestDocsLinks checks that every capability page exists, is in the
// index, and that every relative link in docs/ names a file that exists
// and, with a fragment, a heading of that file.
func TestDocsLinks(t *testing.T) {
	pages := []string{"config.md", "logging.md", "metrics-guide.md", "health-and-lifecycle.md", "secrets.md",
		"telemetry.md", "transports.md", "engine.md", "self-regulation.md", "tiered-sink-and-spool.md", "dlq.md",
		"cli-and-runtime.md", "configuration.md", "metrics.md"}
	index, err := os.ReadFile(filepath.Join("docs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		if !strings.Contains(string(index), "]("+p+")") {
			t.Errorf("docs/README.md does not link %s", p)
		}
	}
	anchors := func(body string) map[string]bool {
		a := make(map[string]bool)
		for _, line := range strings.Split(body, "\n") {
			if !strings.HasPrefix(line, "#") {
				continue
			}
			h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
			var b strings.Builder
			for _, r := range h {
				switch {
				case r == ' ':
					b.WriteRune('-')
				case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
					b.WriteRune(r)
				}
			}
			a[b.String()] = true
		}
		return a
	}
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(pages)+1 {
		t.Fatalf("docs/ holds %d pages, want at least %d", len(files), len(pages)+1)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rest := string(body)
		for {
			i := strings.Index(rest, "](")
			if i < 0 {
				break
			}
			rest = rest[i+2:]
			j := strings.IndexByte(rest, ')')
			if j < 0 {
				break
			}
			link := rest[:j]
			if strings.Contains(link, "://") {
				continue
			}
			target, frag, _ := strings.Cut(link, "#")
			if target == "" {
				target = filepath.Base(f)
			}
			tb, err := os.ReadFile(filepath.Join("docs", target))
			if err != nil {
				t.Errorf("%s links %q: %v", f, link, err)
				continue
			}
			if frag != "" && !anchors(string(tb))[frag] {
				t.Errorf("%s links %q: no such heading in %s", f, link, target)
			}
		}
	}
}
