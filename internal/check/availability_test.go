package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
)

// avEstate builds estates in Go for the availability, placement and
// consistency tests, with the defaults the loader would apply.
type avEstate struct{ e estate.Estate }

func avCap(cpus int, mem int64) *estate.Capacity {
	return &estate.Capacity{CPUs: cpus, MemoryMiB: mem}
}

func avRes(cpus int, mem int64, limited *bool) *estate.Resources {
	return &estate.Resources{CPUs: cpus, MemoryMiB: mem, Limited: limited}
}

func avBool(b bool) *bool { return &b }

// hv adds a hypervisor; "" cluster or failure domain take the defaults.
func (b *avEstate) hv(name, cluster, fd string, c *estate.Capacity) *estate.Hypervisor {
	if cluster == "" {
		cluster = "default"
	}
	if fd == "" {
		fd = name
	}
	h := &estate.Hypervisor{Name: name, Cluster: cluster, FailureDomain: fd, Capacity: c}
	b.e.Hypervisors = append(b.e.Hypervisors, h)
	return h
}

func (b *avEstate) vm(name, hv, owner, app string, r *estate.Resources) *estate.VM {
	vm := &estate.VM{Name: name, Hypervisor: hv, Owner: owner, App: app, Resources: r,
		Environment: estate.EnvProd, SecurityLevel: estate.LevelStandard}
	b.e.VMs = append(b.e.VMs, vm)
	return vm
}

func (b *avEstate) service(name string, min int, spread estate.Spread, members ...string) *estate.Service {
	s := &estate.Service{Name: name, Members: members}
	s.SetDefaults()
	s.MinAvailable, s.Spread = min, spread
	b.e.Services = append(b.e.Services, s)
	return s
}

// keys runs one check and returns "subject related... severity" per finding.
func (b *avEstate) keys(t *testing.T, id string, p *estate.Policy) []string {
	t.Helper()
	if p == nil {
		p = estate.DefaultPolicy()
	}
	res := Evaluate(estate.NewIndex(&b.e), p, Options{Only: []string{id}})
	if len(res.Errors) > 0 {
		t.Fatalf("%s: errors %v", id, res.Errors)
	}
	var out []string
	for _, f := range res.Findings {
		if f.Check != id {
			t.Fatalf("Only %s returned a %s finding", id, f.Check)
		}
		if f.Message == "" || f.Remediation == "" || f.Evidence == nil {
			t.Errorf("%s %s: empty message, remediation or evidence", id, f.Subject)
		}
		out = append(out, strings.Join(append(append([]string{f.Subject}, f.Related...), f.Severity.String()), " "))
	}
	slices.Sort(out)
	return out
}

func avWant(t *testing.T, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got  %q\n want %q", got, want)
	}
}

func TestServiceLosses(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "", "rack-1", nil)
	b.hv("hv-b", "", "rack-1", nil)
	b.hv("hv-c", "", "rack-2", nil)
	for i, h := range []string{"hv-a", "hv-a", "hv-b", "hv-c"} {
		b.vm(fmt.Sprintf("api-%d", i+1), h, "t", "api", nil)
	}
	b.vm("db-1", "hv-c", "t", "db", nil)
	b.vm("db-2", "hv-c", "t", "db", nil)
	b.vm("solo-1", "hv-b", "t", "solo", nil)
	b.vm("rack-1", "hv-a", "t", "r", nil)
	b.vm("rack-2", "hv-b", "t", "r", nil)
	// api: 4 members, minAvailable 3; hv-a holds 2 -> 2 left (VG302), the
	// others hold 1 -> 3 left (fine).
	b.service("api", 3, estate.SpreadHypervisor, "api-1", "api-2", "api-3", "api-4")
	// db: both members on hv-c -> VG301, critical.
	b.service("db", 1, estate.SpreadHypervisor, "db-1", "db-2").Criticality = estate.CriticalityCritical
	// solo: one member -> VG301 high.
	b.service("solo", 1, estate.SpreadHypervisor, "solo-1")
	// r: two hypervisors but one failure domain, spread failureDomain -> VG301.
	b.service("r", 1, estate.SpreadFailureDomain, "rack-1", "rack-2")
	// empty: no member resolves: down already, with no unit to blame.
	b.service("empty", 1, estate.SpreadHypervisor, "nope")

	avWant(t, b.keys(t, "VG301", nil),
		"service/db hypervisor/hv-c critical",
		"service/empty high",
		"service/solo hypervisor/hv-b high",
		"service/r failureDomain/rack-1 high")
	avWant(t, b.keys(t, "VG302", nil),
		"service/api hypervisor/hv-a high")

	// The policy's severity override replaces the critical variant too.
	p := estate.DefaultPolicy()
	p.Severity["VG301"] = estate.SevLow
	avWant(t, b.keys(t, "VG301", p),
		"service/db hypervisor/hv-c low",
		"service/empty low",
		"service/solo hypervisor/hv-b low",
		"service/r failureDomain/rack-1 low")
}

func TestServiceLossEvidence(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "", "", nil)
	b.hv("hv-b", "", "", nil)
	b.vm("w-1", "hv-a", "", "", nil)
	b.vm("w-2", "hv-a", "", "", nil)
	b.vm("w-3", "hv-b", "", "", nil)
	b.service("w", 2, estate.SpreadHypervisor, "w-3", "w-1", "w-2")
	res := Evaluate(estate.NewIndex(&b.e), estate.DefaultPolicy(), Options{Only: []string{"VG302"}})
	if len(res.Findings) != 1 {
		t.Fatalf("got %d findings, want 1", len(res.Findings))
	}
	ev := res.Findings[0].Evidence
	if ev["members"] != 3 || ev["lost"] != 2 || ev["left"] != 1 || ev["minAvailable"] != 2 ||
		!slices.Equal(ev["lostVMs"].([]string), []string{"w-1", "w-2"}) {
		t.Errorf("evidence %v", ev)
	}
}

func TestNoFailoverCapacity(t *testing.T) {
	big := avCap(64, 262144)
	r := func(cpus int, gib int64) *estate.Resources { return avRes(cpus, gib*1024, avBool(true)) }
	var b avEstate
	// ok: three equal hosts at a third of memory each; any loss fits.
	for _, h := range []string{"ok-1", "ok-2", "ok-3"} {
		b.hv(h, "ok", "", big)
		b.vm(h+"-vm", h, "", "", r(16, 64))
	}
	// tight: two hosts with 192 GiB of VMs each: 384 GiB do not fit in 256.
	for _, h := range []string{"tight-1", "tight-2"} {
		b.hv(h, "tight", "", big)
		b.vm(h+"-vm", h, "", "", r(8, 192))
	}
	// cpu: memory fits but 300 vCPUs exceed 64 x 4 on one survivor.
	b.hv("cpu-1", "cpu", "", big)
	b.hv("cpu-2", "cpu", "", big)
	b.vm("cpu-vm-1", "cpu-1", "", "", r(150, 1))
	b.vm("cpu-vm-2", "cpu-2", "", "", r(150, 1))
	// unknown: one host without capacity -> not judged.
	b.hv("unk-1", "unknown", "", big)
	b.hv("unk-2", "unknown", "", nil)
	b.vm("unk-vm-1", "unk-1", "", "", r(8, 250))
	b.vm("unk-vm-2", "unk-2", "", "", r(8, 250))
	// single: one host with a VM without resources -> cannot fail over.
	b.hv("single-1", "single", "", big)
	b.vm("single-vm", "single-1", "", "", nil)
	// empty single host: nothing to fail over.
	b.hv("idle-1", "idle", "", big)
	// lopsided: a big host with little load and a small one; losing the
	// big host leaves too little even though it is not the busiest.
	b.hv("lop-big", "lop", "", avCap(64, 524288))
	b.hv("lop-small", "lop", "", avCap(8, 65536))
	b.vm("lop-vm-1", "lop-big", "", "", r(4, 40))
	b.vm("lop-vm-2", "lop-small", "", "", r(4, 60))

	avWant(t, b.keys(t, "VG303", nil),
		"cluster/tight hypervisor/tight-1 hypervisor/tight-2 medium",
		"cluster/cpu hypervisor/cpu-1 hypervisor/cpu-2 medium",
		"cluster/single hypervisor/single-1 medium",
		"cluster/lop hypervisor/lop-big hypervisor/lop-small medium")

	// With memory overcommit 1.5, tight fits (384 <= 384).
	p := estate.DefaultPolicy()
	p.Overcommit.Memory = 1.5
	avWant(t, b.keys(t, "VG303", p),
		"cluster/cpu hypervisor/cpu-1 hypervisor/cpu-2 medium",
		"cluster/single hypervisor/single-1 medium",
		"cluster/lop hypervisor/lop-big hypervisor/lop-small medium")
}

func TestUnlimitedResources(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "", "", nil)
	b.hv("hv-b", "", "", nil)
	b.hv("hv-c", "", "", nil)
	b.vm("greedy", "hv-a", "hr", "", avRes(4, 8192, avBool(false)))
	b.vm("neighbour", "hv-a", "web", "", avRes(4, 8192, avBool(true)))
	b.vm("unknown", "hv-a", "web", "", avRes(4, 8192, nil))
	b.vm("nores", "hv-a", "web", "", nil)
	b.vm("alone", "hv-b", "hr", "", avRes(4, 8192, avBool(false)))
	b.vm("same-owner", "hv-b", "hr", "", avRes(4, 8192, avBool(true)))
	b.vm("ownerless", "hv-c", "", "", avRes(4, 8192, avBool(false)))
	b.vm("other", "hv-c", "ops", "", avRes(4, 8192, avBool(false)))
	b.vm("other2", "hv-c", "dev", "", nil)

	avWant(t, b.keys(t, "VG304", nil),
		"vm/greedy hypervisor/hv-a medium",
		"vm/other hypervisor/hv-c medium")
	p := estate.DefaultPolicy()
	p.ResourceLimits = estate.LimitsAlways
	avWant(t, b.keys(t, "VG304", p),
		"vm/greedy hypervisor/hv-a medium",
		"vm/alone hypervisor/hv-b medium",
		"vm/ownerless hypervisor/hv-c medium",
		"vm/other hypervisor/hv-c medium")
	p.ResourceLimits = estate.LimitsNever
	avWant(t, b.keys(t, "VG304", p))
}

// TestScopedAvailability pins down the units the availability, placement
// and consistency checks judge in the scope of one VM: its services (VG301,
// VG601 a), its cluster (VG303, VG601 d), every VM of its hypervisor
// (VG304), the units holding it per separate rule, a failure domain taking in
// a hypervisor outside the scope's (VG401), the VM itself (VG402) and every
// separate rule (VG601 b); VG601 (c) is left to full runs. The same kinds of
// findings outside the scope must not appear.
func TestScopedAvailability(t *testing.T) {
	var b avEstate
	for _, h := range [][3]string{{"hv-a", "c1", "rack-1"}, {"hv-b", "c1", "rack-1"}, {"hv-c", "c2", "rack-2"}, {"hv-d", "c2", "rack-2"}} {
		b.hv(h[0], h[1], h[2], avCap(8, 16384))
	}
	mover := b.vm("mover", "hv-a", "fin", "pay", avRes(4, 30000, avBool(true)))
	mover.Labels = map[string]string{"pci": "true"}
	b.vm("neighbour", "hv-a", "hr", "hr", avRes(2, 4096, avBool(false)))
	sibling := b.vm("sibling", "hv-b", "web", "web", avRes(2, 4096, nil))
	sibling.Environment, sibling.Labels = estate.EnvTest, map[string]string{"tier": "web"}
	// Out of scope: the same findings on cluster c2, rack-2 and hv-c.
	far := b.vm("far", "hv-c", "x", "far", avRes(2, 40000, avBool(false)))
	far.Environment = estate.EnvTest
	b.vm("far2", "hv-c", "y", "far", nil).Labels = map[string]string{"pci": "true"}
	b.service("pay-svc", 5, estate.SpreadHypervisor, "mover")
	b.service("far-svc", 5, estate.SpreadHypervisor, "far")

	p := estate.DefaultPolicy()
	p.Separate = []*estate.SeparateRule{
		{Name: "pci-racks", Scope: estate.ScopeFailureDomain, Groups: []estate.Selector{
			{Labels: map[string]string{"pci": "true"}}, {Environment: estate.EnvTest}}},
		{Name: "owners", Scope: estate.ScopeHypervisor, Groups: []estate.Selector{{Owner: "fin"}, {Owner: "hr"}}},
		// Five groups that match VMs for four hypervisors (VG601 b); on
		// hv-a it fires with the same VMs as owners: one finding for both.
		{Name: "too-many", Scope: estate.ScopeHypervisor, Groups: []estate.Selector{
			{Owner: "fin"}, {Owner: "hr"}, {Labels: map[string]string{"tier": "web"}}, {Environment: estate.EnvTest}, {}, {App: "ghost"}}},
	}
	p.Placement = []*estate.PlacementRule{{Name: "typo", VMs: estate.Selector{Owner: "fin"},
		Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"gpu": "true"}}, Rule: estate.RuleMust}}

	ids := []string{"VG301", "VG302", "VG303", "VG304", "VG401", "VG402", "VG601"}
	lines := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, strings.Join(append([]string{f.Check, f.Subject}, f.Related...), " "))
		}
		slices.Sort(out)
		return out
	}
	x := estate.NewIndex(&b.e)
	full := lines(Evaluate(x, p, Options{Only: ids}).Findings)
	x.EnableUpdates()
	s := NewScope()
	s.Facts = FactsAll
	s.AddVM(x, mover)
	res := Evaluate(x, p, Options{Only: ids, Scope: s})
	got := lines(res.Findings)
	want := []string{
		"VG301 service/pay-svc hypervisor/hv-a",
		"VG303 cluster/c1 hypervisor/hv-a hypervisor/hv-b",
		"VG304 vm/neighbour hypervisor/hv-a",
		"VG401 failureDomain/rack-1 vm/mover vm/sibling",
		"VG401 hypervisor/hv-a vm/mover vm/neighbour",
		"VG402 vm/mover hypervisor/hv-a",
		"VG601 cluster/c1 hypervisor/hv-a hypervisor/hv-b",
		"VG601 rule/too-many",
		"VG601 service/pay-svc",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("scoped findings:\n got  %q\n want %q", got, want)
	}
	for _, w := range want {
		if !slices.Contains(full, w) {
			t.Errorf("full run lacks %q", w)
		}
	}
	for _, w := range []string{"VG301 service/far-svc hypervisor/hv-c", "VG303 cluster/c2 hypervisor/hv-c hypervisor/hv-d",
		"VG304 vm/far hypervisor/hv-c", "VG401 failureDomain/rack-2 vm/far vm/far2", "VG601 rule/typo"} {
		if !slices.Contains(full, w) {
			t.Errorf("full run lacks %q, which the scope must leave out", w)
		}
	}
	for _, f := range res.Findings {
		if f.Subject == "hypervisor/hv-a" && f.Check == "VG401" &&
			(!strings.Contains(f.Message, "rules owners (owner=fin; owner=hr), too-many (owner=fin; owner=hr; {})") ||
				!slices.Equal(f.Evidence["rules"].([]string), []string{"owners", "too-many"})) {
			t.Errorf("merged VG401 finding: %s %v", f.Message, f.Evidence)
		}
		if f.Subject == "rule/too-many" && !slices.Equal(f.Evidence["groups"].([]string),
			[]string{"owner=fin", "owner=hr", "labels.tier=web", "environment=test", "{}"}) {
			t.Errorf("VG601 (b) groups %v", f.Evidence["groups"])
		}
	}
}

// avBigEstate is 100k VMs on 2000 hypervisors in 50 clusters and 200 failure
// domains, with 10k services, 5 separate and 5 placement rules, for the
// "well under 100 ms per check" rule. A tenth of the VMs are pci, so VG402
// reports about 10k findings: reporting costs about 2µs per finding (50k
// findings take about 100 ms on a 2-core machine), the checking itself is
// cheap.
func avBigEstate() (*estate.Index, *estate.Policy) {
	var b avEstate
	for i := range 2000 {
		b.hv(fmt.Sprintf("hv-%d", i), fmt.Sprintf("c-%d", i%50), fmt.Sprintf("fd-%d", i%200), avCap(64, 262144))
	}
	for i := range 100_000 {
		lim := avBool(i%7 != 0)
		vm := b.vm(fmt.Sprintf("vm-%d", i), fmt.Sprintf("hv-%d", (i*7919)%2000), fmt.Sprintf("o-%d", i%300),
			fmt.Sprintf("app-%d", i%10_000), avRes(2, 4096, lim))
		vm.Labels = map[string]string{"pci": fmt.Sprint(i%10 == 0)}
	}
	for i := range 10_000 {
		s := &estate.Service{Name: fmt.Sprintf("s-%d", i), Selector: &estate.Selector{App: fmt.Sprintf("app-%d", i)}}
		s.SetDefaults()
		s.MinAvailable = 5
		if i%2 == 0 {
			s.Spread = estate.SpreadFailureDomain
		}
		b.e.Services = append(b.e.Services, s)
	}
	p := estate.DefaultPolicy()
	for i := range 5 {
		p.Separate = append(p.Separate, &estate.SeparateRule{Name: fmt.Sprintf("sep-%d", i), Scope: estate.Scope(1 + i%2),
			Groups: []estate.Selector{{Owner: fmt.Sprintf("o-%d", i)}, {Owner: fmt.Sprintf("o-%d", i+1)}, {App: "app-3"}}})
		p.Placement = append(p.Placement, &estate.PlacementRule{Name: fmt.Sprintf("pl-%d", i),
			VMs: estate.Selector{Labels: map[string]string{"pci": "true"}}, Rule: estate.RuleKind(1 + i%2),
			Hypervisors: estate.HypervisorSelector{Cluster: fmt.Sprintf("c-%d", i)}})
	}
	return estate.NewIndex(&b.e), p
}

func BenchmarkPlacementChecks(b *testing.B) {
	x, p := avBigEstate()
	for _, id := range []string{"VG301", "VG302", "VG303", "VG304", "VG401", "VG402", "VG601"} {
		b.Run(id, func(b *testing.B) {
			for b.Loop() {
				Evaluate(x, p, Options{Only: []string{id}})
			}
		})
	}
}
