package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/place"
)

type placeOptions struct {
	output     string
	candidates int
}

func newPlaceCmd(g *globalOptions) *cobra.Command {
	o := &placeOptions{}
	cmd := &cobra.Command{
		Use:   "place [PATH...]",
		Short: "Compute migrations that remove the placement findings",
		Long: `Compute migrations that remove the placement findings (VG106, VG107, VG301,
VG302, VG401, VG402) within hypervisor capacity (CPUs with the policy's
overcommit, memory) and without introducing any finding, with as few moves as
it can. The moves are printed on stdout as a Change document that
'vguard plan' allows; a summary (moves, a lower bound on the moves any fix
needs, what stays unfixed and why) goes to stderr.

Exit 0 when every placement finding is fixed, 1 when some cannot be.`,
		Example: `  vguard place estate/ > fix.yaml && vguard plan fix.yaml estate/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlace(g, o, args, cmd.CommandPath())
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the Change document to `FILE` instead of stdout")
	cmd.Flags().IntVar(&o.candidates, "candidates", 40, "hypervisors tried for each VM that could move")
	return cmd
}

func runPlace(g *globalOptions, o *placeOptions, paths []string, cmdPath string) error {
	if o.candidates < 1 {
		return usagef(cmdPath, "--candidates must be at least 1")
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	res, err := load.Paths(paths, loadOptions())
	if err != nil {
		return err
	}
	r, err := place.Solve(estate.NewIndex(res.Estate), res.Policy, check.NewDiskFiles(), place.Options{Candidates: o.candidates})
	if err != nil {
		return &inputError{errs: []error{err}}
	}
	err = g.writeOutput(o.output, func(w io.Writer) error {
		_, err := io.WriteString(w, place.ChangeYAML(r.Moves))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "vguard place: %s fix %d of %d placement findings (those %d need at least %d moves; all %d, at least %d)\n",
		count(len(r.Moves), "migration"), len(r.Fixed), len(r.Fixed)+len(r.Unfixed), len(r.Fixed), r.FixedLowerBound,
		len(r.Fixed)+len(r.Unfixed), r.LowerBound)
	for _, u := range r.Unfixed {
		fmt.Fprintf(g.stderr, "  unfixed %s %s: %s\n", u.Finding.Check, u.Finding.Subject, u.Why)
	}
	if len(r.Unfixed) > 0 {
		return &verdictError{msg: fmt.Sprintf("vguard: %s could not be fixed", count(len(r.Unfixed), "placement finding"))}
	}
	return nil
}
