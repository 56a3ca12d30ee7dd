package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/report"
)

type planOptions struct {
	format string
	output string
	remote remoteOptions
}

func newPlanCmd(g *globalOptions) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan CHANGE|- [PATH...]",
		Short: "Judge a proposed change against the estate before it is made",
		Long: `Judge a Change document against the estate in PATH (files or directories; the
current directory when none is given): its operations are applied in order to
a copy of the estate, the change-only checks (VG501, VG502) judge the
operations, and the part of the estate the change can affect is re-evaluated.

The decision: deny when the change introduces a finding at or above the
policy's change.blockAt (default high), warn when it introduces any finding,
allow otherwise. Exit 0 for allow and warn, 1 for deny, 2 when the change or
the estate is invalid (an operation naming something missing, or creating a
duplicate): then nothing is judged.`,
		Example: `  vguard plan chg-1042.yaml estate/
  vguard plan move.yaml . --format json
  vguard place estate/ | vguard plan - estate/
  VGUARD_TOKEN=... vguard plan chg-1042.yaml --remote https://vguard.example:8443`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), g, o, args[0], args[1:], cmd.CommandPath())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "table", "report format: table, json or sarif")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of stdout")
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("table", "json", "sarif"))
	o.remote.addFlags(f)
	return cmd
}

func runPlan(_ context.Context, g *globalOptions, o *planOptions, changeFile string, paths []string, cmdPath string) error {
	format, err := report.ParseFormat(o.format)
	if err != nil {
		return usagef(cmdPath, "--format: %v", err)
	}
	if o.remote.url != "" {
		return runRemotePlan(g, o, format, changeFile, paths, cmdPath)
	}
	var chg *change.Change
	if changeFile == "-" {
		// `vguard place estate/ | vguard plan - estate/`
		data, rerr := io.ReadAll(g.stdin)
		if rerr != nil {
			return usagef(cmdPath, "reading the change from stdin: %v", rerr)
		}
		chg, err = change.Parse("<stdin>", data)
	} else {
		chg, err = change.Load(changeFile)
	}
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	res, err := load.Paths(paths, loadOptions())
	if err != nil {
		return err
	}
	judge, err := change.NewJudge(estate.NewIndex(res.Estate), res.Policy, check.NewDiskFiles())
	if err != nil {
		return &inputError{errs: []error{err}}
	}
	v, err := judge.Judge(chg)
	if err != nil {
		var lerrs load.Errors
		if errors.As(err, &lerrs) {
			return err
		}
		return &inputError{errs: []error{err}}
	}
	ops := make([]string, len(chg.Operations))
	for i, op := range chg.Operations {
		ops[i] = op.String()
	}
	rep := &report.PlanReport{
		Decision: string(v.Decision), Introduced: v.Introduced, Resolved: v.Resolved, Worsened: v.Worsened, Unchanged: v.Unchanged,
		BlockAt: res.Policy.Change.BlockAt, ChangeName: chg.Meta.Name, Operations: ops,
		Estate: report.StatsOf(res.Estate), EstateName: res.Estate.Meta.Name,
		Inputs: append([]string{changeFile}, res.Files...),
	}
	if err := g.writeOutput(o.output, func(w io.Writer) error { return report.WritePlan(w, format, rep) }); err != nil {
		return err
	}
	if v.Decision == change.Deny {
		return &verdictError{msg: "vguard: change denied: " + change.DenyReason(res.Policy.Change.BlockAt, v.Introduced, v.Worsened)}
	}
	return nil
}

func count(n int, noun string) string { return fmt.Sprintf("%d %s%s", n, noun, plural(n)) }
