package change

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Decision is the verdict on a change.
type Decision string

const (
	Allow Decision = "allow" // nothing introduced
	Warn  Decision = "warn"  // findings introduced, all below change.blockAt
	Deny  Decision = "deny"  // a finding at or above change.blockAt introduced
)

// Verdict is the judgement of one change.
type Verdict struct {
	Decision Decision
	// Introduced are the findings after the change that were not there
	// before (the change-only checks' among them); Resolved those before
	// that are gone. Both in report order.
	Introduced []check.Finding
	Resolved   []check.Finding
	// Unchanged counts the findings present before and after.
	Unchanged int
	// Changed are the findings, among the unchanged, whose message or
	// severity the change altered (as they are after it): a service that
	// loses fewer members than before, say.
	Changed []check.Finding
	// Worsened are the changed findings whose severity the change raised
	// (as they are after it): an internet-facing VM lowered from standard
	// to low hardening turns its VG101 from high to critical. Same key, so
	// not introduced; but a change that makes a finding worse is judged
	// like one that brings it (docs/decisions.md).
	Worsened []check.Finding
	// Scope tells how much was re-judged: VMs, hypervisors and services in
	// scope (for the curious and for performance work).
	Scope ScopeSize
}

// ScopeSize is the size of the part of the estate a change re-judged.
type ScopeSize struct {
	VMs, Hypervisors, Services int
}

// Judge judges changes against one estate: it evaluates the whole estate
// once, then judges each change incrementally. A Judge mutates its index
// while judging (and restores it before returning), so it is not safe for
// concurrent use.
type Judge struct {
	// buffers recycles the arrays of findings between judgements (see
	// Release).
	buffers check.Buffers
	x       *estate.Index
	p       *estate.Policy
	files   check.SideFiles
	before  []check.Finding
	keys    map[string]struct{}
	exists  func(what, path string) error
}

// NewJudge evaluates the estate of x under policy p and prepares x for
// incremental judging. An error means the estate itself could not be
// evaluated (an unreadable side file).
func NewJudge(x *estate.Index, p *estate.Policy, files check.SideFiles) (*Judge, error) {
	// The full evaluation runs on the estate's own lists; the lookups that
	// judging needs are built on first use, so that a change that needs
	// none (a migration) does not pay for them.
	x.EnableUpdates()
	res := check.Evaluate(x, p, check.Options{Files: files})
	if len(res.Errors) > 0 {
		return nil, errors.Join(res.Errors...)
	}
	j := &Judge{x: x, p: p, files: files, before: res.Findings, keys: make(map[string]struct{}, len(res.Findings))}
	for i := range res.Findings {
		j.keys[res.Findings[i].Key()] = struct{}{}
	}
	return j, nil
}

// SetSideFileCheck replaces the check that the manifests and scan reports
// a change names exist on disk (what is "manifest" or "scan report"), for
// side files kept elsewhere (vguard serve keeps them in its store).
func (j *Judge) SetSideFileCheck(exists func(what, path string) error) { j.exists = exists }

// Before returns the findings of the estate as it is.
func (j *Judge) Before() []check.Finding { return j.before }

// Judge judges change c. An invalid change (an operation naming something
// missing, or creating a duplicate) returns load.Errors and is not judged.
func (j *Judge) Judge(c *Change) (*Verdict, error) { return j.judge(c, false) }

// Commit judges change c and makes it: the index and the findings the
// Judge holds become those after the change, so that later changes are
// judged on top of it (a planner trying moves one by one). An invalid
// change is neither judged nor made.
func (j *Judge) Commit(c *Change) (*Verdict, error) { return j.judge(c, true) }

func (j *Judge) judge(c *Change, keep bool) (*Verdict, error) {
	a, errs := apply(j.x, c, j.exists)
	if errs != nil {
		return nil, errs
	}
	// The change-only checks read the operations' net effect, in the after
	// state.
	changeOnly := j.changeFindings(a)
	a.undo(j.x)

	scope := j.scopeOf(a)
	opts := check.Options{Scope: scope, Files: j.files, Buffers: &j.buffers}
	before := check.Evaluate(j.x, j.p, opts)
	a.redo(j.x)
	after := check.Evaluate(j.x, j.p, opts)
	if !keep {
		a.undo(j.x)
	}
	if err := errors.Join(append(before.Errors, after.Errors...)...); err != nil {
		if keep {
			a.undo(j.x)
		}
		return nil, err
	}

	v := &Verdict{Scope: ScopeSize{len(scope.VMs), len(scope.Hypervisors), len(scope.Services)}}
	for name := range scope.Masters {
		for _, im := range j.x.ImageVersions(name) {
			v.Scope.VMs += len(j.x.VMsOfImage(im.Ref()))
		}
	}
	introduced, resolved, changed, worsened := diff(before.Findings, after.Findings)
	j.buffers.Put(before.Findings) // what is kept of it was copied out
	v.Introduced, v.Resolved, v.Changed, v.Worsened = introduced, resolved, changed, worsened
	if len(changeOnly) > 0 {
		v.Introduced = append(slices.Clip(introduced), changeOnly...)
		check.SortFindings(v.Introduced)
	} // else in the order of after, which Evaluate sorted
	resolvedKnown := 0
	for i := range v.Resolved {
		if _, ok := j.keys[v.Resolved[i].Key()]; ok {
			resolvedKnown++
		}
	}
	v.Unchanged = len(j.keys) - resolvedKnown
	v.Decision = decide(v.Introduced, v.Worsened, j.p.Change.BlockAt)
	if keep {
		j.advance(introduced, v.Resolved, v.Changed)
	}
	if len(changeOnly) > 0 {
		// The verdict holds copies; advance has copied what it keeps.
		j.buffers.Put(introduced)
	}
	return v, nil
}

// Release gives the Judge back the findings of a verdict its caller is
// done with, for the next judgement to reuse. A change that puts a
// master's tens of thousands of VMs behind introduces that many findings;
// a caller judging change after change (a server, a planner) that releases
// each verdict spares the collector those megabytes every time. Optional:
// an unreleased verdict is simply collected. v must not be used afterwards.
func (j *Judge) Release(v *Verdict) {
	if v == nil {
		return
	}
	j.buffers.Put(v.Introduced)
	*v = Verdict{}
}

// advance makes the findings the Judge holds those after a committed
// change: the resolved ones go, the introduced estate findings come, and
// the changed ones (same key, new message) replace their old selves.
func (j *Judge) advance(introduced, resolved, changed []check.Finding) {
	gone := make(map[string]bool, len(resolved)+len(changed))
	for i := range resolved {
		gone[resolved[i].Key()] = true
		delete(j.keys, resolved[i].Key())
	}
	for i := range changed {
		gone[changed[i].Key()] = true
	}
	j.before = slices.DeleteFunc(j.before, func(f check.Finding) bool { return gone[f.Key()] })
	j.before = append(j.before, changed...)
	for _, f := range introduced {
		j.before = append(j.before, f)
		j.keys[f.Key()] = struct{}{}
	}
	check.SortFindings(j.before)
}

// Blocking counts the findings of lists (a verdict's introduced and
// worsened ones) at or above blockAt: those that make a change denied.
func Blocking(blockAt estate.Severity, lists ...[]check.Finding) int {
	n := 0
	for _, fs := range lists {
		for i := range fs {
			if fs[i].Severity >= blockAt {
				n++
			}
		}
	}
	return n
}

// DenyReason says why a change was denied, in the words of the lists that
// made it so: "introduces 2 findings", or "introduces or makes worse ...".
func DenyReason(blockAt estate.Severity, introduced, worsened []check.Finding) string {
	n := Blocking(blockAt, introduced, worsened)
	what := "finding"
	if n != 1 {
		what = "findings"
	}
	verb := "introduces"
	if Blocking(blockAt, worsened) > 0 {
		verb = "introduces or makes worse"
	}
	return fmt.Sprintf("it %s %d %s at or above %s", verb, n, what, blockAt)
}

// decide applies change.blockAt to the introduced and worsened findings.
func decide(introduced, worsened []check.Finding, blockAt estate.Severity) Decision {
	d := Allow
	for _, fs := range [][]check.Finding{introduced, worsened} {
		for i := range fs {
			if fs[i].Severity >= blockAt {
				return Deny
			}
			d = Warn
		}
	}
	return d
}

// diff compares the findings of a scope before and after a change, by key
// (check, subject, related): introduced are those only after, resolved
// those only before, changed those in both whose message or severity
// differs, worsened those of changed whose severity rose. Each keeps the
// order of its input.
//
// Both inputs are in report order (check.SortFindings), so within one
// severity and check they are sorted by subject and related, and the
// findings of one check before, sorted the same way, are matched against
// each such run without hashing a key: by walking both together, or, when
// the run is far longer (a change that puts a master's tens of thousands
// of VMs behind, against the few that were behind already), by finding
// each finding of before in the run by binary search, so that the run's
// subjects are not even read. introduced reuses after's array (after is
// not read again).
func diff(before, after []check.Finding) (introduced, resolved, changed, worsened []check.Finding) {
	if len(before) == 0 {
		return after, nil, nil, nil
	}
	byCheck := map[string][]int{}
	for i := range before {
		byCheck[before[i].Check] = append(byCheck[before[i].Check], i)
	}
	for _, list := range byCheck {
		slices.SortStableFunc(list, func(a, b int) int { return compareKey(&before[a], &before[b]) })
	}
	matched := make([]bool, len(before))
	introduced = after[:0]
	match := func(j int, f *check.Finding) {
		matched[j] = true
		if before[j].Message != f.Message || before[j].Severity != f.Severity {
			changed = append(changed, *f)
		}
		if f.Severity > before[j].Severity {
			worsened = append(worsened, *f)
		}
	}
	for lo := 0; lo < len(after); {
		hi := lo + 1
		for hi < len(after) && after[hi].Check == after[lo].Check && after[hi].Severity == after[lo].Severity {
			hi++
		}
		run, list := after[lo:hi], byCheck[after[lo].Check]
		if len(list)*16 < len(run) {
			var hit []int // positions in run, ascending
			for _, j := range list {
				if k, ok := slices.BinarySearchFunc(run, &before[j], func(f check.Finding, b *check.Finding) int {
					return compareKey(&f, b)
				}); ok {
					hit = append(hit, k)
					match(j, &run[k])
				}
			}
			slices.Sort(hit)
			hit = slices.Compact(hit) // two old findings of one key match one new
			for k := range run {
				if len(hit) > 0 && hit[0] == k {
					hit = hit[1:]
					continue
				}
				introduced = append(introduced, run[k]) // never past lo+k
			}
		} else {
			pos := 0
			for k := range run {
				f := &run[k]
				for pos < len(list) && compareKey(&before[list[pos]], f) < 0 {
					pos++
				}
				if pos < len(list) && compareKey(&before[list[pos]], f) == 0 {
					match(list[pos], f)
					continue
				}
				introduced = append(introduced, *f)
			}
		}
		lo = hi
	}
	for i := range before {
		if !matched[i] {
			resolved = append(resolved, before[i])
		}
	}
	return introduced, resolved, changed, worsened
}

// compareKey orders findings of one check by subject, then related.
func compareKey(a, b *check.Finding) int {
	if c := strings.Compare(a.Subject, b.Subject); c != 0 {
		return c
	}
	return slices.Compare(a.Related, b.Related)
}

// scopeOf is what the change can affect: the before and after versions of
// every VM it touched with their units, and, when a master gained a newer
// version, every VM made from that master. x is in the before state.
func (j *Judge) scopeOf(a *applied) *check.Scope {
	s := check.NewScope()
	s.Facts = a.facts
	for _, name := range a.names {
		if v := a.before[name]; v != nil {
			s.AddVM(j.x, v)
		}
		if v := a.after[name]; v != nil {
			s.AddVM(j.x, v)
		}
	}
	for _, im := range a.images {
		s.Images[im.Ref()] = true // a new version with a scan report of secrets
	}
	for _, name := range a.masters {
		s.Masters[name] = true
	}
	return s
}

// changeFindings judges the change-only checks on the net effect of the
// operations: VG501 for NICs put into zones a VM was not in before (nor its
// home zone), VG502 for clones that copied identity or credentials. x is in
// the after state.
func (j *Judge) changeFindings(a *applied) []check.Finding {
	var out []check.Finding
	for _, name := range a.names {
		vm := a.after[name]
		if vm == nil {
			continue
		}
		was := a.before[name]
		if o := a.origin[name]; o != nil {
			was = o // a clone was where its source was
		}
		if was != nil && !a.created[name] {
			out = append(out, j.crossZone(vm, was)...)
		}
		if op := a.unsanitized[name]; op != nil {
			f := check.MakeFinding("VG502", j.p, check.Finding{
				Subject:  check.VMRef(name),
				Related:  []string{check.VMRef(op.VM)},
				Pos:      op.Pos,
				Message:  fmt.Sprintf("Clone %s of %s is made without sanitize: it copies the source's identity and credentials.", name, op.VM),
				Evidence: map[string]any{"source": op.VM, "operation": op.Index},
			})
			out = append(out, f)
		}
	}
	// A policy may disable the change-only checks like any other.
	return slices.DeleteFunc(out, func(f check.Finding) bool { return j.p.Disabled(f.Check) })
}

// crossZone is VG501 for one VM: each network of vm in a zone that was
// not among the zones of was, and is not vm's home zone.
func (j *Judge) crossZone(vm, was *estate.VM) []check.Finding {
	sev := map[estate.CrossZone]estate.Severity{estate.CrossZoneDeny: estate.SevHigh, estate.CrossZoneWarn: estate.SevLow}[j.p.Change.CrossZoneMoves]
	if sev == 0 {
		return nil // crossZoneMoves: allow
	}
	before := map[string]bool{}
	for _, z := range j.x.ZonesOf(was) {
		before[z.Name] = true
	}
	var out []check.Finding
	seen := map[string]bool{}
	for _, nic := range vm.NICs {
		z := j.x.ZoneOf(nic.Network)
		if z == nil || before[z.Name] || z.Name == vm.HomeZone || seen[nic.Network] {
			continue
		}
		seen[nic.Network] = true
		from := make([]string, 0, len(before))
		for name := range before {
			from = append(from, name)
		}
		slices.Sort(from)
		out = append(out, check.MakeFinding("VG501", j.p, check.Finding{
			Severity: sev,
			Subject:  check.VMRef(vm.Name),
			Related:  []string{check.NetworkRef(nic.Network), check.ZoneRef(z.Name)},
			Pos:      vm.Pos,
			Message: fmt.Sprintf("The change puts VM %s on network %s in zone %s (%s), a zone it was not in and is not approved for.",
				vm.Name, nic.Network, z.Name, z.Exposure),
			Evidence: map[string]any{"network": nic.Network, "zone": z.Name, "exposure": z.Exposure.String(), "zonesBefore": from},
		}))
	}
	slices.SortFunc(out, func(a, b check.Finding) int { return cmp.Compare(a.Key(), b.Key()) })
	return out
}
