package main

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vguard-dev/vguard/internal/gen"
)

type genOptions struct {
	vms, hypervisors int
	seed             int64
	dir              string
}

func newGenCmd(g *globalOptions) *cobra.Command {
	o := &genOptions{}
	cmd := &cobra.Command{
		Use:   "gen --vms N [--hypervisors N] [--seed S] [-o DIR]",
		Short: "Write a synthetic, valid estate of that size (for benchmarks and demos)",
		Long: `Write a synthetic, valid estate: clusters of hypervisors in racks, zones and
VLANs, firewalls, datastores, master images, services, and a realistic
sprinkle of violations of every check. The same seed gives the same bytes.

Without -o the Estate document is written to stdout as JSON. With -o DIR a
directory is written instead: estate.json, policy.yaml (separate and
placement rules), and the manifests and scan reports the estate refers to, so
that every check, VG105 and VG203 included, has something to find.`,
		Example: `  vguard gen --vms 1000 --seed 7 > estate.json
  vguard gen --vms 100000 --hypervisors 2000 --seed 1 -o big/ && vguard check big/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGen(g, o, cmd.CommandPath())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.vms, "vms", 0, "number of VMs (required)")
	f.IntVar(&o.hypervisors, "hypervisors", 0, "number of hypervisors (default: one per 50 VMs)")
	f.Int64Var(&o.seed, "seed", 1, "random seed; the same seed gives the same bytes")
	f.StringVarP(&o.dir, "output", "o", "", "write a directory with the estate, a policy and side files to `DIR`")
	return cmd
}

func runGen(g *globalOptions, o *genOptions, cmdPath string) error {
	if o.vms < 1 {
		return usagef(cmdPath, "--vms must be at least 1")
	}
	if o.hypervisors < 0 {
		return usagef(cmdPath, "--hypervisors must not be negative")
	}
	opts := gen.Options{VMs: o.vms, Hypervisors: o.hypervisors, Seed: o.seed}
	if o.dir != "" {
		if err := gen.WriteDir(o.dir, opts); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		fmt.Fprintf(g.stderr, "vguard: wrote %s (estate.json, policy.yaml, manifests/, scans/)\n", o.dir)
		return nil
	}
	bw := bufio.NewWriterSize(g.stdout, 1<<16)
	if err := gen.Write(bw, opts); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	return bw.Flush()
}
