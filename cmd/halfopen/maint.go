package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/internal/machine"
	"github.com/halfopen/halfopen/internal/version"
	"github.com/halfopen/halfopen/report"
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
	var probe bool
	var baseline string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Say what this machine can and cannot do for halfopen, and why",
		Long: `doctor checks what a lab needs and prints the kernel's timing facts (tick rate, idle
tick, preemption, cpuidle, the CPU latency request, timer slack). With --probe it
also measures the harness's latency probe with no lab but its own (the unloaded
baseline the pool is sized against) and beside 2 labs per CPU being built, started
and torn down (loaded), each over 1000 datagrams (about 20 s), and says what the
p99 is made of. --baseline FILE measures the unloaded baseline and writes it to FILE
for HALFOPEN_BASELINE, as make test-faults does before its suites and gates start.`,
		Example: `  sudo halfopen doctor
  sudo halfopen doctor --probe
  sudo HALFOPEN_NO_IDLE_POLL=1 halfopen doctor --probe   # with idle CPUs halting`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_ = harness.EnterUserNamespace() // not root: check in a user namespace, or say why there is none
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "halfopen %s, kernel %s, %s\n", version.String(), version.Kernel(), version.GoVersion())
			var firstBad error
			checks := harness.Doctor()
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
			timing := machine.ReadMachineTiming()
			fmt.Fprintf(out, "%-7s %-9s %s\n", "info", "timing", timing)
			if firstBad != nil {
				return badInput(firstBad)
			}
			if baseline != "" {
				if fi, err := os.Stat(filepath.Dir(baseline)); err != nil || !fi.IsDir() {
					return badInput(fmt.Errorf("--baseline %s: its directory does not exist", baseline))
				}
			}
			if probe || baseline != "" {
				return doctorProbe(cmd, timing, probe, baseline)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&probe, "probe", false, "measure the latency probe unloaded and loaded (about 20 s) and say what its p99 is made of")
	cmd.Flags().StringVar(&baseline, "baseline", "", "measure the unloaded baseline and write it to this file (for HALFOPEN_BASELINE)")
	return cmd
}

// doctorProbe measures the latency probe with no other lab and, with
// loaded, beside labs being churned, and prints both side by side.
func doctorProbe(cmd *cobra.Command, timing machine.MachineTiming, loaded bool, path string) error {
	out := cmd.OutOrStdout()
	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	run := harness.NewRun()
	defer run.Close()
	stop := run.CloseOnSignal(func(sig os.Signal) { cancel(fmt.Errorf("interrupted by %v", sig)) })
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to re-execute as agents: %w", err)
	}
	b, err := harness.MeasureBaseline(ctx, run, exe, machine.BaselineDatagrams)
	if err != nil {
		return fmt.Errorf("measure the unloaded probe: %w", err)
	}
	fmt.Fprintf(out, "%-7s %-9s %s; idle CPUs %s; CPUs %.0f %% busy meanwhile\n", "info", "unloaded", quantilesLine(b.ErrorMs), b.CPUIdle, b.Busy*100)
	if !b.Unloaded() {
		fmt.Fprintf(out, "%-7s %-9s the CPUs were %.0f %% busy while the baseline was measured: something else ran, and the baseline is higher than this machine's own\n", "warn", "unloaded", b.Busy*100)
	}
	if path != "" {
		if err := machine.WriteBaseline(path, b); err != nil {
			return err
		}
		fmt.Fprintf(out, "%-7s %-9s written to %s\n", "info", "baseline", path)
	}
	if !loaded {
		return nil
	}
	labs := 2 * runtime.NumCPU()
	l, err := harness.MeasureLoaded(ctx, run, exe, machine.BaselineDatagrams, labs)
	if err != nil {
		return fmt.Errorf("measure the loaded probe: %w", err)
	}
	fmt.Fprintf(out, "%-7s %-9s %s; %d labs built, started and torn down meanwhile; CPUs %.0f %% busy\n", "info", "loaded", quantilesLine(l.ErrorMs), labs, l.Busy*100)
	fmt.Fprintf(out, "%-7s %-9s %s\n", "info", "verdict", machine.ProbeVerdict(timing.TickMs(), b.ErrorMs.P99, l.ErrorMs.P99))
	return nil
}

func quantilesLine(q report.Quantiles) string {
	return fmt.Sprintf("probe p50 %.3f ms, p99 %.3f ms, max %.3f ms (n=%d)", q.P50, q.P99, q.Max, q.N)
}
