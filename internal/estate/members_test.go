package estate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestImageMembers holds the member lists (a sorted base plus the changes
// made since, folded in once many) to the index's own VMs through a long
// random run of additions and removals, undone ones included.
func TestImageMembers(t *testing.T) {
	e := &Estate{Hypervisors: []*Hypervisor{{Name: "hv"}}}
	for i := range 600 {
		e.VMs = append(e.VMs, &VM{Name: fmt.Sprintf("vm-%04d", i), Hypervisor: "hv",
			Image: &ImageRef{Name: []string{"a", "b"}[i%2], Version: 1 + i%3}})
	}
	x := NewIndex(e)
	x.EnableUpdates()
	x.Warm()
	r := rand.New(rand.NewPCG(5, 6))
	want := func(name string) []string {
		var out []string
		for _, vm := range x.VMs {
			if vm.Image != nil && vm.Image.Name == name {
				out = append(out, fmt.Sprintf("%s@%d", vm.Name, vm.Image.Version))
			}
		}
		slices.Sort(out)
		return out
	}
	got := func(name string) []string {
		var out []string
		x.ImageMembers(name, func(m ImageMember) {
			if m.Ref != "vm/"+m.VM.Name {
				t.Fatalf("member %s has ref %q", m.VM.Name, m.Ref)
			}
			out = append(out, fmt.Sprintf("%s@%d", m.VM.Name, m.Version))
		})
		return out
	}
	serial := 0
	for step := range 2 * foldAt {
		names := make([]string, 0, len(x.VMs))
		for n := range x.VMs {
			names = append(names, n)
		}
		slices.Sort(names)
		switch vm := x.VMs[names[r.IntN(len(names))]]; r.IntN(3) {
		case 0: // a new VM
			serial++
			x.AddVM(&VM{Name: fmt.Sprintf("new-%05d", serial), Hypervisor: "hv", Image: &ImageRef{Name: "a", Version: 2}})
		case 1: // a VM removed for good
			if len(x.VMs) > 100 {
				x.RemoveVM(vm)
			}
		case 2: // removed and put back, as judging a change does
			x.RemoveVM(vm)
			x.AddVM(vm)
		}
		if step%97 == 0 || step == 2*foldAt-1 {
			for _, name := range []string{"a", "b"} {
				if g, w := got(name), want(name); !slices.Equal(g, w) {
					t.Fatalf("step %d: members of %s differ from the index (%d vs %d)", step, name, len(g), len(w))
				}
			}
		}
	}
}
