package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/blast"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
)

type blastOptions struct {
	unit   string
	fail   []string
	k      int
	top    int
	format string
	output string
}

func newBlastCmd(g *globalOptions) *cobra.Command {
	o := &blastOptions{}
	cmd := &cobra.Command{
		Use:   "blast-radius [PATH...]",
		Short: "What the loss of each failure unit does: VMs lost, services down, services degraded",
		Long: `For each failure unit (hypervisor, or failure domain with --unit failureDomain),
or for the units named with --fail failing together, or with --k 2 for every
pair of units: the VMs lost, the services left with no member (down) and the
services left below minAvailable (degraded), sorted by impact.`,
		Example: `  vguard blast-radius estate/
  vguard blast-radius . --unit failureDomain
  vguard blast-radius . --fail esx-01 --fail esx-02
  vguard blast-radius . --k 2 --top 5`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBlast(g, o, args, cmd.CommandPath())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.unit, "unit", "hypervisor", "failure unit: hypervisor or failureDomain")
	f.StringSliceVar(&o.fail, "fail", nil, "units that fail together (repeatable, comma-separated)")
	f.IntVar(&o.k, "k", 1, "1: each unit alone; 2: every pair of units, the worst reported")
	f.IntVar(&o.top, "top", 20, "how many scenarios to show (0: all; with --k 2 at least 1)")
	f.StringVarP(&o.format, "format", "f", "table", "output format: table or json")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of stdout")
	_ = cmd.RegisterFlagCompletionFunc("unit", fixedCompletion("hypervisor", "failureDomain"))
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("table", "json"))
	return cmd
}

func runBlast(g *globalOptions, o *blastOptions, paths []string, cmdPath string) error {
	unit := blast.Unit(o.unit)
	if unit != blast.ByHypervisor && unit != blast.ByFailureDomain {
		return usagef(cmdPath, "--unit: unknown unit %q (want hypervisor or failureDomain)", o.unit)
	}
	if o.k != 1 && o.k != 2 {
		return usagef(cmdPath, "--k: want 1 or 2, got %d", o.k)
	}
	if o.top < 0 {
		return usagef(cmdPath, "--top must not be negative")
	}
	if o.format != "table" && o.format != "json" {
		return usagef(cmdPath, "--format: unknown format %q (want table or json)", o.format)
	}
	if len(o.fail) > 0 && o.k != 1 {
		return usagef(cmdPath, "--fail and --k 2 do not go together")
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	if len(o.fail) > 0 {
		// "--fail esx-01 esx-02" reads esx-02 as a PATH: say how to name
		// several units rather than that a file is missing.
		for _, p := range paths {
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				return usagef(cmdPath, "%s: no such file or directory; to fail several units together, give --fail %s,%s or --fail %s --fail %s",
					p, o.fail[len(o.fail)-1], p, o.fail[len(o.fail)-1], p)
			}
		}
	}
	res, err := load.Paths(paths, loadOptions())
	if err != nil {
		return err
	}
	a := blast.New(estate.NewIndex(res.Estate), unit)
	var scs []blast.Scenario
	switch {
	case len(o.fail) > 0:
		for _, u := range o.fail {
			if !a.Known(u) {
				return usagef(cmdPath, "--fail: unknown %s %q", unit, u)
			}
		}
		scs = []blast.Scenario{a.Fail(o.fail...)}
	case o.k == 2:
		scs = a.Pairs(max(o.top, 1))
	default:
		scs = a.EachUnit()
		if o.top > 0 && o.format == "table" && len(scs) > o.top {
			scs = scs[:o.top]
		}
	}
	return g.writeOutput(o.output, func(w io.Writer) error {
		if o.format == "json" {
			return writeJSON(w, blast.Report{Scenarios: scs})
		}
		what := fmt.Sprintf("Blast radius by %s, worst first", unit)
		switch {
		case len(o.fail) > 0:
			what = fmt.Sprintf("Blast radius of %s failing together", strings.Join(o.fail, ", "))
		case o.k == 2:
			what = fmt.Sprintf("Blast radius of pairs of %ss failing together, worst first", unit)
		}
		fmt.Fprintf(w, "%s:\n\n", what)
		writeBlastTable(w, unit, scs)
		return nil
	})
}

// writeBlastTable writes a ranked list a person reads in seconds: the
// failed units, the counts, then which services go down or degrade.
func writeBlastTable(w io.Writer, unit blast.Unit, scs []blast.Scenario) {
	if len(scs) == 0 {
		fmt.Fprintf(w, "No %s in the estate.\n", unit)
		return
	}
	names := func(refs []string) string {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = r[strings.IndexByte(r, '/')+1:]
		}
		if len(out) > 8 {
			out = append(out[:8], fmt.Sprintf("and %d more", len(refs)-8))
		}
		return strings.Join(out, ", ")
	}
	for i, sc := range scs {
		fmt.Fprintf(w, "%3d. %-40s %s\n", i+1, names(sc.Failed), sc.Summary())
		if len(sc.ServicesDown) > 0 {
			fmt.Fprintf(w, "       down:     %s\n", names(sc.ServicesDown))
		}
		if len(sc.ServicesDegraded) > 0 {
			fmt.Fprintf(w, "       degraded: %s\n", names(sc.ServicesDegraded))
		}
	}
}
