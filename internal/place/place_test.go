package place

import (
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
)

// after is the estate with the moves made, built from scratch.
func after(e *estate.Estate, moves []Move) *estate.Estate {
	to := map[string]string{}
	for _, m := range moves {
		to[m.VM] = m.To
	}
	out := *e
	out.VMs = make([]*estate.VM, len(e.VMs))
	for i, vm := range e.VMs {
		if h, ok := to[vm.Name]; ok {
			vm = vm.Clone()
			vm.Hypervisor = h
		}
		out.VMs[i] = vm
	}
	return &out
}

// TestSolveProperties: on random generated estates, after the moves the
// findings place claims fixed are gone, no finding at all is introduced,
// no hypervisor that received a VM exceeds its capacity, the moves are at
// least the lower bound, and unfixed findings each say why.
func TestSolveProperties(t *testing.T) {
	seeds := []int64{1, 2, 3, 4, 5, 6}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		e, p := gen.Estate(gen.Options{VMs: 400 + 200*int(seed), Hypervisors: 20 + 2*int(seed), Seed: seed})
		before := check.Evaluate(estate.NewIndex(e), p, check.Options{}).Findings
		res, err := Solve(estate.NewIndex(e), p, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ae := after(e, res.Moves)
		x := estate.NewIndex(ae)
		afterF := check.Evaluate(x, p, check.Options{}).Findings
		keys := func(fs []check.Finding) map[string]bool {
			m := map[string]bool{}
			for _, f := range fs {
				m[f.Key()] = true
			}
			return m
		}
		bk, ak := keys(before), keys(afterF)
		for k := range ak {
			if !bk[k] {
				t.Errorf("seed %d: the moves introduce %s", seed, k)
			}
		}
		for _, f := range res.Fixed {
			if ak[f.Key()] {
				t.Errorf("seed %d: %s claimed fixed is still there", seed, f.Key())
			}
		}
		for _, u := range res.Unfixed {
			if u.Why == "" || !ak[u.Finding.Key()] {
				t.Errorf("seed %d: unfixed %s: why %q, present %v", seed, u.Finding.Key(), u.Why, ak[u.Finding.Key()])
			}
		}
		if len(res.Fixed)+len(res.Unfixed) == 0 {
			t.Errorf("seed %d: the generated estate has no placement finding to fix", seed)
		}
		if len(res.Moves) < res.FixedLowerBound {
			t.Errorf("seed %d: %d moves beat the lower bound %d: the bound is wrong", seed, len(res.Moves), res.FixedLowerBound)
		}
		received := map[string]bool{}
		for _, m := range res.Moves {
			received[m.To] = true
		}
		for _, h := range ae.Hypervisors {
			if !received[h.Name] || h.Capacity == nil {
				continue
			}
			var cpus, mem int64
			for _, vm := range x.VMsOn[h.Name] {
				if vm.Resources != nil {
					cpus += int64(vm.Resources.CPUs)
					mem += vm.Resources.MemoryMiB
				}
			}
			if float64(cpus) > float64(h.Capacity.CPUs)*p.Overcommit.CPU || float64(mem) > float64(h.Capacity.MemoryMiB)*p.Overcommit.Memory {
				t.Errorf("seed %d: %s over capacity: %d cpus, %d MiB", seed, h.Name, cpus, mem)
			}
		}
		t.Logf("seed %d: %d moves (lower bound %d), fixed %d, unfixed %d", seed, len(res.Moves), res.FixedLowerBound, len(res.Fixed), len(res.Unfixed))
	}
}
