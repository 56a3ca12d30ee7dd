// Package blast answers "if this fails, what goes down?": for each failure
// unit of an estate (a hypervisor or a failure domain), or for named units
// failing together, or for every pair of units, the VMs lost and the
// services left with no member (down) or below minAvailable (degraded),
// ranked by impact. It walks each service's members once, so a report over
// every unit of a large estate costs about one pass over the VMs.
package blast

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Unit is the kind of failure unit.
type Unit string

const (
	ByHypervisor    Unit = "hypervisor"
	ByFailureDomain Unit = "failureDomain"
)

// Scenario is what the loss of some units together does, in the JSON shape
// of cli.md; every list is sorted and never nil.
type Scenario struct {
	Failed           []string `json:"failed"`
	VMsLost          []string `json:"vmsLost"`
	ServicesDown     []string `json:"servicesDown"`
	ServicesDegraded []string `json:"servicesDegraded"`
}

// Report is a ranked list of scenarios.
type Report struct {
	Scenarios []Scenario `json:"scenarios"`
}

// Analyzer computes scenarios over one estate.
type Analyzer struct {
	x    *estate.Index
	unit Unit
	// vms lists the VMs of each unit.
	vms map[string][]*estate.VM
	// members counts each service's members per unit, and total each
	// service's members.
	members map[string]map[string]int
	total   map[string]int
	// touched lists the services with members on each unit.
	touched map[string][]*estate.Service
}

// New prepares an analysis of x by unit.
func New(x *estate.Index, unit Unit) *Analyzer {
	a := &Analyzer{x: x, unit: unit, vms: map[string][]*estate.VM{}, members: map[string]map[string]int{},
		total: map[string]int{}, touched: map[string][]*estate.Service{}}
	for _, vm := range x.AllVMs() {
		u := a.unitOf(vm)
		a.vms[u] = append(a.vms[u], vm)
	}
	for _, s := range x.Estate.Services {
		per := map[string]int{}
		for _, vm := range x.Members[s.Name] {
			per[a.unitOf(vm)]++
		}
		a.members[s.Name] = per
		a.total[s.Name] = len(x.Members[s.Name])
		for u := range per {
			a.touched[u] = append(a.touched[u], s)
		}
	}
	return a
}

func (a *Analyzer) unitOf(vm *estate.VM) string {
	if a.unit == ByFailureDomain {
		return a.x.FailureDomainOf(vm)
	}
	return vm.Hypervisor
}

// Units lists every unit of the estate, VMs or not, sorted.
func (a *Analyzer) Units() []string {
	seen := map[string]bool{}
	for _, h := range a.x.Estate.Hypervisors {
		if a.unit == ByFailureDomain {
			seen[h.FailureDomain] = true
		} else {
			seen[h.Name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// Known reports whether name is a unit of the estate.
func (a *Analyzer) Known(name string) bool { return slices.Contains(a.Units(), name) }

// Fail is the scenario of the given units failing together. It looks only
// at the services with members on them.
func (a *Analyzer) Fail(units ...string) Scenario {
	sc := Scenario{Failed: []string{}, VMsLost: []string{}, ServicesDown: []string{}, ServicesDegraded: []string{}}
	failed := map[string]bool{}
	var services []*estate.Service
	for _, u := range units {
		if failed[u] {
			continue
		}
		failed[u] = true
		sc.Failed = append(sc.Failed, a.ref(u))
		for _, vm := range a.vms[u] {
			sc.VMsLost = append(sc.VMsLost, "vm/"+vm.Name)
		}
		for _, s := range a.touched[u] {
			if !slices.Contains(services, s) {
				services = append(services, s)
			}
		}
	}
	for _, s := range services {
		lost := 0
		for u, n := range a.members[s.Name] {
			if failed[u] {
				lost += n
			}
		}
		switch left := a.total[s.Name] - lost; {
		case left == 0:
			sc.ServicesDown = append(sc.ServicesDown, "service/"+s.Name)
		case left < s.MinAvailable:
			sc.ServicesDegraded = append(sc.ServicesDegraded, "service/"+s.Name)
		}
	}
	slices.Sort(sc.Failed)
	slices.Sort(sc.VMsLost)
	slices.Sort(sc.ServicesDown)
	slices.Sort(sc.ServicesDegraded)
	return sc
}

func (a *Analyzer) ref(u string) string { return string(a.unit) + "/" + u }

// EachUnit is the scenario of every unit failing alone, ranked by impact.
func (a *Analyzer) EachUnit() []Scenario {
	units := a.Units()
	out := make([]Scenario, 0, len(units))
	for _, u := range units {
		out = append(out, a.Fail(u))
	}
	Rank(out)
	return out
}

// Pairs is the scenario of pairs of units failing together, ranked, the
// worst top of them. Every pair of units that share a service is judged
// exactly. A pair that shares no service does exactly the sum of what its
// two units do alone, and the ranking is compatible with sums, so for each
// unit its best such partners are the first units, in the ranking of
// single losses, that share no service with it: the first top of them are
// candidates too, and no worse pair is left out.
func (a *Analyzer) Pairs(top int) []Scenario {
	singles := a.EachUnit()
	type pair struct{ a, b string }
	cand := map[pair]bool{}
	add := func(u, v string) {
		if u == v {
			return
		}
		if u > v {
			u, v = v, u
		}
		cand[pair{u, v}] = true
	}
	for _, per := range a.members {
		units := make([]string, 0, len(per))
		for u := range per {
			units = append(units, u)
		}
		for i := range units {
			for j := i + 1; j < len(units); j++ {
				add(units[i], units[j])
			}
		}
	}
	shares := func(u, v string) bool {
		for _, sv := range a.touched[u] {
			if a.members[sv.Name][v] > 0 {
				return true
			}
		}
		return false
	}
	order := make([]string, len(singles))
	for i, sc := range singles {
		order[i] = unitName(sc.Failed[0])
	}
	for i, u := range order {
		found := 0
		for j, v := range order {
			if found == top {
				break
			}
			if j != i && !shares(u, v) {
				add(u, v)
				found++
			}
		}
	}
	// Rank the candidates by counts alone; lists are built for the top.
	type scored struct {
		p                   pair
		down, degraded, vms int
	}
	all := make([]scored, 0, len(cand))
	for p := range cand {
		d, g, v := a.impact(p.a, p.b)
		all = append(all, scored{p, d, g, v})
	}
	slices.SortFunc(all, func(x, y scored) int {
		if c := cmp.Compare(y.down, x.down); c != 0 {
			return c
		}
		if c := cmp.Compare(y.degraded, x.degraded); c != 0 {
			return c
		}
		if c := cmp.Compare(y.vms, x.vms); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(x.p.a, y.p.a), cmp.Compare(x.p.b, y.p.b))
	})
	out := make([]Scenario, 0, top)
	for _, sc := range all[:min(top, len(all))] {
		out = append(out, a.Fail(sc.p.a, sc.p.b))
	}
	Rank(out)
	return out
}

// impact counts what units u and v failing together do.
func (a *Analyzer) impact(u, v string) (down, degraded, vms int) {
	vms = len(a.vms[u]) + len(a.vms[v])
	judge := func(s *estate.Service) {
		per := a.members[s.Name]
		switch left := a.total[s.Name] - per[u] - per[v]; {
		case left == 0:
			down++
		case left < s.MinAvailable:
			degraded++
		}
	}
	for _, s := range a.touched[u] {
		judge(s)
	}
	for _, s := range a.touched[v] {
		if a.members[s.Name][u] == 0 { // judged with u already
			judge(s)
		}
	}
	return down, degraded, vms
}

func unitName(ref string) string { return ref[strings.IndexByte(ref, '/')+1:] }

// Rank sorts scenarios by impact: services down, then degraded, then VMs
// lost, then the failed units' names.
func Rank(scs []Scenario) {
	slices.SortFunc(scs, func(a, b Scenario) int {
		if c := cmp.Compare(len(b.ServicesDown), len(a.ServicesDown)); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.ServicesDegraded), len(a.ServicesDegraded)); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.VMsLost), len(a.VMsLost)); c != 0 {
			return c
		}
		return slices.Compare(a.Failed, b.Failed)
	})
}

// Summary is one line about a scenario, for people.
func (s *Scenario) Summary() string {
	return fmt.Sprintf("%d down, %d degraded, %d VMs lost", len(s.ServicesDown), len(s.ServicesDegraded), len(s.VMsLost))
}
