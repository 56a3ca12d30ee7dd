package check_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
)

// availabilityIDs are the checks whose scoped runs placementScopePolicy
// exercises.
var availabilityIDs = []string{"VG301", "VG302", "VG303", "VG304", "VG401", "VG402", "VG601"}

// placementScopePolicy extends the generated policy with separate rules
// whose groups the random changes can empty or fill: a label that one VM
// of e carries (every fifth VM gets its own, so that deleting or
// re-profiling it empties the group), owners, an environment, two labels at
// once, the empty selector and an app that no VM has; that rule has more
// groups than the estate has failure domains, so that VG601 (b) fires and
// its count moves. always also sets resourceLimits
// always and a tight overcommit, for VG304's other mode and for clusters
// that a change tips over (VG303, VG601 d). It also raises minAvailable of
// every tenth service of e beyond what the estate's units allow, so that
// VG601 (a) fires and follows the members a change adds or removes.
func placementScopePolicy(e *estate.Estate, base *estate.Policy, always bool) *estate.Policy {
	for i, s := range e.Services {
		if i%10 == 0 {
			s.MinAvailable = 40
		}
	}
	p := *base
	var solo []string
	for i := 0; i < len(e.VMs) && len(solo) < 60; i += 5 {
		vm := e.VMs[i]
		labels := maps.Clone(vm.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels["solo"] = vm.Name
		vm.Labels = labels
		solo = append(solo, vm.Name)
	}
	owners := []string{e.VMs[0].Owner, e.VMs[len(e.VMs)/2].Owner}
	many := &estate.SeparateRule{Name: "many-groups", Scope: estate.ScopeFailureDomain, Groups: []estate.Selector{
		{App: "no-such-app"}, {Environment: estate.EnvDev}, {Labels: map[string]string{"pci": "true", "tier": "web"}},
		{Labels: map[string]string{"gpu": "true"}}, {Owner: owners[1], Environment: estate.EnvTest},
	}}
	for _, name := range solo {
		many.Groups = append(many.Groups, estate.Selector{Labels: map[string]string{"solo": name}})
	}
	p.Separate = append(slices.Clone(base.Separate), many,
		&estate.SeparateRule{Name: "owners-apart", Scope: estate.ScopeHypervisor,
			Groups: []estate.Selector{{Owner: owners[0]}, {Owner: owners[1]}}},
		&estate.SeparateRule{Name: "everything-apart-from-test", Scope: estate.ScopeFailureDomain,
			Groups: []estate.Selector{{}, {Environment: estate.EnvTest}}})
	p.Placement = append(slices.Clone(base.Placement),
		&estate.PlacementRule{Name: "owner-in-app-01", VMs: estate.Selector{Owner: owners[0]},
			Hypervisors: estate.HypervisorSelector{Cluster: "app-01"}, Rule: estate.RuleMust})
	if always {
		p.ResourceLimits = estate.LimitsAlways
		p.Overcommit = estate.Overcommit{CPU: 1, Memory: 0.8}
	}
	return &p
}

// TestIncrementalPlacementPolicy is TestIncrementalMatchesFull for the
// availability, placement and consistency checks under policies richer than
// the generated one.
func TestIncrementalPlacementPolicy(t *testing.T) {
	rounds := 80
	if testing.Short() {
		rounds = 20
	}
	for seed := int64(1); seed <= 4; seed++ {
		for _, always := range []bool{false, true} {
			e, base := gen.Estate(gen.Options{VMs: 200 + int(seed)*150, Hypervisors: 8 + int(seed)*3, Seed: seed})
			p := placementScopePolicy(e, base, always)
			x := estate.NewIndex(e)
			x.EnableUpdates()
			opts := check.Options{Only: availabilityIDs}
			before := keyed(check.Evaluate(x, p, opts).Findings)
			r := rand.New(rand.NewPCG(uint64(seed), 11))
			for round := range rounds {
				m := randomMutation(r, x, round)
				want := keyed(check.Evaluate(estate.NewIndex(m.afterEstate(e)), p, opts).Findings)
				wantIntro, wantGone := diff(want, before), diff(before, want)
				scoped := opts
				scoped.Scope = m.scope(x)
				scopedBefore := keyed(check.Evaluate(x, p, scoped).Findings)
				m.apply(x)
				scopedAfter := keyed(check.Evaluate(x, p, scoped).Findings)
				m.undo(x)
				gotIntro, gotGone := diff(scopedAfter, scopedBefore), diff(scopedBefore, scopedAfter)
				if !slices.Equal(gotIntro, wantIntro) || !slices.Equal(gotGone, wantGone) {
					t.Fatalf("seed %d always %v round %d: %s\nintroduced: got\n  %s\nwant\n  %s\nresolved: got\n  %s\nwant\n  %s",
						seed, always, round, strings.Join(m.desc, "; "),
						strings.Join(gotIntro, "\n  "), strings.Join(wantIntro, "\n  "),
						strings.Join(gotGone, "\n  "), strings.Join(wantGone, "\n  "))
				}
			}
		}
	}
}

// BenchmarkScopedAvailability measures the availability, placement and
// consistency checks judging the scope of one VM (its hypervisor, failure
// domain, cluster and services) on the 100k-VM estate of `vguard gen --vms
// 100000 --hypervisors 2000 --seed 1`, as `vguard plan` does twice per
// change. Each round takes the next of 100 VMs spread over the estate. The
// lookups the index builds on first use are built before timing. The
// whole-change budget is 5 ms for all checks.
func BenchmarkScopedAvailability(b *testing.B) {
	e, p := gen.Estate(gen.Options{VMs: 100_000, Hypervisors: 2000, Seed: 1})
	x := estate.NewIndex(e)
	x.EnableUpdates()
	var scopes []*check.Scope
	for i := 0; i < len(e.VMs); i += len(e.VMs) / 100 {
		s := check.NewScope()
		s.Facts = check.FactsAll
		s.AddVM(x, e.VMs[i])
		scopes = append(scopes, s)
	}
	check.Evaluate(x, p, check.Options{Only: availabilityIDs, Scope: scopes[0]})
	bench := func(ids []string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				check.Evaluate(x, p, check.Options{Only: ids, Scope: scopes[i%len(scopes)]})
				i++
			}
		}
	}
	b.Run("all", bench(availabilityIDs))
	for _, id := range availabilityIDs {
		b.Run(id, bench([]string{id}))
	}
}
