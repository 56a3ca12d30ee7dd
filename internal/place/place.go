// Package place repairs placement: it computes migrations that remove the
// placement findings (VG106, VG107, VG301, VG302, VG401, VG402) without
// exceeding hypervisor capacity and without introducing any finding, with
// as few moves as it can, and says what it could not fix and why.
//
// It is a greedy local search that uses the change judge as its oracle:
// for each finding, the VMs whose move could fix it are tried on a ranked
// shortlist of hypervisors, and a move is kept only when the judge says it
// resolves the finding and introduces nothing. A lower bound on the number
// of moves any fix needs comes with the answer.
package place

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Checks are the placement checks place repairs.
var Checks = []string{"VG106", "VG107", "VG301", "VG302", "VG401", "VG402"}

// Move is one migration.
type Move struct {
	VM, From, To string
	// Fixes is the key of the finding the move was made for.
	Fixes string
}

// Unfixed is a placement finding place could not remove, and why.
type Unfixed struct {
	Finding check.Finding
	Why     string
}

// Result is a placement repair.
type Result struct {
	Moves []Move
	// LowerBound is a number of moves that any fix of all the placement
	// findings needs; FixedLowerBound the same for the findings fixed, to
	// compare with len(Moves).
	LowerBound, FixedLowerBound int
	// Fixed and Unfixed partition the placement findings of the estate.
	Fixed   []check.Finding
	Unfixed []Unfixed
}

// Options tune the search.
type Options struct {
	// Candidates is how many hypervisors are tried for each VM (default 40).
	Candidates int
}

// Solve plans migrations for the estate of x under policy p. x is changed
// (it ends in the state after the moves).
func Solve(x *estate.Index, p *estate.Policy, files check.SideFiles, opts Options) (*Result, error) {
	if opts.Candidates <= 0 {
		opts.Candidates = 40
	}
	j, err := change.NewJudge(x, p, files)
	if err != nil {
		return nil, err
	}
	s := &solver{x: x, p: p, j: j, opts: opts}
	start := placementFindings(j.Before())
	res := &Result{LowerBound: lowerBound(x, p, start)}
	failed := map[string]string{} // finding key -> why it could not be fixed
	s.search(res, failed)
	// A second, wider pass for what the shortlist could not fix.
	if len(failed) > 0 {
		clear(failed)
		s.opts.Candidates *= 4
		s.search(res, failed)
	}
	left := map[string]bool{}
	for _, f := range placementFindings(j.Before()) {
		left[f.Key()] = true
		why := failed[f.Key()]
		if why == "" {
			why = "no move found"
		}
		res.Unfixed = append(res.Unfixed, Unfixed{Finding: f, Why: why})
	}
	for _, f := range start {
		if !left[f.Key()] {
			res.Fixed = append(res.Fixed, f)
		}
	}
	res.FixedLowerBound = lowerBound(x, p, res.Fixed)
	return res, nil
}

// search fixes findings one move at a time until no finding it has not
// given up on can be fixed.
func (s *solver) search(res *Result, failed map[string]string) {
	for {
		todo := placementFindings(s.j.Before())
		progress := false
		for _, f := range todo {
			if _, ok := failed[f.Key()]; ok {
				continue
			}
			// A single move that fixes it is best; chains come second.
			mvs, why := s.fix(f, 0, false)
			if mvs == nil {
				s.budget = judgeBudget
				mvs, why = s.fix(f, 0, true)
			}
			if mvs == nil {
				failed[f.Key()] = why
				continue
			}
			res.Moves = append(res.Moves, mvs...)
			progress = true
			break // findings changed: start over from the new state
		}
		if !progress {
			return
		}
	}
}

func placementFindings(fs []check.Finding) []check.Finding {
	var out []check.Finding
	for _, f := range fs {
		if slices.Contains(Checks, f.Check) {
			out = append(out, f)
		}
	}
	return out
}

type solver struct {
	x    *estate.Index
	p    *estate.Policy
	j    *change.Judge
	opts Options
	// budget is how many more moves the repair of the current finding may
	// judge: chains of moves branch, and without a bound a hopeless
	// finding would be searched exponentially long.
	budget int
}

// judgeBudget bounds the moves judged for one finding, chains included.
const judgeBudget = 1500

// maxSteps bounds how many moves one service's repair may chain.
const maxSteps = 12

// fix tries to remove finding f, committing the moves that do. A move is
// kept when it resolves f and introduces nothing; for a service (VG301,
// VG302) a move may also trade f for a lesser finding of the same service
// on the same unit (all members on one rack: moving one leaves the rack
// holding too many, which the next move fixes), and is kept only if the
// whole chain ends with nothing introduced; otherwise it is undone.
func (s *solver) fix(f check.Finding, depth int, chains bool) ([]Move, string) {
	movers := s.movers(f)
	if len(movers) == 0 {
		return nil, "no VM can be moved to fix it"
	}
	why := "every move tried either leaves it or introduces another finding"
	tried, allowed := 0, 0
	for _, vm := range movers {
		for _, h := range s.destinations(vm) {
			allowed++
			if !s.fits(vm, h) {
				continue
			}
			tried++
			if chains { // single moves are bounded by movers × candidates
				if s.budget <= 0 {
					return nil, "no single move fixes it, and no chain of moves within " + fmt.Sprint(judgeBudget) + " tries"
				}
				s.budget--
			}
			c := migration(vm.Name, h.Name)
			v, err := s.j.Judge(c)
			if err != nil {
				continue
			}
			next, ok := s.stepping(f, v)
			if !ok || (next != nil && (!chains || depth >= maxSteps)) {
				continue
			}
			if _, err := s.j.Commit(c); err != nil {
				continue
			}
			mv := Move{VM: vm.Name, From: vm.Hypervisor, To: h.Name, Fixes: f.Key()}
			if next == nil {
				return []Move{mv}, ""
			}
			if rest, _ := s.fix(*next, depth+1, true); rest != nil {
				return append([]Move{mv}, rest...), ""
			}
			// The chain went nowhere: put the VM back.
			if _, err := s.j.Commit(migration(vm.Name, mv.From)); err != nil {
				return nil, "internal error undoing a move: " + err.Error()
			}
		}
	}
	switch {
	case allowed == 0:
		why = "no hypervisor that the placement rules allow for the VMs that could move"
	case tried == 0:
		why = "no hypervisor has the capacity to take the VMs that could move"
	}
	return nil, why
}

// stepping says whether a move judged v is progress on f: it resolves f
// and introduces nothing (next is nil); or it turns f into a lesser finding
// of the same check on the same subject and unit, which the next move
// works on (next): a VG301 into a VG302, a VG302 that loses fewer members,
// a VG401 with fewer VMs on the unit. Nothing else may be introduced.
func (s *solver) stepping(f check.Finding, v *change.Verdict) (next *check.Finding, ok bool) {
	if resolves(v, f) {
		switch {
		case len(v.Introduced) == 0:
			return nil, true
		case len(v.Introduced) == 1 && lesser(f, v.Introduced[0]):
			g := v.Introduced[0]
			return &g, true
		}
		return nil, false
	}
	if len(v.Introduced) > 0 {
		return nil, false
	}
	for _, g := range v.Changed {
		if g.Key() == f.Key() && lesser(f, g) {
			return &g, true
		}
	}
	return nil, false
}

// lesser reports whether g is f made smaller by a move.
func lesser(f, g check.Finding) bool {
	if g.Subject != f.Subject {
		return false
	}
	switch {
	case (f.Check == "VG301" || f.Check == "VG302") && g.Check == "VG302":
		return slices.Equal(f.Related, g.Related) && evInt(g, "lost") < evInt(f, "lost")
	case f.Check == "VG401" && g.Check == "VG401":
		if len(g.Related) >= len(f.Related) {
			return false
		}
		for _, r := range g.Related {
			if !slices.Contains(f.Related, r) {
				return false
			}
		}
		return true
	}
	return false
}

// evInt reads an integer from a finding's evidence (-1 when absent).
func evInt(f check.Finding, key string) int {
	if n, ok := f.Evidence[key].(int); ok {
		return n
	}
	return -1
}

func migration(vm, to string) *change.Change {
	op := &change.Operation{Op: change.OpMigrate, VM: vm, ToHypervisor: to}
	return &change.Change{File: "place", Operations: []*change.Operation{op}}
}

func resolves(v *change.Verdict, f check.Finding) bool {
	for _, r := range v.Resolved {
		if r.Key() == f.Key() {
			return true
		}
	}
	return false
}

// movers are the VMs whose move could fix f, the likeliest first.
func (s *solver) movers(f check.Finding) []*estate.VM {
	x := s.x
	var out []*estate.VM
	add := func(refs ...string) {
		for _, r := range refs {
			if name, ok := strings.CutPrefix(r, "vm/"); ok {
				if vm := x.VMs[name]; vm != nil && !slices.Contains(out, vm) {
					out = append(out, vm)
				}
			}
		}
	}
	switch f.Check {
	case "VG106", "VG107", "VG402":
		add(f.Subject) // the VM in the wrong place, then the others involved
		add(f.Related...)
	case "VG401":
		// Move the VMs of the smaller side: try them all, fewest first is
		// not known here, so in name order.
		add(f.Related...)
	case "VG301", "VG302":
		// The members on the failure unit that takes too many.
		svc := x.Services[strings.TrimPrefix(f.Subject, "service/")]
		if svc == nil || len(f.Related) == 0 {
			return nil
		}
		unit := f.Related[0][strings.IndexByte(f.Related[0], '/')+1:]
		for _, vm := range x.Members[svc.Name] {
			if x.UnitOf(vm, svc.Spread) == unit {
				out = append(out, vm)
			}
		}
	}
	return out
}

// destinations ranks the hypervisors vm could go to: its own cluster
// first, then the least loaded, and only those that the placement rules
// allow for it.
func (s *solver) destinations(vm *estate.VM) []*estate.Hypervisor {
	x := s.x
	cur := x.Hypervisors[vm.Hypervisor]
	var hs []*estate.Hypervisor
	for _, h := range x.Estate.Hypervisors {
		if h.Name != vm.Hypervisor && s.allowed(vm, h) {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b *estate.Hypervisor) int {
		sameA, sameB := cur != nil && a.Cluster == cur.Cluster, cur != nil && b.Cluster == cur.Cluster
		if sameA != sameB {
			if sameA {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(len(x.VMsOn[a.Name]), len(x.VMsOn[b.Name])); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if len(hs) > s.opts.Candidates {
		hs = hs[:s.opts.Candidates]
	}
	return hs
}

// allowed reports whether the placement rules let vm run on h.
func (s *solver) allowed(vm *estate.VM, h *estate.Hypervisor) bool {
	for _, r := range s.p.Placement {
		if !r.VMs.Matches(vm) {
			continue
		}
		if m := r.Hypervisors.Matches(h); (r.Rule == estate.RuleMust) != m {
			return false
		}
	}
	return true
}

// fits reports whether h has the capacity for vm on top of its VMs: CPUs
// under the policy's overcommit, memory likewise. A hypervisor of unknown
// capacity, or a VM of unknown resources, is taken to fit.
func (s *solver) fits(vm *estate.VM, h *estate.Hypervisor) bool {
	if h.Capacity == nil || vm.Resources == nil {
		return true
	}
	cpus, mem := int64(vm.Resources.CPUs), vm.Resources.MemoryMiB
	for _, o := range s.x.VMsOn[h.Name] {
		if o.Resources != nil {
			cpus += int64(o.Resources.CPUs)
			mem += o.Resources.MemoryMiB
		}
	}
	oc := s.p.Overcommit
	return float64(cpus) <= float64(h.Capacity.CPUs)*oc.CPU && float64(mem) <= float64(h.Capacity.MemoryMiB)*oc.Memory
}

// lowerBound is a number of moves any fix needs: each finding can only be
// fixed by moving one of a set of VMs (its "fix set"), and findings whose
// fix sets share no VM need distinct moves, so the size of a set of
// pairwise disjoint fix sets (found greedily, smallest first) bounds the
// moves from below.
func lowerBound(x *estate.Index, p *estate.Policy, fs []check.Finding) int {
	s := &solver{x: x, p: p}
	sets := make([][]string, 0, len(fs))
	for _, f := range fs {
		var names []string
		for _, vm := range s.movers(f) {
			names = append(names, vm.Name)
		}
		if len(names) > 0 {
			sets = append(sets, names)
		}
	}
	slices.SortFunc(sets, func(a, b []string) int { return cmp.Compare(len(a), len(b)) })
	used := map[string]bool{}
	n := 0
	for _, set := range sets {
		if slices.ContainsFunc(set, func(v string) bool { return used[v] }) {
			continue
		}
		for _, v := range set {
			used[v] = true
		}
		n++
	}
	return n
}

// ChangeYAML writes the moves as a Change document.
func ChangeYAML(moves []Move) string {
	var b strings.Builder
	b.WriteString("apiVersion: vguard.dev/v1\nkind: Change\nmetadata: {name: vguard-place, labels: {generator: vguard-place}}\noperations:\n")
	if len(moves) == 0 {
		b.WriteString("  []\n")
	}
	for _, m := range moves {
		fmt.Fprintf(&b, "  - {op: migrate, vm: %q, toHypervisor: %q}   # from %s, fixes %s\n", m.VM, m.To, m.From, m.Fixes)
	}
	return b.String()
}
