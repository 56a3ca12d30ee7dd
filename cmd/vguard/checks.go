package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/check"
)

func newChecksCmd(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "checks",
		Short: "List the check catalogue: ID, name, pillar, default severity, description",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runChecks(g, format, cmd.CommandPath())
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("table", "json"))
	return cmd
}

// catalogueEntry is the JSON form of one check.
type catalogueEntry struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Title       string `json:"title"`
	Pillar      string `json:"pillar"`
	Severity    string `json:"severity"`
	ChangeOnly  bool   `json:"changeOnly,omitempty"`
	Description string `json:"description"`
	Remediation string `json:"remediation"`
}

func runChecks(g *globalOptions, format, cmdPath string) error {
	cat := check.Catalogue()
	switch format {
	case "json":
		out := make([]catalogueEntry, 0, len(cat))
		for _, c := range cat {
			out = append(out, catalogueEntry{
				ID: c.ID, Name: c.Name, Title: c.Title, Pillar: string(c.Pillar), Severity: c.Severity.String(),
				ChangeOnly: c.ChangeOnly, Description: c.Description, Remediation: c.Remediation,
			})
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"checks": out})
	case "table":
		tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPILLAR\tSEVERITY\tDESCRIPTION")
		for _, c := range cat {
			desc := c.Description
			if c.ChangeOnly {
				desc = "(change only) " + desc
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Pillar, c.Severity, desc)
		}
		return tw.Flush()
	}
	return usagef(cmdPath, "--format: unknown format %q (want table or json)", format)
}
