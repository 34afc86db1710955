// Command halfopen measures how fast dead-peer detection strategies notice
// that a TCP peer is gone, and how often they wrongly decide that a healthy
// one is, on real Linux TCP stacks in network namespaces.
//
// The command line is built with spf13/cobra: it gives flags before or after
// arguments, per-command help with examples, and nested commands, which the
// standard library's flag package does not.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	_ "github.com/halfopen/halfopen/detectors"
	_ "github.com/halfopen/halfopen/faults"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/report"
	_ "github.com/halfopen/halfopen/roles" // budgets and reports may name role cells
)

// Exit codes.
const (
	exitOK         = 0
	exitRegression = 1 // a regression or a broken budget
	exitBadInput   = 2 // bad input, or a machine that cannot run the lab
)

// exitError carries an exit code with the one-sentence error for the user.
type exitError struct {
	code int
	err  error
}

// Error is the one sentence shown to the user.
func (e *exitError) Error() string { return e.err.Error() }

// Unwrap gives the underlying error to errors.Is and errors.As.
func (e *exitError) Unwrap() error { return e.err }

// badInput marks an error as the user's input (exit 2).
func badInput(err error) error { return &exitError{code: exitBadInput, err: err} }

// failed marks a regression or broken budget (exit 1).
func failed(err error) error { return &exitError{code: exitRegression, err: err} }

func main() {
	// The harness re-executes this binary inside lab hosts as its agents.
	harness.MaybeRunAgent()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "halfopen:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ie *report.InputError
	if errors.As(err, &ie) || errors.Is(err, harness.ErrUnfit) {
		return exitBadInput
	}
	// Anything cobra itself rejects (unknown flag or command) is bad input.
	return exitBadInput
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "halfopen",
		Short: "Measure how fast TCP dead-peer detectors notice a dead peer, on real kernels",
		Long: `halfopen puts dead-peer detection strategies (read EOF, keepalive, TCP_USER_TIMEOUT,
heart-beats, ...) through scripted failures (cable pulls, host crashes, blackholes, ...)
in Linux network namespaces, and measures detection time, false positives and overhead.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.AddCommand(newRunCmd(), newListCmd(), newGCCmd(), newDoctorCmd())
	addReportCommands(root)
	root.AddCommand(newCheckCmd())
	return root
}
