package report

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// SARIF 2.1.0 as GitHub code scanning reads it: one run whose driver lists
// a rule per check of the catalogue, and one result per finding with a file
// location (GitHub rejects results without one), a level, and a partial
// fingerprint so that an alert keeps its identity across runs even when
// lines move.
const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	toolName     = "vguard"
	toolURI      = "https://github.com/vguard-dev/vguard"
	// fingerprintKey names the partial fingerprint; bump the version if the
	// hashed key ever changes meaning, so that old alerts close cleanly.
	fingerprintKey = "vguard/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 *sarifText     `json:"help,omitempty"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           sarifRuleProps `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          sarifResultProps  `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           sarifRegion           `json:"region"`
}

type sarifArtifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifResultProps struct {
	Severity string         `json:"severity"`
	Subject  string         `json:"subject"`
	Related  []string       `json:"related"`
	Evidence map[string]any `json:"evidence"`
}

// writeCheckSARIF streams the log: the document around the results is
// encoded once, and the results one at a time into the gap, so that a
// report of 100k findings never holds the whole document in memory.
func writeCheckSARIF(w io.Writer, r *CheckReport) error {
	sb := newSARIFBuilder(r, check.Catalogue())
	// Results are added in order as they are written, but a rule may be
	// added for a check outside the catalogue; find those first so that the
	// rules list is complete before it is written.
	for i := range r.Findings {
		sb.rule(&r.Findings[i])
	}
	var head bytes.Buffer
	if err := encodeJSON(&head, sb.log([]sarifResult{})); err != nil {
		return err
	}
	// The empty results list of the one run; any other occurrence of the
	// text would be inside a string, where its quotes are escaped.
	const gap = "\n      \"results\": []"
	before, after, ok := bytes.Cut(head.Bytes(), []byte(gap))
	if !ok || len(r.Findings) == 0 {
		_, err := w.Write(head.Bytes())
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(before)
	bw.WriteString("\n      \"results\": [")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("        ", "  ")
	for i := range r.Findings {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n        ")
		buf.Reset()
		if err := enc.Encode(sb.result(&r.Findings[i])); err != nil {
			return err
		}
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	bw.WriteString("\n      ]")
	bw.Write(after)
	return bw.Flush()
}

// encodeJSON writes v indented with encoding/json, without HTML escaping
// (messages are read by people and programs, not pasted into HTML).
func encodeJSON(w io.Writer, v any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return bw.Flush()
}

// sarifBuilder turns a check report into SARIF: the rules of the catalogue
// and one result per finding.
type sarifBuilder struct {
	r         *CheckReport
	rules     []sarifRule
	ruleIndex map[string]int
	fallback  string
	uris      map[string]sarifArtifactLocation // many findings share a file
}

func newSARIFBuilder(r *CheckReport, cat []*check.Check) *sarifBuilder {
	sb := &sarifBuilder{
		r:         r,
		rules:     make([]sarifRule, 0, len(cat)),
		ruleIndex: make(map[string]int, len(cat)),
		fallback:  ".",
		uris:      map[string]sarifArtifactLocation{},
	}
	for _, c := range cat {
		sb.ruleIndex[c.ID] = len(sb.rules)
		sb.rules = append(sb.rules, sarifRuleOf(c))
	}
	if len(r.Inputs) > 0 {
		sb.fallback = r.Inputs[0]
	}
	return sb
}

// rule returns the index of f's rule. A check outside the catalogue should
// not happen; it gets a rule of its own so that ruleIndex stays valid.
func (sb *sarifBuilder) rule(f *check.Finding) int {
	if idx, ok := sb.ruleIndex[f.Check]; ok {
		return idx
	}
	idx := len(sb.rules)
	sb.ruleIndex[f.Check] = idx
	sb.rules = append(sb.rules, sarifRuleOf(&check.Check{
		ID: f.Check, Title: f.Title, Pillar: f.Pillar, Severity: f.Severity, Remediation: f.Remediation,
	}))
	return idx
}

// log is the whole document with the given results.
func (sb *sarifBuilder) log(results []sarifResult) sarifLog {
	version := sb.r.ToolVersion
	if version == "" {
		version = buildVersion()
	}
	return sarifLog{
		Schema:  sarifSchema,
		Version: sarifVersion,
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           toolName,
				InformationURI: toolURI,
				Version:        version,
				Rules:          sb.rules,
			}},
			Results: results,
		}},
	}
}

// result is the SARIF result of one finding. GitHub needs a file location
// for every result: a finding whose subject has no known position points at
// the first input, line 1.
func (sb *sarifBuilder) result(f *check.Finding) sarifResult {
	file, line := f.Pos.File, f.Pos.Line
	if file == "" {
		file, line = sb.fallback, 1
	}
	loc, ok := sb.uris[file]
	if !ok {
		loc = artifactLocation(file)
		sb.uris[file] = loc
	}
	msg := f.Message
	if msg == "" {
		msg = f.Title
	}
	related := f.Related
	if related == nil {
		related = []string{}
	}
	evidence := f.Evidence
	if evidence == nil {
		evidence = map[string]any{}
	}
	return sarifResult{
		RuleID:    f.Check,
		RuleIndex: sb.rule(f),
		Level:     sarifLevel(f.Severity),
		Message:   sarifText{Text: msg},
		Locations: []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
			ArtifactLocation: loc,
			Region:           sarifRegion{StartLine: max(line, 1)},
		}}},
		PartialFingerprints: map[string]string{fingerprintKey: fingerprint(f)},
		Properties: sarifResultProps{
			Severity: f.Severity.String(),
			Subject:  f.Subject,
			Related:  related,
			Evidence: evidence,
		},
	}
}

func sarifRuleOf(c *check.Check) sarifRule {
	short := c.Title
	if short == "" {
		short = c.ID
	}
	full := c.Description
	if full == "" {
		full = short
	}
	rule := sarifRule{
		ID:                   c.ID,
		Name:                 c.Name,
		ShortDescription:     sarifText{Text: short},
		FullDescription:      sarifText{Text: full},
		DefaultConfiguration: sarifConfig{Level: sarifLevel(c.Severity)},
		Properties: sarifRuleProps{
			// GitHub shows security-severity only for rules tagged
			// "security"; the pillar lets people filter by it.
			Tags:             []string{"security", string(c.Pillar)},
			SecuritySeverity: securitySeverity(c.Severity),
		},
	}
	if c.Pillar == "" {
		rule.Properties.Tags = rule.Properties.Tags[:1]
	}
	if c.Remediation != "" {
		rule.Help = &sarifText{Text: c.Remediation}
	}
	return rule
}

// sarifLevel maps a severity to a SARIF level: critical and high are
// errors, medium a warning, low and info notes.
func sarifLevel(s estate.Severity) string {
	switch {
	case s >= estate.SevHigh:
		return "error"
	case s == estate.SevMedium:
		return "warning"
	default:
		return "note"
	}
}

// securitySeverity is the score GitHub turns back into a severity: above
// 9.0 critical, 7.0 to 8.9 high, 4.0 to 6.9 medium, 0.1 to 3.9 low.
func securitySeverity(s estate.Severity) string {
	switch s {
	case estate.SevCritical:
		return "9.5"
	case estate.SevHigh:
		return "8.0"
	case estate.SevMedium:
		return "5.5"
	case estate.SevLow:
		return "3.0"
	default:
		return "0.0"
	}
}

// fingerprint identifies a finding across runs by its key (check, subject,
// related), not by where it was found, so that an alert survives edits
// that move lines.
func fingerprint(f *check.Finding) string {
	sum := sha256.Sum256([]byte(f.Key()))
	return hex.EncodeToString(sum[:16])
}

// artifactLocation turns a file path as the loader saw it into a SARIF
// artifact location: a relative URI with forward slashes under %SRCROOT%
// (the checked-out repository, for GitHub). An absolute path is made
// relative to the working directory when it lies under it, and is given as
// a file URI otherwise.
func artifactLocation(path string) sarifArtifactLocation {
	p := filepath.Clean(path)
	if filepath.IsAbs(p) {
		if wd, err := os.Getwd(); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && rel != ".." &&
				!strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				p = rel
			}
		}
	}
	slash := filepath.ToSlash(p)
	if filepath.IsAbs(p) {
		if !strings.HasPrefix(slash, "/") {
			slash = "/" + slash // a Windows volume: file:///C:/...
		}
		return sarifArtifactLocation{URI: (&url.URL{Scheme: "file", Path: slash}).String()}
	}
	// url.URL escapes what a URI cannot hold (spaces, %, #, ?) and keeps a
	// first segment with a colon from reading as a scheme.
	return sarifArtifactLocation{URI: (&url.URL{Path: slash}).String(), URIBaseID: "%SRCROOT%"}
}

// buildVersion is the module version recorded in the binary, or "dev" for
// a build from a work tree.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return "dev"
}
