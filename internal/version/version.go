// Package version says which halfopen, kernel and Go a report was made
// with, in one place for every report writer (run, suites, gates).
package version

import (
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/halfopen/halfopen/report"
	"github.com/halfopen/halfopen/tcprules"
)

// Version is halfopen's release version.
const Version = "0.1.0"

// String returns the version with the VCS revision when the binary
// was built from a checkout.
func String() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// Kernel returns the running kernel's release.
func Kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}

// GoVersion returns the Go version the binary was built with.
func GoVersion() string { return runtime.Version() }

// Environment is the report's environment block for this process, with
// the kernel tick its forecasts count in.
func Environment() report.Environment {
	tick := tcprules.KernelTick()
	return report.Environment{Kernel: Kernel(), Tick: &tick, Go: GoVersion(), Halfopen: String()}
}
