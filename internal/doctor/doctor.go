// Package doctor defines the result of one `zhiyin doctor` check and prints a
// list of them. Components produce checks (the inference package for the ONNX
// Runtime, CUDA and models; the store for the database); cmd/zhiyin collects
// and prints them. It does no I/O of its own beyond writing the report.
package doctor

import (
	"fmt"
	"io"
)

// Check is the outcome of one doctor check.
type Check struct {
	// Name is short and stable, e.g. "ONNX Runtime", "CUDA", "data dir".
	Name string `json:"name"`
	// OK is true when the check passed.
	OK bool `json:"ok"`
	// Optional checks print ✗ when they fail but do not fail the run: what
	// they test is not needed by the current configuration (CUDA on a
	// configuration that runs on the CPU).
	Optional bool `json:"optional,omitempty"`
	// Detail is what was found: a version, a path, a count, the reason.
	Detail string `json:"detail"`
	// Fix is one line saying what to do when the check failed.
	Fix string `json:"fix,omitempty"`
}

// Failed reports whether c should make the run fail.
func (c Check) Failed() bool { return !c.OK && !c.Optional }

// Print writes one ✓/✗ line per check, with its fix under a failed one, and
// reports whether any non-optional check failed.
func Print(w io.Writer, checks []Check) (failed bool) {
	for _, c := range checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
		if c.Failed() {
			failed = true
		}
	}
	return failed
}
