package cli_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/logging"
)

// FuzzResolve feeds arbitrary environment values to the fallbacks: Resolve
// never panics, and either accepts values the logger and the admin server
// can use or refuses them with ErrInvalidFlag naming the variable.
func FuzzResolve(f *testing.F) {
	for _, s := range [][3]string{
		{"info", "json", ":9090"}, {"DEBUG-4", "pretty", "127.0.0.1:0"}, {"", "", ""},
		{"loud", "xml", "9090"}, {"warn\n", " text ", "[::1]:80"}, {"\x00", "\xff", "a:b:c"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, level, format, addr string) {
		env := map[string]string{cli.EnvLogLevel: level, cli.EnvLogFormat: format, cli.EnvMetricsAddr: addr}
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		var fl cli.Flags
		fl.Register(fs)
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		err := fl.Resolve(fs, func(k string) string { return env[k] })
		if err != nil {
			if !errors.Is(err, cli.ErrInvalidFlag) || !strings.Contains(err.Error(), "env ") {
				t.Fatalf("error %v does not name its variable", err)
			}
			return
		}
		if fl.LogLevel != "" {
			if _, perr := logging.ParseLevel(fl.LogLevel); perr != nil {
				t.Fatalf("accepted level %q", fl.LogLevel)
			}
		}
		if fl.LogFormat != "" {
			if _, perr := logging.ParseFormat(fl.LogFormat); perr != nil {
				t.Fatalf("accepted format %q", fl.LogFormat)
			}
		}
	})
}
