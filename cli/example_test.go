package cli_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/keel-go/keel/cli"
)

// New builds the command line of a service; with no command, the service
// runs. The standard flags fall back to their environment variables.
func ExampleNew() {
	root, _, err := cli.New(cli.Spec{
		Name: "orders",
		Run: func(_ context.Context, f *cli.Flags, stdout, _ io.Writer) error {
			fmt.Fprintf(stdout, "running with config %q at level %q\n", f.ConfigFile, f.Level())
			return nil
		},
		Getenv: func(string) string { return "" }, // ignore the real environment here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	root.SetOut(os.Stdout)
	root.SetArgs([]string{"-c", "orders.yaml", "-v"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: running with config "orders.yaml" at level "debug"
}
