package keel_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// appSection is an app section holding a secret.
type appSection struct {
	Workers  int           `koanf:"workers"`
	APIToken secret.String `koanf:"api_token"`
}

func (a *appSection) Validate() error {
	if a.Workers < 1 {
		return errors.New("work.workers must be >= 1")
	}
	return nil
}

const (
	plantedToken    = "tok-3b1f9e7c-never-print"
	plantedPassword = "hunter2-never-print"
	defaultToken    = "default-token-never-print"
)

func cliApp() keel.App {
	return keel.App{
		Name:       "keeltest",
		Version:    "2.3.4",
		Sections:   map[string]any{"work": &appSection{Workers: 2, APIToken: secret.New(defaultToken)}},
		Transports: []string{"transport"},
		Defaults:   map[string]any{"transport.type": "inmem"},
		RegisterMetrics: func(reg *metrics.Registry) {
			reg.Counter(metrics.Opts{Name: "widgets_total", Help: "Widgets made."})
		},
		Flags: func(fs *pflag.FlagSet) { fs.Int("work.workers", 0, "workers") },
		Commands: []*cobra.Command{{Use: "replay", Short: "Replay the dead letters", RunE: func(*cobra.Command, []string) error {
			return nil
		}}},
		Run: func(ctx context.Context, rt *keel.Runtime) error { return nil },
	}
}

// runCommand executes the app's command line in-process.
func runCommand(t *testing.T, app keel.App, getenv map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	dir := t.TempDir()
	opts := []keel.Option{
		keel.WithConfigOptions(func(c *config.Options) {
			c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = dir, true, true, true
		}),
		keel.WithGetenv(func(k string) string { return getenv[k] }),
	}
	root, err := keel.Command(app, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(testCtx(t))
	return out.String(), errb.String(), err
}

func noSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, s := range texts {
		for _, secretValue := range []string{plantedToken, plantedPassword, defaultToken} {
			if strings.Contains(s, secretValue) {
				t.Fatalf("a secret was printed:\n%s", s)
			}
		}
	}
}

func TestConfigCheckGoodFile(t *testing.T) {
	path := writeFile(t, "good.yaml", `
work:
  workers: 4
  api_token: `+plantedToken+`
database:
  password: `+plantedPassword+`
memory:
  pressure_threshold: 0.7
`)
	stdout, stderr, err := runCommand(t, cliApp(), nil, "config-check", "-c", path, "--metrics-addr", "127.0.0.1:9999")
	if err != nil {
		t.Fatalf("config-check: %v\n%s", err, stderr)
	}
	noSecrets(t, stdout, stderr)
	contains(t, stderr, "configuration is valid", "stderr")
	var dump struct {
		Effective map[string]any `json:"effective"`
		Sections  map[string]struct {
			Effective map[string]any `json:"effective"`
		} `json:"sections"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal([]byte(stdout), &dump); err != nil {
		t.Fatalf("stdout is not the JSON dump: %v\n%s", err, stdout)
	}
	for _, s := range append(keel.RuntimeSections(), "work", "transport.inmem") {
		if _, ok := dump.Sections[s]; !ok {
			t.Fatalf("section %q missing from the dump (%v)", s, keysOf(dump.Sections))
		}
	}
	if got := dump.Sections["work"].Effective["workers"]; got != float64(4) {
		t.Fatalf("work.workers %v, want 4 from the file", got)
	}
	if got := dump.Sections["admin"].Effective["addr"]; got != "127.0.0.1:9999" {
		t.Fatalf("admin.addr %v, want the --metrics-addr flag", got)
	}
	if got := dump.Sections["work"].Effective["api_token"]; got != secret.Redacted {
		t.Fatalf("api_token shown as %v", got)
	}
	if len(dump.Files) != 1 || dump.Files[0] != path {
		t.Fatalf("files %v", dump.Files)
	}
}

// kafkaEnvApp reads its input from a Kafka section whose brokers come only
// from the environment.
func kafkaEnvApp() keel.App {
	app := cliApp()
	app.Transports = []string{"input"}
	app.Defaults = map[string]any{"input.type": "kafka", "input.kafka.group": "g", "input.kafka.topics": []string{"orders"}}
	return app
}

// effectiveDump is the part of the configuration dump the tests read.
type effectiveDump struct {
	Effective map[string]any `json:"effective"`
	Sections  map[string]struct {
		Effective map[string]any `json:"effective"`
	} `json:"sections"`
}

// checkEffective checks that the dump shows the values in effect: the
// Kafka brokers from KAFKA_BOOTSTRAP_SERVERS (in the section and in the
// effective tree), the transport defaults, and the runtime defaults the
// zero values stand for.
func checkEffective(t *testing.T, out string, adminAddr string) {
	t.Helper()
	var dump effectiveDump
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("not the JSON dump: %v\n%s", err, out)
	}
	ik := dump.Sections["input.kafka"].Effective
	if fmt.Sprint(ik["brokers"]) != "[kafka-9:9092]" || ik["client_id"] != "keel" || ik["profile"] != "production" {
		t.Fatalf("input.kafka shows %v, want the brokers of KAFKA_BOOTSTRAP_SERVERS and the defaults", ik)
	}
	if ik["sasl_password"] != secret.Redacted {
		t.Fatalf("input.kafka.sasl_password shows %v", ik["sasl_password"])
	}
	tree, _ := dump.Effective["input"].(map[string]any)
	if k, _ := tree["kafka"].(map[string]any); fmt.Sprint(k["brokers"]) != "[kafka-9:9092]" {
		t.Fatalf("the effective tree shows input %v", tree)
	}
	for _, c := range []struct{ section, key, want string }{
		{"lifecycle", "shutdown_timeout", "30s"},
		{"admin", "addr", adminAddr},
		{"logging", "level", "info"},
		{"batch_processing", "drain_timeout", "10s"},
	} {
		if got := dump.Sections[c.section].Effective[c.key]; got != c.want {
			t.Fatalf("%s.%s shows %v, want %s", c.section, c.key, got, c.want)
		}
		if got := dump.Effective[c.section].(map[string]any)[c.key]; got != c.want {
			t.Fatalf("the effective tree shows %s.%s as %v, want %s", c.section, c.key, got, c.want)
		}
	}
	if wp := dump.Sections["worker_pool"].Effective; fmt.Sprint(wp["min_workers"]) == "0" {
		t.Fatalf("worker_pool shows its zeros: %v", wp)
	}
}

// TestConfigCheckShowsTheValuesInEffect: config-check prints what the
// service uses: the Kafka environment variables its builder reads, the
// transport defaults, and the runtime defaults, with no secret.
func TestConfigCheckShowsTheValuesInEffect(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-9:9092")
	t.Setenv("KAFKA_SASL_PASSWORD", plantedPassword)
	stdout, stderr, err := runCommand(t, kafkaEnvApp(), nil, "config-check")
	if err != nil {
		t.Fatalf("config-check: %v\n%s", err, stderr)
	}
	noSecrets(t, stdout, stderr)
	checkEffective(t, stdout, ":9090")
	contains(t, stderr, "admin:     :9090\n", "the summary")
}

// TestConfigCheckStrict: an unknown key inside a section the service
// reads is a warning, and an error naming it with --strict or
// CONFIG_STRICT.
func TestConfigCheckStrict(t *testing.T) {
	path := writeFile(t, "typo.yaml", "dlq:\n  http:\n    endpiont: http://127.0.0.1:1/dlq\nwork:\n  api_token: "+plantedToken+"\n")
	stdout, stderr, err := runCommand(t, cliApp(), nil, "config-check", "-c", path)
	if err != nil {
		t.Fatalf("config-check without --strict: %v", err)
	}
	contains(t, stderr, "endpiont", "the warning")
	noSecrets(t, stdout, stderr)
	for name, run := range map[string]func() (string, string, error){
		"flag": func() (string, string, error) {
			return runCommand(t, cliApp(), nil, "config-check", "--strict", "-c", path)
		},
		"env": func() (string, string, error) {
			return runCommand(t, cliApp(), map[string]string{cli.EnvConfigStrict: "1"}, "config-check", "-c", path)
		},
	} {
		stdout, stderr, err := run()
		if err == nil || !strings.Contains(err.Error(), "dlq.http.endpiont") {
			t.Fatalf("%s: config-check --strict: %v; want the unknown key dlq.http.endpiont named", name, err)
		}
		if stdout != "" {
			t.Fatalf("%s: a failed strict check printed a configuration:\n%s", name, stdout)
		}
		noSecrets(t, stdout, stderr, err.Error())
	}
}

func TestConfigCheckBadFileNamesTheKey(t *testing.T) {
	cases := map[string]string{
		"work.workers":             "work:\n  workers: 0\n  api_token: " + plantedToken + "\n",
		"memory.headroom_fraction": "memory:\n  headroom_fraction: 2\ndatabase:\n  password: " + plantedPassword + "\n",
		"worker_pool.min_workers":  "worker_pool:\n  min_workers: lots\n",
		"transport.type":           "transport:\n  type: smoke_signal\n",
		"bad.yaml":                 "work: [unclosed\n",
	}
	for key, content := range cases {
		t.Run(key, func(t *testing.T) {
			path := writeFile(t, "bad.yaml", content)
			stdout, stderr, err := runCommand(t, cliApp(), nil, "config-check", "--config", path)
			if err == nil {
				t.Fatalf("config-check accepted:\n%s", content)
			}
			contains(t, err.Error(), key, "the error")
			if keel.ExitCode(err) != keel.ExitError {
				t.Fatalf("exit code %d", keel.ExitCode(err))
			}
			noSecrets(t, stdout, stderr, err.Error())
			if stdout != "" {
				t.Fatalf("a failed check printed a configuration:\n%s", stdout)
			}
		})
	}
	// A missing --config file is an error naming it.
	_, _, err := runCommand(t, cliApp(), nil, "config-check", "-c", "/nonexistent/keel.yaml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/keel.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestStandardFlagsReachTheConfig(t *testing.T) {
	env := map[string]string{"LOG_LEVEL": "warn", "METRICS_ADDR": "127.0.0.1:7070", "CONFIG_FILE": writeFile(t, "env.yaml", "work:\n  workers: 5\n")}
	stdout, stderr, err := runCommand(t, cliApp(), env, "config-check", "--work.workers", "9")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var dump struct {
		Sections map[string]struct {
			Effective map[string]any `json:"effective"`
		} `json:"sections"`
		Sources map[string]string `json:"sources"`
	}
	if err := json.Unmarshal([]byte(stdout), &dump); err != nil {
		t.Fatal(err)
	}
	if got := dump.Sections["logging"].Effective["level"]; got != "warn" {
		t.Fatalf("logging.level %v, want LOG_LEVEL", got)
	}
	if got := dump.Sections["admin"].Effective["addr"]; got != "127.0.0.1:7070" {
		t.Fatalf("admin.addr %v, want METRICS_ADDR", got)
	}
	if got := dump.Sections["work"].Effective["workers"]; got != float64(9) {
		t.Fatalf("work.workers %v, want the flag's 9 over CONFIG_FILE's 5", got)
	}
	if got := dump.Sources["work.workers"]; got != "flag --work.workers" {
		t.Fatalf("source of work.workers %q", got)
	}
	// -v wins over LOG_LEVEL.
	stdout, _, err = runCommand(t, cliApp(), env, "config-check", "-v")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, `"level": "debug"`) {
		t.Fatal("-v did not set logging.level to debug")
	}
	// LOG_QUIET, the fallback of -q, wins over LOG_LEVEL; -v on the
	// command line wins over LOG_QUIET.
	env["LOG_LEVEL"], env["LOG_QUIET"] = "debug", "1"
	stdout, _, err = runCommand(t, cliApp(), env, "config-check")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, `"level": "warn"`) {
		t.Fatal("LOG_QUIET=1 did not set logging.level to warn")
	}
	stdout, _, err = runCommand(t, cliApp(), env, "config-check", "-v")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, `"level": "debug"`) {
		t.Fatal("-v did not win over LOG_QUIET")
	}
	// A bad flag value is refused before anything is built.
	if _, _, err := runCommand(t, cliApp(), nil, "config-check", "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("bad --log-format: %v", err)
	}
}

func TestVersionCommand(t *testing.T) {
	stdout, _, err := runCommand(t, cliApp(), nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	// App.Version names the service's version; the module's version and
	// keel's are printed beside it, each labelled.
	contains(t, stdout, "keeltest 2.3.4\n", "version")
	contains(t, stdout, "app version:    2.3.4\n", "version")
	contains(t, stdout, "go:             go1.", "version")
	bi := metrics.ReadBuildInfo()
	contains(t, stdout, "module version: "+bi.Version+"\n", "version")
	contains(t, stdout, "keel version:   "+cli.KeelVersion()+"\n", "version")
	if bi.Module != "" {
		contains(t, stdout, "module:         "+bi.Module+"\n", "version")
	}
}

func TestMetricsManifestCommand(t *testing.T) {
	stdout, _, err := runCommand(t, cliApp(), nil, "metrics-manifest")
	if err != nil {
		t.Fatal(err)
	}
	var m metrics.Manifest
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("not a manifest: %v\n%s", err, stdout)
	}
	if m.Namespace != "keeltest" {
		t.Fatalf("namespace %q", m.Namespace)
	}
	have := map[string]bool{}
	for _, d := range m.Metrics {
		have[d.Name] = true
		if d.Help == "" {
			t.Fatalf("%s has no help text", d.Name)
		}
	}
	for _, want := range []string{
		"keel_engine_records_received_total", "keel_engine_drains_total", "keel_memory_limit_bytes",
		"keel_pool_target_workers", "keel_scaling_pressure", "keel_lifecycle_shutdowns_total",
		"keel_admin_http_requests_total", "keel_config_reloads_total", "keeltest_widgets_total",
		"keel_self_regulation_byte_budget_bytes", "keel_secrets_cache_hits_total", "keel_telemetry_enabled",
		// Components built only when the service runs, whatever the
		// config selects (this app's transport is inmem, no DLQ, no
		// tiered sink).
		"keel_kafka_consumer_lag", "keel_kafka_sent_records_total", "keel_file_lines_read_total",
		"keel_pipe_lines_written_total", "keel_dlq_dropped_total", "keel_dlq_queue_pending",
		"keel_dlq_file_bytes_total", "keel_tiered_spooled_records_total", "keel_spool_bytes",
		"keel_spool_corruptions_total", "keel_breaker_state",
	} {
		if !have[want] {
			t.Fatalf("manifest lacks %s", want)
		}
	}
}

func TestConfigDefaultsCommand(t *testing.T) {
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			// The defaults ignore the environment and the files.
			t.Setenv("KEELTEST_WORK__WORKERS", "99")
			stdout, _, err := runCommand(t, cliApp(), nil, "config-defaults", "--format", format)
			if err != nil {
				t.Fatal(err)
			}
			noSecrets(t, stdout)
			var tree map[string]any
			if format == "yaml" {
				err = yaml.Unmarshal([]byte(stdout), &tree)
			} else {
				err = json.Unmarshal([]byte(stdout), &tree)
			}
			if err != nil {
				t.Fatalf("not %s: %v\n%s", format, err, stdout)
			}
			for _, s := range append(keel.RuntimeSections(), "work", "transport") {
				if _, ok := tree[s]; !ok {
					t.Fatalf("section %q missing:\n%s", s, stdout)
				}
			}
			work := tree["work"].(map[string]any)
			if w, _ := work["workers"].(int); format == "yaml" && w != 2 {
				t.Fatalf("work.workers default %v, want 2", work["workers"])
			}
			if w, _ := work["workers"].(float64); format == "json" && w != 2 {
				t.Fatalf("work.workers default %v, want 2", work["workers"])
			}
			ad := tree["admin"].(map[string]any)
			bp := tree["batch_processing"].(map[string]any)
			if ad["addr"] != ":9090" || bp["drain_timeout"] != "10s" {
				t.Fatalf("runtime defaults not resolved: admin %v, batch_processing %v", ad, bp)
			}
			sr := tree["self_regulation"].(map[string]any)
			tel := tree["telemetry"].(map[string]any)
			sec := tree["secrets"].(map[string]any)
			budget, _ := sr["budget"].(map[string]any)
			if sr["pause_at"] != 0.8 || sr["profile"] != "throughput" || tel["protocol"] != "grpc" || sec["refresh_interval"] != "30m0s" ||
				budget["record_cap"] == nil || fmt.Sprint(budget["record_cap"]) != "2000" {
				t.Fatalf("new section defaults not resolved: self_regulation %v, telemetry %v, secrets %v", sr, tel, sec)
			}
			tr := tree["transport"].(map[string]any)
			if tr["type"] != "inmem" || tr["inmem"] == nil {
				t.Fatalf("transport defaults %v", tr)
			}
			// The tiered sub-section of a transport section, with what its
			// zeros stand for, the section-dependent spool directory
			// included.
			ti, _ := tr["tiered"].(map[string]any)
			sp, _ := ti["spool"].(map[string]any)
			br, _ := ti["breaker"].(map[string]any)
			if ti["enabled"] != false || ti["send_timeout"] != "1s" || ti["ordering"] != "strict" ||
				sp["dir"] != "spool/transport" || sp["sync"] != "interval" || sp["full_policy"] != "block" ||
				fmt.Sprint(br["failure_threshold"]) != "5" || br["open_timeout"] != "30s" {
				t.Fatalf("transport.tiered defaults not resolved: %v", ti)
			}
		})
	}
}

// TestConfigDefaultsShowsTheTransportDefaults: a transport sub-section
// shows what its zeros stand for, and the code defaults only (no
// KAFKA_* variable).
func TestConfigDefaultsShowsTheTransportDefaults(t *testing.T) {
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-9:9092")
	for typ, want := range map[string]map[string]string{
		"kafka": {"brokers": "[localhost:9092]", "client_id": "keel", "profile": "production", "sizing": "throughput"},
		"file":  {"max_line_bytes": "1048576", "sync": "every_write", "flush": "batch", "poll_interval": "100ms"},
		"pipe":  {"max_line_bytes": "1048576", "read_buffer_bytes": "65536"},
		"http":  {"listen": ":8080", "path": "/ingest", "ack_mode": "commit"},
		"inmem": {"buffer_size": "1000"},
	} {
		t.Run(typ, func(t *testing.T) {
			app := cliApp()
			app.Defaults = map[string]any{"transport.type": typ}
			stdout, _, err := runCommand(t, app, nil, "config-defaults", "--format", "json")
			if err != nil {
				t.Fatal(err)
			}
			var tree map[string]map[string]any
			dec := json.NewDecoder(strings.NewReader(stdout))
			dec.UseNumber()
			if err := dec.Decode(&tree); err != nil {
				t.Fatal(err)
			}
			sub, _ := tree["transport"][typ].(map[string]any)
			for k, v := range want {
				if fmt.Sprint(sub[k]) != v {
					t.Fatalf("transport.%s.%s is %v, want %s:\n%v", typ, k, sub[k], v, sub)
				}
			}
		})
	}
}

func TestConfigDefaultsShowsTheTieredValuesTheAppSets(t *testing.T) {
	app := cliApp()
	app.Defaults = map[string]any{"transport.type": "inmem", "transport.tiered.enabled": true, "transport.tiered.spool.max_bytes": 1 << 20}
	stdout, _, err := runCommand(t, app, nil, "config-defaults", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var tree struct {
		Transport struct {
			Tiered struct {
				Enabled bool `json:"enabled"`
				Spool   struct {
					MaxBytes     int64 `json:"max_bytes"`
					SegmentBytes int64 `json:"segment_bytes"`
				} `json:"spool"`
			} `json:"tiered"`
		} `json:"transport"`
	}
	if err := json.Unmarshal([]byte(stdout), &tree); err != nil {
		t.Fatal(err)
	}
	ti := tree.Transport.Tiered
	// The segment size default follows max_bytes (a quarter of it).
	if !ti.Enabled || ti.Spool.MaxBytes != 1<<20 || ti.Spool.SegmentBytes != 1<<18 {
		t.Fatalf("transport.tiered: %+v\n%s", ti, stdout)
	}
}

func TestAppCommandsAreAdded(t *testing.T) {
	root, err := keel.Command(cliApp())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range root.Commands() {
		names[c.Name()] = true
	}
	for _, want := range []string{"run", "version", "config-check", "config-defaults", "metrics-manifest", "replay"} {
		if !names[want] {
			t.Fatalf("command %q missing (%v)", want, names)
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// --- keel.Main in a subprocess ---

const helperEnv = "KEEL_TEST_HELPER_MAIN"

// TestHelperMain is not a test: the subprocess tests re-execute the test
// binary with -test.run=TestHelperMain and helperEnv set to a mode, and
// this function then runs keel.Main, which exits the process.
func TestHelperMain(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("runs only as the subprocess of the keel.Main exit code tests")
	}
	var args []string
	if a := os.Getenv(helperEnv + "_ARGS"); a != "" {
		args = strings.Split(a, "\x1f")
	}
	os.Args = append([]string{os.Args[0]}, args...)
	dir, err := os.MkdirTemp("", "keel-helper-")
	if err != nil {
		t.Fatal(err)
	}
	app := keel.App{Name: "keelhelper", Run: func(ctx context.Context, rt *keel.Runtime) error {
		switch mode {
		case "fail":
			return errors.New("database unreachable: password=" + plantedPassword)
		case "serve":
			rt.MarkStarted()
			os.Stdout.WriteString("ready\n")
			<-ctx.Done()
			return nil
		case "hang":
			os.Stdout.WriteString("ready\n")
			<-ctx.Done()
			os.Stdout.WriteString("stopping\n")
			for {
				time.Sleep(time.Hour) // never returns
			}
		}
		return nil
	}}
	keel.Main(app,
		keel.WithConfigOptions(func(c *config.Options) {
			c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = dir, true, true, true
		}),
		keel.WithConfigWatch(config.WatchOptions{PollInterval: -1, DisableSIGHUP: true}),
		keel.WithOverrides(map[string]any{"admin.addr": "127.0.0.1:0", "lifecycle.prestop_delay": "-1s"}))
}

// helper starts the test binary as a keel service in mode with args.
func helper(t *testing.T, mode string, args ...string) (*exec.Cmd, *bufio.Scanner, *syncBuffer) {
	t.Helper()
	cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^TestHelperMain$")
	// GORACE: a race-enabled binary otherwise sleeps a second at exit.
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ARGS="+strings.Join(args, "\x1f"), "GORACE=atexit_sleep_ms=0")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out), stderr
}

func exitCode(t *testing.T, cmd *exec.Cmd, stderr *syncBuffer) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("wait: %v\n%s", err, stderr.String())
		return -1
	}
}

func expectLine(t *testing.T, sc *bufio.Scanner, want string) {
	t.Helper()
	for sc.Scan() {
		if sc.Text() == want {
			return
		}
	}
	t.Fatalf("the service never printed %q", want)
}

func TestMainExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	t.Run("clean_0", func(t *testing.T) {
		cmd, _, stderr := helper(t, "ok")
		if code := exitCode(t, cmd, stderr); code != keel.ExitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
	})
	t.Run("sigterm_0", func(t *testing.T) {
		cmd, out, stderr := helper(t, "serve", "run")
		expectLine(t, out, "ready")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd, stderr); code != keel.ExitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
		contains(t, stderr.String(), "service stopped cleanly", "stderr")
	})
	t.Run("failure_1", func(t *testing.T) {
		cmd, _, stderr := helper(t, "fail")
		if code := exitCode(t, cmd, stderr); code != keel.ExitError {
			t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
		}
		contains(t, stderr.String(), "database unreachable", "stderr")
		noSecrets(t, stderr.String())
	})
	t.Run("config_check_0", func(t *testing.T) {
		path := writeFile(t, "good.yaml", "database:\n  password: "+plantedPassword+"\n")
		cmd, out, stderr := helper(t, "ok", "config-check", "-c", path)
		var stdout strings.Builder
		for out.Scan() {
			stdout.WriteString(out.Text() + "\n")
		}
		if code := exitCode(t, cmd, stderr); code != keel.ExitOK {
			t.Fatalf("exit %d, want 0\n%s", code, stderr.String())
		}
		contains(t, stdout.String(), `"password": "[REDACTED]"`, "stdout")
		noSecrets(t, stdout.String(), stderr.String())
	})
	t.Run("config_check_1", func(t *testing.T) {
		path := writeFile(t, "bad.yaml", "memory:\n  pressure_threshold: 7\n")
		cmd, _, stderr := helper(t, "ok", "config-check", "-c", path)
		if code := exitCode(t, cmd, stderr); code != keel.ExitError {
			t.Fatalf("exit %d, want 1\n%s", code, stderr.String())
		}
		contains(t, stderr.String(), "memory.pressure_threshold", "stderr")
	})
	t.Run("forced_2", func(t *testing.T) {
		cmd, out, stderr := helper(t, "hang")
		expectLine(t, out, "ready")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		expectLine(t, out, "stopping")
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd, stderr); code != keel.ExitForced {
			t.Fatalf("exit %d, want 2\n%s", code, stderr.String())
		}
		contains(t, stderr.String(), "still_running", "stderr")
	})
}
