package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/metrics"
)

// recorder is a Spec whose handlers record what they were called with.
type recorder struct {
	called string
	flags  cli.Flags
	format string
}

func (r *recorder) spec(env map[string]string) cli.Spec {
	handler := func(name string) cli.Handler {
		return func(_ context.Context, f *cli.Flags, stdout, _ io.Writer) error {
			r.called, r.flags = name, *f
			_, err := io.WriteString(stdout, name+" ran\n")
			return err
		}
	}
	return cli.Spec{
		Name:            "svc",
		Version:         "1.2.3",
		Run:             handler(cli.CommandRun),
		ConfigCheck:     handler(cli.CommandConfigCheck),
		MetricsManifest: handler(cli.CommandMetricsManifest),
		ConfigDefaults: func(_ context.Context, f *cli.Flags, format string, stdout, _ io.Writer) error {
			r.called, r.flags, r.format = cli.CommandConfigDefaults, *f, format
			return nil
		},
		Getenv: func(k string) string { return env[k] },
		BuildInfo: func() metrics.BuildInfo {
			return metrics.BuildInfo{Module: "example.com/svc", Version: "v0.0.0-dev", Revision: "abc123", Modified: true,
				Time: "2026-01-02T03:04:05Z", GoVersion: "go1.26.0"}
		},
	}
}

// execute runs the command line args in-process and captures both writers.
func execute(t *testing.T, spec cli.Spec, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root, _, nerr := cli.New(spec)
	if nerr != nil {
		t.Fatal(nerr)
	}
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestRunIsTheDefaultCommand(t *testing.T) {
	for _, args := range [][]string{nil, {"run"}, {"run", "-c", "x.yaml"}, {"-c", "x.yaml"}} {
		var r recorder
		out, _, err := execute(t, r.spec(nil), args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if r.called != cli.CommandRun || out != "run ran\n" {
			t.Fatalf("%v: called %q, output %q", args, r.called, out)
		}
		if r.flags.Set == nil {
			t.Fatalf("%v: Flags.Set not recorded", args)
		}
	}
}

func TestStandardCommandsDispatch(t *testing.T) {
	for _, name := range []string{cli.CommandConfigCheck, cli.CommandMetricsManifest, cli.CommandConfigDefaults} {
		var r recorder
		if _, _, err := execute(t, r.spec(nil), name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.called != name {
			t.Fatalf("%s dispatched to %q", name, r.called)
		}
	}
	var r recorder
	if _, _, err := execute(t, r.spec(nil), cli.CommandConfigDefaults, "--format", "JSON"); err != nil || r.format != cli.FormatJSON {
		t.Fatalf("format %q, err %v", r.format, err)
	}
	if _, _, err := execute(t, r.spec(nil), cli.CommandConfigDefaults, "--format", "toml"); !errors.Is(err, cli.ErrInvalidFlag) ||
		!strings.Contains(err.Error(), "--format") {
		t.Fatalf("bad format: %v", err)
	}
}

func TestMissingHandlersLeaveCommandsOut(t *testing.T) {
	spec := cli.Spec{Name: "svc", Run: func(context.Context, *cli.Flags, io.Writer, io.Writer) error { return nil }}
	root, _, err := cli.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range root.Commands() {
		if c.Name() == cli.CommandConfigCheck {
			t.Fatal("config-check present without a handler")
		}
	}
	if _, _, err := cli.New(cli.Spec{Name: "svc"}); !errors.Is(err, cli.ErrNoRun) {
		t.Fatalf("New without Run: %v", err)
	}
}

func TestUnknownCommandAndArgsAreErrors(t *testing.T) {
	var r recorder
	if _, _, err := execute(t, r.spec(nil), "frobnicate"); err == nil || r.called != "" {
		t.Fatalf("unknown command: err %v, called %q", err, r.called)
	}
	if _, _, err := execute(t, r.spec(nil), "run", "extra"); err == nil || r.called != "" {
		t.Fatalf("stray argument: err %v, called %q", err, r.called)
	}
	if _, _, err := execute(t, r.spec(nil), "--no-such-flag"); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestEnvironmentFallbacks(t *testing.T) {
	env := map[string]string{
		cli.EnvConfigFile:  "/etc/svc/env.yaml",
		cli.EnvLogLevel:    "warn",
		cli.EnvLogFormat:   "json",
		cli.EnvMetricsAddr: "127.0.0.1:9191",
	}
	var r recorder
	if _, _, err := execute(t, r.spec(env)); err != nil {
		t.Fatal(err)
	}
	f := r.flags
	if f.ConfigFile != "/etc/svc/env.yaml" || f.LogLevel != "warn" || f.LogFormat != "json" || f.MetricsAddr != "127.0.0.1:9191" {
		t.Fatalf("env fallbacks not applied: %+v", f)
	}
	if f.Sources[cli.FlagLogLevel] != "env LOG_LEVEL" {
		t.Fatalf("sources %v", f.Sources)
	}

	// A flag wins over its variable.
	r = recorder{}
	if _, _, err := execute(t, r.spec(env), "--config", "/tmp/flag.yaml", "--log-level=debug", "--metrics-addr", ":1"); err != nil {
		t.Fatal(err)
	}
	f = r.flags
	if f.ConfigFile != "/tmp/flag.yaml" || f.LogLevel != "debug" || f.MetricsAddr != ":1" || f.LogFormat != "json" {
		t.Fatalf("flags did not win: %+v", f)
	}
	if f.Sources[cli.FlagConfig] != "flag --config" {
		t.Fatalf("sources %v", f.Sources)
	}
}

// TestConfigCheckStrict: --strict, or CONFIG_STRICT, reaches the
// config-check handler; the flag wins over the variable, a bad variable
// is an error naming it, and the variable does not touch other commands.
func TestConfigCheckStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want bool
		src  string
	}{
		{"off", nil, []string{cli.CommandConfigCheck}, false, ""},
		{"flag", nil, []string{cli.CommandConfigCheck, "--strict"}, true, "flag --strict"},
		{"env", map[string]string{cli.EnvConfigStrict: "1"}, []string{cli.CommandConfigCheck}, true, "env CONFIG_STRICT"},
		{"flag wins", map[string]string{cli.EnvConfigStrict: "true"}, []string{cli.CommandConfigCheck, "--strict=false"}, false, "flag --strict"},
		{"other command", map[string]string{cli.EnvConfigStrict: "1"}, []string{cli.CommandRun}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r recorder
			if _, _, err := execute(t, r.spec(tc.env), tc.args...); err != nil {
				t.Fatal(err)
			}
			if r.flags.Strict != tc.want || r.flags.Sources[cli.FlagStrict] != tc.src {
				t.Fatalf("Strict %v from %q, want %v from %q", r.flags.Strict, r.flags.Sources[cli.FlagStrict], tc.want, tc.src)
			}
		})
	}
	var r recorder
	_, _, err := execute(t, r.spec(map[string]string{cli.EnvConfigStrict: "sometimes"}), cli.CommandConfigCheck)
	if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), cli.EnvConfigStrict) {
		t.Fatalf("bad CONFIG_STRICT: %v", err)
	}
	if _, _, err := execute(t, r.spec(nil), cli.CommandRun, "--strict"); err == nil {
		t.Fatal("--strict is accepted by run; it belongs to config-check")
	}
	if !cli.IsStandard(cli.FlagStrict) {
		t.Fatal("--strict would be mapped to a config key")
	}
}

func TestVerboseAndQuiet(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--log-level", "error"}, "error"},
		{[]string{"-v"}, "debug"},
		{[]string{"-q"}, "warn"},
		{[]string{"-v", "--log-level", "error"}, "debug"},
	}
	for _, c := range cases {
		var r recorder
		if _, _, err := execute(t, r.spec(nil), c.args...); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := r.flags.Level(); got != c.want {
			t.Fatalf("%v: level %q, want %q", c.args, got, c.want)
		}
	}
	var r recorder
	_, _, err := execute(t, r.spec(nil), "-v", "-q")
	if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), "--quiet") || r.called != "" {
		t.Fatalf("-v -q: %v (called %q)", err, r.called)
	}
}

func TestVerboseAndQuietEnvironmentFallbacks(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		want   string
		source map[string]string // flag name -> recorded source
	}{
		{"LOG_VERBOSE", map[string]string{cli.EnvVerbose: "1"}, nil, "debug", map[string]string{cli.FlagVerbose: "env LOG_VERBOSE"}},
		{"LOG_QUIET", map[string]string{cli.EnvQuiet: "true"}, nil, "warn", map[string]string{cli.FlagQuiet: "env LOG_QUIET"}},
		{"off", map[string]string{cli.EnvVerbose: "0", cli.EnvQuiet: "false"}, nil, "", nil},
		{"over LOG_LEVEL", map[string]string{cli.EnvVerbose: "1", cli.EnvLogLevel: "error"}, nil, "debug", nil},
		// A flag wins over the variables.
		{"-q over LOG_VERBOSE", map[string]string{cli.EnvVerbose: "1"}, []string{"-q"}, "warn", map[string]string{cli.FlagQuiet: "flag --quiet"}},
		{"-v over LOG_QUIET", map[string]string{cli.EnvQuiet: "1"}, []string{"-v"}, "debug", map[string]string{cli.FlagVerbose: "flag --verbose"}},
		{"--log-level over LOG_VERBOSE", map[string]string{cli.EnvVerbose: "1"}, []string{"--log-level", "error"}, "error", nil},
		{"--verbose=false over LOG_VERBOSE", map[string]string{cli.EnvVerbose: "1"}, []string{"--verbose=false"}, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r recorder
			if _, _, err := execute(t, r.spec(c.env), c.args...); err != nil {
				t.Fatal(err)
			}
			if got := r.flags.Level(); got != c.want {
				t.Fatalf("level %q, want %q (flags %+v)", got, c.want, r.flags)
			}
			for flag, want := range c.source {
				if got := r.flags.Sources[flag]; got != want {
					t.Fatalf("source of %s %q, want %q", flag, got, want)
				}
			}
		})
	}
	// Both variables on exclude each other, named as variables.
	var r recorder
	_, _, err := execute(t, r.spec(map[string]string{cli.EnvVerbose: "1", cli.EnvQuiet: "1"}))
	if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), "env LOG_VERBOSE") ||
		!strings.Contains(err.Error(), "env LOG_QUIET") || r.called != "" {
		t.Fatalf("LOG_VERBOSE and LOG_QUIET: %v (called %q)", err, r.called)
	}
	// A value that is not a boolean names the variable and the fix.
	r = recorder{}
	_, _, err = execute(t, r.spec(map[string]string{cli.EnvQuiet: "loud"}))
	if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), `env LOG_QUIET is "loud"`) || r.called != "" {
		t.Fatalf("LOG_QUIET=loud: %v (called %q)", err, r.called)
	}
}

func TestBadValuesNameTheirSource(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--log-level", "loud"}, "flag --log-level"},
		{map[string]string{cli.EnvLogLevel: "loud"}, nil, "env LOG_LEVEL"},
		{map[string]string{cli.EnvLogFormat: "xml"}, nil, "env LOG_FORMAT"},
		{nil, []string{"--metrics-addr", "9090"}, "flag --metrics-addr"},
		{map[string]string{cli.EnvMetricsAddr: "nohost"}, nil, "env METRICS_ADDR"},
	}
	for _, c := range cases {
		var r recorder
		_, _, err := execute(t, r.spec(c.env), c.args...)
		if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v %v: %v, want an error naming %s", c.env, c.args, err, c.want)
		}
		if r.called != "" {
			t.Fatalf("%v %v: handler ran with a bad value", c.env, c.args)
		}
	}
}

func TestVersionPrintsBuildInfo(t *testing.T) {
	var r recorder
	spec := r.spec(nil)
	spec.KeelVersion = func() string { return "v0.9.0" }
	out, _, err := execute(t, spec, "version")
	if err != nil {
		t.Fatal(err)
	}
	// The service's version does not hide the module's, nor keel's.
	want := "svc 1.2.3\n" +
		"app version:    1.2.3\n" +
		"module:         example.com/svc\n" +
		"module version: v0.0.0-dev\n" +
		"keel version:   v0.9.0\n" +
		"commit:         abc123 (modified)\n" +
		"commit time:    2026-01-02T03:04:05Z\n" +
		"go:             go1.26.0\n"
	if out != want {
		t.Fatalf("version output:\n%s\nwant:\n%s", out, want)
	}
	// Without a service version the module version is printed, and what
	// the build did not record is "unknown".
	var b bytes.Buffer
	if err := cli.PrintVersion(&b, "svc", "", metrics.BuildInfo{Version: "v1.0.0"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"svc v1.0.0\n", "app version:    v1.0.0\n", "module version: v1.0.0\n",
		"keel version:   unknown\n", "commit:         unknown\n"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("version output lacks %q:\n%s", want, b.String())
		}
	}
	// The real build info of this test binary, whose main module is keel.
	b.Reset()
	if err := cli.PrintVersion(&b, "svc", "", metrics.ReadBuildInfo(), cli.KeelVersion()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "go:             go1.") {
		t.Fatalf("real build info lacks the Go version:\n%s", b.String())
	}
	if bi := metrics.ReadBuildInfo(); bi.Module == cli.KeelModule && cli.KeelVersion() != bi.Version {
		t.Fatalf("keel is the main module: KeelVersion %q, want the module version %q", cli.KeelVersion(), bi.Version)
	}
	if cli.KeelVersion() == "" {
		t.Fatal("KeelVersion is empty")
	}
}

// TestVersionPrintsTheBuildTime: the build time line appears only when
// the build info has one, between the commit time and the Go version.
func TestVersionPrintsTheBuildTime(t *testing.T) {
	var b bytes.Buffer
	bi := metrics.BuildInfo{Version: "v1.0.0", Time: "2026-01-02T03:04:05Z", BuildTime: "2026-01-03T09:00:00Z", GoVersion: "go1.26.0"}
	if err := cli.PrintVersion(&b, "svc", "", bi, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "commit time:    2026-01-02T03:04:05Z\nbuild time:     2026-01-03T09:00:00Z\ngo:             go1.26.0\n") {
		t.Fatalf("version output lacks the build time:\n%s", b.String())
	}
	b.Reset()
	bi.BuildTime = ""
	if err := cli.PrintVersion(&b, "svc", "", bi, ""); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "build time") {
		t.Fatalf("a build without a build time prints one:\n%s", b.String())
	}
}

// TestVersionBuildTimeFromLinker builds a small service with
// -ldflags "-X metrics.buildTime=..." and checks that its version command
// prints that time.
func TestVersionBuildTimeFromLinker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	goTool, err := exec.LookPath(filepath.Join(runtime.GOROOT(), "bin", "go"))
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	const when = "2026-01-03T09:00:00Z"
	bin := filepath.Join(t.TempDir(), "versioncmd")
	build := exec.Command(goTool, "build", "-ldflags", "-X "+metrics.BuildTimeVar+"="+when, "-o", bin, "./testdata/versioncmd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "build time:     "+when+"\n") {
		t.Fatalf("version output lacks the linker's build time:\n%s", out)
	}
}

func TestServiceFlagsAndCommands(t *testing.T) {
	var r recorder
	spec := r.spec(map[string]string{cli.EnvLogLevel: "error"})
	var port int
	spec.Flags = func(fs *pflag.FlagSet) { fs.IntVar(&port, "server.port", 8080, "port") }
	var replayFlags *cli.Flags
	var flagsOut *cli.Flags
	spec.Commands = []*cobra.Command{{
		Use: "replay",
		RunE: func(cmd *cobra.Command, _ []string) error {
			replayFlags = flagsOut
			return nil
		},
	}}
	root, f, err := cli.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	flagsOut = f
	root.SetArgs([]string{"replay", "--server.port", "9000", "-c", "a.yaml"})
	root.SetOut(io.Discard)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if replayFlags == nil || port != 9000 {
		t.Fatalf("service command or flag not wired (port %d)", port)
	}
	// The root's pre-run resolved the standard flags for the service's
	// command too.
	if replayFlags.ConfigFile != "a.yaml" || replayFlags.LogLevel != "error" {
		t.Fatalf("standard flags in a service command: %+v", replayFlags)
	}
	if fl := replayFlags.Set.Lookup("server.port"); fl == nil || !fl.Changed {
		t.Fatal("service flag missing from Flags.Set")
	}
}

func TestHandlerErrorIsReturnedNotPrinted(t *testing.T) {
	boom := errors.New("boom")
	spec := cli.Spec{Name: "svc", Run: func(context.Context, *cli.Flags, io.Writer, io.Writer) error { return boom }}
	out, errOut, err := execute(t, spec)
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if out != "" || errOut != "" {
		t.Fatalf("the package printed on error: stdout %q stderr %q", out, errOut)
	}
}

func TestIsStandard(t *testing.T) {
	for _, n := range []string{"config", "log-level", "log-format", "metrics-addr", "verbose", "quiet", "help"} {
		if !cli.IsStandard(n) {
			t.Fatalf("%s not standard", n)
		}
	}
	if cli.IsStandard("server.port") {
		t.Fatal("a service flag counted as standard")
	}
}
