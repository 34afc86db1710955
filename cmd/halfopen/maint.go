package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/halfopen/halfopen/harness"
)

func newGCCmd() *cobra.Command {
	var all, dry bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the namespaces and processes that a crashed machine's runs left behind",
		Long: `Each run starts a reaper that removes its labs within seconds if the run is killed
(SIGKILL, OOM, a CI timeout). gc is for what the reaper could not do: a machine that
crashed mid-run, or a reaper killed by hand. It kills every process living in a
leftover namespace, however it got there, and removes the namespace.`,
		Example: `  halfopen gc           # namespaces of runs whose process is gone
  halfopen gc --all     # every ho-* namespace, even of a live run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := harness.Preflight(); err != nil {
				return badInput(err)
			}
			left, err := harness.Leftovers(all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(left) == 0 {
				fmt.Fprintln(out, "nothing to collect")
				return nil
			}
			for _, l := range left {
				fmt.Fprintln(out, l)
			}
			if dry {
				return nil
			}
			if err := harness.Collect(left); err != nil {
				return err
			}
			fmt.Fprintf(out, "removed %d namespaces and cgroups\n", len(left))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove namespaces of runs that are still alive")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only list what would be removed")
	return cmd
}

func newDoctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "doctor",
		Short:   "Say what this machine can and cannot do for halfopen, and why",
		Example: "  sudo halfopen doctor",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = harness.EnterUserNamespace() // not root: check in a user namespace, or say why there is none
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "halfopen %s, kernel %s, %s\n", harness.VersionString(), harness.Kernel(), harness.GoVersion())
			var firstBad error
			checks := harness.Doctor()
			if checks[0].OK {
				checks = append(checks, harness.CheckReaper(), harness.CheckCgroups())
			}
			for _, c := range checks {
				mark := "ok  "
				if !c.OK {
					mark = "MISSING"
					if firstBad == nil {
						firstBad = fmt.Errorf("%w: %s", harness.ErrUnfit, c.Detail)
					}
				}
				fmt.Fprintf(out, "%-7s %-9s %s\n", mark, c.Name, c.Detail)
			}
			if firstBad != nil {
				return badInput(firstBad)
			}
			return nil
		},
	}
}
