package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// tableWidth is the terminal width the table is laid out for: text wraps
// at word boundaries so that no line is longer, except a single word (a
// long name) that does not fit on a line of its own.
const tableWidth = 100

func writeCheckTable(w io.Writer, r *CheckReport) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	header := "Estate"
	if r.EstateName != "" {
		header += " " + r.EstateName
	}
	header += ": " + count(r.Estate.VMs, "VM") + ", " + count(r.Estate.Hypervisors, "hypervisor") +
		", " + count(r.Estate.Networks, "network") + "."
	writeWrapped(bw, header, "", "  ")
	bw.WriteString("\n")
	if len(r.Findings) == 0 {
		bw.WriteString("No findings.\n")
		return bw.Flush()
	}
	writeFindingsTable(bw, r.Findings)
	bw.WriteString(summaryLine(Summarize(r.Findings)) + "\n")
	return bw.Flush()
}

// summaryLine is "5 findings: 1 critical, 2 high, 1 medium, 1 low, 0 info."
func summaryLine(s Summary) string {
	var b strings.Builder
	b.WriteString(count(s.Total(), "finding"))
	for i, sev := range estate.Severities() {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(s.Of(sev)) + " " + sev.String())
	}
	b.WriteString(".")
	return b.String()
}

// writeFindingsTable writes findings grouped by severity, highest first, in
// the order they come within a group, each group under a heading and each
// finding followed by a blank line:
//
//	CRITICAL (1)
//
//	VG101  vm/hr-app-1: VM below its zone's hardening minimum
//	       VM hr-app-1 runs at securityLevel low in zone internet, which requires high.
//	       Related: network/vlan5, zone/internet
//	       Fix:     Move the NIC to a network of the VM's approved zone, or harden the VM to
//	                the zone's minimum before it joins.
func writeFindingsTable(bw *bufio.Writer, fs []check.Finding) {
	groups := map[estate.Severity][]int{}
	for i := range fs {
		groups[fs[i].Severity] = append(groups[fs[i].Severity], i)
	}
	order := estate.Severities()
	for sev := range groups {
		if sev < estate.SevInfo || sev > estate.SevCritical {
			order = append(order, sev) // not expected; shown last rather than lost
		}
	}
	for _, sev := range order {
		idx := groups[sev]
		if len(idx) == 0 {
			continue
		}
		fmt.Fprintf(bw, "%s (%d)\n\n", strings.ToUpper(sev.String()), len(idx))
		for _, i := range idx {
			writeFindingTable(bw, &fs[i])
			bw.WriteString("\n")
		}
	}
}

// writeFindingTable writes one finding: ID, subject and title on the first
// line, then the message, related objects and remediation indented under
// the subject.
func writeFindingTable(bw *bufio.Writer, f *check.Finding) {
	id := clean(f.Check)
	pad := strings.Repeat(" ", max(7, len(id)+2))
	head := clean(f.Subject)
	if f.Title != "" {
		head += ": " + clean(f.Title)
	}
	writeWrapped(bw, head, id+pad[len(id):], pad)
	if f.Message != "" {
		writeWrapped(bw, clean(f.Message), pad, pad)
	}
	const label = "Related: "
	more := pad + strings.Repeat(" ", len(label))
	if len(f.Related) > 0 {
		rel := make([]string, len(f.Related))
		for i, r := range f.Related {
			rel[i] = clean(r)
		}
		writeWrapped(bw, strings.Join(rel, ", "), pad+label, more)
	}
	if f.Remediation != "" {
		writeWrapped(bw, clean(f.Remediation), pad+"Fix:     ", more)
	}
}

// writeWrapped writes text as words filled into lines of at most
// tableWidth columns; the first line starts with first, the others with
// rest.
func writeWrapped(bw *bufio.Writer, text, first, rest string) {
	prefix := first
	line := 0 // columns on the current line after the prefix; 0 = empty
	for word := range strings.FieldsSeq(text) {
		n := utf8.RuneCountInString(word)
		switch {
		case line == 0:
			bw.WriteString(prefix)
		case utf8.RuneCountInString(prefix)+line+1+n > tableWidth:
			bw.WriteString("\n")
			prefix = rest
			bw.WriteString(prefix)
			line = 0
		default:
			bw.WriteString(" ")
			line++
		}
		bw.WriteString(word)
		line += n
	}
	if line == 0 {
		bw.WriteString(strings.TrimRight(prefix, " "))
	}
	bw.WriteString("\n")
}

// clean makes text from the estate safe to print on a terminal: control
// characters (a name could carry escape sequences that rewrite the screen),
// invisible format characters such as bidi overrides (which can make text
// read differently from what it is) and invalid UTF-8 are shown escaped, as
// Go would quote them.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if unsafeRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// count is "1 VM" or "3 VMs".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
