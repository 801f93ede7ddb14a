// Command docgen rewrites docs/configuration.md and docs/metrics.md from
// the code. Run it from the repository root: go run ./internal/docgen/cmd/docgen
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/keel-go/keel/internal/docgen"
)

func main() {
	if err := docgen.Write(context.Background(), "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
