package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision are stamped at build time, for example:
//
//	go build -ldflags "-X main.version=1.4.0 -X main.revision=$(git rev-parse --short HEAD)" ./cmd/aoba
//
// Left empty, Build falls back to what the Go toolchain recorded.
var version, revision string

// BuildInfo says which build of the program runs: `aoba --version`, the
// aoba_build_info metric and the start-up log line report it.
type BuildInfo struct {
	Version   string
	Revision  string
	GoVersion string
}

// String returns "aoba <version> (<revision>, <go version>)".
func (b BuildInfo) String() string {
	return fmt.Sprintf("aoba %s (%s, %s)", b.Version, b.Revision, b.GoVersion)
}

// Build returns the running program's BuildInfo: the stamped version and
// revision or, when they were not stamped, the module version and VCS
// revision that debug.ReadBuildInfo reports ("devel" and "unknown" when
// it has neither, as in `go run` or a build with -buildvcs=false).
func Build() BuildInfo {
	b := BuildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		if b.Revision == "" {
			var rev, modified string
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			b.Revision = rev
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
}

// buildInfoGauge returns the aoba_build_info gauge: always 1, labelled
// with the build's version, revision and Go version, so that dashboards
// and alerts can tell which build each pod runs.
func buildInfoGauge(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "aoba_build_info",
		Help:        "The running build of aoba: always 1, labelled with version, revision and goversion.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
