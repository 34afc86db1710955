package main

import "github.com/spf13/cobra"

// addReportCommands adds report, merge, compare and gate.
func addReportCommands(root *cobra.Command) {}
