// Package rollout plans the rollout of a new master image version across
// the members of a service: a canary of one first, then batches that keep
// the service at or above minAvailable and within maxUnavailable, that take
// at most one member of a failure unit at a time, and a rollback order (the
// batches reversed). It refuses to roll over members that drifted from
// their current master: the rollout would erase an emergency fix that has
// not been folded into the master.
package rollout

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/manifest"
)

// Batch is one step of a rollout: the VMs updated together.
type Batch struct {
	Index  int      `json:"index"`
	Canary bool     `json:"canary,omitempty"`
	VMs    []string `json:"vms"`
}

// Skip is a member left out of the rollout, and why.
type Skip struct {
	VM     string `json:"vm"`
	Reason string `json:"reason"`
}

// Drifted is a member that differs from its current master.
type Drifted struct {
	VM     string          `json:"vm"`
	Image  string          `json:"image"`
	Drift  *manifest.Drift `json:"drift"`
	Reason string          `json:"-"`
}

// Plan is a rollout plan, in the JSON shape of cli.md plus the rollback
// order and the members that drifted.
type Plan struct {
	Service  string    `json:"service"`
	To       string    `json:"to"`
	Batches  []Batch   `json:"batches"`
	Skipped  []Skip    `json:"skipped"`
	Rollback []Batch   `json:"rollback"`
	Drifted  []Drifted `json:"drifted,omitempty"`
	// MaxBatch is the largest batch the service's limits allow.
	MaxBatch int `json:"maxBatch"`
}

// Files reads the manifests drift is judged on (check.DiskFiles does).
type Files interface {
	Drift(basePath, otherPath string) (*manifest.Drift, error)
}

// ErrDrift is returned, with the plan, when members drifted from their
// master and drift is not allowed.
var ErrDrift = errors.New("members differ from their current master")

// ErrImpossible wraps the reason no rollout can keep the services' limits.
var ErrImpossible = errors.New("no rollout keeps the services' limits")

// Make plans the rollout of image to to the members of service svc. With
// allowDrift false, members that differ from their current master make it
// return the plan (with Drifted filled in) and ErrDrift.
func Make(x *estate.Index, svcName string, to estate.ImageRef, files Files, allowDrift bool) (*Plan, error) {
	svc := x.Services[svcName]
	if svc == nil {
		return nil, fmt.Errorf("unknown service %q", svcName)
	}
	target := x.Images[to]
	if target == nil {
		return nil, fmt.Errorf("unknown image %q", to)
	}
	if !target.Master {
		return nil, fmt.Errorf("image %q is not a master: rollouts bring copies to a master version", to)
	}
	members := x.Members[svcName]
	p := &Plan{Service: svcName, To: to.String(), Batches: []Batch{}, Skipped: []Skip{}, Rollback: []Batch{}}
	if len(members) == 0 {
		return nil, fmt.Errorf("service %q has no members", svcName)
	}
	var pending []*estate.VM
	for _, vm := range members {
		if vm.Image != nil && *vm.Image == to {
			p.Skipped = append(p.Skipped, Skip{VM: vm.Name, Reason: "already at " + to.String()})
			continue
		}
		if vm.Image != nil && vm.Image.Name == to.Name && vm.Image.Version > to.Version {
			// A rollout does not downgrade: that is a rollback, planned
			// from the rollout that brought the newer version.
			p.Skipped = append(p.Skipped, Skip{VM: vm.Name, Reason: "runs a newer version, " + vm.Image.String()})
			continue
		}
		pending = append(pending, vm)
		if d := drift(x, vm, files); d != nil {
			p.Drifted = append(p.Drifted, *d)
		}
	}
	// At most maxUnavailable members down at once, and never fewer than
	// minAvailable up (members already at the target count as up).
	p.MaxBatch = min(svc.MaxUnavailable, len(members)-svc.MinAvailable)
	if len(pending) > 0 && p.MaxBatch < 1 {
		return nil, fmt.Errorf("%w: service %q has %d members and minAvailable %d, so no member can be taken down",
			ErrImpossible, svcName, len(members), svc.MinAvailable)
	}
	var err error
	drifted := map[string]bool{}
	for _, d := range p.Drifted {
		drifted[d.VM] = true
	}
	if p.Batches, err = batches(x, svc, pending, p.MaxBatch, drifted); err != nil {
		return nil, err
	}
	for i := len(p.Batches) - 1; i >= 0; i-- {
		b := p.Batches[i]
		p.Rollback = append(p.Rollback, Batch{Index: len(p.Rollback), VMs: b.VMs})
	}
	if len(p.Drifted) > 0 && !allowDrift {
		return p, ErrDrift
	}
	return p, nil
}

// drift reports how vm differs from the master it runs, when both have
// manifests and they differ (VG203's question).
func drift(x *estate.Index, vm *estate.VM, files Files) *Drifted {
	if vm.Image == nil || vm.Manifest == "" || files == nil {
		return nil
	}
	im := x.Images[*vm.Image]
	if im == nil || !im.Master || im.Manifest == "" {
		return nil
	}
	d, err := files.Drift(im.Manifest, vm.Manifest)
	if err != nil {
		return &Drifted{VM: vm.Name, Image: im.Ref().String(), Reason: err.Error()}
	}
	if d.Empty() {
		return nil
	}
	return &Drifted{VM: vm.Name, Image: im.Ref().String(), Drift: d}
}

// batches orders pending members: a canary of one (from the failure unit
// holding the most of them, so the largest group is tested first), then
// batches of at most size members, one per failure unit, drawing from the
// units with the most members left so the rollout ends as soon as it can.
// A member that also serves other services is taken only while each of
// those keeps its own minAvailable and maxUnavailable.
//
// The canary is a member that has not drifted when there is one: a canary
// should test the master, not a hand-patched copy.
func batches(x *estate.Index, svc *estate.Service, pending []*estate.VM, size int, drifted map[string]bool) ([]Batch, error) {
	others := map[string][]*estate.Service{} // pending VM -> its other services
	isPending := map[string]bool{}
	for _, vm := range pending {
		isPending[vm.Name] = true
	}
	for _, t := range x.Estate.Services {
		if t == svc {
			continue
		}
		for _, m := range x.Members[t.Name] {
			if isPending[m.Name] {
				others[m.Name] = append(others[m.Name], t)
			}
		}
	}
	// fits reports whether vm can join a batch that already takes down
	// the counted members of other services.
	fits := func(vm string, down map[string]int) bool {
		for _, t := range others[vm] {
			n := down[t.Name] + 1
			if n > t.MaxUnavailable || len(x.Members[t.Name])-n < t.MinAvailable {
				return false
			}
		}
		return true
	}
	units := map[string][]string{}
	for _, vm := range pending {
		u := x.UnitOf(vm, svc.Spread)
		units[u] = append(units[u], vm.Name)
	}
	type unit struct {
		name string
		vms  []string
	}
	var queue []*unit
	for name, vms := range units {
		slices.Sort(vms)
		queue = append(queue, &unit{name, vms})
	}
	order := func() {
		slices.SortFunc(queue, func(a, b *unit) int {
			if c := cmp.Compare(len(b.vms), len(a.vms)); c != 0 {
				return c
			}
			return cmp.Compare(a.name, b.name)
		})
	}
	var out []Batch
	take := func(n int) {
		order()
		var vms []string
		down := map[string]int{}
		for _, u := range queue {
			if len(vms) == n {
				break
			}
			for i, vm := range u.vms {
				if len(out) == 0 && drifted[vm] && slices.ContainsFunc(pending, func(v *estate.VM) bool { return !drifted[v.Name] }) {
					continue // the canary: a member that has not drifted
				}
				if fits(vm, down) {
					vms = append(vms, vm)
					u.vms = slices.Delete(u.vms, i, i+1)
					for _, t := range others[vm] {
						down[t.Name]++
					}
					break
				}
			}
		}
		if len(vms) > 0 {
			slices.Sort(vms)
			out = append(out, Batch{Index: len(out), Canary: len(out) == 0, VMs: vms})
		}
	}
	left := len(pending)
	for n := 1; left > 0; n = size {
		before := len(out)
		take(n)
		if len(out) == before {
			var stuck []string
			for _, u := range queue {
				stuck = append(stuck, u.vms...)
			}
			slices.Sort(stuck)
			return nil, fmt.Errorf("%w: members %v cannot be taken down: another service they serve would fall below its minAvailable or above its maxUnavailable", ErrImpossible, stuck)
		}
		left -= len(out[len(out)-1].VMs)
	}
	return out, nil
}
