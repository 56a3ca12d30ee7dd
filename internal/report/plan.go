package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/jsonstr"
)

// PlanReport is what `vguard plan` reports: the verdict on one change.
type PlanReport struct {
	// Decision is allow, warn or deny.
	Decision string
	// Introduced and Resolved findings, in report order.
	Introduced []check.Finding
	Resolved   []check.Finding
	// Worsened are findings present before and after whose severity the
	// change raised, as they are after it. They count in the decision like
	// introduced ones; the JSON gives them (as "worsened") only when there
	// are any, so that the shape of cli.md is unchanged otherwise.
	Worsened []check.Finding
	// Unchanged counts the findings present before and after.
	Unchanged int
	// BlockAt is the policy's change.blockAt, for the table's explanation.
	BlockAt estate.Severity
	// ChangeName is the change's metadata name (may be empty); Operations
	// describe its operations in a few words each.
	ChangeName string
	Operations []string
	// Estate is the size of the estate judged, EstateName its name.
	Estate     Stats
	EstateName string
	// Inputs are the change file and the estate paths, for SARIF locations.
	Inputs      []string
	ToolVersion string
}

// WritePlan writes r to w in the given format. JSON is the shape of cli.md;
// SARIF lists the introduced findings, the ones a reviewer must see.
func WritePlan(w io.Writer, format Format, r *PlanReport) error {
	var err error
	switch format {
	case Table:
		err = writePlanTable(w, r)
	case JSON:
		err = writePlanJSON(w, r)
	case SARIF:
		findings := r.Introduced
		if len(r.Worsened) > 0 {
			findings = append(append([]check.Finding(nil), r.Introduced...), r.Worsened...)
		}
		err = writeCheckSARIF(w, &CheckReport{Findings: findings, Estate: r.Estate, Inputs: r.Inputs, ToolVersion: r.ToolVersion})
	default:
		return fmt.Errorf("report: unknown format %q", format)
	}
	if err != nil {
		return fmt.Errorf("writing %s plan report: %w", format, err)
	}
	return nil
}

func writePlanJSON(w io.Writer, r *PlanReport) error {
	jw := newJSONWriter(w)
	jw.raw("{")
	jw.field("", 1, "decision")
	jw.buf = jsonstr.Append(jw.buf, r.Decision)
	jw.field(",", 1, "introduced")
	jw.findings(r.Introduced, 1)
	jw.field(",", 1, "resolved")
	jw.findings(r.Resolved, 1)
	if len(r.Worsened) > 0 {
		jw.field(",", 1, "worsened")
		jw.findings(r.Worsened, 1)
	}
	jw.int(",", 1, "unchanged", r.Unchanged)
	jw.raw("\n}\n")
	return jw.flush()
}

// writePlanTable writes a decision banner, the introduced findings with
// their remediation, then the resolved ones.
func writePlanTable(w io.Writer, r *PlanReport) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	name := "The change"
	if r.ChangeName != "" {
		name = "Change " + clean(r.ChangeName)
	}
	estateName := "the estate"
	if r.EstateName != "" {
		estateName = "estate " + clean(r.EstateName)
	}
	banner := strings.ToUpper(r.Decision)
	switch {
	case len(r.Worsened) > 0 && r.Decision == "deny":
		banner += fmt.Sprintf(": %s introduces or makes worse findings at or above %s (change.blockAt); do not make it as it is.", name, r.BlockAt)
	case len(r.Worsened) > 0 && r.Decision == "warn":
		banner += fmt.Sprintf(": %s introduces or makes worse findings below %s; review them before making it.", name, r.BlockAt)
	case r.Decision == "deny":
		banner += fmt.Sprintf(": %s introduces findings at or above %s (change.blockAt); do not make it as it is.", name, r.BlockAt)
	case r.Decision == "warn":
		banner += fmt.Sprintf(": %s introduces findings below %s; review them before making it.", name, r.BlockAt)
	default:
		banner += fmt.Sprintf(": %s introduces no finding.", name)
	}
	writeWrapped(bw, banner, "", "  ")
	ops := make([]string, len(r.Operations))
	for i, op := range r.Operations {
		ops[i] = clean(op)
	}
	if len(ops) == 0 {
		writeWrapped(bw, fmt.Sprintf("No operation on %s.", estateName), "", "  ")
	} else {
		writeWrapped(bw, fmt.Sprintf("%s on %s: %s.", count(len(r.Operations), "operation"), estateName, strings.Join(ops, "; ")), "", "  ")
	}
	bw.WriteString("\n")
	if len(r.Introduced) > 0 {
		fmt.Fprintf(bw, "INTRODUCED: %s\n\n", count(len(r.Introduced), "finding"))
		writeFindingsTable(bw, r.Introduced)
	}
	if len(r.Worsened) > 0 {
		fmt.Fprintf(bw, "MADE WORSE: %s (present before, at a lower severity)\n\n", count(len(r.Worsened), "finding"))
		writeFindingsTable(bw, r.Worsened)
	}
	if len(r.Resolved) > 0 {
		fmt.Fprintf(bw, "RESOLVED: %s\n\n", count(len(r.Resolved), "finding"))
		for i := range r.Resolved {
			f := &r.Resolved[i]
			writeWrapped(bw, fmt.Sprintf("%s  %s %s: %s", clean(f.Check), strings.ToUpper(f.Severity.String()), clean(f.Subject), clean(f.Title)), "", "       ")
		}
		bw.WriteString("\n")
	}
	worse := ""
	if len(r.Worsened) > 0 {
		worse = fmt.Sprintf(" (%d of them made worse)", len(r.Worsened))
	}
	fmt.Fprintf(bw, "%s introduced, %s resolved, %d unchanged%s.\n",
		count(len(r.Introduced), "finding"), count(len(r.Resolved), "finding"), r.Unchanged, worse)
	return bw.Flush()
}
