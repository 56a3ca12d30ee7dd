package check

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

func availabilityChecks() []*Check {
	return []*Check{
		{
			ID: "VG301", Name: "single-point-of-failure", Title: "Service has a single point of failure",
			Pillar: Availability, Severity: estate.SevHigh,
			Description: "The loss of one failure unit (per the service's spread) leaves a service with no running member.",
			Remediation: "Spread the service's members over more failure units so that no single hypervisor (or failure domain) holds all of them.",
			Reads:       FactPlacement | FactProfile | FactExistence,
			Run:         runSinglePointOfFailure,
		},
		{
			ID: "VG302", Name: "failure-degrades-service", Title: "Failure of one unit degrades a service",
			Pillar: Availability, Severity: estate.SevHigh,
			Description: "The loss of one failure unit leaves a service with fewer than minAvailable but more than zero members.",
			Remediation: "Move members so that no failure unit holds more than (members - minAvailable) of them, or add members on other units.",
			Reads:       FactPlacement | FactProfile | FactExistence,
			Run:         runFailureDegrades,
		},
		{
			ID: "VG303", Name: "no-failover-capacity", Title: "Cluster cannot absorb a hypervisor failure",
			Pillar: Availability, Severity: estate.SevMedium,
			Description: "A cluster cannot take the VMs of its largest hypervisor on its remaining hypervisors (with overcommit).",
			Remediation: "Add capacity to the cluster, move VMs to another cluster, or shrink their reservations so that the remaining hypervisors can restart them.",
			Reads:       FactPlacement | FactResources | FactExistence,
			Run:         runNoFailoverCapacity,
		},
		{
			ID: "VG304", Name: "unlimited-resources", Title: "VM without resource limits",
			Pillar: Availability, Severity: estate.SevMedium,
			Description: "Under resourceLimits: shared, a VM with resources.limited: false shares a hypervisor with another owner's VM (under always: every VM with limited: false).",
			Remediation: "Cap the VM's CPU and memory on the hypervisor (shares, limits or reservations) so that it cannot starve its neighbours.",
			Reads:       FactPlacement | FactResources | FactProfile | FactExistence,
			Run:         runUnlimitedResources,
		},
	}
}

// unitRef is the `kind/name` of a failure unit under a spread.
func unitRef(spread estate.Spread, unit string) string {
	if spread == estate.SpreadFailureDomain {
		return FailureDomainRef(unit)
	}
	return HypervisorRef(unit)
}

// unitWords names a failure unit in a message: "hypervisor hv-a".
func unitWords(spread estate.Spread, unit string) string {
	if spread == estate.SpreadFailureDomain {
		return "failure domain " + unit
	}
	return "hypervisor " + unit
}

// maxListed bounds the name lists put in evidence, so that a finding stays
// small on a large estate; counts next to them give the full size.
const maxListed = 10

func firstNames(names []string) []string {
	if len(names) > maxListed {
		return names[:maxListed]
	}
	return names
}

// unitLoss is what the loss of one failure unit does to one service.
type unitLoss struct {
	service *estate.Service
	members int
	unit    string
	lost    []string // names of the members on the unit, sorted
}

func (l unitLoss) left() int { return l.members - len(l.lost) }

func (l unitLoss) emit(c *Context, sev estate.Severity, msg string) {
	s := l.service
	c.Emit(Finding{
		Severity: sev,
		Subject:  ServiceRef(s.Name),
		Related:  []string{unitRef(s.Spread, l.unit)},
		Pos:      s.Pos,
		Message:  msg,
		Evidence: map[string]any{
			"members":      l.members,
			"lost":         len(l.lost),
			"left":         l.left(),
			"minAvailable": s.MinAvailable,
			"lostVMs":      firstNames(l.lost),
		},
	})
}

// serviceLosses calls fn once for each (service to judge, failure unit
// holding at least one of its members), in first-seen order. A service
// without members has no unit to lose and is skipped. A finding depends only
// on the service's members and their units, so a scoped run judges the
// services in scope (VG301, VG302 and the reads they declare: placement,
// and the profile and existence that decide membership). The cost is linear
// in the members of the services judged.
func serviceLosses(c *Context, fn func(unitLoss)) {
	x := c.Index
	for _, s := range c.Services() {
		members := x.Members[s.Name]
		if len(members) == 0 {
			continue
		}
		var order []string
		byUnit := map[string][]string{}
		for _, vm := range members { // sorted by name, so each lost list is too
			u := x.UnitOf(vm, s.Spread)
			if _, ok := byUnit[u]; !ok {
				order = append(order, u)
			}
			byUnit[u] = append(byUnit[u], vm.Name)
		}
		for _, u := range order {
			fn(unitLoss{service: s, members: len(members), unit: u, lost: byUnit[u]})
		}
	}
}

// runSinglePointOfFailure is VG301: one finding per (service, unit) whose
// loss leaves the service without a member. This holds whatever minAvailable
// says: a service that is down is down.
//
// A service with no member at all is down already, with no unit to blame
// (a change that deletes its last members, a selector that matches nothing):
// one finding without related objects.
func runSinglePointOfFailure(c *Context) {
	for _, s := range c.Services() {
		if len(c.Index.Members[s.Name]) > 0 {
			continue
		}
		sev := estate.SevHigh
		if s.Criticality == estate.CriticalityCritical {
			sev = estate.SevCritical
		}
		c.Emit(Finding{
			Severity: sev,
			Subject:  ServiceRef(s.Name),
			Pos:      s.Pos,
			Message:  fmt.Sprintf("Service %s has no running member: it is down; give it members (or remove the service).", s.Name),
			Evidence: map[string]any{"members": 0, "minAvailable": s.MinAvailable},
		})
	}
	serviceLosses(c, func(l unitLoss) {
		if l.left() > 0 {
			return
		}
		sev := estate.SevHigh
		if l.service.Criticality == estate.CriticalityCritical {
			sev = estate.SevCritical
		}
		what := fmt.Sprintf("all %d of its members", l.members)
		if l.members == 1 {
			what = "its only member"
		}
		l.emit(c, sev, fmt.Sprintf("Service %s loses %s if %s fails; run members on more than one %s.",
			l.service.Name, what, unitWords(l.service.Spread, l.unit), spreadWord(l.service.Spread)))
	})
}

// runFailureDegrades is VG302: one finding per (service, unit) whose loss
// leaves some members, but fewer than minAvailable.
func runFailureDegrades(c *Context) {
	serviceLosses(c, func(l unitLoss) {
		left := l.left()
		if left == 0 || left >= l.service.MinAvailable {
			return
		}
		l.emit(c, 0, fmt.Sprintf("If %s fails, service %s keeps %d of its %d members, fewer than its minAvailable of %d; move members off that %s.",
			unitWords(l.service.Spread, l.unit), l.service.Name, left, l.members, l.service.MinAvailable, spreadWord(l.service.Spread)))
	})
}

// countNoun writes "1 VM has" or "3 VMs have".
func countNoun(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func spreadWord(spread estate.Spread) string {
	if spread == estate.SpreadFailureDomain {
		return "failure domain"
	}
	return "hypervisor"
}

// clusterLoad sums what a cluster's hypervisors offer and what its VMs ask
// for. VG303 and VG601 read it.
type clusterLoad struct {
	name string
	hvs  []*estate.Hypervisor
	// known: every hypervisor of the cluster has a capacity. Without it the
	// cluster's capacity is unknown and neither check judges it.
	known bool
	// cpuKnown, memKnown: every capacity gives that dimension (> 0). A
	// dimension some hypervisor leaves at zero is treated as unknown rather
	// than as "no room", and is not judged.
	cpuKnown, memKnown bool
	capCPU, capMem     int64 // summed capacity (physical cpus, MiB)
	demCPU, demMem     int64 // summed demand of the cluster's VMs
	vms                int
	// vmsWithoutResources counts VMs with no resources: they count as zero
	// demand, which the evidence says.
	vmsWithoutResources int
	hvVMs               []int // VMs per hypervisor, parallel to hvs
}

// clusterLoads computes the load of every cluster to judge, sorted by name,
// in time linear in their hypervisors and VMs: every cluster, or in a scoped
// run the clusters in scope (a finding depends only on the cluster's
// hypervisors and the VMs on them). The VMs are found through VMsOn, which
// follows changes, never through the estate's list.
func clusterLoads(c *Context) []*clusterLoad {
	x := c.Index
	var names []string
	if c.Scoped() {
		for n := range c.Scope().Clusters {
			if x.Clusters[n] != nil {
				names = append(names, n)
			}
		}
	} else {
		names = make([]string, 0, len(x.Clusters))
		for n := range x.Clusters {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]*clusterLoad, 0, len(names))
	for _, n := range names {
		cl := &clusterLoad{name: n, hvs: x.Clusters[n], known: true, cpuKnown: true, memKnown: true}
		cl.hvVMs = make([]int, len(cl.hvs))
		for i, h := range cl.hvs {
			if h.Capacity == nil {
				cl.known = false
			} else {
				cl.capCPU += int64(h.Capacity.CPUs)
				cl.capMem += h.Capacity.MemoryMiB
				cl.cpuKnown = cl.cpuKnown && h.Capacity.CPUs > 0
				cl.memKnown = cl.memKnown && h.Capacity.MemoryMiB > 0
			}
			for _, vm := range x.VMsOn[h.Name] {
				cl.vms++
				cl.hvVMs[i]++
				if vm.Resources == nil {
					cl.vmsWithoutResources++
					continue
				}
				cl.demCPU += int64(vm.Resources.CPUs)
				cl.demMem += vm.Resources.MemoryMiB
			}
		}
		if !cl.known {
			cl.cpuKnown, cl.memKnown = false, false
		}
		out = append(out, cl)
	}
	return out
}

// allowed is what capacity cap offers under an overcommit ratio.
func allowed(cap int64, ratio float64) float64 { return float64(cap) * ratio }

// pressure is demand over what is allowed: above 1 does not fit.
func pressure(demand int64, allow float64) float64 {
	if demand <= 0 {
		return 0
	}
	if allow <= 0 {
		return math.Inf(1)
	}
	return float64(demand) / allow
}

// runNoFailoverCapacity is VG303. checks.md asks whether a cluster can take
// the VMs of its largest hypervisor on the others. All VMs of the cluster
// must then run on the survivors, so losing hypervisor h fits when the
// cluster's whole demand fits in (capacity - capacity of h) x overcommit.
// The loss of every hypervisor that runs VMs is evaluated, which covers the
// largest one (however "largest" is measured) and also a big but lightly
// loaded host whose capacity the others depend on; the worst loss is
// reported. An empty hypervisor is not evaluated: it has no VMs to hand over.
// A cluster of one hypervisor with VMs cannot fail over at all and fires,
// whatever its capacity. Otherwise, a cluster with a hypervisor of unknown
// capacity is not judged.
func runNoFailoverCapacity(c *Context) {
	oc := c.Policy.Overcommit
	for _, cl := range clusterLoads(c) {
		if cl.vms == 0 || (!cl.known && len(cl.hvs) > 1) {
			continue
		}
		related := make([]string, len(cl.hvs))
		for i, h := range cl.hvs {
			related[i] = HypervisorRef(h.Name)
		}
		ev := map[string]any{
			"hypervisors":         len(cl.hvs),
			"vms":                 cl.vms,
			"vmsWithoutResources": cl.vmsWithoutResources,
			"overcommitCPU":       oc.CPU,
			"overcommitMemory":    oc.Memory,
		}
		if cl.vmsWithoutResources > 0 {
			ev["note"] = "VMs without resources count as zero demand"
		}
		if len(cl.hvs) == 1 {
			ev["hypervisor"] = cl.hvs[0].Name
			c.Emit(Finding{
				Subject: ClusterRef(cl.name),
				Related: related,
				Message: fmt.Sprintf("Cluster %s has a single hypervisor, %s, so its %s nowhere to restart if it fails; add a hypervisor to the cluster.",
					cl.name, cl.hvs[0].Name, countNoun(cl.vms, "VM has", "VMs have")),
				Evidence: ev,
			})
			continue
		}
		cpuOK, memOK := cl.cpuKnown && oc.CPU > 0, cl.memKnown && oc.Memory > 0
		if !cpuOK && !memOK {
			continue
		}
		worst, worstP := -1, 1.0
		var failing []string
		for i, h := range cl.hvs {
			if cl.hvVMs[i] == 0 {
				continue
			}
			p := 0.0
			if cpuOK {
				p = max(p, pressure(cl.demCPU, allowed(cl.capCPU-int64(h.Capacity.CPUs), oc.CPU)))
			}
			if memOK {
				p = max(p, pressure(cl.demMem, allowed(cl.capMem-h.Capacity.MemoryMiB, oc.Memory)))
			}
			if p <= 1 {
				continue
			}
			failing = append(failing, h.Name)
			if p > worstP {
				worst, worstP = i, p
			}
		}
		if worst < 0 {
			continue
		}
		// The message names the dimensions that do not fit; the evidence
		// gives every judged dimension.
		h := cl.hvs[worst]
		var need, offer []string
		if cpuOK {
			allow := allowed(cl.capCPU-int64(h.Capacity.CPUs), oc.CPU)
			a := int64(math.Floor(allow))
			ev["vcpuDemand"], ev["vcpuAvailable"] = cl.demCPU, a
			if float64(cl.demCPU) > allow {
				need = append(need, strconv.FormatInt(cl.demCPU, 10)+" vCPUs")
				offer = append(offer, strconv.FormatInt(a, 10)+" vCPUs")
			}
		}
		if memOK {
			allow := allowed(cl.capMem-h.Capacity.MemoryMiB, oc.Memory)
			a := int64(math.Floor(allow))
			ev["memoryMiBDemand"], ev["memoryMiBAvailable"] = cl.demMem, a
			if float64(cl.demMem) > allow {
				need = append(need, strconv.FormatInt(cl.demMem, 10)+" MiB of memory")
				offer = append(offer, strconv.FormatInt(a, 10)+" MiB")
			}
		}
		ev["hypervisor"] = h.Name
		ev["cannotLose"] = firstNames(failing)
		ev["cannotLoseCount"] = len(failing)
		c.Emit(Finding{
			Subject: ClusterRef(cl.name),
			Related: related,
			Message: fmt.Sprintf("If hypervisor %s fails, cluster %s's VMs need %s but the remaining hypervisors allow only %s with overcommit; add capacity or move VMs out of the cluster.",
				h.Name, cl.name, strings.Join(need, " and "), strings.Join(offer, " and ")),
			Evidence: ev,
		})
	}
}

// runUnlimitedResources is VG304. Only an explicit limited: false fires; a
// VM without resources, or without limited, is unknown. Under shared, a VM
// of unknown owner is not judged, and VMs of unknown owner count as no
// other owner: "another owner" needs two known, different owners. Each
// hypervisor is walked once, keeping its set of owners. A VM's finding
// depends on its co-residents, so a scoped run judges every VM of each
// hypervisor in scope.
func runUnlimitedResources(c *Context) {
	mode := c.Policy.ResourceLimits
	if mode == estate.LimitsNever {
		return
	}
	x := c.Index
	for _, h := range hypervisorsJudged(c) {
		vms := x.VMsOn[h.Name]
		var owners []string // distinct known owners on h, sorted; used under shared
		if mode != estate.LimitsAlways {
			seen := map[string]bool{}
			for _, vm := range vms {
				if vm.Owner != "" && !seen[vm.Owner] {
					seen[vm.Owner] = true
					owners = append(owners, vm.Owner)
				}
			}
			slices.Sort(owners)
		}
		for _, vm := range vms {
			if vm.Resources == nil || vm.Resources.Limited == nil || *vm.Resources.Limited {
				continue
			}
			ev := map[string]any{"resourceLimits": mode.String(), "limited": false, "hypervisor": h.Name}
			var msg string
			if mode == estate.LimitsAlways {
				msg = fmt.Sprintf("VM %s runs without resource limits on hypervisor %s, but the policy requires every VM to be capped; set CPU and memory limits.",
					vm.Name, h.Name)
			} else {
				if vm.Owner == "" || len(owners) < 2 {
					continue
				}
				others := otherOwners(owners, vm.Owner, 3)
				ev["owner"], ev["otherOwners"], ev["otherOwnerCount"] = vm.Owner, others, len(owners)-1
				msg = fmt.Sprintf("VM %s (owner %s) runs without resource limits on hypervisor %s, which it shares with VMs of %s; cap its CPU and memory.",
					vm.Name, vm.Owner, h.Name, strings.Join(others, ", "))
			}
			c.Emit(Finding{
				Subject:  VMRef(vm.Name),
				Related:  []string{HypervisorRef(h.Name)},
				Pos:      vm.Pos,
				Message:  msg,
				Evidence: ev,
			})
		}
	}
}

// otherOwners returns up to n owners of the sorted list other than own. It
// stops after n+1 entries, so a host with many tenants costs O(n) per VM.
func otherOwners(owners []string, own string, n int) []string {
	var out []string
	for _, o := range owners {
		if o != own {
			out = append(out, o)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// hypervisorsJudged returns the hypervisors to judge, in no particular
// order: every hypervisor, or those in scope looked up by name rather than
// by a pass over every hypervisor.
func hypervisorsJudged(c *Context) []*estate.Hypervisor {
	if !c.Scoped() {
		return c.Index.Estate.Hypervisors
	}
	out := make([]*estate.Hypervisor, 0, len(c.Scope().Hypervisors))
	for name := range c.Scope().Hypervisors {
		if h := c.Index.Hypervisors[name]; h != nil {
			out = append(out, h)
		}
	}
	return out
}
