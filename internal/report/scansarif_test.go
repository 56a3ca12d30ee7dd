package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/scanreport"
)

func TestScanSARIF(t *testing.T) {
	sch := compileSARIFSchema(t)
	rep := &scanreport.Report{
		Image: "hr.qcow2", Format: "qcow2",
		Secrets: []scanreport.Secret{
			{Rule: "db-connection-uri", Path: "/opt/hr/config.yaml", Line: 2, Redacted: "Payr***cret", Fingerprint: "sha256:ab12"},
			{Rule: "team-rule", Path: "/opt/odd name#1.txt", Line: 7, Redacted: "****", Fingerprint: "sha256:cd34"},
		},
		Identity: []scanreport.Identity{{Kind: "machine-id", Path: "/etc/machine-id"}},
	}
	rules := []ScanRule{
		{ID: "db-connection-uri", Description: "Database URL with a password", Secret: true},
		{ID: "machine-id", Description: "systemd machine ID"},
	}
	for name, r := range map[string]*scanreport.Report{"findings": rep, "clean": {Image: "x", Format: "dir"}} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteScanSARIF(&buf, r, rules, "test"); err != nil {
				t.Fatal(err)
			}
			validateSARIF(t, sch, buf.Bytes())
		})
	}
	var buf bytes.Buffer
	if err := WriteScanSARIF(&buf, rep, rules, "test"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	run := doc.Runs[0]
	if len(run.Results) != 3 {
		t.Fatalf("%d results, want 3", len(run.Results))
	}
	for _, r := range run.Results {
		if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
			t.Errorf("result %s points at rule %d (%s)", r.RuleID, r.RuleIndex, run.Tool.Driver.Rules[r.RuleIndex].ID)
		}
	}
	got := run.Results[0]
	if got.Level != "error" || got.Locations[0].PhysicalLocation.ArtifactLocation.URI != "opt/hr/config.yaml" || got.Locations[0].PhysicalLocation.Region.StartLine != 2 {
		t.Errorf("secret result: %+v", got)
	}
	if uri := run.Results[1].Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != "opt/odd%20name%231.txt" {
		t.Errorf("odd path as URI: %q", uri)
	}
	if run.Results[2].Level != "warning" {
		t.Errorf("identity result level %q, want warning", run.Results[2].Level)
	}
	if strings.Contains(buf.String(), "Payroll") {
		t.Error("SARIF holds more of a secret than the report's redacted form")
	}
}

// TestScanSARIFFingerprintsAcrossKeys: two runs over one image, whose
// secrets' fingerprints differ (each run keyed at random), give their
// alerts the same partial fingerprints; two secrets of one rule in one file
// still get two.
func TestScanSARIFFingerprintsAcrossKeys(t *testing.T) {
	partials := func(fps ...string) []string {
		t.Helper()
		rep := &scanreport.Report{Image: "hr.qcow2", Format: "qcow2"}
		for i, f := range fps {
			rep.Secrets = append(rep.Secrets, scanreport.Secret{Rule: "password-assignment", Path: "/etc/app.env", Line: i + 1, Redacted: "****", Fingerprint: f})
		}
		var buf bytes.Buffer
		if err := WriteScanSARIF(&buf, rep, nil, "test"); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Runs []struct {
				Results []struct {
					PartialFingerprints map[string]string `json:"partialFingerprints"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range doc.Runs[0].Results {
			out = append(out, r.PartialFingerprints[fingerprintKey])
		}
		return out
	}
	a := partials("sha256:aa", "sha256:bb")
	b := partials("sha256:cc", "sha256:dd")
	if len(a) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Errorf("partial fingerprints changed with the key: %v and %v", a, b)
	}
	if a[0] == a[1] || a[0] == "" {
		t.Errorf("two secrets in one file share a partial fingerprint: %v", a)
	}
}
