package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/halfopen/halfopen/gatefile"
	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

type checkFlags struct {
	reports, shard string
	from           string
	samples, pool  int
	seed           int64
}

func newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check GATEFILE [--reports DIR] [--shard i/n] [--samples N] [--seed N] [--pool N]",
		Short: "Run a gate file: measure its cells, write the reports, exit 1 naming each broken budget",
		Long: `check runs a gate file (docs/gatefile.md): it registers the file's services (real
servers run unmodified on the peer host), checks every cell before touching the
machine, measures the cells in fresh labs, writes DIR/gate.{json,md,html,xml} (the
JUnit XML with the budgets; gate-shard-i-of-n.* for a shard) and the services'
output in DIR/logs/, and gates the report with the file's budgets.
Watchers' relative commands are taken from the gate file's directory.
Exit codes: 0 every budget holds, 1 a budget is broken, 2 bad input or a machine
that cannot run the lab. --from gates and renders a report already measured (the
shards' reports merged by halfopen merge) instead of measuring.`,
		Example: `  halfopen check examples/gates/example/halfopen-gate.yaml
  halfopen check halfopen-gate.yaml --reports reports --samples 5 --seed 42
  halfopen check halfopen-gate.yaml --shard 2/4 --reports out   # one CI runner of four: out/gate-shard-2-of-4.*
  halfopen merge out/gate-shard-*.json -o reports/gate.json      # then, once the shards are in:
  halfopen check halfopen-gate.yaml --from reports/gate.json --reports reports`,
		Args: exactArgs(1, "check needs exactly one GATEFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.from == "" {
				if err := harness.EnterUserNamespace(); err != nil {
					return badInput(err)
				}
			}
			return runCheck(cmd, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.reports, "reports", "reports", "directory for gate.{json,md,html,xml} and the services' logs/")
	fl.StringVar(&f.shard, "shard", "", "run only shard i/n of the file's cells (every n-th cell), e.g. 2/4 on the second of four CI runners")
	fl.IntVar(&f.samples, "samples", 0, "samples per cell, for every cell (default: each cell's samples in the file)")
	fl.Int64Var(&f.seed, "seed", 0, "seed of fault instants (default: from the clock; recorded in the report)")
	fl.IntVar(&f.pool, "pool", 0, "labs at once (default: sized by measurement, from 4 per CPU while the harness's timing error stays low)")
	fl.StringVar(&f.from, "from", "", "gate and render this report (e.g. merged shards) instead of measuring")
	return cmd
}

func runCheck(cmd *cobra.Command, path string, f checkFlags) error {
	if cmd.Flags().Changed("samples") && f.samples <= 0 {
		return badInput(fmt.Errorf("--samples %d: a cell needs at least 1 sample", f.samples))
	}
	dir, err := filepath.Abs(f.reports)
	if err != nil {
		return badInput(fmt.Errorf("--reports %s: %w", f.reports, err))
	}
	gate, err := gatefile.Read(path)
	if err != nil {
		return badInput(err)
	}
	// Gating a report already measured needs neither the machine nor the
	// watchers' programs: a CI job that merges shards may have neither.
	if f.from != "" {
		if f.shard != "" {
			return badInput(errors.New("--from gates a whole report; --shard chooses cells to measure: give one of the two"))
		}
		r, err := readReport(f.from)
		if err != nil {
			return err
		}
		if !r.Complete {
			return badInput(fmt.Errorf("%s is not complete (its run was interrupted), so it cannot pass a gate", f.from))
		}
		return renderAndGate(cmd, path, r, gate.Budgets, filepath.Join(dir, "gate"))
	}
	if err := gate.RegisterServices(); err != nil {
		return badInput(err)
	}
	// A watcher's cmd stays as written, so that its cells have the same
	// name on every machine: it is found from the gate file's directory.
	back, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("find the working directory: %w", err)
	}
	if err := os.Chdir(gate.Dir); err != nil {
		return badInput(fmt.Errorf("%s: enter its directory: %w", path, err))
	}
	defer os.Chdir(back)

	configs := gate.Configs()
	for i := range configs {
		if f.samples > 0 {
			configs[i].Samples = f.samples
		}
		// Every cell of the file, not only this shard's: a file that is
		// bad anywhere is refused on every runner.
		if _, err := harness.Resolve(configs[i]); err != nil {
			c := gate.Cells[i]
			w, _ := gate.Watcher(c.Watcher)
			return badInput(&report.InputError{File: path, Line: w.Line, Msg: fmt.Sprintf("watcher %s: %v", c.Watcher, err), Err: err})
		}
	}
	if configs, err = harness.Shard(configs, f.shard); err != nil {
		return badInput(err)
	}
	if len(configs) == 0 {
		return badInput(fmt.Errorf("shard %s of %s holds no cell", f.shard, path))
	}
	base := "gate"
	if f.shard != "" {
		base = "gate-shard-" + strings.ReplaceAll(f.shard, "/", "-of-")
	}
	out := func(ext string) string { return filepath.Join(dir, base+"."+ext) }
	m, err := measure(cmd, measurement{
		configs: configs, seed: f.seed, seedSet: cmd.Flags().Changed("seed"), pool: f.pool,
		reportPath: out("json"), profile: "gate", shard: f.shard, logDir: filepath.Join(dir, "logs"),
	})
	if err != nil {
		return err
	}
	budgets := gate.Budgets
	if f.shard != "" {
		budgets = budgetsOf(budgets, m.Cells())
	}
	printTable(cmd.OutOrStdout(), m)
	err = renderAndGate(cmd, path, m.Report(), budgets, filepath.Join(dir, base))
	fmt.Fprintf(cmd.ErrOrStderr(), "halfopen: services' output in %s\n", filepath.Join(dir, "logs"))
	return err
}

// renderAndGate writes the report as OUT.{md,html,xml} beside OUT.json (the
// JUnit XML with the budgets), prints the gate's verdict, and fails naming
// each broken budget.
func renderAndGate(cmd *cobra.Command, path string, r *report.Report, budgets *report.Budgets, out string) error {
	r.Summarise()
	res := report.CheckBudgets(r, budgets)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return badInput(fmt.Errorf("reports directory %s: %w", filepath.Dir(out), err))
	}
	for _, w := range []struct {
		ext    string
		render func(io.Writer) error
	}{
		{"md", func(w io.Writer) error { return report.Markdown(w, r) }},
		{"html", func(w io.Writer) error { return report.HTML(w, r) }},
		{"xml", func(w io.Writer) error { return report.JUnit(w, r, &res) }},
	} {
		if err := writeOutput(cmd, out+"."+w.ext, w.render); err != nil {
			return fmt.Errorf("write the %s report: %w", w.ext, err)
		}
	}
	fmt.Fprint(cmd.OutOrStdout(), res.Text())
	fmt.Fprintf(cmd.ErrOrStderr(), "halfopen: reports in %s.{md,html,xml}\n", out)
	if err := judged(cmd, path, r); err != nil {
		return err
	}
	if !res.OK() {
		names := brokenNames(res)
		return failed(fmt.Errorf("%s: %s broken: %s", path, plural(len(names), "budget"), strings.Join(names, "; ")))
	}
	return nil
}

// judged asks the one judge (report.Cell.Judge) of every cell: it prints
// the cells outside their theory, and fails naming the cells that
// measured nothing or have a sample that could not be measured, whether
// or not a budget names them: a gate does not pass unmeasured.
func judged(cmd *cobra.Command, what string, r *report.Report) error {
	for _, d := range r.Disagreements() {
		fmt.Fprintf(cmd.ErrOrStderr(), "halfopen: outside its theory (a finding, not a budget): %s\n", d)
	}
	if bad := r.Unmeasured(); len(bad) > 0 {
		return failed(fmt.Errorf("%s: %s unmeasured, so the gate cannot pass: %s", what, plural(len(bad), "cell"), strings.Join(bad, "; ")))
	}
	return nil
}

// budgetsOf keeps the budgets that match a cell of this shard: the others
// are gated on the runners that measure their cells.
func budgetsOf(b *report.Budgets, cells []*harness.Cell) *report.Budgets {
	kept := &report.Budgets{File: b.File}
	for _, bu := range b.Budgets {
		for _, c := range cells {
			k := c.Key()
			if bu.Matches(&report.Cell{Detector: k.Detector, Fault: k.Fault, Side: k.Side, Kind: k.Kind}) {
				kept.Budgets = append(kept.Budgets, bu)
				break
			}
		}
	}
	return kept
}

// brokenNames names each broken budget once, with its line.
func brokenNames(g report.BudgetResult) []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range g.Broken {
		n := fmt.Sprintf("%q (line %d)", v.Budget, v.Line)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// plural writes "1 budget" or "2 budgets".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
