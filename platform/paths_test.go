package platform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestContainerPaths(t *testing.T) {
	want := Paths{Config: "/app/config", Data: "/app/data", Cache: "/app/cache", Logs: "/app/logs", Tmp: "/app/tmp", Run: "/app/run"}
	for name, files := range map[string]map[string]string{
		"docker":     {".dockerenv": ""},
		"kubernetes": {"var/run/secrets/kubernetes.io/serviceaccount/": ""},
	} {
		if got := detector(t, files, map[string]string{"XDG_CONFIG_HOME": "/home/u/.config"}).Paths("orders"); got != want {
			t.Errorf("%s: Paths = %+v", name, got)
		}
	}
	d := detector(t, map[string]string{".dockerenv": ""}, map[string]string{"CONTAINER_BASE_PATH": "/srv/svc/"})
	if got := d.Paths("x"); got.Config != "/srv/svc/config" || got.Run != "/srv/svc/run" {
		t.Errorf("CONTAINER_BASE_PATH not honoured: %+v", got)
	}
	d = detector(t, map[string]string{".dockerenv": ""}, map[string]string{"CONTAINER_BASE_PATH": "relative/base"})
	if got := d.Paths("x"); got.Config != "/app/config" {
		t.Errorf("relative CONTAINER_BASE_PATH must be ignored: %+v", got)
	}
}

func TestHostPaths(t *testing.T) {
	tests := []struct {
		name string
		app  string
		env  map[string]string
		want Paths
	}{
		{"xdg defaults from HOME", "orders", map[string]string{"HOME": "/home/u"}, Paths{
			Config: "/home/u/.config/orders", Data: "/home/u/.local/share/orders", Cache: "/home/u/.cache/orders",
			Logs: "/home/u/.local/state/orders/logs", Tmp: "/tmp/orders", Run: "/tmp/orders/run"}},
		{"xdg variables", "orders", map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "/c", "XDG_DATA_HOME": "/d",
			"XDG_CACHE_HOME": "/k", "XDG_STATE_HOME": "/s", "XDG_RUNTIME_DIR": "/run/user/1000", "TMPDIR": "/var/tmp"}, Paths{
			Config: "/c/orders", Data: "/d/orders", Cache: "/k/orders", Logs: "/s/orders/logs", Tmp: "/var/tmp/orders", Run: "/run/user/1000/orders"}},
		{"relative xdg values are ignored", "orders", map[string]string{"HOME": "/home/u", "XDG_CONFIG_HOME": "cfg", "TMPDIR": "tmp"}, Paths{
			Config: "/home/u/.config/orders", Data: "/home/u/.local/share/orders", Cache: "/home/u/.cache/orders",
			Logs: "/home/u/.local/state/orders/logs", Tmp: "/tmp/orders", Run: "/tmp/orders/run"}},
		{"app from APP_NAME", "", map[string]string{"HOME": "/h", "APP_NAME": "billing"}, Paths{
			Config: "/h/.config/billing", Data: "/h/.local/share/billing", Cache: "/h/.cache/billing",
			Logs: "/h/.local/state/billing/logs", Tmp: "/tmp/billing", Run: "/tmp/billing/run"}},
		{"default app name", "", map[string]string{"HOME": "/h"}, Paths{
			Config: "/h/.config/app", Data: "/h/.local/share/app", Cache: "/h/.cache/app",
			Logs: "/h/.local/state/app/logs", Tmp: "/tmp/app", Run: "/tmp/app/run"}},
		{"no home keeps everything under tmp", "x", nil, Paths{
			Config: "/tmp/x-home/.config/x", Data: "/tmp/x-home/.local/share/x", Cache: "/tmp/x-home/.cache/x",
			Logs: "/tmp/x-home/.local/state/x/logs", Tmp: "/tmp/x", Run: "/tmp/x/run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detector(t, nil, tt.env).Paths(tt.app); got != tt.want {
				t.Fatalf("Paths(%q) =\n%+v\nwant\n%+v", tt.app, got, tt.want)
			}
		})
	}
}

func TestHostPathsAppNameCannotEscape(t *testing.T) {
	for _, app := range []string{"../../etc", "..", ".", "a/b", `a\b`, " "} {
		p := detector(t, nil, map[string]string{"HOME": "/h"}).Paths(app)
		for _, dir := range p.All() {
			if filepath.Clean(dir) != dir || slices.Contains(strings.Split(dir, "/"), "..") || !(strings.HasPrefix(dir, "/h/") || strings.HasPrefix(dir, "/tmp/")) {
				t.Errorf("app %q gives %q", app, dir)
			}
		}
		if strings.Count(p.Config, "/") != 3 {
			t.Errorf("app %q is not one path element: %q", app, p.Config)
		}
	}
}

func TestPathsEnsure(t *testing.T) {
	base := t.TempDir()
	p := ContainerPaths(base)
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range p.All() {
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() {
			t.Fatalf("%s not created: %v", dir, err)
		}
	}
	// A file where a directory must go: the error names it.
	blocked := t.TempDir()
	if err := os.WriteFile(filepath.Join(blocked, "data"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := ContainerPaths(blocked).Ensure()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(blocked, "data")) {
		t.Fatalf("Ensure with a file in the way: %v", err)
	}
}
