package change_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	yaml "go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
)

// caseWant is the want.yaml of a change case: the verdict expected of the
// case's change.yaml against its estate.yaml (and policy.yaml).
type caseWant struct {
	// Decision is allow, warn or deny; empty when Error is set.
	Decision string `yaml:"decision"`
	// Introduced and Resolved are exact sets of findings.
	Introduced []caseFinding `yaml:"introduced"`
	Resolved   []caseFinding `yaml:"resolved"`
	// Worsened is the exact set of findings whose severity the change
	// raised; none when not given.
	Worsened []caseFinding `yaml:"worsened"`
	// Unchanged, when given, is the count of findings before and after.
	Unchanged *int `yaml:"unchanged"`
	// Errors, for an invalid change, are regular expressions that must
	// each match one line of the errors, which must be as many.
	Errors []string `yaml:"errors"`
}

type caseFinding struct {
	Check    string   `yaml:"check"`
	Subject  string   `yaml:"subject"`
	Related  []string `yaml:"related"`
	Severity string   `yaml:"severity"`
}

func (f caseFinding) String() string {
	rel := slices.Clone(f.Related)
	slices.Sort(rel)
	return f.Check + " " + f.Subject + " [" + strings.Join(rel, " ") + "] " + f.Severity
}

func findingString(f *check.Finding) string {
	return caseFinding{Check: f.Check, Subject: f.Subject, Related: f.Related, Severity: f.Severity.String()}.String()
}

// TestCases judges every case of testdata: a txtar archive of an estate, an
// optional policy, side files (manifests, scan reports) and a change, with
// the verdict expected. Cases are named OPERATION-DECISION-what, and
// together they must cover every operation and every decision.
func TestCases(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no change cases found: %v", err)
	}
	ops := map[string]bool{}
	decisions := map[string]bool{}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, dir := extractCase(t, ar)
		c, err := change.Load(filepath.Join(dir, "change.yaml"))
		if err == nil {
			for _, op := range c.Operations {
				o := string(op.Op)
				if op.Op == change.OpClone {
					o += map[bool]string{true: " sanitized", false: " unsanitized"}[op.Sanitize]
				}
				ops[o] = true
			}
		}
		decisions[want.Decision] = true
		t.Run(name, func(t *testing.T) {
			if err != nil {
				checkErrors(t, want, err)
				return
			}
			res, err := load.Paths([]string{dir}, load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }})
			if err != nil {
				t.Fatalf("loading the estate: %v", err)
			}
			j, err := change.NewJudge(estate.NewIndex(res.Estate), res.Policy, check.NewDiskFiles())
			if err != nil {
				t.Fatalf("judging the estate: %v", err)
			}
			v, err := j.Judge(c)
			if err != nil {
				checkErrors(t, want, err)
				return
			}
			if len(want.Errors) > 0 {
				t.Fatalf("change judged (%s), want errors %q", v.Decision, want.Errors)
			}
			if string(v.Decision) != want.Decision {
				t.Errorf("decision %s, want %s", v.Decision, want.Decision)
			}
			compareFindings(t, "introduced", v.Introduced, want.Introduced)
			compareFindings(t, "resolved", v.Resolved, want.Resolved)
			compareFindings(t, "worsened", v.Worsened, want.Worsened)
			if want.Unchanged != nil && v.Unchanged != *want.Unchanged {
				t.Errorf("unchanged %d, want %d", v.Unchanged, *want.Unchanged)
			}
		})
	}
	for _, op := range []string{"migrate", "attach-nic", "detach-nic", "move-nic", "clone sanitized", "clone unsanitized", "create", "delete", "update", "add-image"} {
		if !ops[op] {
			t.Errorf("no case has a %s operation", op)
		}
	}
	for _, d := range []change.Decision{change.Allow, change.Warn, change.Deny} {
		if !decisions[string(d)] {
			t.Errorf("no case expects %s", d)
		}
	}
}

// extractCase writes the case's files but want.yaml to a new directory and
// returns the expectation and the directory.
func extractCase(t *testing.T, ar *txtar.Archive) (caseWant, string) {
	t.Helper()
	dir := t.TempDir()
	var want caseWant
	seen := false
	for _, f := range ar.Files {
		if f.Name == "want.yaml" {
			dec := yaml.NewDecoder(strings.NewReader(string(f.Data)))
			dec.KnownFields(true)
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("want.yaml: %v", err)
			}
			seen = true
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !seen {
		t.Fatal("case has no want.yaml")
	}
	if (want.Decision == "") == (len(want.Errors) == 0) {
		t.Fatal("want.yaml needs either a decision or errors")
	}
	return want, dir
}

// checkErrors compares the errors of an invalid change, one per line, with
// the expected patterns; file names are made relative to the case.
func checkErrors(t *testing.T, want caseWant, err error) {
	t.Helper()
	if len(want.Errors) == 0 {
		t.Fatalf("invalid change, want decision %s: %v", want.Decision, err)
	}
	var errs load.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("invalid change: %v, want load.Errors", err)
	}
	var lines []string
	for _, e := range errs {
		short := *e
		short.File = filepath.Base(e.File)
		lines = append(lines, short.Error())
	}
	if len(lines) != len(want.Errors) {
		t.Errorf("%d errors, want %d:\n%s", len(lines), len(want.Errors), strings.Join(lines, "\n"))
	}
	for _, pat := range want.Errors {
		re, rerr := regexp.Compile(pat)
		if rerr != nil {
			t.Fatalf("bad pattern %q: %v", pat, rerr)
		}
		if !slices.ContainsFunc(lines, re.MatchString) {
			t.Errorf("no error matches %q in:\n%s", pat, strings.Join(lines, "\n"))
		}
	}
}

func compareFindings(t *testing.T, what string, got []check.Finding, want []caseFinding) {
	t.Helper()
	var g, w []string
	for i := range got {
		g = append(g, findingString(&got[i]))
	}
	for _, f := range want {
		w = append(w, f.String())
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s findings differ\n got: %s\nwant: %s", what, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}
