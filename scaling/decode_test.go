package scaling_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/keel-go/keel/scaling"
)

// The koanf tags decode the documented YAML section.
func TestConfigDecodesFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.yaml")
	doc := `
scaling:
  enabled: false
  weights: { lag: 0.5, cpu: 0 }
  memory_gate: 0.8
  lag_full: 5000
  expression: "max(cpu, lag) * 100"
  interval: 2s
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	var c scaling.Config
	if err := k.Unmarshal(scaling.Section, &c); err != nil {
		t.Fatal(err)
	}
	if c.IsEnabled() || c.Weights["lag"] != 0.5 || c.Weights["cpu"] != 0 || len(c.Weights) != 2 ||
		c.MemoryGate != 0.8 || c.LagFull != 5000 || c.Expression != "max(cpu, lag) * 100" || c.Interval != 2*time.Second {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// An absent section is the zero Config: enabled, with defaults.
	var empty scaling.Config
	if err := k.Unmarshal("nothing_here", &empty); err != nil || !empty.IsEnabled() {
		t.Fatalf("absent section: %+v %v", empty, err)
	}
}
