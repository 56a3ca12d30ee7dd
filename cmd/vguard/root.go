package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

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
	root.InitDefaultCompletionCmd() // cobra adds it late; guard it too
	guardArgs(root)
	return root, g
}

// guardArgs makes every wrong command line below root a usage error (exit
// 2, with the help hint). Cobra lets a command group (image, audit, sync,
// ...) print its help and succeed when given a subcommand it does not know,
// so `vguard audit verfy || alert` would never alert; and its argument-count
// errors carry no hint of the command's usage.
func guardArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		guardArgs(sub)
	}
	if c.HasParent() && c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 || args[0] == "help" {
				return c.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2 // cobra's own default for the root
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return &usageError{cmd: c.CommandPath(), err: errors.New(msg)}
		}
		return
	}
	if validate := c.Args; validate != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return &usageError{cmd: c.CommandPath(), err: err}
			}
			return nil
		}
	}
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
