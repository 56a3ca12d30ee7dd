package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/rollout"
)

type rolloutOptions struct {
	service    string
	to         string
	allowDrift bool
	format     string
	output     string
}

func newRolloutCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Plan rollouts of master images",
	}
	o := &rolloutOptions{}
	plan := &cobra.Command{
		Use:   "plan [PATH...] --service S --to IMAGE@VERSION",
		Short: "Plan the rollout of a new master version across a service's members",
		Long: `Plan the rollout of a master image version across the members of a service:
a canary of one first, then batches that keep the service at or above
minAvailable and within maxUnavailable, taking at most one member of a failure
unit (hypervisor, or failure domain with spread: failureDomain) at a time.
Members already at the target are skipped. The rollback order is the batches
reversed.

It refuses (exit 1, naming them and their drift) when a member differs from
its current master (VG203): an emergency fix must be folded into the master
first, or the rollout would erase it. --allow-drift overrides.`,
		Example: `  vguard rollout plan estate/ --service web --to web-master@4
  vguard rollout plan . --service api --to api-master@2 --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutPlan(g, o, args, cmd.CommandPath())
		},
	}
	f := plan.Flags()
	f.StringVar(&o.service, "service", "", "the service to roll out to (required)")
	f.StringVar(&o.to, "to", "", "the image version to roll out, `IMAGE@VERSION` (required)")
	f.BoolVar(&o.allowDrift, "allow-drift", false, "roll out even over members that differ from their master")
	f.StringVarP(&o.format, "format", "f", "table", "output format: table or json")
	f.StringVarP(&o.output, "output", "o", "", "write the plan to `FILE` instead of stdout")
	_ = plan.RegisterFlagCompletionFunc("format", fixedCompletion("table", "json"))
	cmd.AddCommand(plan)
	return cmd
}

func runRolloutPlan(g *globalOptions, o *rolloutOptions, paths []string, cmdPath string) error {
	if o.service == "" || o.to == "" {
		return usagef(cmdPath, "--service and --to are required")
	}
	var to estate.ImageRef
	if err := to.UnmarshalText([]byte(o.to)); err != nil {
		return usagef(cmdPath, "--to: %v", err)
	}
	if o.format != "table" && o.format != "json" {
		return usagef(cmdPath, "--format: unknown format %q (want table or json)", o.format)
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	res, err := load.Paths(paths, loadOptions())
	if err != nil {
		return err
	}
	x := estate.NewIndex(res.Estate)
	p, err := rollout.Make(x, o.service, to, check.NewDiskFiles(), o.allowDrift)
	refused := errors.Is(err, rollout.ErrDrift)
	switch {
	case errors.Is(err, rollout.ErrImpossible):
		return &verdictError{msg: "vguard: rollout refused: " + err.Error()}
	case err != nil && !refused:
		return usagef(cmdPath, "%v", err)
	}
	for _, d := range p.Drifted {
		if d.Drift == nil {
			return &inputError{errs: []error{fmt.Errorf("%s: %s", d.VM, d.Reason)}}
		}
	}
	err = g.writeOutput(o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, p)
		}
		writeRolloutTable(w, p, refused)
		return nil
	})
	if err != nil {
		return err
	}
	if refused {
		names := make([]string, len(p.Drifted))
		for i, d := range p.Drifted {
			names[i] = fmt.Sprintf("%s (%d paths differ from %s)", d.VM, d.Drift.Total(), d.Image)
		}
		return &verdictError{msg: "vguard: rollout refused: members differ from their master: " + strings.Join(names, ", ") +
			"; fold their changes into the master first, or use --allow-drift"}
	}
	return nil
}

func writeRolloutTable(w io.Writer, p *rollout.Plan, refused bool) {
	if refused {
		fmt.Fprintf(w, "REFUSED: rolling %s over service %s would erase changes made on members:\n\n", p.To, p.Service)
		for _, d := range p.Drifted {
			fmt.Fprintf(w, "  %s differs from %s: %d added, %d removed, %d modified", d.VM, d.Image,
				len(d.Drift.Added), len(d.Drift.Removed), len(d.Drift.Modified))
			var ex []string
			ex = append(ex, d.Drift.Added...)
			for _, m := range d.Drift.Modified {
				ex = append(ex, m.Path)
			}
			ex = append(ex, d.Drift.Removed...)
			if len(ex) > 3 {
				ex = append(ex[:3], "…")
			}
			fmt.Fprintf(w, " (%s)\n", strings.Join(ex, ", "))
		}
		fmt.Fprintln(w, "\nFold those changes into a new master version (or rebuild the members), then plan again.")
		fmt.Fprintln(w)
	}
	batches := "batches"
	if len(p.Batches) == 1 {
		batches = "batch"
	}
	fmt.Fprintf(w, "Rollout of %s to service %s: %d %s of at most %d.\n\n", p.To, p.Service, len(p.Batches), batches, p.MaxBatch)
	for _, b := range p.Batches {
		label := fmt.Sprintf("batch %d", b.Index)
		if b.Canary {
			label += " (canary)"
		}
		fmt.Fprintf(w, "  %-18s %s\n", label, strings.Join(b.VMs, ", "))
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "  %-18s %s: %s\n", "skipped", s.VM, s.Reason)
	}
	if len(p.Rollback) > 0 {
		fmt.Fprintln(w, "\nRollback, if a batch fails: the batches done so far, in reverse:")
		for _, b := range p.Rollback {
			fmt.Fprintf(w, "  %s\n", strings.Join(b.VMs, ", "))
		}
	}
}
