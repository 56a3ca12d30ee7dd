// Package report writes vguard's reports in the formats of cli.md: a table
// for people, JSON for programs and SARIF 2.1.0 for code-scanning services
// such as GitHub's.
//
// Every writer takes findings as the check engine returns them (sorted by
// check.SortFindings) and never changes them. The pieces that render one
// finding or a list of findings are kept apart from the check report itself,
// so that other reports that carry findings (the plan report's introduced
// and resolved lists) render them the same way.
package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Format is an output format of a report.
type Format string

const (
	Table Format = "table"
	JSON  Format = "json"
	SARIF Format = "sarif"
)

// Formats lists the formats of the check report, the default first (for
// flag help and shell completion).
func Formats() []Format { return []Format{Table, JSON, SARIF} }

// ParseFormat reads a --format value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, 3)
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", s, strings.Join(names, ", "))
}

// Stats is the size of the estate a report is about.
type Stats struct {
	VMs         int `json:"vms"`
	Hypervisors int `json:"hypervisors"`
	Networks    int `json:"networks"`
}

// StatsOf counts the objects of an estate that the reports show.
func StatsOf(e *estate.Estate) Stats {
	if e == nil {
		return Stats{}
	}
	return Stats{VMs: len(e.VMs), Hypervisors: len(e.Hypervisors), Networks: len(e.Networks)}
}

// CheckReport is what `vguard check` reports.
type CheckReport struct {
	// Findings in report order (check.SortFindings).
	Findings []check.Finding
	// Estate is the size of the evaluated estate.
	Estate Stats
	// EstateName is the estate's metadata name, shown by the table; may be
	// empty.
	EstateName string
	// Inputs are the paths given on the command line. SARIF needs a file
	// location for every result and uses the first input for findings
	// whose subject has no known position.
	Inputs []string
	// ToolVersion is vguard's version for SARIF; empty means the version
	// recorded in the binary's build information, or "dev".
	ToolVersion string
}

// WriteCheck writes r to w in the given format.
func WriteCheck(w io.Writer, format Format, r *CheckReport) error {
	var err error
	switch format {
	case Table:
		err = writeCheckTable(w, r)
	case JSON:
		err = writeCheckJSON(w, r)
	case SARIF:
		err = writeCheckSARIF(w, r)
	default:
		return fmt.Errorf("report: unknown format %q", format)
	}
	if err != nil {
		return fmt.Errorf("writing %s report: %w", format, err)
	}
	return nil
}

// Summary is the number of findings per severity, in the order of cli.md.
type Summary struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Info     int `json:"info"`
}

// Summarize counts findings per severity.
func Summarize(fs []check.Finding) Summary {
	var s Summary
	for i := range fs {
		if p := s.count(fs[i].Severity); p != nil {
			*p++
		}
	}
	return s
}

func (s *Summary) count(sev estate.Severity) *int {
	switch sev {
	case estate.SevCritical:
		return &s.Critical
	case estate.SevHigh:
		return &s.High
	case estate.SevMedium:
		return &s.Medium
	case estate.SevLow:
		return &s.Low
	case estate.SevInfo:
		return &s.Info
	}
	return nil
}

// Of returns the count of one severity.
func (s Summary) Of(sev estate.Severity) int {
	if p := s.count(sev); p != nil {
		return *p
	}
	return 0
}

// Total is the number of findings counted.
func (s Summary) Total() int { return s.Critical + s.High + s.Medium + s.Low + s.Info }
