package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sample is a report with one finding of every severity and the awkward
// cases: no position, nil related and evidence, evidence of every kind
// checks use plus a nested value, text that needs escaping, a long message
// and a long list of related objects that must wrap.
func sample() *CheckReport {
	fs := []check.Finding{
		{
			Check: "VG101", Title: "VM below its zone's hardening minimum", Severity: estate.SevCritical,
			Pillar: check.Confidentiality, Subject: "vm/hr-app-1", Related: []string{"network/vlan5", "zone/internet"},
			Message:     "VM hr-app-1 (securityLevel low) has a NIC on network vlan5 in zone internet, which requires high.",
			Remediation: "Move the NIC to a network of the VM's approved zone, or harden the VM to the zone's minimum before it joins.",
			Evidence:    map[string]any{"securityLevel": "low", "required": "high", "networks": []string{"vlan5"}},
			Pos:         estate.Pos{File: "estates/clinic/vms.yaml", Line: 42},
		},
		{
			Check: "VG103", Title: "VM bridges security zones", Severity: estate.SevHigh,
			Pillar: check.Confidentiality, Subject: "vm/bridge", Related: []string{"zone/dmz", "zone/internal"},
			Message:  `VM bridge joins zones dmz and internal; its "notes" say <temporary> & untested.`,
			Evidence: map[string]any{"zones": 2, "gateway": false},
		},
		{
			Check: "VG103", Title: "VM bridges security zones", Severity: estate.SevHigh,
			Pillar: check.Confidentiality, Subject: "vm/wide",
			Related: []string{
				"network/a-very-long-network-name-0001", "network/a-very-long-network-name-0002",
				"network/a-very-long-network-name-0003", "network/a-very-long-network-name-0004",
				"zone/alpha", "zone/beta", "zone/gamma",
			},
			Message:     "VM wide joins three zones through four networks, and that is a message long enough that it must wrap onto a second line, perhaps even a third one when the table is narrow.",
			Remediation: "Remove the NICs that join the extra zones and route the traffic through a firewall.",
			Evidence:    map[string]any{"detail": map[string]any{"count": 3, "names": []string{"alpha", "beta", "gamma"}}},
			Pos:         estate.Pos{File: "estates/clinic/vms.yaml", Line: 77},
		},
		{
			Check: "VG205", Title: "Stale image", Severity: estate.SevMedium, Pillar: check.Integrity,
			Subject: "vm/old-\x1b[31mred", Message: "Escape sequences in names are shown, not obeyed.",
		},
		{
			Check: "VG301", Title: "Service on one host", Severity: estate.SevLow, Pillar: check.Availability,
			Subject: "service/web", Related: []string{}, Evidence: map[string]any{},
			Message: "Service web runs on one hypervisor.", Remediation: "Spread it.",
		},
		{
			Check: "VG999", Title: "Information", Severity: estate.SevInfo, Pillar: check.Availability,
			Subject: "hypervisor/hv-ä", Message: "Unicode names — and a line\u2028separator — survive.",
		},
	}
	return &CheckReport{
		Findings:    fs,
		Estate:      Stats{VMs: 12, Hypervisors: 3, Networks: 4},
		EstateName:  "clinic",
		Inputs:      []string{"estates/clinic"},
		ToolVersion: "test",
	}
}

func empty() *CheckReport {
	return &CheckReport{Estate: Stats{VMs: 1, Hypervisors: 1, Networks: 1}, EstateName: "tiny", Inputs: []string{"e.yaml"}}
}

func write(t testing.TB, format Format, r *CheckReport) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteCheck(&b, format, r); err != nil {
		t.Fatalf("WriteCheck %s: %v", format, err)
	}
	return b.Bytes()
}

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		r      *CheckReport
	}{
		{"check.golden.txt", Table, sample()},
		{"check.golden.json", JSON, sample()},
		{"empty.golden.txt", Table, empty()},
		{"empty.golden.json", JSON, empty()},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, write(t, tc.format, tc.r)) })
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		got, err := ParseFormat(string(f))
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	for _, bad := range []string{"", "yaml", "JSON", "text"} {
		if _, err := ParseFormat(bad); err == nil || !strings.Contains(err.Error(), "table, json, sarif") {
			t.Errorf("ParseFormat(%q): error %v, want one naming the formats", bad, err)
		}
	}
	if err := WriteCheck(io.Discard, Format("yaml"), sample()); err == nil {
		t.Error("WriteCheck with an unknown format succeeded")
	}
}

// TestJSONMatchesEncodingJSON holds the hand-written JSON writer to what
// encoding/json writes for the same document, on the sample and on strings
// full of characters that need escaping.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	tricky := []string{
		"", "plain", `quote " backslash \ slash /`, "<html> & 'apos'", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "bad utf8 \xff\xfe end", "truncated \xe2\x82", "\u2028\u2029", "ünïcødé 日本 🙂",
	}
	r := sample()
	for i, s := range tricky {
		r.Findings = append(r.Findings, check.Finding{
			Check: "VG1" + s, Title: s, Severity: estate.SevLow, Pillar: check.Pillar(s), Subject: s,
			Related: []string{s, s + "x"}, Message: s, Remediation: s,
			Evidence: map[string]any{s: s, "n": i, "big": int64(1) << 40, "list": []string{s}, "empty": []string{},
				"none": []string(nil), "f": 1.5, "b": true, "nested": map[string]any{"k": []any{s, 1}}},
		})
	}
	got := write(t, JSON, r)

	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	doc := checkJSON{Findings: normalized(r.Findings), Summary: Summarize(r.Findings), Estate: r.Estate}
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		g, w := string(got), want.String()
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Fatalf("output differs from encoding/json at byte %d:\ngot:  %q\nwant: %q", i, g[max(0, i-80):min(len(g), i+80)], w[max(0, i-80):min(len(w), i+80)])
	}
}

// normalized is what cli.md asks of findings in JSON: related [] and
// evidence {} instead of null.
func normalized(fs []check.Finding) []check.Finding {
	out := append([]check.Finding{}, fs...)
	for i := range out {
		if out[i].Related == nil {
			out[i].Related = []string{}
		}
		if out[i].Evidence == nil {
			out[i].Evidence = map[string]any{}
		}
	}
	return out
}

// TestJSONShape checks the document against cli.md as a program reads it.
func TestJSONShape(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(write(t, JSON, sample()), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc) != 3 || doc["findings"] == nil || doc["summary"] == nil || doc["estate"] == nil {
		t.Fatalf("top-level keys: %v", keys(doc))
	}
	wantKeys := []string{"check", "evidence", "message", "pillar", "related", "remediation", "severity", "subject", "title"}
	for i, f := range doc["findings"].([]any) {
		f := f.(map[string]any)
		if got := keys(f); !reflect.DeepEqual(got, wantKeys) {
			t.Errorf("finding %d keys %v, want %v", i, got, wantKeys)
		}
		if _, ok := f["related"].([]any); !ok {
			t.Errorf("finding %d related is %v, want a list", i, f["related"])
		}
		if _, ok := f["evidence"].(map[string]any); !ok {
			t.Errorf("finding %d evidence is %v, want an object", i, f["evidence"])
		}
	}
	wantSummary := map[string]any{"critical": 1.0, "high": 2.0, "medium": 1.0, "low": 1.0, "info": 1.0}
	if !reflect.DeepEqual(doc["summary"], wantSummary) {
		t.Errorf("summary %v, want %v", doc["summary"], wantSummary)
	}
	wantEstate := map[string]any{"vms": 12.0, "hypervisors": 3.0, "networks": 4.0}
	if !reflect.DeepEqual(doc["estate"], wantEstate) {
		t.Errorf("estate %v, want %v", doc["estate"], wantEstate)
	}

	if err := json.Unmarshal(write(t, JSON, empty()), &doc); err != nil {
		t.Fatal(err)
	}
	if fs, ok := doc["findings"].([]any); !ok || len(fs) != 0 {
		t.Errorf("empty report findings = %v, want []", doc["findings"])
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestWritersLeaveFindingsAlone: a report is written from the caller's
// findings, which the caller may still use (plan compares two lists).
func TestWritersLeaveFindingsAlone(t *testing.T) {
	for _, f := range Formats() {
		r := sample()
		before := fmt.Sprintf("%#v", r.Findings)
		write(t, f, r)
		if after := fmt.Sprintf("%#v", r.Findings); after != before {
			t.Errorf("%s writer changed the findings", f)
		}
	}
}

func TestTableLayout(t *testing.T) {
	out := string(write(t, Table, sample()))
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > tableWidth && strings.Contains(strings.TrimSpace(line), " ") {
			t.Errorf("line %d has %d columns: %q", i+1, n, line)
		}
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %d ends in a space: %q", i+1, line)
		}
	}
	if strings.ContainsRune(out, '\x1b') {
		t.Error("an escape character reached the terminal")
	}
	// Groups come highest severity first, whatever order the findings are in.
	r := sample()
	slices.Reverse(r.Findings)
	out = string(write(t, Table, r))
	last := -1
	for _, h := range []string{"CRITICAL (1)", "HIGH (2)", "MEDIUM (1)", "LOW (1)", "INFO (1)"} {
		i := strings.Index(out, "\n"+h+"\n")
		if i < last {
			t.Errorf("%s out of order or missing", h)
		}
		last = i
	}
	if !strings.HasSuffix(out, "6 findings: 1 critical, 2 high, 1 medium, 1 low, 1 info.\n") {
		t.Errorf("summary line missing at the end:\n%s", out)
	}
}

func TestEmptyTable(t *testing.T) {
	out := string(write(t, Table, &CheckReport{}))
	if out != "Estate: 0 VMs, 0 hypervisors, 0 networks.\n\nNo findings.\n" {
		t.Errorf("empty table:\n%s", out)
	}
}

func TestStatsOf(t *testing.T) {
	e := &estate.Estate{VMs: make([]*estate.VM, 3), Hypervisors: make([]*estate.Hypervisor, 2), Networks: make([]*estate.Network, 1)}
	if got := StatsOf(e); got != (Stats{VMs: 3, Hypervisors: 2, Networks: 1}) {
		t.Errorf("StatsOf = %+v", got)
	}
	if got := StatsOf(nil); got != (Stats{}) {
		t.Errorf("StatsOf(nil) = %+v", got)
	}
}

// many makes n findings like those of a large estate.
func many(n int) []check.Finding {
	fs := make([]check.Finding, n)
	for i := range fs {
		fs[i] = check.Finding{
			Check: "VG101", Title: "VM below its zone's hardening minimum", Severity: estate.SevHigh,
			Pillar: check.Confidentiality, Subject: fmt.Sprintf("vm/app-%06d", i),
			Related:     []string{fmt.Sprintf("network/vlan%d", i%400), "zone/internet"},
			Message:     fmt.Sprintf("VM app-%06d (securityLevel low) has a NIC on network vlan%d in zone internet, which requires high.", i, i%400),
			Remediation: "Move the NIC to a network of the VM's approved zone, or harden the VM to the zone's minimum before it joins.",
			Evidence:    map[string]any{"securityLevel": "low", "required": "high", "networks": []string{fmt.Sprintf("vlan%d", i%400)}},
			Pos:         estate.Pos{File: "estate/vms.yaml", Line: 1 + 9*i},
		}
	}
	return fs
}

func benchmarkFormat(b *testing.B, f Format, n int) {
	r := &CheckReport{Findings: many(n), Estate: Stats{VMs: n}, Inputs: []string{"estate"}, ToolVersion: "bench"}
	var size int
	for b.Loop() {
		var c countingWriter
		if err := WriteCheck(&c, f, r); err != nil {
			b.Fatal(err)
		}
		size = int(c)
	}
	b.SetBytes(int64(size))
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// BenchmarkJSON100k is the budget of cli.md's JSON report on a large
// estate: 100k findings must be written well under 200 ms.
func BenchmarkJSON100k(b *testing.B)  { benchmarkFormat(b, JSON, 100_000) }
func BenchmarkTable100k(b *testing.B) { benchmarkFormat(b, Table, 100_000) }
func BenchmarkSARIF100k(b *testing.B) { benchmarkFormat(b, SARIF, 100_000) }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	r := &CheckReport{Findings: many(2000)} // more than one buffer's worth
	for _, f := range Formats() {
		if err := WriteCheck(failingWriter{}, f, r); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v, want the writer's", f, err)
		}
	}
}
