package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultContainerBase is the base of the runtime directories in a
// container, unless CONTAINER_BASE_PATH is set.
const DefaultContainerBase = "/app"

// DefaultAppName names the host directories when neither the caller nor
// APP_NAME gives a name.
const DefaultAppName = "app"

// Paths are the directories a service reads and writes at run time.
type Paths struct {
	Config string `json:"config"` // configuration files
	Data   string `json:"data"`   // durable data (spools, state)
	Cache  string `json:"cache"`  // data that may be deleted at any time
	Logs   string `json:"logs"`   // log files, when logging to files
	Tmp    string `json:"tmp"`    // scratch files
	Run    string `json:"run"`    // sockets and pid files
}

// All returns the directories in a fixed order: config, data, cache, logs,
// tmp, run.
func (p Paths) All() []string { return []string{p.Config, p.Data, p.Cache, p.Logs, p.Tmp, p.Run} }

// Ensure creates every directory (and its parents) with mode 0750. It
// returns the failures joined, each naming its directory.
func (p Paths) Ensure() error {
	var errs []error
	for _, dir := range p.All() {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			errs = append(errs, fmt.Errorf("platform: create runtime directory %s: %w (mount a writable volume there or set CONTAINER_BASE_PATH / XDG_*_HOME)", dir, err))
		}
	}
	return errors.Join(errs...)
}

// Paths returns the runtime directories for the application app (empty
// means APP_NAME, else "app"): the container layout when Environment is a
// container, the XDG layout otherwise. See the package documentation for
// the table.
func (d Detector) Paths(app string) Paths {
	if d.Environment().IsContainer() {
		base := d.getenv("CONTAINER_BASE_PATH")
		if base == "" || !filepath.IsAbs(base) {
			base = DefaultContainerBase
		}
		return ContainerPaths(base)
	}
	if app == "" {
		app = d.getenv("APP_NAME")
	}
	return d.hostPaths(sanitizeApp(app))
}

// ContainerPaths returns the container layout under base: base/config,
// base/data, base/cache, base/logs, base/tmp and base/run.
func ContainerPaths(base string) Paths {
	base = filepath.Clean(base)
	return Paths{
		Config: filepath.Join(base, "config"),
		Data:   filepath.Join(base, "data"),
		Cache:  filepath.Join(base, "cache"),
		Logs:   filepath.Join(base, "logs"),
		Tmp:    filepath.Join(base, "tmp"),
		Run:    filepath.Join(base, "run"),
	}
}

// sanitizeApp makes app safe as one path element.
func sanitizeApp(app string) string {
	app = strings.TrimSpace(app)
	app = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, app)
	if app == "" || app == "." || app == ".." {
		return DefaultAppName
	}
	return app
}

func (d Detector) hostPaths(app string) Paths {
	home := d.getenv("HOME")
	tmp := d.getenv("TMPDIR")
	if tmp == "" || !filepath.IsAbs(tmp) {
		tmp = "/tmp"
	}
	// xdg returns $key when it is an absolute path, else home/fallback.
	xdg := func(key, fallback string) string {
		if v := d.getenv(key); v != "" && filepath.IsAbs(v) {
			return v
		}
		if home == "" || !filepath.IsAbs(home) {
			// No home: keep everything together under the temp directory.
			return filepath.Join(tmp, app+"-home", filepath.FromSlash(fallback))
		}
		return filepath.Join(home, filepath.FromSlash(fallback))
	}
	run := filepath.Join(tmp, app, "run")
	if v := d.getenv("XDG_RUNTIME_DIR"); v != "" && filepath.IsAbs(v) {
		run = filepath.Join(v, app)
	}
	return Paths{
		Config: filepath.Join(xdg("XDG_CONFIG_HOME", ".config"), app),
		Data:   filepath.Join(xdg("XDG_DATA_HOME", ".local/share"), app),
		Cache:  filepath.Join(xdg("XDG_CACHE_HOME", ".cache"), app),
		Logs:   filepath.Join(xdg("XDG_STATE_HOME", ".local/state"), app, "logs"),
		Tmp:    filepath.Join(tmp, app),
		Run:    run,
	}
}
