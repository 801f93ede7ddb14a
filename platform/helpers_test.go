package platform

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeRoot writes files (path relative to the root -> content) into a new
// temporary directory and returns it. A path ending in "/" makes a
// directory.
func fakeRoot(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if rel[len(rel)-1] == '/' {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// envMap returns a Getenv that reads only m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// detector returns a Detector over a fake root and a fake environment.
func detector(t testing.TB, files map[string]string, env map[string]string) Detector {
	t.Helper()
	return Detector{Root: fakeRoot(t, files), Getenv: envMap(env)}
}
