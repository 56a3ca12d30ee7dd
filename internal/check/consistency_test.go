package check

import (
	"fmt"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/estate"
)

// TestUnitsNeeded compares the closed form with a search over every unit
// count: with n members over U units, the best placement spreads them
// evenly, so a loss leaves n - ceil(n/U).
func TestUnitsNeeded(t *testing.T) {
	for need := 1; need <= 12; need++ {
		for n := need + 1; n <= 40; n++ {
			want := 0
			for u := 1; u <= n; u++ {
				if n-(n+u-1)/u >= need {
					want = u
					break
				}
			}
			if got := unitsNeeded(n, need); got != want {
				t.Errorf("unitsNeeded(%d, %d) = %d, want %d", n, need, got, want)
			}
		}
	}
}

func TestUnsatisfiablePolicy(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "prod", "rack-1", avCap(16, 65536))
	b.hv("hv-b", "prod", "rack-1", avCap(16, 65536))
	b.hv("hv-c", "prod", "rack-2", avCap(16, 65536))
	b.hv("hv-d", "dev", "rack-2", nil)
	for i := range 7 {
		b.vm(fmt.Sprintf("api-%d", i), fmt.Sprintf("hv-%c", 'a'+i%3), "t", "api", avRes(1, 1024, nil))
	}
	b.vm("big", "hv-a", "t", "big", avRes(8, 100_000, nil))
	// 4 hypervisors, 2 failure domains.
	b.service("one", 1, estate.SpreadHypervisor)       // needs 2: fine
	b.service("fd-one", 1, estate.SpreadFailureDomain) // needs 2: fine
	b.service("fd-two", 2, estate.SpreadFailureDomain) // n=3: needs 3 > 2
	b.service("five", 5, estate.SpreadHypervisor)      // n=6: needs ceil(6/1)=6 > 4
	b.service("zero", 0, estate.SpreadHypervisor)      // treated as need 1: fine
	s := b.service("api", 4, estate.SpreadHypervisor)  // 7 members: needs ceil(7/3)=3: fine
	s.Members = nil
	s.Selector = &estate.Selector{App: "api"}

	p := estate.DefaultPolicy()
	p.Separate = []*estate.SeparateRule{
		{Name: "three-ways", Scope: estate.ScopeFailureDomain,
			Groups: []estate.Selector{{App: "api"}, {App: "big"}, {Owner: "t"}}},
		{Name: "ghost-group", Scope: estate.ScopeFailureDomain,
			Groups: []estate.Selector{{App: "api"}, {App: "big"}, {App: "none"}}},
	}
	p.Placement = []*estate.PlacementRule{
		{Name: "typo", VMs: estate.Selector{App: "api"},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"pcii": "true"}}, Rule: estate.RuleMust},
		{Name: "avoid-typo", VMs: estate.Selector{App: "api"},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"pcii": "true"}}, Rule: estate.RuleMustNot},
		{Name: "in-prod", VMs: estate.Selector{App: "api"},
			Hypervisors: estate.HypervisorSelector{Cluster: "prod"}, Rule: estate.RuleMust},
	}
	// prod: 48 cpus x 4 fit 15 vCPUs; memory 196608 MiB < 107168 demanded? no:
	// 7 x 1024 + 100000 = 107168 fits. dev has unknown capacity.
	avWant(t, b.keys(t, "VG601", p),
		"service/fd-two high",
		"service/five high",
		"rule/three-ways high",
		"rule/typo high")

	// Squeeze prod's memory: now the cluster is overloaded.
	p.Overcommit.Memory = 0.5
	avWant(t, b.keys(t, "VG601", p),
		"service/fd-two high",
		"service/five high",
		"rule/three-ways high",
		"rule/typo high",
		"cluster/prod hypervisor/hv-a hypervisor/hv-b hypervisor/hv-c high")
}

// TestMatchesAny: a scoped run answers VG601 (b)'s "does the group match a
// VM" from the index's lookups, which must agree with a pass over the VMs
// and follow VMs that come and go.
func TestMatchesAny(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "", "", nil)
	card := b.vm("card", "hv-a", "fin", "pay", nil)
	card.Labels, card.Environment = map[string]string{"pci": "true", "tier": "db"}, estate.EnvStaging
	b.vm("web", "hv-a", "web", "site", nil).Labels = map[string]string{"tier": "web"}
	x := estate.NewIndex(&b.e)
	x.EnableUpdates()
	full, scoped := &Context{Index: x}, &Context{Index: x, scope: NewScope()}
	sels := []estate.Selector{
		{}, {App: "pay"}, {App: "pay", Environment: estate.EnvProd}, {Owner: "web"}, {Owner: "nobody"},
		{Labels: map[string]string{"pci": "true"}}, {Labels: map[string]string{"pci": "true", "tier": "web"}},
		{Labels: map[string]string{"pci": "true", "tier": "db"}, Environment: estate.EnvStaging},
		{Labels: map[string]string{"gpu": "true"}}, {Environment: estate.EnvStaging}, {Environment: estate.EnvDev},
	}
	check := func(state string, want []bool) {
		t.Helper()
		for i := range sels {
			f, s := matchesAny(full, &sels[i]), matchesAny(scoped, &sels[i])
			if f != want[i] || s != want[i] {
				t.Errorf("%s: selector %s: full %v, scoped %v, want %v", state, selectorString(&sels[i]), f, s, want[i])
			}
		}
	}
	check("initial", []bool{true, true, false, true, false, true, false, true, false, true, false})
	x.RemoveVM(card)
	check("card removed", []bool{true, false, false, true, false, false, false, false, false, false, false})
	x.AddVM(card)
	check("card back", []bool{true, true, false, true, false, true, false, true, false, true, false})
}

// TestPlacementChecksScale guards the availability, placement and
// consistency checks against pairwise work on 100k VMs and 2000 hypervisors.
// The target is well under 100 ms per check (see BenchmarkPlacementChecks);
// the limit here is loose so that a slow or race-instrumented run passes
// while a quadratic check still fails.
func TestPlacementChecksScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	x, p := avBigEstate()
	for _, id := range []string{"VG301", "VG302", "VG303", "VG304", "VG401", "VG402", "VG601"} {
		start := time.Now()
		res := Evaluate(x, p, Options{Only: []string{id}})
		d := time.Since(start)
		t.Logf("%s: %d findings in %v", id, len(res.Findings), d)
		if d > 3*time.Second {
			t.Errorf("%s took %v on 100k VMs", id, d)
		}
	}
}
