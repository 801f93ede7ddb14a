package governor_test

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keel-go/keel"

// The packages of layers 1 (pillars) and 2 (runtime), the only ones a
// layer-2 package may depend on.
var lowerLayers = []string{
	"config", "secret", "logging", "metrics", "telemetry", "health", "lifecycle", "platform",
	"memory", "governor", "pool", "scaling", "codec", "expr", "strmatch",
}

// The governor is a layer-2 package: neither it nor anything it imports
// from this module, directly or through another package, belongs to a
// higher layer (transports, the engine, the runtime wiring). The receiver
// wrapper lives in transport/gated for that reason.
func TestImportsNoHigherLayer(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	via := map[string]string{module + "/governor": ""}
	queue := []string{module + "/governor"}
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		top, _, _ := strings.Cut(rel, "/")
		if rel == "" || !slices.Contains(lowerLayers, top) {
			chain := path
			for p := via[path]; p != ""; p = via[p] {
				chain = p + " -> " + chain
			}
			t.Fatalf("the governor depends on %s, above layer 2: %s", path, chain)
		}
		pkg, err := build.Default.ImportDir(filepath.Join(root, filepath.FromSlash(rel)), 0)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		for _, imp := range pkg.Imports {
			if imp != module && !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if _, seen := via[imp]; !seen {
				via[imp] = path
				queue = append(queue, imp)
			}
		}
	}
	if len(via) < 3 {
		t.Fatalf("walked only %v: the import walk is broken", via)
	}
}
