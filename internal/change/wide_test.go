package change

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/load"
)

var wide = flag.Bool("wide", false, "TestJudgeMatchesFullWide: 600 changes per seed instead of 250")

// wideChange: chained operations (on VMs made earlier in the change), more
// `set` fields, MACs, side files, non-master images.
func wideChange(t testing.TB, r *rand.Rand, e *estate.Estate, serial int, manifests, scans []string) *Change {
	c := &Change{File: "/nonexistent/change.yaml"}
	names := []string{}
	for _, vm := range e.VMs {
		names = append(names, vm.Name)
	}
	nicsOf := map[string][]estate.NIC{}
	for _, vm := range e.VMs {
		nicsOf[vm.Name] = vm.NICs
	}
	anyMAC := func() string {
		for {
			vm := e.VMs[r.IntN(len(e.VMs))]
			for _, n := range vm.NICs {
				if n.MAC != "" {
					return n.MAC
				}
			}
		}
	}
	alive := map[string]bool{}
	for _, n := range names {
		alive[n] = true
	}
	pickAlive := func() string {
		for {
			n := names[r.IntN(len(names))]
			if alive[n] {
				return n
			}
		}
	}
	for k := 1 + r.IntN(4); k > 0; k-- {
		vmName := pickAlive()
		if r.IntN(2) == 0 && len(names) > len(e.VMs) {
			// an object made earlier in this change
			cand := names[len(e.VMs)+r.IntN(len(names)-len(e.VMs))]
			if alive[cand] {
				vmName = cand
			}
		}
		op := &Operation{Index: len(c.Operations), VM: vmName}
		op.Line = 10 + op.Index
		net := e.Networks[r.IntN(len(e.Networks))].Name
		nics := nicsOf[vmName]
		switch r.IntN(10) {
		case 0:
			op.Op, op.ToHypervisor = OpMigrate, e.Hypervisors[r.IntN(len(e.Hypervisors))].Name
		case 1:
			op.Op, op.Network, op.Ports = OpAttachNIC, net, []estate.PortRange{{Lo: 22, Hi: 22}}
			if r.IntN(2) == 0 {
				op.MAC = anyMAC()
			}
			nicsOf[vmName] = append(slices.Clone(nics), estate.NIC{Network: net, MAC: op.MAC})
		case 2:
			if len(nics) == 0 {
				continue
			}
			op.Op, op.Network = OpDetachNIC, nics[0].Network
			nicsOf[vmName] = slices.DeleteFunc(slices.Clone(nics), func(n estate.NIC) bool { return n.Network == op.Network })
		case 3:
			if len(nics) == 0 {
				continue
			}
			op.Op, op.FromNetwork, op.ToNetwork = OpMoveNIC, nics[0].Network, net
			nn := slices.Clone(nics)
			for i := range nn {
				if nn[i].Network == op.FromNetwork {
					nn[i].Network = net
				}
			}
			nicsOf[vmName] = nn
		case 4:
			op.Op, op.Name, op.Sanitize = OpClone, fmt.Sprintf("cl-%d-%d", serial, op.Index), r.IntN(2) == 0
			if r.IntN(2) == 0 {
				other := e.VMs[r.IntN(len(e.VMs))]
				op.Set = node(t, fmt.Sprintf("{owner: %q, app: %q, hypervisor: %s}", other.Owner, other.App, other.Hypervisor))
			}
			names = append(names, op.Name)
			alive[op.Name] = true
			nicsOf[op.Name] = nics
		case 5:
			op.Op = OpCreate
			name := fmt.Sprintf("new-%d-%d", serial, op.Index)
			other := e.VMs[r.IntN(len(e.VMs))]
			extra := ""
			if other.Identity.Hostname != "" && r.IntN(2) == 0 {
				extra = fmt.Sprintf(", identity: {hostname: %q}", other.Identity.Hostname)
			}
			if len(other.Credentials) > 0 && r.IntN(2) == 0 {
				extra += fmt.Sprintf(", credentials: [{datastore: %s, access: write}]", other.Credentials[0].Datastore)
			}
			if other.Image != nil {
				extra += fmt.Sprintf(", image: %s", other.Image)
			}
			if len(other.Labels) > 0 {
				for k, v := range other.Labels {
					extra += fmt.Sprintf(", labels: {%s: %q}", k, v)
				}
			}
			op.VM = ""
			op.Spec = node(t, fmt.Sprintf("{name: %s, hypervisor: %s, owner: %q, app: %q, environment: %s, securityLevel: low, nics: [{network: %s, mac: %q, ports: [3306]}]%s}",
				name, e.Hypervisors[r.IntN(len(e.Hypervisors))].Name, other.Owner, other.App,
				[]string{"prod", "test", "dev"}[r.IntN(3)], net, anyMAC(), extra))
			names = append(names, name)
			alive[name] = true
			nicsOf[name] = []estate.NIC{{Network: net}}
		case 6:
			op.Op = OpDelete
			alive[vmName] = false
		case 7, 8:
			op.Op = OpUpdate
			other := e.VMs[r.IntN(len(e.VMs))]
			sets := []string{
				fmt.Sprintf("{securityLevel: %s}", []string{"low", "standard", "high"}[r.IntN(3)]),
				fmt.Sprintf("{owner: %q, app: %q}", other.Owner, other.App),
				"{resources: {cpus: 64, memoryMiB: 1000000, limited: false}}",
				"{resources: {cpus: 2, limited: true}}",
				fmt.Sprintf("{hypervisor: %s}", other.Hypervisor),
				"{gateway: true}",
				"{gateway: false}",
				fmt.Sprintf("{environment: %s}", []string{"prod", "test", "dev", "staging"}[r.IntN(4)]),
				`{labels: {pci: "true"}}`,
				`{labels: {tier: web}}`,
				`{labels: {gpu: "true"}}`,
				"{labels: {}}",
				fmt.Sprintf("{homeZone: %s}", e.Zones[r.IntN(len(e.Zones))].Name),
				fmt.Sprintf("{nics: [{network: %s, mac: %q, ports: [22, 3389]}]}", net, anyMAC()),
				"{nics: []}",
				"{identity: {}}",
				"{credentials: []}",
			}
			if len(manifests) > 0 {
				sets = append(sets, fmt.Sprintf("{manifest: %q}", manifests[r.IntN(len(manifests))]))
			}
			if len(scans) > 0 {
				sets = append(sets, fmt.Sprintf("{scan: %q}", scans[r.IntN(len(scans))]))
			}
			if other.Identity.UUID != "" {
				sets = append(sets, fmt.Sprintf("{identity: {uuid: %q}}", other.Identity.UUID))
			}
			if len(other.Credentials) > 0 {
				sets = append(sets, fmt.Sprintf("{credentials: [{datastore: %s, access: write}]}", other.Credentials[0].Datastore))
			}
			if other.Image != nil {
				sets = append(sets, fmt.Sprintf("{image: %s}", other.Image))
				if len(manifests) > 0 {
					sets = append(sets, fmt.Sprintf("{image: %s, manifest: %q}", other.Image, manifests[r.IntN(len(manifests))]))
				}
			}
			s := sets[r.IntN(len(sets))]
			op.Set = node(t, s)
			if strings.HasPrefix(s, "{nics") {
				nicsOf[vmName] = nil
				if !strings.Contains(s, "[]") {
					nicsOf[vmName] = []estate.NIC{{Network: net}}
				}
			}
		case 9:
			im := e.Images[r.IntN(len(e.Images))]
			op.Op, op.VM = OpAddImage, ""
			master := r.IntN(3) != 0
			extra := ""
			if len(scans) > 0 && r.IntN(2) == 0 {
				extra = fmt.Sprintf(", scan: %q", scans[r.IntN(len(scans))])
			}
			if len(manifests) > 0 && r.IntN(2) == 0 {
				extra += fmt.Sprintf(", manifest: %q", manifests[r.IntN(len(manifests))])
			}
			v := 1000 + 10*serial + op.Index
			if r.IntN(2) == 0 {
				v = 500 + 10*serial + op.Index
			}
			op.Spec = node(t, fmt.Sprintf("{name: %s, version: %d, master: %v%s}", im.Name, v, master, extra))
		}
		c.Operations = append(c.Operations, op)
	}
	if len(c.Operations) == 0 {
		return wideChange(t, r, e, serial, manifests, scans)
	}
	return c
}

// TestJudgeMatchesFullWide widens the proof of TestJudgeMatchesFull (a
// review found what that one cannot reach): estates written with their
// side files (manifests and scan reports, so VG105 and VG203 go through the
// fast path), operations chained on VMs the change made, most `set` fields,
// MAC clashes, non-master and scanned add-image, other policies, and
// services and rules selecting by labels, owner, environment or members.
func TestJudgeMatchesFullWide(t *testing.T) {
	policies := []func(p *estate.Policy){
		func(p *estate.Policy) {},
		func(p *estate.Policy) { p.ResourceLimits = estate.LimitsAlways },
		func(p *estate.Policy) { p.MasterLag = 1 },
		func(p *estate.Policy) {
			p.Change.CrossZoneMoves = estate.CrossZoneWarn
			p.Change.BlockAt = estate.SevCritical
		},
	}
	seeds, rounds := int64(8), 250 // 8 x 600 by hand: -run Wide -args -wide
	if *wide {
		rounds = 600
	}
	if testing.Short() {
		seeds, rounds = 4, 100
	}
	everSeen := map[string]bool{}
	defer func() {
		// The point of this test: side files and chained operations reach
		// the fast path's checks of images and manifests.
		for _, id := range []string{"VG105", "VG203", "VG204", "VG501", "VG502", "VG401", "VG402"} {
			if !everSeen[id] && !t.Failed() {
				t.Errorf("no change introduced %s: the test no longer reaches it", id)
			}
		}
	}()
	for seed := int64(1); seed <= seeds; seed++ {
		dir := t.TempDir()
		if err := gen.WriteDir(dir, gen.Options{VMs: 300 + int(seed)*50, Hypervisors: 20, Seed: seed}); err != nil {
			t.Fatal(err)
		}
		res, err := load.Paths([]string{dir}, load.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e, p := res.Estate, res.Policy
		policies[int(seed-1)%len(policies)](p)
		if seed%2 == 0 {
			addExtras(e, p, seed)
		}
		var manifests, scans []string
		ms, _ := filepath.Glob(filepath.Join(dir, "manifests", "*"))
		ss, _ := filepath.Glob(filepath.Join(dir, "scans", "*"))
		manifests, scans = ms, ss
		if len(manifests) > 8 {
			manifests = manifests[:8]
		}
		files := check.NewDiskFiles()
		x := estate.NewIndex(e)
		j, err := NewJudge(x, p, files)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(seed), 77))
		bad, valid, invalid := 0, 0, 0
		seenChecks := map[string]int{}
		defer func() { t.Logf("checks introduced: %v", seenChecks) }()
		defer func() { t.Logf("seed %d: valid %d invalid %d", seed, valid, invalid) }()
		for round := 0; round < rounds; round++ {
			c := wideChange(t, r, e, round, manifests, scans)
			v, err := j.Judge(c)
			if err != nil {
				if round < 5 {
					t.Logf("invalid: %v", err)
				}
				invalid++
				continue // invalid (chained ops on deleted VMs etc.)
			}
			valid++
			for _, f := range v.Introduced {
				seenChecks[f.Check]++
				everSeen[f.Check] = true
			}
			wantIntro, wantGone, wantWorse := fullVerdict(t, e, p, c, files)
			gotIntro, gotGone := lines(v.Introduced), lines(v.Resolved)
			if got := lines(v.Worsened); !slices.Equal(got, wantWorse) {
				t.Errorf("seed %d round %d: worsened: got\n  %s\nwant\n  %s", seed, round, strings.Join(got, "\n  "), strings.Join(wantWorse, "\n  "))
			}
			if !slices.Equal(gotIntro, wantIntro) || !slices.Equal(gotGone, wantGone) {
				var ops []string
				for _, op := range c.Operations {
					s := op.String()
					if op.Set != nil {
						s += fmt.Sprintf(" set=%v", dump(op))
					}
					ops = append(ops, s)
				}
				t.Errorf("seed %d round %d: %s\nintroduced: got\n  %s\nwant\n  %s\nresolved: got\n  %s\nwant\n  %s",
					seed, round, strings.Join(ops, "; "),
					strings.Join(gotIntro, "\n  "), strings.Join(wantIntro, "\n  "),
					strings.Join(gotGone, "\n  "), strings.Join(wantGone, "\n  "))
				bad++
				if bad > 3 {
					return
				}
			}
		}
	}
}

func dump(op *Operation) string {
	var b strings.Builder
	for i := 0; i+1 < len(op.Set.Items); i += 2 {
		b.WriteString(op.Set.Items[i].Value + " ")
	}
	return b.String()
}

func addExtras(e *estate.Estate, p *estate.Policy, seed int64) {
	r := rand.New(rand.NewPCG(uint64(seed), 5))
	owners := []string{}
	for _, vm := range e.VMs {
		if vm.Owner != "" && !slices.Contains(owners, vm.Owner) {
			owners = append(owners, vm.Owner)
		}
	}
	var members []string
	for i := 0; i < 6; i++ {
		n := e.VMs[r.IntN(len(e.VMs))].Name
		if !slices.Contains(members, n) {
			members = append(members, n)
		}
	}
	svc := func(name string, sel *estate.Selector, mem []string, min int, spread estate.Spread) *estate.Service {
		return &estate.Service{Name: name, Selector: sel, Members: mem, MinAvailable: min, MaxUnavailable: 1, Spread: spread, Criticality: estate.CriticalityCritical}
	}
	e.Services = append(e.Services,
		svc("zz-web", &estate.Selector{Labels: map[string]string{"tier": "web"}}, nil, 3, estate.SpreadFailureDomain),
		svc("zz-pci", &estate.Selector{Labels: map[string]string{"pci": "true"}}, nil, 2, estate.SpreadHypervisor),
		svc("zz-owner", &estate.Selector{Owner: owners[0], Environment: estate.EnvTest}, nil, 1, estate.SpreadHypervisor),
		svc("zz-env", &estate.Selector{Environment: estate.EnvDev}, nil, 2, estate.SpreadFailureDomain),
		svc("zz-members", nil, members, 2, estate.SpreadHypervisor),
	)
	p.Separate = append(p.Separate,
		&estate.SeparateRule{Name: "zz-owners", Scope: estate.ScopeHypervisor, Groups: []estate.Selector{{Owner: owners[0]}, {Owner: owners[1%len(owners)]}}},
		&estate.SeparateRule{Name: "zz-env", Scope: estate.ScopeFailureDomain, Groups: []estate.Selector{{Environment: estate.EnvDev}, {Environment: estate.EnvProd, Labels: map[string]string{"pci": "true"}}}},
	)
	p.Placement = append(p.Placement,
		&estate.PlacementRule{Name: "zz-names", VMs: estate.Selector{Owner: owners[0]}, Hypervisors: estate.HypervisorSelector{Names: []string{e.Hypervisors[0].Name, e.Hypervisors[1].Name}}, Rule: estate.RuleMust},
		&estate.PlacementRule{Name: "zz-cluster", VMs: estate.Selector{Environment: estate.EnvTest}, Hypervisors: estate.HypervisorSelector{Cluster: e.Hypervisors[0].Cluster}, Rule: estate.RuleMustNot},
	)
}
