// Package check is vguard's check engine: the catalogue of checks of
// checks.md, declared once (ID, name, pillar, severity, description,
// remediation) with each check's logic beside its declaration, and the
// evaluation of an estate against a policy into sorted findings.
//
// Checks read the estate only through an estate.Index built once per run, so
// that each check walks indexes instead of comparing pairs of VMs.
package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// Pillar is the security property a check protects.
type Pillar string

const (
	Confidentiality Pillar = "confidentiality"
	Integrity       Pillar = "integrity"
	Availability    Pillar = "availability"
)

// Finding is one violation found by a check. Its key is (Check, Subject,
// Related); Related is sorted.
type Finding struct {
	Check       string          `json:"check"`
	Title       string          `json:"title"`
	Severity    estate.Severity `json:"severity"`
	Pillar      Pillar          `json:"pillar"`
	Subject     string          `json:"subject"`
	Related     []string        `json:"related"`
	Message     string          `json:"message"`
	Remediation string          `json:"remediation"`
	Evidence    map[string]any  `json:"evidence"`
	// Pos is where the subject is defined, when known (for SARIF).
	Pos estate.Pos `json:"-"`
}

// Key identifies a finding across two evaluations: check, subject and the
// sorted related objects.
func (f *Finding) Key() string {
	return f.Check + "|" + f.Subject + "|" + strings.Join(f.Related, ",")
}

// Check declares one check of the catalogue.
type Check struct {
	ID       string
	Name     string // kebab-case name, as in checks.md
	Title    string // short human title
	Pillar   Pillar
	Severity estate.Severity // default severity; the check may raise it per finding
	// Description is one line for `vguard checks` and SARIF rules.
	Description string
	// Remediation is the default advice attached to findings.
	Remediation string
	// ChangeOnly checks are judged on a Change's operations, not on an estate.
	ChangeOnly bool
	// Reads declares the facts the check's findings depend on; a change
	// that touches none of them is not re-judged by this check. FactsAll
	// when unsure.
	Reads Facts
	// Run evaluates the check; nil for change-only checks.
	Run func(c *Context)
}

// Context is what a check's Run gets: the estate, its index, the policy, the
// side files it may read, and the sink for findings.
type Context struct {
	Index  *estate.Index
	Policy *estate.Policy
	Files  SideFiles

	check    *Check
	scope    *Scope
	findings []Finding
	errs     []error
	buffers  *Buffers
}

// reserve makes room for n more findings, from the evaluation's Buffers
// when it has them: a check that knows it will emit many says so first.
func (c *Context) reserve(n int) {
	if cap(c.findings)-len(c.findings) >= n {
		return
	}
	if len(c.findings) == 0 {
		c.buffers.Put(c.findings)
		c.findings = c.buffers.get(n)
		return
	}
	c.findings = slices.Grow(c.findings, n)
}

// SideFiles gives checks the documents an estate refers to by path:
// manifests (VG203) and scan reports (VG105), at paths as the loader
// resolved them. Checks run concurrently, so implementations must be safe for
// concurrent use; they should cache, since many VMs share one file.
// NewDiskFiles is the implementation that reads files.
type SideFiles interface {
	// Manifest returns the parsed manifest at path.
	Manifest(path string) (*manifest.Manifest, error)
	// Scan returns the parsed scan report at path.
	Scan(path string) (*scanreport.Report, error)
}

// Emit records a finding of the running check. Severity 0 means the check's
// severity; the policy's override, when set, replaces either. Related is
// sorted and deduplicated here so that checks need not.
func (c *Context) Emit(f Finding) {
	ch := c.check
	f.Check, f.Title, f.Pillar = ch.ID, ch.Title, ch.Pillar
	if f.Severity == 0 {
		f.Severity = ch.Severity
	}
	if s, ok := c.Policy.Severity[ch.ID]; ok {
		f.Severity = s
	}
	if f.Remediation == "" {
		f.Remediation = ch.Remediation
	}
	f.Related = sortedUnique(f.Related, f.Subject)
	if f.Evidence == nil {
		f.Evidence = map[string]any{}
	}
	c.findings = append(c.findings, f)
}

// Errorf records that a check could not be evaluated fully (for example an
// unreadable manifest). Evaluation goes on.
func (c *Context) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(c.check.ID+": "+format, args...))
}

// errorAt is Errorf for a problem located in an input: the location
// ("file:line: ") leads, as in every input error.
func (c *Context) errorAt(where, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(where+c.check.ID+": "+format, args...))
}

func sortedUnique(in []string, drop string) []string {
	// Most findings name one related object, or several already in order;
	// those are kept as given (no copy), which also lets a check share one
	// slice among the thousands of findings of one image or zone.
	ordered := true
	for i, s := range in {
		if s == drop || i > 0 && s <= in[i-1] {
			ordered = false
			break
		}
	}
	if ordered {
		if in == nil {
			return []string{} // reports print [] rather than null
		}
		return in
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != drop {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

// Ref helpers build the `kind/name` form of checks.md.
func VMRef(name string) string          { return "vm/" + name }
func HypervisorRef(name string) string  { return "hypervisor/" + name }
func NetworkRef(name string) string     { return "network/" + name }
func ZoneRef(name string) string        { return "zone/" + name }
func DatastoreRef(name string) string   { return "datastore/" + name }
func ServiceRef(name string) string     { return "service/" + name }
func ClusterRef(name string) string     { return "cluster/" + name }
func FirewallRef(name string) string    { return "firewall/" + name }
func ImageRef(r estate.ImageRef) string { return "image/" + r.String() }
func FailureDomainRef(name string) string {
	return "failureDomain/" + name
}
