// Command versioncmd is a service with only the standard command line,
// built by the cli tests with -ldflags to check what version prints.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/keel-go/keel/cli"
)

func main() {
	root, _, err := cli.New(cli.Spec{
		Name: "versioncmd",
		Run:  func(context.Context, *cli.Flags, io.Writer, io.Writer) error { return nil },
	})
	if err == nil {
		err = root.Execute()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
