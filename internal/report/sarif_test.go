package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// sarifSchemaFile is the official SARIF 2.1.0 schema (OASIS errata 01, from
// the oasis-tcs/sarif-spec repository, Schemata/sarif-schema-2.1.0.json),
// kept verbatim.
const sarifSchemaFile = "testdata/sarif-schema-2.1.0.json"

func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(sarifSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", sarifSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // uri and uri-reference formats are part of what GitHub expects
	const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compiling the SARIF schema: %v", err)
	}
	return sch
}

func validateSARIF(t *testing.T, sch *jsonschema.Schema, out []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("output does not conform to SARIF 2.1.0:\n%v", err)
	}
}

// TestSARIFSchema validates reports against the official schema, and makes
// sure the validator is not asleep by feeding it documents it must reject.
func TestSARIFSchema(t *testing.T) {
	sch := compileSARIFSchema(t)
	for name, r := range map[string]*CheckReport{
		"sample":       sample(),
		"empty":        empty(),
		"no inputs":    {Findings: sample().Findings},
		"odd paths":    oddPaths(),
		"catalogue":    {Findings: oneOfEach(), Inputs: []string{"estate.yaml"}},
		"absolute pos": {Findings: []check.Finding{{Check: "VG101", Severity: estate.SevHigh, Subject: "vm/a", Pos: estate.Pos{File: "/outside/the/tree.yaml", Line: 3}}}},
	} {
		t.Run(name, func(t *testing.T) { validateSARIF(t, sch, write(t, SARIF, r)) })
	}

	out := write(t, SARIF, sample())
	for name, breakIt := range map[string]func(doc map[string]any){
		"bad level":   func(doc map[string]any) { result(doc, 0)["level"] = "fatal" },
		"line 0":      func(doc map[string]any) { location(doc, 0)["region"] = map[string]any{"startLine": 0} },
		"no message":  func(doc map[string]any) { delete(result(doc, 0), "message") },
		"bad version": func(doc map[string]any) { doc["version"] = "2.0.0" },
	} {
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		breakIt(doc)
		broken, _ := json.Marshal(doc)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(broken))
		if sch.Validate(inst) == nil {
			t.Errorf("the schema accepted a document with %s", name)
		}
	}
}

func oddPaths() *CheckReport {
	fs := sample().Findings
	fs[0].Pos.File = filepath.Join("dir with space", "50% #1?.yaml")
	fs[2].Pos.File = "c:colon/first.yaml"
	return &CheckReport{Findings: fs, Inputs: []string{"in put"}}
}

// oneOfEach is a finding of every check of the catalogue, at its default
// severity.
func oneOfEach() []check.Finding {
	var fs []check.Finding
	for _, c := range check.Catalogue() {
		fs = append(fs, check.Finding{Check: c.ID, Title: c.Title, Severity: c.Severity, Pillar: c.Pillar,
			Subject: "vm/x", Related: []string{}, Message: c.Description, Remediation: c.Remediation,
			Evidence: map[string]any{}, Pos: estate.Pos{File: "estate.yaml", Line: 2}})
	}
	return fs
}

func result(doc map[string]any, i int) map[string]any {
	return doc["runs"].([]any)[0].(map[string]any)["results"].([]any)[i].(map[string]any)
}

func location(doc map[string]any, i int) map[string]any {
	return result(doc, i)["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)
}

// TestSARIFForGitHub checks what GitHub code scanning relies on beyond the
// schema.
func TestSARIFForGitHub(t *testing.T) {
	r := sample()
	var log sarifLog
	if err := json.Unmarshal(write(t, SARIF, r), &log); err != nil {
		t.Fatal(err)
	}
	if log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("header: $schema %q version %q, %d runs", log.Schema, log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "vguard" || d.Version != "test" || !strings.HasPrefix(d.InformationURI, "https://") {
		t.Errorf("driver: %+v", d)
	}

	// One rule per check of the catalogue, in its order, then rules for
	// findings of checks outside it (VG205, VG999 in the sample may not be
	// declared yet).
	cat := check.Catalogue()
	if len(d.Rules) < len(cat) {
		t.Fatalf("%d rules for %d checks", len(d.Rules), len(cat))
	}
	seen := map[string]bool{}
	for i, rule := range d.Rules {
		if seen[rule.ID] {
			t.Errorf("rule %s twice", rule.ID)
		}
		seen[rule.ID] = true
		if i < len(cat) && rule.ID != cat[i].ID {
			t.Errorf("rule %d is %s, want %s", i, rule.ID, cat[i].ID)
		}
		if rule.ShortDescription.Text == "" || rule.FullDescription.Text == "" {
			t.Errorf("rule %s lacks a description", rule.ID)
		}
		if rule.Properties.SecuritySeverity == "" || len(rule.Properties.Tags) == 0 || rule.Properties.Tags[0] != "security" {
			t.Errorf("rule %s properties %+v", rule.ID, rule.Properties)
		}
	}
	for _, c := range cat {
		rule := d.Rules[indexOfRule(d.Rules, c.ID)]
		if rule.Name != c.Name || rule.DefaultConfiguration.Level != sarifLevel(c.Severity) ||
			rule.Properties.SecuritySeverity != securitySeverity(c.Severity) {
			t.Errorf("rule %s = %+v, want from %+v", c.ID, rule, c)
		}
		if c.Remediation != "" && (rule.Help == nil || rule.Help.Text != c.Remediation) {
			t.Errorf("rule %s help %+v, want the remediation", c.ID, rule.Help)
		}
		if c.Pillar != "" && (len(rule.Properties.Tags) != 2 || rule.Properties.Tags[1] != string(c.Pillar)) {
			t.Errorf("rule %s tags %v, want the pillar", c.ID, rule.Properties.Tags)
		}
	}

	if len(run.Results) != len(r.Findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(r.Findings))
	}
	wantLevel := map[estate.Severity]string{estate.SevCritical: "error", estate.SevHigh: "error",
		estate.SevMedium: "warning", estate.SevLow: "note", estate.SevInfo: "note"}
	prints := map[string]bool{}
	for i, res := range run.Results {
		f := r.Findings[i]
		if res.RuleID != f.Check || d.Rules[res.RuleIndex].ID != f.Check {
			t.Errorf("result %d: ruleId %s, ruleIndex %d (rule %s), want %s", i, res.RuleID, res.RuleIndex, d.Rules[res.RuleIndex].ID, f.Check)
		}
		if res.Level != wantLevel[f.Severity] {
			t.Errorf("result %d: level %s for %s", i, res.Level, f.Severity)
		}
		if res.Message.Text != f.Message {
			t.Errorf("result %d: message %q", i, res.Message.Text)
		}
		if len(res.Locations) != 1 {
			t.Fatalf("result %d has %d locations, GitHub needs one", i, len(res.Locations))
		}
		loc := res.Locations[0].PhysicalLocation
		wantURI, wantLine := "estates/clinic", 1 // the first input, for findings without a position
		if f.Pos.File != "" {
			wantURI, wantLine = f.Pos.File, f.Pos.Line
		}
		if loc.ArtifactLocation.URI != wantURI || loc.ArtifactLocation.URIBaseID != "%SRCROOT%" || loc.Region.StartLine != wantLine {
			t.Errorf("result %d: location %+v, want %s:%d under %%SRCROOT%%", i, loc, wantURI, wantLine)
		}
		fp := res.PartialFingerprints["vguard/v1"]
		if fp == "" || prints[fp] {
			t.Errorf("result %d: fingerprint %q missing or not unique", i, fp)
		}
		prints[fp] = true
		if res.Properties.Subject != f.Subject || res.Properties.Severity != f.Severity.String() ||
			res.Properties.Related == nil || res.Properties.Evidence == nil {
			t.Errorf("result %d: properties %+v", i, res.Properties)
		}
	}
}

func indexOfRule(rules []sarifRule, id string) int {
	for i, r := range rules {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// TestSARIFFingerprintStable: the fingerprint depends on the finding's key
// only, so an alert survives a reworded message or a moved line, and a
// change of related objects makes a new alert.
func TestSARIFFingerprintStable(t *testing.T) {
	f := sample().Findings[0]
	g := f
	g.Message, g.Pos.Line, g.Severity = "reworded", 99, estate.SevLow
	if fingerprint(&f) != fingerprint(&g) {
		t.Error("fingerprint changed with message, line or severity")
	}
	g.Related = []string{"network/other"}
	if fingerprint(&f) == fingerprint(&g) {
		t.Error("fingerprint ignores related objects")
	}
	if got := fingerprint(&f); got != fingerprint(&f) || len(got) != 32 {
		t.Errorf("fingerprint %q", got)
	}
}

func TestArtifactLocation(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, uri, base string }{
		{"estate.yaml", "estate.yaml", "%SRCROOT%"},
		{"./a/../estates/vms.yaml", "estates/vms.yaml", "%SRCROOT%"},
		{filepath.Join(wd, "testdata", "e.yaml"), "testdata/e.yaml", "%SRCROOT%"},
		{"dir with space/50%.yaml", "dir%20with%20space/50%25.yaml", "%SRCROOT%"},
		{"c:colon.yaml", "./c:colon.yaml", "%SRCROOT%"},
		{"/outside/x.yaml", "file:///outside/x.yaml", ""},
	} {
		got := artifactLocation(tc.path)
		if got.URI != tc.uri || got.URIBaseID != tc.base {
			t.Errorf("artifactLocation(%q) = %+v, want %q under %q", tc.path, got, tc.uri, tc.base)
		}
	}
}

func TestSARIFEmpty(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(write(t, SARIF, empty()), &doc); err != nil {
		t.Fatal(err)
	}
	run := doc["runs"].([]any)[0].(map[string]any)
	if res, ok := run["results"].([]any); !ok || len(res) != 0 {
		t.Errorf("results = %v, want [] (GitHub reads a missing list as no scan)", run["results"])
	}
}

// TestSARIFStreamMatchesWhole: writing results one at a time into the
// document gives exactly what encoding the whole document at once gives.
func TestSARIFStreamMatchesWhole(t *testing.T) {
	for name, r := range map[string]*CheckReport{"sample": sample(), "empty": empty(), "odd paths": oddPaths()} {
		sb := newSARIFBuilder(r, check.Catalogue())
		results := []sarifResult{}
		for i := range r.Findings {
			results = append(results, sb.result(&r.Findings[i]))
		}
		var want bytes.Buffer
		if err := encodeJSON(&want, sb.log(results)); err != nil {
			t.Fatal(err)
		}
		if got := write(t, SARIF, r); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: streamed SARIF differs from the whole document:\n%s\nwant:\n%s", name, got, want.Bytes())
		}
	}
}
