package logging

import (
	"encoding/json"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/metrics"
)

// envVars are every variable the package reads.
var envVars = []string{
	EnvLevel, EnvFormat, EnvNoColor, EnvService, EnvVersion, EnvPod,
	EnvHostname, EnvNamespace, EnvNode, EnvKubernetesHost,
}

// cleanEnv unsets the package's environment variables for the test and
// restores them afterwards.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range envVars {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

func testRegistry() *metrics.Registry {
	return metrics.New(metrics.Config{Namespace: "test", NoRuntimeCollectors: true})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// jsonLines parses every line as one JSON object, failing the test on
// anything else.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line is not one JSON object: %v\n%s", err, line)
		}
		res = append(res, m)
	}
	return res
}

func oneJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := jsonLines(t, out)
	if len(lines) != 1 {
		t.Fatalf("want 1 line, got %d:\n%s", len(lines), out)
	}
	return lines[0]
}

func ptr[T any](v T) *T { return &v }

// ttyWriter looks like a terminal to the format detection.
type ttyWriter struct{ syncBuffer }

func (*ttyWriter) Stat() (os.FileInfo, error) {
	return fakeInfo{os.ModeDevice | os.ModeCharDevice}, nil
}

// fileWriter looks like a regular file.
type fileWriter struct{ syncBuffer }

func (*fileWriter) Stat() (os.FileInfo, error) { return fakeInfo{0}, nil }

type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "fake" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return nil }
