package libvirt

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/change"
	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
)

const hookEstate = `apiVersion: vguard.dev/v1
kind: Estate
zones: [{name: z, exposure: internal}]
networks: [{name: lan, zone: z}, {name: dmz, zone: z}]
hypervisors:
  - {name: hv-a, labels: {"libvirt.vguard.dev/bridge.br0": lan}}
  - {name: hv-b}
vms:
  - {name: app-1, hypervisor: hv-a, owner: x, nics: [{network: lan, mac: "52:54:00:00:00:01", ports: [443]}]}
`

func hookIndex(t testing.TB) *estate.Index {
	res, err := load.Bytes("estate.yaml", []byte(hookEstate), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return estate.NewIndex(res.Estate)
}

func TestHookChange(t *testing.T) {
	x := hookIndex(t)
	for name, c := range map[string]struct {
		hv, xml string
		want    string
	}{
		"unchanged": {"hv-a", `<domain><name>app-1</name><devices><interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/></interface></devices></domain>`, ""},
		"migrated":  {"hv-b", `<domain><name>app-1</name><devices><interface type='network'><mac address='52:54:00:00:00:01'/><source network='lan'/></interface></devices></domain>`, "migrate app-1 to hv-b"},
		"moved NIC": {"hv-a", `<domain><name>app-1</name><devices><interface type='network'><mac address='52:54:00:00:00:01'/><source network='dmz'/></interface></devices></domain>`,
			"detach app-1 from lan; attach app-1 to dmz"},
		"removed NIC": {"hv-a", `<domain><name>app-1</name></domain>`, "detach app-1 from lan"},
		"new VM":      {"hv-a", `<domain><name>new-1</name><devices><interface type='network'><source network='lan'/></interface></devices></domain>`, "create new-1"},
		"owner":       {"hv-a", `<domain><name>app-1</name><metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" owner="y"/></metadata><devices><interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/></interface></devices></domain>`, "update app-1"},
	} {
		t.Run(name, func(t *testing.T) {
			c2, _, err := HookChange(x, c.hv, c.xml)
			if err != nil {
				t.Fatal(err)
			}
			if got := Describe(c2); !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
				t.Fatalf("change = %q, want %q", got, c.want)
			}
			if name == "moved NIC" && len(c2.Operations[1].Ports) != 1 {
				t.Error("a moved NIC keeps its listening ports")
			}
		})
	}
	if _, _, err := HookChange(x, "hv-z", `<domain><name>a</name></domain>`); err == nil || !strings.Contains(err.Error(), `"hv-z", is not in the estate`) {
		t.Errorf("unknown host: %v", err)
	}
}

// FuzzHookChange feeds the hook's stdin (domain XML from libvirt) through
// the change builder and the judge: an error or a verdict, never a panic.
func FuzzHookChange(f *testing.F) {
	f.Add(`<domain><name>app-1</name><devices><interface type='network'><mac address='52:54:00:00:00:01'/><source network='dmz'/></interface></devices></domain>`)
	f.Add(`<domain><name>n</name><metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" gateway="true" environment="dev"/></metadata></domain>`)
	f.Add(`<domain><name>app-1</name><devices><interface type='user'/></devices></domain>`)
	f.Add(`<domain><name> </name></domain>`)
	x := hookIndex(f)
	res, _ := load.Bytes("estate.yaml", []byte(hookEstate), load.Options{})
	judge, err := change.NewJudge(x, res.Policy, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, _, err := HookChange(x, "hv-a", s)
		if err != nil || len(c.Operations) == 0 {
			return
		}
		_, _ = judge.Judge(c)
	})
}

// TestNetworkTrunkVLAN: a <tag id='4095'> is no one VLAN: the network is
// written without one, with a warning, instead of an estate that does not
// load.
func TestNetworkTrunkVLAN(t *testing.T) {
	nets, bridge, warns, err := NetworkOfXML(`<network><name>trunk</name><bridge name='br9'/><vlan><tag id='4095'/></vlan></network>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 1 || nets[0].VLAN != nil || bridge != "br9" || len(warns) != 1 || !strings.Contains(warns[0], "4095") {
		t.Fatalf("got %+v, bridge %q, warnings %q", nets, bridge, warns)
	}
	nets, _, warns, err = NetworkOfXML(`<network><name>v10</name><vlan><tag id='10'/></vlan></network>`)
	if err != nil || nets[0].VLAN == nil || *nets[0].VLAN != 10 || len(warns) != 0 {
		t.Fatalf("VLAN 10: %v %+v %q", err, nets, warns)
	}
}

// TestPortgroups: an OVS trunk network's portgroups are networks of their
// own (NETWORK/PORTGROUP, with their VLAN and the network's zone), and a
// NIC on a portgroup is on that network, in sync and in the hook alike.
func TestPortgroups(t *testing.T) {
	nets, _, _, err := NetworkOfXML(`<network><name>trunk</name><forward mode='bridge'/><bridge name='ovsbr0'/><virtualport type='openvswitch'/>
		<metadata><vguard:network xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" zone="internal"/></metadata>
		<portgroup name='dmz'><vlan><tag id='20'/></vlan></portgroup><portgroup name='lan' default='yes'/></network>`)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 3 || nets[1].Name != "trunk/dmz" || nets[1].VLAN == nil || *nets[1].VLAN != 20 || nets[1].Zone != "internal" ||
		nets[2].Name != "trunk/lan" || nets[2].VLAN != nil {
		t.Fatalf("networks: %+v %+v %+v", nets[0], nets[1], nets[2])
	}
	vm, _, err := DomainVM(`<domain><name>a</name><devices><interface type='network'><source network='trunk' portgroup='dmz'/></interface>
		<interface type='network'><source network='trunk'/></interface></devices></domain>`, "hv", nil)
	if err != nil {
		t.Fatal(err)
	}
	if vm.NICs[0].Network != "trunk/dmz" || vm.NICs[1].Network != "trunk" {
		t.Errorf("NICs: %+v", vm.NICs)
	}
}

// TestHookConfigResolvesHostNames: without hypervisor:, the hook finds
// this host under any name sync may have given it (here an address, as a
// qemu+ssh://root@ADDRESS/system URI gives), and otherwise says which
// names it tried.
func TestHookConfigResolvesHostNames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hook.yaml")
	if err := os.WriteFile(path, []byte("estate: [estate.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadHookConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Candidates) == 0 {
		t.Fatal("no names for this host")
	}
	want := cfg.Candidates[len(cfg.Candidates)-1] // an address when the host has one
	x := estate.NewIndex(&estate.Estate{Hypervisors: []*estate.Hypervisor{{Name: "other"}, {Name: want}}})
	if err := cfg.Resolve(x); err != nil || cfg.Hypervisor != want {
		t.Fatalf("resolved %q (%v), want %q among %q", cfg.Hypervisor, err, want, cfg.Candidates)
	}
	cfg, _ = LoadHookConfig(path)
	err = cfg.Resolve(estate.NewIndex(&estate.Estate{Hypervisors: []*estate.Hypervisor{{Name: "other"}}}))
	if err == nil || !strings.Contains(err.Error(), "tried "+cfg.Candidates[0]) || !strings.Contains(err.Error(), "hypervisor:") {
		t.Fatalf("want the names tried, got %v", err)
	}
	t.Logf("names tried: %q", cfg.Candidates)
}

// TestHookJudgesResources: a known domain whose <cputune> limit was
// removed becomes an update of its resources, and the judge finds VG304
// (policy resourceLimits: always); the same resources are no change.
func TestHookJudgesResources(t *testing.T) {
	res, err := load.Bytes("estate.yaml", []byte(`apiVersion: vguard.dev/v1
kind: Estate
zones: [{name: z, exposure: internal}]
networks: [{name: lan, zone: z}]
hypervisors: [{name: hv-a, capacity: {cpus: 64, memoryMiB: 262144}}]
vms:
  - {name: app-1, hypervisor: hv-a, owner: x, resources: {cpus: 2, memoryMiB: 2048, limited: true}, nics: [{network: lan, mac: "52:54:00:00:00:01"}]}
---
apiVersion: vguard.dev/v1
kind: Policy
resourceLimits: always
`), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(res.Estate)
	dom := func(tune string) string {
		return `<domain><name>app-1</name><vcpu>2</vcpu><memory unit='MiB'>2048</memory>` + tune +
			`<devices><interface type='network'><mac address='52:54:00:00:00:01'/><source network='lan'/></interface></devices></domain>`
	}
	same, _, err := HookChange(x, "hv-a", dom(`<cputune><quota>50000</quota></cputune>`))
	if err != nil || len(same.Operations) != 0 {
		t.Fatalf("unchanged resources: %v %q", err, Describe(same))
	}
	c, _, err := HookChange(x, "hv-a", dom(""))
	if err != nil {
		t.Fatal(err)
	}
	if Describe(c) != "update app-1" {
		t.Fatalf("change = %q", Describe(c))
	}
	j, err := change.NewJudge(x, res.Policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Judge(c)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range v.Introduced {
		found = found || f.Check == "VG304" && f.Subject == "vm/app-1"
	}
	if !found {
		t.Errorf("the removed limit is not judged: introduced %+v", v.Introduced)
	}
}

// TestHookJudgesLabels: labels the domain's metadata gives differently
// from the estate are part of the update (laid over the estate's own), so
// that a separate rule they break is judged; the same labels are no change.
func TestHookJudgesLabels(t *testing.T) {
	res, err := load.Bytes("estate.yaml", []byte(`apiVersion: vguard.dev/v1
kind: Estate
zones: [{name: internal, exposure: internal}]
networks: [{name: lan, zone: internal}]
hypervisors: [{name: hv-a}]
vms:
  - {name: pci-1, hypervisor: hv-a, labels: {tier: pci}, nics: [{network: lan, mac: "52:54:00:00:00:02"}]}
  - {name: app-1, hypervisor: hv-a, labels: {tier: web, team: blue}, nics: [{network: lan, mac: "52:54:00:00:00:01"}]}
---
apiVersion: vguard.dev/v1
kind: Policy
separate:
  - name: pci-apart
    scope: hypervisor
    groups: [{labels: {tier: pci}}, {labels: {tier: dmz}}]
`), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(res.Estate)
	dom := func(labels string) string {
		return `<domain><name>app-1</name><metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1">` + labels + `</vguard:vm></metadata>
			<devices><interface type='network'><mac address='52:54:00:00:00:01'/><source network='lan'/></interface></devices></domain>`
	}
	same, _, err := HookChange(x, "hv-a", dom(`<vguard:label name="tier" value="web"/>`))
	if err != nil || len(same.Operations) != 0 {
		t.Fatalf("unchanged labels: %v %q", err, Describe(same))
	}
	c, _, err := HookChange(x, "hv-a", dom(`<vguard:label name="tier" value="dmz"/>`))
	if err != nil {
		t.Fatal(err)
	}
	if Describe(c) != "update app-1" {
		t.Fatalf("change = %q", Describe(c))
	}
	labels := c.Operations[0].Set.Get("labels")
	if labels == nil || labels.Get("tier").Value != "dmz" || labels.Get("team") == nil || labels.Get("team").Value != "blue" {
		t.Fatalf("set = %+v: want tier dmz laid over the estate's labels (team blue kept)", c.Operations[0].Set)
	}
	j, err := change.NewJudge(x, res.Policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := j.Judge(c)
	if err != nil {
		t.Fatal(err)
	}
	if v.Decision != change.Deny || !slices.ContainsFunc(v.Introduced, func(f check.Finding) bool {
		return f.Check == "VG401" && slices.Contains(f.Related, "vm/app-1")
	}) {
		t.Errorf("the label that breaks the separate rule is not judged: %v %+v", v.Decision, v.Introduced)
	}
}
