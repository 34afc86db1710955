package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/halfopen/halfopen/harness"
)

func newListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List detectors and faults with their parameters and predictions",
		Example: "  halfopen list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			printList(cmd.OutOrStdout())
			return nil
		},
	}
}

func printList(w io.Writer) {
	fmt.Fprintln(w, "DETECTORS (predicted detection time for a silent peer, with default parameters)")
	for _, e := range harness.Detectors() {
		fmt.Fprintf(w, "\n  %s — %s\n", e.Name, e.Doc)
		printParams(w, e.Params)
		if d, _, err := harness.NewDetector(e.Name); err == nil {
			p := d.Predict()
			if p.Never {
				fmt.Fprintf(w, "      predicted: never. %s\n", p.Rule)
			} else {
				fmt.Fprintf(w, "      predicted: [%s, %s]. %s\n", p.Lo, p.Hi, p.Rule)
			}
		}
	}
	fmt.Fprintln(w, "\nFAULTS")
	for _, e := range harness.Faults() {
		fmt.Fprintf(w, "\n  %s — %s\n", e.Name, e.Doc)
		printParams(w, e.Params)
	}
}

func printParams(w io.Writer, ps []harness.Param) {
	for _, p := range ps {
		if p.Key == "*" {
			fmt.Fprintf(w, "      any other key=value: %s\n", p.Help)
			continue
		}
		var extra []string
		if p.Sysctl != "" {
			extra = append(extra, "default: the watcher namespace's "+p.Sysctl+" (a new namespace has "+p.NamespaceDefault+")")
		}
		if p.Default != "" {
			extra = append(extra, "default "+p.Default)
		}
		if p.Optional {
			extra = append(extra, "optional")
		}
		if len(p.Enum) > 0 {
			extra = append(extra, "one of "+strings.Join(p.Enum, "|"))
		}
		if p.Min != "" {
			extra = append(extra, "min "+p.Min)
		}
		if p.Max != "" {
			extra = append(extra, "max "+p.Max)
		}
		fmt.Fprintf(w, "      %s (%s): %s [%s]\n", p.Key, p.Kind, p.Help, strings.Join(extra, ", "))
	}
}
