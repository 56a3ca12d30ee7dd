package report

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// ScanRule describes one rule of an image scan for the SARIF driver: a
// secret rule or a kind of clone identity.
type ScanRule struct {
	ID          string
	Description string
	// Secret rules are errors (high); identity kinds warnings (medium):
	// a leaked credential is exploitable as it is, shared identity once
	// the clones exist.
	Secret bool
}

// WriteScanSARIF writes an image scan report as SARIF 2.1.0: a rule per
// secret rule and identity kind, a result per secret (at its line) and per
// identity file (line 1), located by the path inside the image relative to
// the base IMAGEROOT. No secret's value is in it, only the report's
// redacted form and fingerprint.
func WriteScanSARIF(w io.Writer, rep *scanreport.Report, rules []ScanRule, toolVersion string) error {
	if toolVersion == "" {
		toolVersion = buildVersion()
	}
	index := map[string]int{}
	var sr []sarifRule
	for _, r := range rules {
		if _, dup := index[r.ID]; dup {
			continue
		}
		sev := estate.SevMedium
		tag := "clone-identity"
		if r.Secret {
			sev, tag = estate.SevHigh, "secret"
		}
		index[r.ID] = len(sr)
		sr = append(sr, sarifRule{
			ID:                   r.ID,
			ShortDescription:     sarifText{Text: r.ID},
			FullDescription:      sarifText{Text: r.Description},
			DefaultConfiguration: sarifConfig{Level: sarifLevel(sev)},
			Properties:           sarifRuleProps{Tags: []string{"security", tag}, SecuritySeverity: securitySeverity(sev)},
		})
	}
	// A rule the caller did not describe (a report from elsewhere) still
	// gets an entry, so that every ruleIndex is valid.
	ruleOf := func(id string, secret bool) int {
		if i, ok := index[id]; ok {
			return i
		}
		sev := estate.SevMedium
		if secret {
			sev = estate.SevHigh
		}
		index[id] = len(sr)
		sr = append(sr, sarifRule{ID: id, ShortDescription: sarifText{Text: id}, FullDescription: sarifText{Text: id},
			DefaultConfiguration: sarifConfig{Level: sarifLevel(sev)},
			Properties:           sarifRuleProps{Tags: []string{"security"}, SecuritySeverity: securitySeverity(sev)}})
		return index[id]
	}
	loc := func(path string, line int) []sarifLocation {
		return []sarifLocation{{PhysicalLocation: sarifPhysicalLocation{
			// url.URL escapes what a URI cannot hold (spaces, %, #, ?).
			ArtifactLocation: sarifArtifactLocation{URI: (&url.URL{Path: strings.TrimPrefix(path, "/")}).String(), URIBaseID: "IMAGEROOT"},
			Region:           sarifRegion{StartLine: max(line, 1)},
		}}}
	}
	fp := func(parts ...string) map[string]string {
		sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
		return map[string]string{fingerprintKey: hex.EncodeToString(sum[:16])}
	}
	results := []sarifResult{}
	// A secret's alert is known across runs by the rule, the file and which
	// of that rule's secrets in the file it is, not by its fingerprint:
	// fingerprints are keyed at random unless the scans share a key, and an
	// alert should not reopen on every run (nor close when the secret is
	// rotated in place: it is still a secret in the image).
	nth := map[[2]string]int{}
	for _, s := range rep.Secrets {
		k := [2]string{s.Rule, s.Path}
		nth[k]++
		results = append(results, sarifResult{
			RuleID: s.Rule, RuleIndex: ruleOf(s.Rule, true), Level: sarifLevel(estate.SevHigh),
			Message:             sarifText{Text: "Secret (" + s.Rule + ") in " + s.Path + ": " + s.Redacted + "; remove it from the image (vguard image sanitize) and rotate it."},
			Locations:           loc(s.Path, s.Line),
			PartialFingerprints: fp(rep.Image, s.Rule, s.Path, strconv.Itoa(nth[k])),
			Properties: sarifResultProps{Severity: estate.SevHigh.String(), Subject: s.Path, Related: []string{},
				Evidence: map[string]any{"redacted": s.Redacted, "fingerprint": s.Fingerprint}},
		})
	}
	for _, id := range rep.Identity {
		results = append(results, sarifResult{
			RuleID: id.Kind, RuleIndex: ruleOf(id.Kind, false), Level: sarifLevel(estate.SevMedium),
			Message:             sarifText{Text: "Clone identity (" + id.Kind + ") at " + id.Path + ": every copy of the image would share it; seal the image (vguard image sanitize)."},
			Locations:           loc(id.Path, 1),
			PartialFingerprints: fp(rep.Image, id.Kind, id.Path),
			Properties:          sarifResultProps{Severity: estate.SevMedium.String(), Subject: id.Path, Related: []string{}, Evidence: map[string]any{}},
		})
	}
	log := sarifLog{
		Schema: sarifSchema, Version: sarifVersion,
		Runs: []sarifRun{{
			Tool:    sarifTool{Driver: sarifDriver{Name: toolName, InformationURI: toolURI, Version: toolVersion, Rules: sr}},
			Results: results,
		}},
	}
	if sr == nil {
		log.Runs[0].Tool.Driver.Rules = []sarifRule{}
	}
	return encodeJSON(w, log)
}
