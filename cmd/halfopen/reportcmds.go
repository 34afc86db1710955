package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/halfopen/halfopen/harness"
	"github.com/halfopen/halfopen/report"
)

// addReportCommands adds report, merge, compare, budgets and gate (the old
// name of budgets check).
func addReportCommands(root *cobra.Command) {
	root.AddCommand(newReportCmd(), newMergeCmd(), newCompareCmd(), newBudgetsCmd(), newGateCmd())
}

// readReport reads and validates a report; any problem is bad input.
func readReport(path string) (*report.Report, error) {
	r, err := report.Read(path)
	if err != nil {
		return nil, badInput(err)
	}
	return r, nil
}

// writeOutput writes what render produces to path, or standard output when
// path is empty. A file is written whole or not at all, so a failed render
// never leaves partial output that looks complete.
func writeOutput(cmd *cobra.Command, path string, render func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := render(&buf); err != nil {
		return err
	}
	if path == "" {
		_, err := cmd.OutOrStdout().Write(buf.Bytes())
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return badInput(fmt.Errorf("output directory %s: %w", dir, err))
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

func newReportCmd() *cobra.Command {
	var format, out, budgets string
	cmd := &cobra.Command{
		Use:   "report FILE [--format md|html|junit] [-o OUT]",
		Short: "Render a v1 report as Markdown, a self-contained HTML page with SVG plots, or JUnit XML",
		Example: `  halfopen report reports/faults.json --format html -o reports/faults.html
  halfopen report reports/faults.json --format junit --budgets ci/budgets.yaml -o reports/faults.xml`,
		Args: exactArgs(1, "report needs exactly one report FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := readReport(args[0])
			if err != nil {
				return err
			}
			r.Summarise()
			switch format {
			case "md", "markdown":
				return writeOutput(cmd, out, func(w io.Writer) error { return report.Markdown(w, r) })
			case "html":
				// Captures are named relative to the report; links in the
				// page must be relative to where the page is written.
				opt := report.HTMLOptions{ReportDir: filepath.Dir(args[0])}
				if out != "" {
					opt.PageDir = filepath.Dir(out)
				}
				return writeOutput(cmd, out, func(w io.Writer) error { return report.RenderHTML(w, r, opt) })
			case "junit", "xml":
				var g *report.BudgetResult
				if budgets != "" {
					b, err := loadBudgets(budgets)
					if err != nil {
						return err
					}
					res := report.CheckBudgets(r, b)
					g = &res
				}
				return writeOutput(cmd, out, func(w io.Writer) error { return report.JUnit(w, r, g) })
			}
			return badInput(fmt.Errorf("--format %q is not known; formats are md, html and junit", format))
		},
	}
	cmd.Flags().StringVar(&format, "format", "md", "md, html or junit")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringVar(&budgets, "budgets", "", "budgets file: JUnit failures for broken budgets")
	return cmd
}

func newMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "merge FILES... [-o OUT]",
		Short:   "Merge the shards of one run (e.g. from a CI matrix) into one report",
		Example: "  halfopen merge shard-1.json shard-2.json shard-3.json -o reports/faults.json",
		Args:    minArgs(1, "merge needs at least one report"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []*report.Report
			for _, a := range args {
				r, err := readReport(a)
				if err != nil {
					return err
				}
				rs = append(rs, r)
			}
			m, err := report.Merge(rs...)
			if err != nil {
				return badInput(err)
			}
			return writeOutput(cmd, out, func(w io.Writer) error {
				b, err := report.Encode(m)
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	return cmd
}

func newCompareCmd() *cobra.Command {
	var opt report.CompareOptions
	var md bool
	var format, out string
	cmd := &cobra.Command{
		Use:   "compare OLD NEW [--format md|html|text] [-o OUT]",
		Short: "Compare two reports cell by cell with a censoring-aware rank test; exit 1 on a significant regression",
		Long: `compare puts each cell's p50/p95 and censored counts side by side and runs a
Mann–Whitney U test in which censored samples rank slowest. A cell regresses when
the test is significant (p < alpha) and the median shift is at least the larger of
--min-effect and --min-effect-ratio of the old median, when more samples are
censored, or when false positives per connection-hour grow.`,
		Example: `  halfopen compare ci/baseline.json reports/faults.json >> "$GITHUB_STEP_SUMMARY"
  halfopen compare ci/baseline.json reports/faults.json --format html -o reports/compare.html`,
		Args: exactArgs(2, "compare needs two reports, OLD and NEW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err := readReport(args[0])
			if err != nil {
				return err
			}
			cur, err := readReport(args[1])
			if err != nil {
				return err
			}
			res := report.Compare(old, cur, opt)
			if md {
				format = "md"
			}
			var render func(io.Writer) error
			switch format {
			case "md", "markdown":
				render = func(w io.Writer) error { _, err := io.WriteString(w, res.Markdown()); return err }
			case "html":
				render = func(w io.Writer) error { return report.CompareHTML(w, res) }
			case "text":
				render = func(w io.Writer) error { _, err := io.WriteString(w, res.Text()); return err }
			default:
				return badInput(fmt.Errorf("--format %q is not known; formats are md, html and text", format))
			}
			if err := writeOutput(cmd, out, render); err != nil {
				return err
			}
			if n := len(res.Regressions()); n > 0 {
				return failed(fmt.Errorf("%d cells regressed from %s to %s", n, args[0], args[1]))
			}
			return nil
		},
	}
	cmd.Flags().Float64Var(&opt.Alpha, "alpha", 0.05, "significance level of the rank test")
	cmd.Flags().DurationVar(&opt.MinEffect, "min-effect", 100*time.Millisecond, "smallest median shift that counts as a regression")
	cmd.Flags().Float64Var(&opt.MinEffectRatio, "min-effect-ratio", 0.10, "smallest median shift, as a fraction of the old median")
	cmd.Flags().StringVar(&format, "format", "md", "md (for a pull request or CI summary), html (each regression's samples side by side) or text")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&md, "markdown", false, "the same as --format md (kept for existing CI files)")
	return cmd
}

// loadBudgets reads a budgets file, checks its detector and fault names
// against the registries, and canonicalises its specs like the reports'.
func loadBudgets(path string) (*report.Budgets, error) {
	b, err := report.ReadBudgets(path)
	if err != nil {
		return nil, badInput(err)
	}
	known := func(build func(string) (string, error)) func(string) bool {
		return func(name string) bool {
			_, err := build(name)
			return err == nil
		}
	}
	if err := b.Validate(known(harness.CanonicalDetector), known(harness.CanonicalFault)); err != nil {
		return nil, badInput(err)
	}
	for i := range b.Budgets {
		bu := &b.Budgets[i]
		d, derr := harness.CanonicalDetector(bu.Detector)
		f, ferr := harness.CanonicalFault(bu.Fault)
		if err := errors.Join(derr, ferr); err != nil {
			return nil, badInput(fmt.Errorf("%s line %d: %w", path, bu.Line, err))
		}
		bu.Detector, bu.Fault = d, f
	}
	return b, nil
}

// newBudgetsCmd is `halfopen budgets`, whose one subcommand, check, checks
// a report against a budgets file.
func newBudgetsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budgets",
		Short: "Check reports against detection budgets (budgets check)",
		Args:  exactArgs(0, "budgets has one subcommand, check: halfopen budgets check --budgets FILE REPORT"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newBudgetsCheckCmd("check --budgets FILE REPORT", "budgets check"))
	return cmd
}

// gateDeprecation is the line `halfopen gate`, the old name of budgets
// check, prints on standard error before it runs.
const gateDeprecation = "halfopen: `halfopen gate` is deprecated and goes in the next release; use `halfopen budgets check`"

// newGateCmd is `halfopen gate`, budgets check's old name, kept as an alias
// for one release: it prints gateDeprecation, before it looks at its
// arguments, and then does the same.
func newGateCmd() *cobra.Command {
	cmd := newBudgetsCheckCmd("gate --budgets FILE REPORT", "gate")
	args := cmd.Args
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		fmt.Fprintln(cmd.ErrOrStderr(), gateDeprecation)
		return args(cmd, a)
	}
	cmd.Short = "Deprecated alias of `budgets check`, removed in the next release"
	cmd.Example = "  halfopen budgets check --budgets ci/budgets.yaml reports/faults.json   # instead of halfopen gate"
	return cmd
}

// newBudgetsCheckCmd builds the command that checks a report against a
// budgets file, called name in its messages.
func newBudgetsCheckCmd(use, name string) *cobra.Command {
	var budgets string
	cmd := &cobra.Command{
		Use:     use,
		Short:   "Check a report against detection budgets; exit 1 naming every broken budget",
		Example: "  halfopen budgets check --budgets ci/budgets.yaml reports/faults.json",
		Args:    exactArgs(1, name+" needs exactly one REPORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if budgets == "" {
				return badInput(errors.New(name + " needs --budgets FILE"))
			}
			b, err := loadBudgets(budgets)
			if err != nil {
				return err
			}
			r, err := readReport(args[0])
			if err != nil {
				return err
			}
			if !r.Complete {
				return badInput(fmt.Errorf("%s is not complete (its run was interrupted), so its budgets cannot be checked", args[0]))
			}
			res := report.CheckBudgets(r, b)
			fmt.Fprint(cmd.OutOrStdout(), res.Text())
			if err := judged(cmd, args[0], r); err != nil {
				return err
			}
			if !res.OK() {
				return failed(fmt.Errorf("%d budgets broken in %s", len(res.Broken), args[0]))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&budgets, "budgets", "", "budgets YAML file (see ci/budgets.yaml)")
	return cmd
}

func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return badInput(errors.New(msg))
		}
		return nil
	}
}

func minArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return badInput(errors.New(msg))
		}
		return nil
	}
}
