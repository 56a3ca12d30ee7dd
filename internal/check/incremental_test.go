package check_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
)

// mutation is a random change to an estate at the level the index sees it:
// VMs replaced, added or removed, image versions added.
type mutation struct {
	desc    []string
	old     []*estate.VM // versions removed (the objects the index holds)
	new     []*estate.VM // versions added
	images  []*estate.Image
	masters []string // master names that gained a newer version
}

// randomMutation makes 1–3 random VM-level changes of the kinds a Change
// document can make.
func randomMutation(r *rand.Rand, x *estate.Index, serial int) *mutation {
	e := x.Estate
	m := &mutation{}
	taken := map[string]bool{}
	anyVM := func() *estate.VM {
		for {
			vm := e.VMs[r.IntN(len(e.VMs))]
			if !taken[vm.Name] {
				return vm
			}
		}
	}
	for k := 1 + r.IntN(3); k > 0; k-- {
		src := anyVM()
		taken[src.Name] = true
		vm := src.Clone()
		other := e.VMs[r.IntN(len(e.VMs))]
		switch op := r.IntN(12); op {
		case 0:
			vm.Hypervisor = e.Hypervisors[r.IntN(len(e.Hypervisors))].Name
			m.desc = append(m.desc, "migrate "+vm.Name+" to "+vm.Hypervisor)
		case 1:
			if len(vm.NICs) > 0 {
				vm.NICs[r.IntN(len(vm.NICs))].Network = e.Networks[r.IntN(len(e.Networks))].Name
			}
			m.desc = append(m.desc, "move-nic "+vm.Name)
		case 2:
			nic := estate.NIC{Network: e.Networks[r.IntN(len(e.Networks))].Name, Ports: []estate.PortRange{{Lo: 22, Hi: 22}, {Lo: 3306, Hi: 3306}}}
			if r.IntN(2) == 0 && len(other.NICs) > 0 {
				nic.MAC = other.NICs[0].MAC
			}
			vm.NICs = append(vm.NICs, nic)
			m.desc = append(m.desc, "attach-nic "+vm.Name)
		case 3:
			if len(vm.NICs) > 0 {
				vm.NICs = slices.Delete(vm.NICs, 0, 1)
			}
			m.desc = append(m.desc, "detach-nic "+vm.Name)
		case 4:
			vm.Identity = other.Identity
			m.desc = append(m.desc, "copy identity of "+other.Name+" to "+vm.Name)
		case 5:
			vm.Credentials = append(slices.Clone(vm.Credentials), other.Credentials...)
			if len(e.Datastores) > 0 {
				vm.Credentials = append(vm.Credentials, estate.Credential{Datastore: e.Datastores[r.IntN(len(e.Datastores))].Name, Access: estate.AccessWrite})
			}
			m.desc = append(m.desc, "credentials "+vm.Name)
		case 6:
			vm.SecurityLevel = estate.SecurityLevel(1 + r.IntN(3))
			vm.Owner, vm.App = other.Owner, other.App
			vm.Gateway = r.IntN(4) == 0
			vm.Labels = other.Labels
			m.desc = append(m.desc, "update profile "+vm.Name)
		case 7:
			if vm.Resources != nil {
				l := r.IntN(2) == 0
				vm.Resources.Limited = &l
				vm.Resources.CPUs *= 8
			}
			m.desc = append(m.desc, "update resources "+vm.Name)
		case 8:
			if len(e.Images) > 0 {
				ref := e.Images[r.IntN(len(e.Images))].Ref()
				vm.Image = &ref
			}
			m.desc = append(m.desc, "update image "+vm.Name)
		case 9: // clone, with or without sanitizing
			vm.Name = fmt.Sprintf("%s-copy-%d", src.Name, serial)
			if r.IntN(2) == 0 {
				vm.Identity = estate.Identity{}
				for i := range vm.NICs {
					vm.NICs[i].MAC = ""
				}
				vm.Credentials = nil
			}
			m.new = append(m.new, vm)
			m.desc = append(m.desc, "clone "+src.Name+" as "+vm.Name)
			continue
		case 10: // delete
			m.old = append(m.old, src)
			m.desc = append(m.desc, "delete "+src.Name)
			continue
		case 11: // a newer master version
			var masters []*estate.Image
			for _, im := range e.Images {
				if im.Master {
					masters = append(masters, im)
				}
			}
			if len(masters) > 0 {
				base := masters[r.IntN(len(masters))]
				im := &estate.Image{Name: base.Name, Version: x.NewestMaster[base.Name] + 1 + r.IntN(2), Master: true}
				if x.Images[im.Ref()] == nil && !slices.ContainsFunc(m.images, func(o *estate.Image) bool { return o.Ref() == im.Ref() }) {
					m.images = append(m.images, im)
					m.masters = append(m.masters, im.Name)
					m.desc = append(m.desc, "add-image "+im.Ref().String())
				}
			}
			continue
		}
		m.old = append(m.old, src)
		m.new = append(m.new, vm)
	}
	return m
}

func (m *mutation) apply(x *estate.Index) {
	for _, vm := range m.old {
		x.RemoveVM(vm)
	}
	for _, vm := range m.new {
		x.AddVM(vm)
	}
	for _, im := range m.images {
		x.AddImage(im)
	}
}

func (m *mutation) undo(x *estate.Index) {
	for _, im := range m.images {
		x.RemoveImage(x.Images[im.Ref()])
	}
	for _, vm := range m.new {
		x.RemoveVM(vm)
	}
	for _, vm := range m.old {
		x.AddVM(vm)
	}
}

// scope computes what the mutation can affect, on the index before it.
func (m *mutation) scope(x *estate.Index) *check.Scope {
	s := check.NewScope()
	s.Facts = check.FactsAll
	for _, vm := range m.old {
		s.AddVM(x, vm)
	}
	for _, vm := range m.new {
		s.AddVM(x, vm)
	}
	for _, name := range m.masters {
		for _, vm := range x.AllVMs() {
			if vm.Image != nil && vm.Image.Name == name {
				s.AddVM(x, vm)
			}
		}
	}
	return s
}

// afterEstate builds the estate after the mutation, from scratch.
func (m *mutation) afterEstate(e *estate.Estate) *estate.Estate {
	after := *e
	after.VMs = slices.DeleteFunc(slices.Clone(e.VMs), func(vm *estate.VM) bool { return slices.Contains(m.old, vm) })
	after.VMs = append(after.VMs, m.new...)
	after.Images = append(slices.Clone(e.Images), m.images...)
	return &after
}

func keyed(fs []check.Finding) map[string]string {
	out := make(map[string]string, len(fs))
	for _, f := range fs {
		out[f.Key()] = f.Severity.String() + " " + f.Message
	}
	return out
}

// diff returns the findings of a not in b, and those whose severity or
// message differ, as sorted lines.
func diff(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k+" "+v)
		}
	}
	slices.Sort(out)
	return out
}

// TestIncrementalMatchesFull is the proof that scoped evaluation is right:
// for random estates and random changes, the findings a change introduces
// and resolves, computed by judging only the scope before and after, equal
// those of evaluating every check on the whole estate before and after.
func TestIncrementalMatchesFull(t *testing.T) {
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	for seed := int64(1); seed <= 6; seed++ {
		e, p := gen.Estate(gen.Options{VMs: 150 + int(seed)*120, Hypervisors: 8 + int(seed)*2, Seed: seed})
		x := estate.NewIndex(e)
		x.EnableUpdates()
		before := keyed(check.Evaluate(x, p, check.Options{}).Findings)
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		for round := 0; round < rounds; round++ {
			m := randomMutation(r, x, round)
			want := keyed(check.Evaluate(estate.NewIndex(m.afterEstate(e)), p, check.Options{}).Findings)
			wantIntro, wantGone := diff(want, before), diff(before, want)

			s := m.scope(x)
			scopedBefore := keyed(check.Evaluate(x, p, check.Options{Scope: s}).Findings)
			m.apply(x)
			scopedAfter := keyed(check.Evaluate(x, p, check.Options{Scope: s}).Findings)
			m.undo(x)
			gotIntro, gotGone := diff(scopedAfter, scopedBefore), diff(scopedBefore, scopedAfter)
			if !slices.Equal(gotIntro, wantIntro) || !slices.Equal(gotGone, wantGone) {
				t.Fatalf("seed %d round %d: %s\nintroduced: got\n  %s\nwant\n  %s\nresolved: got\n  %s\nwant\n  %s",
					seed, round, strings.Join(m.desc, "; "),
					strings.Join(gotIntro, "\n  "), strings.Join(wantIntro, "\n  "),
					strings.Join(gotGone, "\n  "), strings.Join(wantGone, "\n  "))
			}
		}
		// After every undo the index must judge the estate as at first.
		if again := keyed(check.Evaluate(x, p, check.Options{}).Findings); len(diff(again, before))+len(diff(before, again)) > 0 {
			t.Fatalf("seed %d: undo left the index changed: %v / %v", seed, diff(again, before), diff(before, again))
		}
	}
}
