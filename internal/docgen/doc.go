// Package docgen renders the generated reference pages of docs/:
// docs/configuration.md from the output of the config-defaults command and
// docs/metrics.md from the metrics manifest.
//
// Both pages come from the code, never from a hand-kept list, and are
// deterministic: sections, keys and metrics are sorted, the environment
// layer is never read, and values that depend on the machine are left out
// or replaced by a placeholder (see Configuration and Metrics). The test
// TestDocs at the repository root regenerates them in memory and fails
// when the committed files differ; `go run ./internal/docgen/cmd/docgen`
// (or `KEEL_UPDATE_DOCS=1 go test -run TestDocs .`) rewrites them.
package docgen
