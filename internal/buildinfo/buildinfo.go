// Package buildinfo holds what the build stamped into the binary. Values are
// set with -ldflags "-X github.com/zhiyin/zhiyin/internal/buildinfo.Version=…"
// by the Makefile; a plain `go build` leaves the defaults.
package buildinfo

import "runtime"

// These are link-time constants in spirit: only the linker writes them.
var (
	// Version is the release version, e.g. "0.1.0".
	Version = "0.0.0-dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Date is the build time in RFC 3339.
	Date = "unknown"
)

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }
