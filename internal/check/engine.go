package check

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Catalogue returns every check of checks.md in ID order. The slice and the
// checks are shared: callers must not modify them.
func Catalogue() []*Check { return catalogue }

var catalogue = func() []*Check {
	var all []*Check
	all = append(all, confidentialityChecks()...)
	all = append(all, secretChecks()...)
	all = append(all, integrityChecks()...)
	all = append(all, availabilityChecks()...)
	all = append(all, placementChecks()...)
	all = append(all, consistencyChecks()...)
	all = append(all, changeChecks()...)
	slices.SortFunc(all, func(a, b *Check) int { return strings.Compare(a.ID, b.ID) })
	return all
}()

// Lookup returns the check with the given ID, or nil.
func Lookup(id string) *Check {
	for _, c := range catalogue {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Options narrow an evaluation.
type Options struct {
	// Only, when not empty, runs just these check IDs.
	Only []string
	// Skip never runs these check IDs (in addition to the policy's disable).
	Skip []string
	// Files reads the manifests and scan reports the estate refers to. With
	// nil Files, the checks that need them (VG105, VG203) do not fire.
	Files SideFiles
	// Scope, when set, judges only the units in it, and only the checks
	// that read a fact in Scope.Facts. The index must have updates enabled.
	Scope *Scope
	// Buffers, when set, supplies the arrays findings are emitted into, and
	// takes back those an evaluation does not return.
	Buffers *Buffers
}

// Result is the outcome of an evaluation.
type Result struct {
	// Findings sorted by severity (highest first), check, subject, related.
	Findings []Finding
	// Errors are problems that kept a check from judging part of the estate,
	// such as an unreadable manifest. They are not findings.
	Errors []error
}

// Evaluate runs every enabled estate check on the indexed estate. Checks run
// concurrently; each gets its own Context, so a check never sees another's
// findings.
func Evaluate(x *estate.Index, p *estate.Policy, opts Options) Result {
	var run []*Check
	for _, c := range catalogue {
		if c.ChangeOnly || c.Run == nil || p.Disabled(c.ID) || slices.Contains(opts.Skip, c.ID) {
			continue
		}
		if len(opts.Only) > 0 && !slices.Contains(opts.Only, c.ID) {
			continue
		}
		if opts.Scope != nil && c.Reads&opts.Scope.Facts == 0 {
			continue
		}
		run = append(run, c)
	}
	ctxs := make([]*Context, len(run))
	var wg sync.WaitGroup
	for i, c := range run {
		ctxs[i] = &Context{Index: x, Policy: p, Files: opts.Files, check: c, scope: opts.Scope, buffers: opts.Buffers}
		wg.Go(func() { c.Run(ctxs[i]) })
	}
	wg.Wait()
	var res Result
	n, with := 0, 0
	for _, c := range ctxs {
		if len(c.findings) > 0 {
			n += len(c.findings)
			with++
		}
		res.Errors = append(res.Errors, c.errs...)
	}
	// With one check finding anything (a judged change often), its
	// findings are taken as they are rather than copied.
	if with > 1 {
		res.Findings = opts.Buffers.get(n)
	}
	for _, c := range ctxs {
		if with == 1 && len(c.findings) > 0 {
			res.Findings = c.findings
			continue
		}
		res.Findings = append(res.Findings, c.findings...)
		opts.Buffers.Put(c.findings)
	}
	SortFindings(res.Findings)
	return res
}

// SortFindings orders findings as the reports show them: severity (highest
// first), then check, subject and related.
//
// Checks mostly emit their findings in this order already, so the input is
// usually a few sorted runs (one or more per check): those are merged, in
// linear time per pass, rather than sorted. A change that puts tens of
// thousands of VMs behind their master gives one long run, which a
// comparison sort would spend most of the judgement on.
func SortFindings(fs []Finding) {
	const maxRuns = 64
	var bounds []int // the end of each ascending run
	for i := 1; i < len(fs); i++ {
		if compareFindings(&fs[i-1], &fs[i]) > 0 {
			if bounds = append(bounds, i); len(bounds) >= maxRuns {
				slices.SortFunc(fs, func(a, b Finding) int { return compareFindings(&a, &b) })
				return
			}
		}
	}
	if len(bounds) == 0 {
		return
	}
	bounds = append(bounds, len(fs))
	buf := make([]Finding, len(fs))
	src, dst := fs, buf
	for len(bounds) > 1 {
		var next []int
		lo := 0
		for k := 0; k < len(bounds); k += 2 {
			if k+1 == len(bounds) {
				copy(dst[lo:bounds[k]], src[lo:bounds[k]])
				next = append(next, bounds[k])
				break
			}
			mergeFindings(dst[lo:bounds[k+1]], src[lo:bounds[k]], src[bounds[k]:bounds[k+1]])
			lo = bounds[k+1]
			next = append(next, lo)
		}
		bounds = next
		src, dst = dst, src
	}
	if &src[0] != &fs[0] {
		copy(fs, src)
	}
}

// mergeFindings merges the sorted runs a and b into out, a first on ties.
func mergeFindings(out, a, b []Finding) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if compareFindings(&b[j], &a[i]) < 0 {
			out[k] = b[j]
			j++
		} else {
			out[k] = a[i]
			i++
		}
		k++
	}
	k += copy(out[k:], a[i:])
	copy(out[k:], b[j:])
}

func compareFindings(a, b *Finding) int {
	if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
		return c
	}
	if c := strings.Compare(a.Check, b.Check); c != 0 {
		return c
	}
	if c := strings.Compare(a.Subject, b.Subject); c != 0 {
		return c
	}
	return slices.Compare(a.Related, b.Related)
}

// changeChecks declares the change-only checks; their logic lives with the
// change judge, which reads operations rather than an estate.
func changeChecks() []*Check {
	return []*Check{
		{
			ID: "VG501", Name: "cross-zone-move", Title: "Cross-zone move", Pillar: Confidentiality,
			Severity:    estate.SevHigh,
			Description: "A change puts a VM's NIC into a zone it was not in before and that is not its homeZone.",
			Remediation: "Check the destination network of the change; if the move is intended, set the VM's homeZone and harden it for the new zone first.",
			ChangeOnly:  true,
		},
		{
			ID: "VG502", Name: "unsanitized-clone", Title: "Unsanitized clone", Pillar: Confidentiality,
			Severity:    estate.SevHigh,
			Description: "A clone of a VM that has identity values or credentials is made without sanitize: true.",
			Remediation: "Clone with sanitize: true (or run `vguard image sanitize` on the copy) so the clone gets a new identity and no credentials.",
			ChangeOnly:  true,
		},
	}
}

// MakeFinding completes a finding of check id the way an evaluation does
// (title, pillar, default severity, the policy's override, remediation,
// sorted related), for checks judged outside Evaluate: the change-only ones.
func MakeFinding(id string, p *estate.Policy, f Finding) Finding {
	c := Lookup(id)
	if c == nil {
		panic("check: MakeFinding of unknown check " + id)
	}
	ctx := &Context{Policy: p, check: c}
	ctx.Emit(f)
	return ctx.findings[0]
}
