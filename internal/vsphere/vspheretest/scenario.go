package vspheretest

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Names used by the scenario.
const (
	PGInternet   = "DC0_DVPG0" // VLAN 100, zone internet (custom attribute)
	PGInternal   = "DC0_DVPG1" // VLAN 200, zone internal (tag)
	PGRestricted = "DC0_DVPG2" // VLAN 300, zone restricted (tag)
	VMWebLow     = "DC0_C0_RP0_VM0"
	VMWebHigh    = "DC0_C0_RP0_VM1"
	VMHR         = "DC0_C0_RP0_VM2"
)

// Scenario lays the standard scenario on the simulator:
//
//   - the three port groups get VLANs and zones, by attribute and by tag;
//   - VMWebLow (owner web, app shop, securityLevel low, homeZone internal,
//     all by tags; guest host name web-low.example.com) has its NIC on
//     PGInternal; VMWebHigh (securityLevel high, gateway, by custom
//     attributes) on PGInternet; VMHR (owner hr, homeZone restricted,
//     environment staging, a CPU limit) on PGRestricted;
//   - the hosts of cluster C0 are in failure domains rack-a and rack-b
//     (tags), those of C1 in rack-c (custom attribute);
//   - DRS: VMWebLow and VMWebHigh apart (anti-affinity); VMHR must run on
//     a host of C0 it does not run on (VM-Host rule), whose name Scenario
//     returns.
func Scenario(t testing.TB, s *Sim) (pciHostName string) {
	t.Helper()
	ctx := context.Background()
	f := s.Finder(t)
	pg := func(name string) *object.DistributedVirtualPortgroup {
		n, err := f.Network(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return n.(*object.DistributedVirtualPortgroup)
	}
	vm := func(name string) *object.VirtualMachine {
		v, err := f.VirtualMachine(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	internet, internal, restricted := pg(PGInternet), pg(PGInternal), pg(PGRestricted)
	s.SetVLAN(t, internet, 100)
	s.SetVLAN(t, internal, 200)
	s.SetVLAN(t, restricted, 300)
	s.Attr(t, "vguard.zone", "internet", internet)
	s.Tag(t, "vguard.zone", "internal", internal)
	s.Tag(t, "vguard.zone", "restricted", restricted)

	low, high, hr := vm(VMWebLow), vm(VMWebHigh), vm(VMHR)
	for cat, v := range map[string]string{"vguard.owner": "web", "vguard.app": "shop", "vguard.securityLevel": "low", "vguard.homeZone": "internal"} {
		s.Tag(t, cat, v, low)
	}
	s.Attr(t, "vguard.owner", "web", high)
	s.Attr(t, "vguard.app", "shop", high)
	s.Attr(t, "vguard.securityLevel", "high", high)
	s.Tag(t, "vguard.owner", "hr", hr)
	s.Tag(t, "vguard.homeZone", "restricted", hr)
	s.Tag(t, "vguard.environment", "staging", hr)
	s.Attr(t, "vguard.gateway", "true", high)
	// The guest's host name comes from VMware Tools, which the simulator's
	// VMs do not run: it is set on the simulated object.
	s.Model.Map().Update(simulator.NewContext(), s.Model.Map().Get(low.Reference()),
		[]types.PropertyChange{{Name: "guest.hostName", Val: "web-low.example.com"}})
	limit := int64(1000)
	task, err := hr.Reconfigure(ctx, types.VirtualMachineConfigSpec{CpuAllocation: &types.ResourceAllocationInfo{Limit: &limit}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.MoveNIC(t, low, internal)
	s.MoveNIC(t, high, internet)
	s.MoveNIC(t, hr, restricted)

	hosts, err := f.HostSystemList(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	hrHost, err := hr.HostSystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pciHost *object.HostSystem
	for i, h := range hosts {
		switch {
		case len(h.Name()) > 5 && h.Name()[:6] == "DC0_C0":
			if pciHost == nil && h.Reference() != hrHost.Reference() {
				pciHost = h
			}
			s.Tag(t, "vguard.failureDomain", []string{"rack-a", "rack-b"}[i%2], h)
		default:
			s.Attr(t, "vguard.failureDomain", "rack-c", h)
		}
	}
	cl, err := f.ClusterComputeResource(ctx, "DC0_C0")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	spec := &types.ClusterConfigSpecEx{
		GroupSpec: []types.ClusterGroupSpec{
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info: &types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "pci-vms"}, Vm: []types.ManagedObjectReference{hr.Reference()}}},
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info: &types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "pci-hosts"}, Host: []types.ManagedObjectReference{pciHost.Reference()}}},
		},
		RulesSpec: []types.ClusterRuleSpec{
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info: &types.ClusterAntiAffinityRuleSpec{ClusterRuleInfo: types.ClusterRuleInfo{Name: "web-apart", Enabled: &yes},
					Vm: []types.ManagedObjectReference{low.Reference(), high.Reference()}}},
			{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info: &types.ClusterVmHostRuleInfo{ClusterRuleInfo: types.ClusterRuleInfo{Name: "pci-on-pci", Enabled: &yes, Mandatory: &yes},
					VmGroupName: "pci-vms", AffineHostGroupName: "pci-hosts"}},
		},
	}
	s.Reconfigure(t, cl, spec)
	return pciHost.Name()
}
