package check

import (
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
)

func TestForbiddenCoresidency(t *testing.T) {
	var b avEstate
	b.hv("hv-a", "", "rack-1", nil)
	b.hv("hv-b", "", "rack-1", nil)
	b.hv("hv-c", "", "rack-2", nil)
	b.hv("hv-d", "", "rack-2", nil)
	b.vm("pay-1", "hv-a", "fin", "payments", nil)
	b.vm("hr-1", "hv-a", "hr", "hr-app", nil)
	b.vm("pay-2", "hv-b", "fin", "payments", nil)
	b.vm("hr-2", "hv-c", "hr", "hr-app", nil)
	// both-1 matches both groups of "dual" but is alone on hv-d: a VM does
	// not conflict with itself.
	b.vm("both-1", "hv-d", "hr", "payments", nil)

	p := estate.DefaultPolicy()
	groups := []estate.Selector{{App: "payments"}, {App: "hr-app"}}
	p.Separate = []*estate.SeparateRule{{Name: "apart", Scope: estate.ScopeHypervisor, Groups: groups}}
	avWant(t, b.keys(t, "VG401", p), "hypervisor/hv-a vm/hr-1 vm/pay-1 high")

	// Failure-domain scope: rack-1 holds pay-1, pay-2 and hr-1; rack-2
	// holds hr-2 and both-1 (a payments VM).
	p.Separate[0].Scope = estate.ScopeFailureDomain
	avWant(t, b.keys(t, "VG401", p),
		"failureDomain/rack-1 vm/hr-1 vm/pay-1 vm/pay-2 high",
		"failureDomain/rack-2 vm/both-1 vm/hr-2 high")

	// Groups by app and by owner: both-1 is in both, alone on hv-d (no
	// finding); hr-1 (owner hr) and pay-1 (app payments) share hv-a.
	p.Separate = []*estate.SeparateRule{{Name: "dual", Scope: estate.ScopeHypervisor,
		Groups: []estate.Selector{{App: "payments"}, {Owner: "hr"}}}}
	avWant(t, b.keys(t, "VG401", p), "hypervisor/hv-a vm/hr-1 vm/pay-1 high")

	// No rule, no finding.
	avWant(t, b.keys(t, "VG401", nil))
}

func TestDistinctGroups(t *testing.T) {
	for _, tc := range []struct {
		groups [][]string
		want   bool
	}{
		{nil, false},
		{[][]string{{"a"}, nil}, false},
		{[][]string{{"a", "b"}, nil}, false},
		{[][]string{{"a"}, {"a"}}, false},
		{[][]string{{"a"}, {"a"}, {"a"}}, false},
		{[][]string{{"a"}, {"b"}}, true},
		{[][]string{{"a", "b"}, {"a"}}, true},
		{[][]string{{"a"}, nil, {"a"}, {"c"}}, true},
	} {
		if got := distinctGroups(tc.groups); got != tc.want {
			t.Errorf("distinctGroups(%q) = %v, want %v", tc.groups, got, tc.want)
		}
	}
}

func TestPlacementRule(t *testing.T) {
	var b avEstate
	b.hv("pci-1", "", "", nil).Labels = map[string]string{"pci": "true"}
	b.hv("gen-1", "", "", nil)
	b.hv("lab-1", "lab", "", nil)
	b.vm("card-1", "pci-1", "fin", "cards", nil).Labels = map[string]string{"pci": "true"}
	b.vm("card-2", "gen-1", "fin", "cards", nil).Labels = map[string]string{"pci": "true"}
	b.vm("card-3", "lab-1", "fin", "cards", nil).Labels = map[string]string{"pci": "true"}
	b.vm("web-1", "gen-1", "web", "web", nil)
	b.vm("web-2", "lab-1", "web", "web", nil)

	p := estate.DefaultPolicy()
	p.Placement = []*estate.PlacementRule{
		{Name: "pci-on-pci", VMs: estate.Selector{Labels: map[string]string{"pci": "true"}},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"pci": "true"}}, Rule: estate.RuleMust},
		{Name: "no-prod-in-lab", VMs: estate.Selector{Environment: estate.EnvProd},
			Hypervisors: estate.HypervisorSelector{Cluster: "lab"}, Rule: estate.RuleMustNot},
	}
	// card-3 breaks both rules: one finding naming both.
	avWant(t, b.keys(t, "VG402", p),
		"vm/card-2 hypervisor/gen-1 medium",
		"vm/card-3 hypervisor/lab-1 medium",
		"vm/web-2 hypervisor/lab-1 medium")
	res := Evaluate(estate.NewIndex(&b.e), p, Options{Only: []string{"VG402"}})
	for _, f := range res.Findings {
		if f.Subject == "vm/card-3" && len(f.Evidence["rules"].([]string)) != 2 {
			t.Errorf("card-3 evidence %v, want both rules", f.Evidence)
		}
	}
	// Names selector.
	p.Placement = []*estate.PlacementRule{{Name: "web-here", VMs: estate.Selector{App: "web"},
		Hypervisors: estate.HypervisorSelector{Names: []string{"gen-1", "pci-1"}}, Rule: estate.RuleMust}}
	avWant(t, b.keys(t, "VG402", p), "vm/web-2 hypervisor/lab-1 medium")
}
