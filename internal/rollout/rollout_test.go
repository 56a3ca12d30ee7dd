package rollout

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/manifest"
)

// farm builds a service of n members over hosts hypervisors (members placed
// at random), images app@1 and app@2, with the given limits.
func farm(r *rand.Rand, n, hosts, minAvail, maxUnavail int, atTarget int) (*estate.Index, map[string]string) {
	e := &estate.Estate{}
	for h := 0; h < hosts; h++ {
		e.Hypervisors = append(e.Hypervisors, &estate.Hypervisor{Name: fmt.Sprintf("hv-%d", h), FailureDomain: fmt.Sprintf("hv-%d", h)})
	}
	e.Images = []*estate.Image{{Name: "app", Version: 1, Master: true}, {Name: "app", Version: 2, Master: true}}
	host := map[string]string{}
	for i := 0; i < n; i++ {
		v := 1
		if i < atTarget {
			v = 2
		}
		vm := &estate.VM{Name: fmt.Sprintf("a-%02d", i), Hypervisor: fmt.Sprintf("hv-%d", r.IntN(hosts)), App: "app",
			Image: &estate.ImageRef{Name: "app", Version: v}}
		host[vm.Name] = vm.Hypervisor
		e.VMs = append(e.VMs, vm)
	}
	e.Services = []*estate.Service{{Name: "app", Selector: &estate.Selector{App: "app"}, MinAvailable: minAvail,
		MaxUnavailable: maxUnavail, Spread: estate.SpreadHypervisor}}
	return estate.NewIndex(e), host
}

// TestPlanProperties checks the plan's structure on random farms: every
// pending member exactly once, a single canary first, batches within the
// limits, one member per hypervisor whenever the remaining members allow,
// the rollback the batches reversed.
func TestPlanProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 500; round++ {
		n := 2 + r.IntN(12)
		minAvail := r.IntN(n)
		x, host := farm(r, n, 1+r.IntN(5), minAvail, 1+r.IntN(4), r.IntN(3))
		p, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 2}, nil, false)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var seen []string
		for i, b := range p.Batches {
			if (i == 0) != b.Canary || (i == 0 && len(b.VMs) != 1) {
				t.Fatalf("round %d: batch %d canary=%v size %d", round, i, b.Canary, len(b.VMs))
			}
			if len(b.VMs) > p.MaxBatch || n-len(b.VMs) < minAvail {
				t.Fatalf("round %d: batch %d of %d breaks the limits (max %d, n %d, minAvailable %d)", round, i, len(b.VMs), p.MaxBatch, n, minAvail)
			}
			hosts := map[string]bool{}
			for _, vm := range b.VMs {
				if hosts[host[vm]] {
					t.Fatalf("round %d: batch %d takes two members of %s", round, i, host[vm])
				}
				hosts[host[vm]] = true
			}
			seen = append(seen, b.VMs...)
		}
		var pending []string
		for _, vm := range x.Members["app"] {
			if vm.Image.Version == 1 {
				pending = append(pending, vm.Name)
			}
		}
		slices.Sort(seen)
		if !slices.Equal(seen, pending) {
			t.Fatalf("round %d: batches cover %v, want %v", round, seen, pending)
		}
		if len(p.Skipped) != n-len(pending) {
			t.Fatalf("round %d: skipped %v", round, p.Skipped)
		}
		for i, b := range p.Rollback {
			if !slices.Equal(b.VMs, p.Batches[len(p.Batches)-1-i].VMs) {
				t.Fatalf("round %d: rollback %d is not batch %d", round, i, len(p.Batches)-1-i)
			}
		}
		// No batch is smaller than it must be: after the canary each takes
		// as many members as the limit allows, one from each hypervisor
		// that still has members to update.
		left := map[string]int{}
		for _, vm := range pending {
			left[host[vm]]++
		}
		for i, b := range p.Batches {
			if i > 0 {
				if want := min(p.MaxBatch, len(left)); len(b.VMs) != want {
					t.Fatalf("round %d: batch %d has %d members, could have %d", round, i, len(b.VMs), want)
				}
			}
			for _, vm := range b.VMs {
				if left[host[vm]]--; left[host[vm]] == 0 {
					delete(left, host[vm])
				}
			}
		}
	}
}

type fakeFiles map[string]*manifest.Drift

func (f fakeFiles) Drift(base, other string) (*manifest.Drift, error) {
	if d, ok := f[other]; ok {
		return d, nil
	}
	return &manifest.Drift{}, nil
}

func TestDriftRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x, _ := farm(r, 4, 2, 2, 1, 0)
	x.Images[estate.ImageRef{Name: "app", Version: 1}].Manifest = "m/master.json"
	for _, vm := range x.Members["app"] {
		vm.Manifest = "m/" + vm.Name + ".json"
	}
	files := fakeFiles{"m/a-02.json": {Added: []string{"/usr/local/bin/hotfix"}}}
	to := estate.ImageRef{Name: "app", Version: 2}
	p, err := Make(x, "app", to, files, false)
	if err != ErrDrift || len(p.Drifted) != 1 || p.Drifted[0].VM != "a-02" {
		t.Fatalf("err %v, drifted %+v", err, p.Drifted)
	}
	p, err = Make(x, "app", to, files, true)
	if err != nil {
		t.Fatalf("--allow-drift: %v", err)
	}
	if c := p.Batches[0].VMs[0]; c == "a-02" {
		t.Errorf("the canary is the drifted member %s; a canary should test the master", c)
	}
}

func TestImpossibleAndUnknown(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	x, _ := farm(r, 3, 2, 3, 1, 0)
	to := estate.ImageRef{Name: "app", Version: 2}
	if _, err := Make(x, "app", to, nil, false); err == nil {
		t.Error("minAvailable = members: no member can go down, want an error")
	}
	if _, err := Make(x, "nope", to, nil, false); err == nil {
		t.Error("unknown service accepted")
	}
	if _, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 9}, nil, false); err == nil {
		t.Error("unknown image accepted")
	}
}

// TestOtherServicesKeepTheirLimits: members that also serve another service
// are never taken down together beyond that service's limits.
func TestOtherServicesKeepTheirLimits(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	x, _ := farm(r, 8, 8, 2, 4, 0)
	// "cache" is served by a-00..a-03 and can lose only one of them.
	cache := &estate.Service{Name: "cache", Members: []string{"a-00", "a-01", "a-02", "a-03"}, MinAvailable: 3, MaxUnavailable: 1}
	x.Estate.Services = append(x.Estate.Services, cache)
	x.Services["cache"] = cache
	for _, n := range cache.Members {
		x.Members["cache"] = append(x.Members["cache"], x.VMs[n])
	}
	p, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 2}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range p.Batches {
		n := 0
		for _, vm := range b.VMs {
			if slices.Contains(cache.Members, vm) {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("batch %d takes %d members of cache down: %v", b.Index, n, b.VMs)
		}
	}
	// A service that can lose none of its members blocks the rollout.
	cache.MinAvailable = 4
	if _, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 2}, nil, false); err == nil {
		t.Error("a rollout that takes down a member of a service with no slack was planned")
	}
}

func TestNoDowngradeNoNonMaster(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	x, _ := farm(r, 4, 2, 1, 1, 2) // a-00, a-01 at app@2; the rest at app@1
	p, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 1}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range p.Batches {
		for _, vm := range b.VMs {
			if vm == "a-00" || vm == "a-01" {
				t.Errorf("rolling app@1 downgrades %s", vm)
			}
		}
	}
	tool := &estate.Image{Name: "tool", Version: 1}
	x.Images[tool.Ref()] = tool
	if _, err := Make(x, "app", tool.Ref(), nil, false); err == nil {
		t.Error("a non-master image was rolled out")
	}
	if _, err := Make(x, "app", estate.ImageRef{Name: "app", Version: 2}, nil, false); err != nil {
		t.Error(err)
	}
}
