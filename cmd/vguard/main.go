// Command vguard keeps virtualized estates secure: it judges an estate of
// hypervisors, VMs, networks, datastores and images against security policy,
// pillar by pillar. main only wires the commands and decides exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/vguard-dev/vguard/internal/load"
)

// Exit codes, the same for every command (cli.md).
const (
	exitOK       = 0
	exitFindings = 1
	exitInput    = 2
)

func main() {
	// Loading a large estate allocates millions of small objects that live
	// until the run ends; collecting less often saves a third of the time
	// at a bounded cost in memory.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(900 << 20)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code. Every exit code
// is decided here.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root, g := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	g.finish()
	var (
		loadErrs load.Errors
		usage    *usageError
		inputErr *inputError
		verdict  *verdictError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &verdict):
		if verdict.msg != "" {
			fmt.Fprintln(stderr, verdict.msg)
		}
		return exitFindings
	case errors.As(err, &loadErrs):
		for _, e := range loadErrs {
			fmt.Fprintln(stderr, e.Error())
		}
		fmt.Fprintf(stderr, "vguard: %d problem%s in the input; nothing was checked\n", len(loadErrs), plural(len(loadErrs)))
		return exitInput
	case errors.As(err, &inputErr):
		for _, e := range inputErr.errs {
			fmt.Fprintln(stderr, e.Error())
		}
		return exitInput
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "vguard: %v\n", usage.err)
		if usage.cmd != "" {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", usage.cmd)
		}
		return exitInput
	default:
		// Flag parsing errors from cobra land here too: all are the command
		// line's fault.
		fmt.Fprintf(stderr, "vguard: %v\n", err)
		return exitInput
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// usageError is a wrong command line.
type usageError struct {
	cmd string // the command path, for the help hint
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// inputError carries problems found in the input after it loaded, such as
// an unreadable manifest; each is printed on a line of its own.
type inputError struct{ errs []error }

func (e *inputError) Error() string { return errors.Join(e.errs...).Error() }

// verdictError means the command worked and its verdict is "fail": findings
// at or above the threshold, a denied change.
type verdictError struct{ msg string }

func (e *verdictError) Error() string { return "verdict: fail" }
