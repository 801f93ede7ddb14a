package metrics

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// buildTime is the time the binary was built, set by the linker:
//
//	go build -ldflags "-X github.com/keel-go/keel/metrics.buildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
//
// Go's build info records the commit time (vcs.time) but not when the
// binary was built: without the flag the build time is unknown.
var buildTime string

// BuildTimeVar is the linker symbol that sets BuildInfo.BuildTime, for
// -ldflags "-X <BuildTimeVar>=<time>".
const BuildTimeVar = "github.com/keel-go/keel/metrics.buildTime"

// BuildInfo is what the binary knows about its own build.
type BuildInfo struct {
	// Module is the main module path.
	Module string
	// Version is the main module version ("(devel)" for local builds).
	Version string
	// Revision is the VCS commit, when the build recorded it.
	Revision string
	// Time is the VCS commit time, when recorded.
	Time string
	// BuildTime is when the binary was built, when the build set it with
	// -ldflags "-X <BuildTimeVar>=<time>"; Go does not record it itself.
	BuildTime string
	// Modified reports uncommitted changes at build time.
	Modified bool
	// GoVersion is the Go toolchain version.
	GoVersion string
}

// ReadBuildInfo reads the build information embedded in the binary and
// the build time set by the linker (see BuildTimeVar).
func ReadBuildInfo() BuildInfo {
	bi := BuildInfo{GoVersion: runtime.Version(), Version: "unknown", BuildTime: buildTime}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	bi.Module = info.Main.Path
	if info.Main.Version != "" {
		bi.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.Time = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi
}

func registerBuildInfo(r *Registry) {
	bi := ReadBuildInfo()
	g := r.register(Opts{
		Namespace: "keel", Name: "build_info",
		Help:  "Build information of the running binary; the value is always 1.",
		Group: "runtime",
	}, kindGauge, nil, []string{"version", "revision", "go_version"}, func(po prometheus.Opts) prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts(po), []string{"version", "revision", "go_version"})
	}).(*prometheus.GaugeVec)
	g.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
}
