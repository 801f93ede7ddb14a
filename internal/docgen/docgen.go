package docgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/httpclient"
	"github.com/keel-go/keel/metrics"
)

// Files of docs/ that Generate renders, relative to the repository root.
const (
	ConfigurationFile = "docs/configuration.md"
	MetricsFile       = "docs/metrics.md"
)

// UpdateCommand is the command that rewrites the generated pages.
const UpdateCommand = "go run ./internal/docgen/cmd/docgen"

// TransportTypes are the built-in transport types whose sub-sections
// configuration.md lists.
var TransportTypes = []string{keel.TransportFile, keel.TransportHTTP, keel.TransportInmem, keel.TransportKafka, keel.TransportPipe}

// envPrefix is the environment prefix the generator's config loads use.
// It names no real deployment, so that variables of the machine running
// the generator do not leak into the defaults.
const envPrefix = "KEEL_DOCGEN_CODE_DEFAULTS_ONLY"

// Generate renders both pages and returns them by file name
// (ConfigurationFile, MetricsFile).
func Generate(ctx context.Context) (map[string][]byte, error) {
	cfg, err := Configuration(ctx)
	if err != nil {
		return nil, err
	}
	met, err := Metrics(ctx)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{ConfigurationFile: cfg, MetricsFile: met}, nil
}

// Write renders both pages and writes them under root, the repository
// root.
func Write(ctx context.Context, root string) error {
	pages, err := Generate(ctx)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(mapKeys(pages)) {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("docgen: create the directory of %s: %w", path, err)
		}
		if err := os.WriteFile(path, pages[name], 0o644); err != nil {
			return fmt.Errorf("docgen: write %s: %w", path, err)
		}
	}
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// docApp is the service the pages describe: the runtime with nothing of
// its own, one transport section ("transport") and the given code
// defaults.
func docApp(defaults map[string]any) keel.App {
	return keel.App{
		Name:       "keel",
		Version:    "0.0.0-docs",
		Transports: []string{"transport"},
		Defaults:   defaults,
		Run:        func(context.Context, *keel.Runtime) error { return nil },
	}
}

// runCommand runs one standard command of app in-process, with an empty
// working directory, no system, user or .env files and no environment
// fallbacks, and returns its standard output.
func runCommand(ctx context.Context, app keel.App, args ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "keel-docgen-")
	if err != nil {
		return nil, fmt.Errorf("docgen: create an empty working directory: %w", err)
	}
	defer os.RemoveAll(dir)
	root, err := keel.Command(app,
		keel.WithConfigOptions(func(c *config.Options) {
			c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = dir, true, true, true
			c.EnvPrefix, c.Env = envPrefix, "development"
		}),
		keel.WithGetenv(func(string) string { return "" }),
		keel.WithLogOutput(io.Discard),
	)
	if err != nil {
		return nil, fmt.Errorf("docgen: build the command line: %w", err)
	}
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		return nil, fmt.Errorf("docgen: keel %s: %w (stderr: %s)", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// defaultsTree runs config-defaults for app and decodes its YAML.
func defaultsTree(ctx context.Context, app keel.App) (map[string]any, error) {
	out, err := runCommand(ctx, app, "config-defaults", "--format", "yaml")
	if err != nil {
		return nil, err
	}
	tree := make(map[string]any)
	if err := yaml.Unmarshal(out, &tree); err != nil {
		return nil, fmt.Errorf("docgen: decode the config-defaults output: %w", err)
	}
	return tree, nil
}

// machineValues returns the strings that depend on the machine running
// the generator (temporary directory, home, working directory, host
// name), longest first, with the placeholder each is replaced by.
func machineValues() [][2]string {
	var vs [][2]string
	add := func(v, placeholder string) {
		if v != "" && v != "/" && v != "." {
			vs = append(vs, [2]string{v, placeholder})
		}
	}
	add(os.TempDir(), "<tmp>")
	if h, err := os.UserHomeDir(); err == nil {
		add(h, "<home>")
	}
	if wd, err := os.Getwd(); err == nil {
		add(wd, "<workdir>")
	}
	if h, err := os.Hostname(); err == nil && len(h) > 3 {
		add(h, "<hostname>")
	}
	slices.SortFunc(vs, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	return vs
}

// normalise replaces machine-dependent strings in every string value of v.
func normalise(v any, vs [][2]string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e, vs)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e, vs)
		}
	case string:
		for _, r := range vs {
			x = strings.ReplaceAll(x, r[0], r[1])
		}
		return x
	}
	return v
}

// sectionYAML renders v as YAML with two-space indentation under key.
func sectionYAML(key string, v any) (string, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{key: v}); err != nil {
		return "", fmt.Errorf("docgen: render section %s: %w", key, err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("docgen: render section %s: %w", key, err)
	}
	return b.String(), nil
}

// Configuration renders docs/configuration.md: every section the runtime
// reads, with the values of the code defaults (config-defaults, no files,
// no environment, no flags), one fenced YAML block per section, sorted;
// then the sub-section of each built-in transport type.
//
// Machine-dependent values: worker_pool.max_workers and initial_workers
// keep 0 (derived from GOMAXPROCS at start-up) and lifecycle.prestop_delay
// keeps 0s (derived from the platform); any string equal to the machine's
// temporary, home or working directory or host name is replaced by
// <tmp>, <home>, <workdir> or <hostname>.
func Configuration(ctx context.Context) ([]byte, error) {
	vs := machineValues()
	base, err := defaultsTree(ctx, docApp(nil))
	if err != nil {
		return nil, err
	}
	delete(base, "transport")
	var b strings.Builder
	b.WriteString(configHeader)
	names := slices.Sorted(mapKeys(base))
	b.WriteString("Sections: ")
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[`%s`](#%s)", n, n)
	}
	b.WriteString("; transports: ")
	for i, t := range TransportTypes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[`%s`](#transport-type-%s)", t, t)
	}
	b.WriteString(".\n")
	for _, n := range names {
		y, err := sectionYAML(n, normalise(base[n], vs))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n## %s\n\n```yaml\n%s```\n", n, y)
	}
	b.WriteString(transportHeader)
	for _, t := range TransportTypes {
		tree, err := defaultsTree(ctx, docApp(map[string]any{"transport.type": t}))
		if err != nil {
			return nil, err
		}
		sec, ok := tree["transport"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("docgen: config-defaults printed no transport section for type %q", t)
		}
		y, err := sectionYAML("transport", normalise(sec, vs))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n### transport type %s\n\n```yaml\n%s```\n", t, y)
	}
	return []byte(b.String()), nil
}

const configHeader = `# Configuration reference

<!-- Generated by ` + UpdateCommand + ` from the output of
` + "`config-defaults`" + `; do not edit. TestDocs fails when this file is stale. -->

Every section the runtime reads, with its code defaults: what
` + "`<service> config-defaults`" + ` prints with no file, no environment and no
flag. Secret-bearing keys are shown as ` + "`[REDACTED]`" + `.

How to read the values:

- A zero value (` + "`0`, `0s`, `\"\"`, `null`" + `) in a section the runtime does not
  resolve itself (dlq, part of secrets) means "the default documented by the
  package": see ` + "`go doc`" + ` of that package. The transport sub-sections show
  the values their zeros stand for (each config's ` + "`WithDefaults`" + `).
- Machine-dependent defaults are not shown: ` + "`worker_pool.max_workers`" + ` and
  ` + "`worker_pool.initial_workers`" + ` stay 0 (derived from GOMAXPROCS at start-up),
  ` + "`lifecycle.prestop_delay`" + ` stays 0s (derived from the platform at start-up),
  and ` + "`telemetry.enabled`" + ` / ` + "`telemetry.traces.enabled`" + ` stay null (on when an
  endpoint is configured). Paths equal to the generating machine's temporary,
  home or working directory or host name would appear as ` + "`<tmp>`, `<home>`, `<workdir>`, `<hostname>`" + `.
- The environment overrides any key as ` + "`<SERVICE>_<SECTION>__<KEY>`" + ` (see
  [config](config.md)).

`

const transportHeader = `
## Transports

A transport section (` + "`transport`" + ` by default, any name the app lists in
` + "`App.Transports`" + `) holds ` + "`type`" + ` and the sub-section of that type, shown below with
the defaults its zero values stand for. Brokers default to ` + "`localhost:9092`" + `;
the keys a deployment must supply (a path, topics, a group) have no code
default. The kafka type also reads the ` + "`KAFKA_*`" + ` variables, which
` + "`config-check`" + ` and ` + "`/config`" + ` show applied.

Every transport section also has a ` + "`tiered`" + ` sub-section, read when the app
builds a sender from it (` + "`Runtime.Sender`" + `): with ` + "`tiered.enabled: true`" + ` the sender
is wrapped in a tiered sink (see [tiered sink and spool](tiered-sink-and-spool.md)),
whose spool directory defaults to ` + "`spool/<section>`" + `. A receiver ignores it.
`

// runtimeCollector reports whether a manifest entry comes from the
// standard Go, process or promhttp collectors, whose set depends on the Go
// version and the operating system.
func runtimeCollector(d metrics.Descriptor) bool {
	for _, p := range []string{"go_", "process_", "promhttp_"} {
		if strings.HasPrefix(d.Name, p) {
			return true
		}
	}
	return false
}

// Metrics renders docs/metrics.md: the manifest of the runtime (what
// metrics-manifest prints, components built only when the service runs
// included), merged with the metrics of the HTTP client (see
// componentMetrics), grouped by group and sorted by name. The standard go_*, process_* and
// promhttp_* collectors are left out: their set depends on the Go version
// and the operating system.
func Metrics(ctx context.Context) ([]byte, error) {
	out, err := runCommand(ctx, docApp(map[string]any{"transport.type": keel.TransportInmem}), "metrics-manifest")
	if err != nil {
		return nil, err
	}
	var m metrics.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("docgen: decode the metrics manifest: %w", err)
	}
	comp := componentMetrics()
	byName := make(map[string]metrics.Descriptor)
	for _, d := range append(m.Metrics, comp.Metrics...) {
		if runtimeCollector(d) {
			continue
		}
		byName[d.Name] = d
	}
	groups := make(map[string][]metrics.Descriptor)
	for _, d := range byName {
		g := d.Group
		if g == "" {
			g = "other"
		}
		groups[g] = append(groups[g], d)
	}
	var b strings.Builder
	b.WriteString(metricsHeader)
	names := slices.Sorted(mapKeys(groups))
	b.WriteString("Groups: ")
	for i, g := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "[`%s`](#%s)", g, g)
	}
	b.WriteString(".\n")
	for _, g := range names {
		ds := groups[g]
		slices.SortFunc(ds, func(a, b metrics.Descriptor) int { return strings.Compare(a.Name, b.Name) })
		fmt.Fprintf(&b, "\n## %s\n\n| name | type | unit | labels | help |\n|---|---|---|---|---|\n", g)
		for _, d := range ds {
			labels := slices.Clone(d.Labels)
			slices.Sort(labels)
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n",
				d.Name, d.Type, cell(d.Unit), cell(strings.Join(labels, ", ")), cell(d.Help))
		}
	}
	return []byte(b.String()), nil
}

// cell escapes s for a Markdown table cell; "" becomes "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

const metricsHeader = `# Metrics reference

<!-- Generated by ` + UpdateCommand + ` from the metrics manifest;
do not edit. TestDocs fails when this file is stale. -->

Every metric keel registers, as served at ` + "`/metrics`" + ` and described at
` + "`/metrics/manifest`" + `. The runtime's metrics are what ` + "`<service> metrics-manifest`" + `
prints, the components built only when the service runs included
(transports, the DLQ, tiered sinks with their spool and breaker); the HTTP
client's metrics (package ` + "`httpclient`" + `, registered when a service builds a
client) are added here. A running service's ` + "`/metrics/manifest`" + ` lists what it
has built. Per-instance labels (` + "`sink`, `spool`,\n`target`, `pool`" + `) tell instances apart.

The standard ` + "`go_*`, `process_*` and `promhttp_*`" + ` collectors of the Prometheus
client are served too but not listed: their set depends on the Go version and
the operating system. The app's own metrics (` + "`App.RegisterMetrics`" + `) use the
app's name as namespace and appear in its own manifest.

`

// componentMetrics returns the manifest of the metrics of the packages a
// service may use beside the runtime (the HTTP client), registered on a
// fresh registry.
func componentMetrics() metrics.Manifest {
	reg := metrics.New(metrics.Config{Namespace: "keel", NoRuntimeCollectors: true})
	httpclient.RegisterMetrics(reg)
	return reg.Manifest()
}
