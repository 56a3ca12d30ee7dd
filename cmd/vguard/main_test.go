package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the vguard command inside scripts:
// testscript runs it as a real subprocess, through main's exit-code path.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"vguard": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script: exit
// codes, formats, the bundled examples and the bad-input messages.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:       "testdata/script",
		Cmds:      map[string]func(*testscript.TestScript, bool, []string){"mkimage": cmdMkimage},
		Condition: scriptCondition,
		Setup: func(env *testscript.Env) error {
			// Scripts reach the repository's examples and the shared
			// conformance inputs through these variables.
			root, err := os.Getwd()
			if err != nil {
				return err
			}
			env.Setenv("EXAMPLES", root+"/../../examples")
			env.Setenv("REPO", root+"/../..")
			return nil
		},
	})
}
