package blast

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
)

// randomEstate places VMs at random on hosts in racks, with services of
// random members and minAvailable.
func randomEstate(r *rand.Rand) *estate.Index {
	e := &estate.Estate{}
	hosts := 2 + r.IntN(8)
	for h := 0; h < hosts; h++ {
		e.Hypervisors = append(e.Hypervisors, &estate.Hypervisor{Name: fmt.Sprintf("hv-%d", h), FailureDomain: fmt.Sprintf("rack-%d", h%3)})
	}
	for i := 0; i < 5+r.IntN(40); i++ {
		e.VMs = append(e.VMs, &estate.VM{Name: fmt.Sprintf("vm-%02d", i), Hypervisor: fmt.Sprintf("hv-%d", r.IntN(hosts)), App: fmt.Sprintf("app-%d", r.IntN(6))})
	}
	for s := 0; s < 6; s++ {
		e.Services = append(e.Services, &estate.Service{Name: fmt.Sprintf("svc-%d", s), Selector: &estate.Selector{App: fmt.Sprintf("app-%d", s)}, MinAvailable: r.IntN(4)})
	}
	return estate.NewIndex(e)
}

// brute is the scenario computed the obvious way, from every VM.
func brute(x *estate.Index, unit Unit, failed map[string]bool) (down, degraded []string, lost int) {
	of := func(vm *estate.VM) string {
		if unit == ByFailureDomain {
			return x.FailureDomainOf(vm)
		}
		return vm.Hypervisor
	}
	for _, vm := range x.Estate.VMs {
		if failed[of(vm)] {
			lost++
		}
	}
	for _, s := range x.Estate.Services {
		left, total := 0, 0
		for _, vm := range x.Members[s.Name] {
			total++
			if !failed[of(vm)] {
				left++
			}
		}
		switch {
		case left == total:
		case left == 0:
			down = append(down, "service/"+s.Name)
		case left < s.MinAvailable:
			degraded = append(degraded, "service/"+s.Name)
		}
	}
	return down, degraded, lost
}

func same(sc Scenario, down, degraded []string, lost int) bool {
	return slices.Equal(sc.ServicesDown, append([]string{}, down...)) &&
		slices.Equal(sc.ServicesDegraded, append([]string{}, degraded...)) && len(sc.VMsLost) == lost
}

func TestScenariosMatchBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 300; round++ {
		x := randomEstate(r)
		for _, unit := range []Unit{ByHypervisor, ByFailureDomain} {
			a := New(x, unit)
			units := a.Units()
			for _, sc := range a.EachUnit() {
				u := unitName(sc.Failed[0])
				if d, g, l := brute(x, unit, map[string]bool{u: true}); !same(sc, d, g, l) {
					t.Fatalf("round %d %s %s: got %+v, want down %v degraded %v lost %d", round, unit, u, sc, d, g, l)
				}
			}
			// The worst pair found equals the worst of all pairs.
			if len(units) < 2 {
				continue
			}
			var all []Scenario
			for i := range units {
				for j := i + 1; j < len(units); j++ {
					sc := a.Fail(units[i], units[j])
					if d, g, l := brute(x, unit, map[string]bool{units[i]: true, units[j]: true}); !same(sc, d, g, l) {
						t.Fatalf("round %d: pair %v: got %+v", round, sc.Failed, sc)
					}
					all = append(all, sc)
				}
			}
			Rank(all)
			top := a.Pairs(1 + r.IntN(3))
			for i := range top {
				w := all[i]
				if len(top[i].ServicesDown) != len(w.ServicesDown) || len(top[i].ServicesDegraded) != len(w.ServicesDegraded) || len(top[i].VMsLost) != len(w.VMsLost) {
					t.Fatalf("round %d %s: pair %d is %v (%s), the worst is %v (%s)", round, unit, i, top[i].Failed, top[i].Summary(), w.Failed, w.Summary())
				}
			}
		}
	}
}
