package check_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/checks.md from the catalogue")

// factNames names the facts a check reads, for the docs.
var factNames = []struct {
	f    check.Facts
	name string
}{
	{check.FactPlacement, "placement"}, {check.FactNetworks, "NICs"}, {check.FactIdentity, "identity"},
	{check.FactCredentials, "credentials"}, {check.FactImage, "image"}, {check.FactProfile, "profile"},
	{check.FactResources, "resources"}, {check.FactExistence, "VMs added or removed"}, {check.FactImages, "image catalogue"},
}

// catalogueMarkdown renders the catalogue: the checks are declared once,
// and the docs are made from the declarations.
func catalogueMarkdown() string {
	var b strings.Builder
	b.WriteString("# vguard's checks\n\n")
	b.WriteString("Generated from the catalogue in internal/check (`go test ./internal/check -run TestCatalogueDocs -update-docs`);\n")
	b.WriteString("`vguard checks` prints the same list. The contract is ../shared/spec/checks.md. \"Reads\" are the facts a\n")
	b.WriteString("check's findings depend on: `vguard plan` re-judges a check only when a change touches one of them.\n")
	for _, pillar := range []check.Pillar{check.Confidentiality, check.Integrity, check.Availability} {
		fmt.Fprintf(&b, "\n## %s%s\n\n", strings.ToUpper(string(pillar[:1])), pillar[1:])
		b.WriteString("| ID | name | severity | what fires it | remediation | reads |\n|---|---|---|---|---|---|\n")
		for _, c := range check.Catalogue() {
			if c.Pillar != pillar {
				continue
			}
			var reads []string
			for _, fn := range factNames {
				if c.Reads&fn.f != 0 {
					reads = append(reads, fn.name)
				}
			}
			desc := c.Description
			if c.ChangeOnly {
				desc = "(change only) " + desc
				reads = []string{"the change's operations"}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.ID, c.Name, c.Severity, desc, c.Remediation, strings.Join(reads, ", "))
		}
	}
	return b.String()
}

func TestCatalogueDocs(t *testing.T) {
	const path = "../../docs/checks.md"
	want := catalogueMarkdown()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/checks.md is out of date with the catalogue; run: go test ./internal/check -run TestCatalogueDocs -update-docs")
	}
	for _, c := range check.Catalogue() {
		if !c.ChangeOnly && c.Reads == 0 {
			t.Errorf("%s declares no facts it reads: a change would never re-judge it", c.ID)
		}
	}
}
