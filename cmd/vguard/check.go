package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/report"
)

type checkOptions struct {
	format string
	output string
	failOn string
	only   []string
	skip   []string
}

func newCheckCmd(g *globalOptions) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Evaluate every check on the Estate and Policy documents in PATH",
		Long: `Evaluate every check of the catalogue ('vguard checks') on the Estate and
Policy documents in PATH: files, or directories whose *.yaml, *.yml and *.json
files are read in name order. With no PATH, the current directory is read.

Exit 0 when no finding is at or above --fail-on, 1 when one is, 2 when the
input or the command line is wrong.`,
		Example: `  vguard check examples/clean
  vguard check estate.yaml policy.yaml --format json -o report.json
  vguard check . --fail-on critical --skip VG204`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), g, o, args, cmd.CommandPath())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "table", "report format: table, json or sarif")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of stdout")
	f.StringVar(&o.failOn, "fail-on", "high", "exit 1 when a finding is at or above `SEVERITY` (info, low, medium, high, critical, or none)")
	f.StringSliceVar(&o.only, "only", nil, "run only these check `IDS` (comma-separated)")
	f.StringSliceVar(&o.skip, "skip", nil, "do not run these check `IDS` (comma-separated)")
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("table", "json", "sarif"))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", fixedCompletion("info", "low", "medium", "high", "critical", "none"))
	return cmd
}

func fixedCompletion(words ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return words, cobra.ShellCompDirectiveNoFileComp
	}
}

// parseFailOn reads --fail-on; "none" (0) never fails.
func parseFailOn(cmdPath, s string) (estate.Severity, error) {
	s = strings.ToLower(s)
	if s == "none" {
		return 0, nil
	}
	sev, err := estate.ParseSeverity(s)
	if err != nil {
		return 0, usagef(cmdPath, "--fail-on: %v, or none", err)
	}
	return sev, nil
}

// checkIDs validates a list of check IDs given on the command line.
func checkIDs(cmdPath, flag string, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		c := check.Lookup(id)
		if c == nil {
			return nil, usagef(cmdPath, "%s: unknown check %q (see 'vguard checks')", flag, id)
		}
		out = append(out, id)
	}
	return out, nil
}

func loadOptions() load.Options {
	return load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }}
}

func runCheck(ctx context.Context, g *globalOptions, o *checkOptions, paths []string, cmdPath string) error {
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return usagef(cmdPath, "--format: %v", err)
	}
	failOn, err := parseFailOn(cmdPath, o.failOn)
	if err != nil {
		return err
	}
	only, err := checkIDs(cmdPath, "--only", o.only)
	if err != nil {
		return err
	}
	skip, err := checkIDs(cmdPath, "--skip", o.skip)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, id := range only {
		if check.Lookup(id).ChangeOnly {
			return usagef(cmdPath, "--only: %s is judged on a change, by 'vguard plan'", id)
		}
	}
	res, err := load.Paths(paths, loadOptions())
	if err != nil {
		return err
	}
	if ids := selected(only, skip, res.Policy); len(ids) == 0 {
		fmt.Fprintln(g.stderr, "vguard: warning: no check left to run (--only, --skip and the policy's disable exclude them all)")
	}
	out := check.Evaluate(estate.NewIndex(res.Estate), res.Policy, check.Options{
		Only: only, Skip: skip, Files: check.NewDiskFiles(),
	})
	if len(out.Errors) > 0 {
		return &inputError{errs: out.Errors}
	}
	rep := &report.CheckReport{
		Findings:   out.Findings,
		EstateName: res.Estate.Meta.Name,
		Estate:     report.StatsOf(res.Estate),
		Inputs:     res.Files,
	}
	if err := g.writeOutput(o.output, func(w io.Writer) error { return report.WriteCheck(w, format, rep) }); err != nil {
		return err
	}
	return verdictFor(out.Findings, failOn)
}

// verdictFor returns a verdictError when a finding is at or above failOn.
func verdictFor(fs []check.Finding, failOn estate.Severity) error {
	if failOn == 0 {
		return nil
	}
	n := 0
	for _, f := range fs {
		if f.Severity >= failOn {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return &verdictError{msg: fmt.Sprintf("vguard: %d finding%s at or above %s", n, plural(n), failOn)}
}

// selected lists the estate checks a run will evaluate.
func selected(only, skip []string, p *estate.Policy) []string {
	var ids []string
	for _, c := range check.Catalogue() {
		if c.ChangeOnly || p.Disabled(c.ID) || slices.Contains(skip, c.ID) || (len(only) > 0 && !slices.Contains(only, c.ID)) {
			continue
		}
		ids = append(ids, c.ID)
	}
	return ids
}
