package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// globalOptions are the flags and streams every command shares.
type globalOptions struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// cleanup runs when the command has finished, whatever its outcome.
	cleanup []func()
}

func (g *globalOptions) finish() {
	for _, f := range g.cleanup {
		f()
	}
}

func newRootCmd(stdout, stderr io.Writer) (*cobra.Command, *globalOptions) {
	g := &globalOptions{stdin: os.Stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "vguard",
		Short: "Keep virtualized estates secure: judge hypervisors, VMs, networks and images against policy",
		Long: `vguard models a virtualized estate (hypervisors, VMs, networks and zones,
datastores, master images, services) and judges it pillar by pillar:
confidentiality, integrity, availability.

Exit codes: 0 nothing at or above the threshold, 1 findings at or above it,
2 the input or the command line is wrong.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to `FILE` (for performance work)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return &usageError{err: fmt.Errorf("--cpuprofile: %w", err)}
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return &usageError{err: fmt.Errorf("--cpuprofile: %w", err)}
		}
		g.cleanup = append(g.cleanup, func() { pprof.StopCPUProfile(); f.Close() })
		return nil
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(
		newCheckCmd(g),
		newChecksCmd(g),
		newGenCmd(g),
		newPlanCmd(g),
		newRolloutCmd(g),
		newBlastCmd(g),
		newPlaceCmd(g),
		newImageCmd(g),
		newDriftCmd(g),
		newServeCmd(g),
		newTokenCmd(g),
		newAuditCmd(g),
		newSyncCmd(g),
		newLibvirtHookCmd(g),
		newWatchCmd(g),
	)
	return root, g
}

// openOutput returns where a report goes: stdout, or the file named by -o.
// The returned close function must be called; it reports write errors.
func (g *globalOptions) openOutput(path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return g.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, &usageError{err: fmt.Errorf("cannot write the report: %w", err)}
	}
	return f, f.Close, nil
}

// writeOutput runs write on a buffer over stdout or the file of -o, and
// reports any error of writing, flushing or closing as one.
func (g *globalOptions) writeOutput(path string, write func(w io.Writer) error) error {
	w, closeOut, err := g.openOutput(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
