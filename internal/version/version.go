// Package version says which build this is, for `ztunnel version`, the dump and metrics.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version is set at link time: -ldflags "-X github.com/ztunnel-go/ztunnel/internal/version.Version=1.0.0".
var Version = "0.0.0-dev"

// Revision, set at link time as Version is (deploy/image does), is the git revision
// for builds the toolchain cannot stamp (-buildvcs=false, or a tree without .git).
var Revision = ""

// Info describes the running binary.
type Info struct {
	Version     string
	GitRevision string // "unknown" when built without VCS stamping
	GoVersion   string
	BuildStatus string // "Clean", "Modified" or "unknown"
}

// Get reads the build information the Go toolchain embedded.
func Get() Info {
	info := Info{Version: Version, GitRevision: Revision, GoVersion: runtime.Version(), BuildStatus: "unknown"}
	if info.GitRevision == "" {
		info.GitRevision = "unknown"
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if Revision == "" {
				info.GitRevision = s.Value
			}
		case "vcs.modified":
			info.BuildStatus = map[string]string{"true": "Modified", "false": "Clean"}[s.Value]
		}
	}
	return info
}
