package check_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
	yaml "go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
)

// corpusWant is the want.yaml of a corpus case.
type corpusWant struct {
	Checks   []string        `yaml:"checks"`
	Findings []corpusFinding `yaml:"findings"`
}

type corpusFinding struct {
	Check    string   `yaml:"check"`
	Subject  string   `yaml:"subject"`
	Related  []string `yaml:"related"`
	Severity string   `yaml:"severity"`
}

// TestCorpus runs every case of testdata/checks: each is a txtar archive of
// an estate (and optional policy and side files) with the exact findings
// expected of the checks it names.
func TestCorpus(t *testing.T) {
	cases, err := filepath.Glob("../../testdata/checks/*.txtar")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no corpus cases found: %v", err)
	}
	covered := map[string][2]bool{} // check ID -> [fires somewhere, silent somewhere]
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		ar, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var want corpusWant
			for _, f := range ar.Files {
				if f.Name == "want.yaml" {
					dec := yaml.NewDecoder(bytes.NewReader(f.Data))
					dec.KnownFields(true) // a typo must not turn into "expect nothing"
					if err := dec.Decode(&want); err != nil {
						t.Fatalf("want.yaml: %v", err)
					}
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
			if len(want.Checks) == 0 {
				t.Fatal("want.yaml names no checks")
			}
			res, err := load.Paths([]string{dir}, load.Options{KnownCheck: func(id string) bool { return check.Lookup(id) != nil }})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			out := check.Evaluate(estate.NewIndex(res.Estate), res.Policy, check.Options{Only: want.Checks, Files: check.NewDiskFiles()})
			for _, e := range out.Errors {
				t.Errorf("check error: %v", e)
			}
			var got, exp []string
			for _, f := range out.Findings {
				got = append(got, f.Check+" "+f.Subject+" ["+strings.Join(f.Related, " ")+"] "+f.Severity.String())
			}
			for _, f := range want.Findings {
				rel := slices.Clone(f.Related)
				slices.Sort(rel)
				exp = append(exp, f.Check+" "+f.Subject+" ["+strings.Join(rel, " ")+"] "+f.Severity)
			}
			slices.Sort(got)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				t.Errorf("findings differ\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(exp, "\n      "))
			}
			for _, id := range want.Checks {
				c := covered[id]
				fired := slices.ContainsFunc(want.Findings, func(f corpusFinding) bool { return f.Check == id })
				if fired {
					c[0] = true
				} else {
					c[1] = true
				}
				covered[id] = c
			}
		})
	}
	// Every estate check needs a case where it fires and one where it
	// must stay silent.
	for _, c := range check.Catalogue() {
		if c.ChangeOnly {
			continue
		}
		if cov := covered[c.ID]; !cov[0] || !cov[1] {
			t.Errorf("%s: corpus lacks a case where it fires (%v) or one where it must not (%v)", c.ID, cov[0], cov[1])
		}
	}
}
