package libvirt

import (
	"os"
	"testing"
)

// FuzzDomainVM feeds domain XML (outside input: from libvirtd, or from
// stdin in the hook) to the mapping: an error or a VM, never a panic.
func FuzzDomainVM(f *testing.F) {
	for _, s := range []string{
		`<domain type='kvm'><name>a</name><devices><interface type='network'><source network='n'/></interface></devices></domain>`,
		`<domain><name>b</name><metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" securityLevel="low"><vguard:label name="x" value="y"/></vguard:vm></metadata><memory unit='GiB'>2</memory></domain>`,
		`<domain><name>c</name><memory unit='parsec'>2</memory></domain>`,
		`<domain/>`, `not xml`, ``,
	} {
		f.Add(s)
	}
	if b, err := os.ReadFile("testdata/hv-a.xml"); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		vm, _, err := DomainVM(s, "hv", map[string]string{"br0": "lan"})
		if err == nil && (vm == nil || vm.Name == "" || vm.Hypervisor != "hv") {
			t.Fatalf("no error but VM %+v", vm)
		}
	})
}

// FuzzNetworkOf does the same for network XML.
func FuzzNetworkOf(f *testing.F) {
	for _, s := range []string{
		`<network><name>n</name><bridge name='br1'/><metadata><vguard:network xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" zone="dmz" vlan="7"/></metadata></network>`,
		`<network><name>n</name><vlan><tag id='5'/></vlan></network>`,
		`<network><name>n</name><vlan><tag id='4095'/></vlan><portgroup name='p'><vlan><tag id='9'/></vlan></portgroup><portgroup/></network>`,
		`<network><metadata><vguard:network xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" vlan="99999"/></metadata></network>`,
		`<network/>`, `<`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, _, err := NetworkOf(s)
		if err == nil && (n == nil || n.Name == "" || n.VLAN != nil && (*n.VLAN < 0 || *n.VLAN > 4094)) {
			t.Fatalf("no error but network %+v", n)
		}
		nets, _, _, err := NetworkOfXML(s)
		for _, n := range nets {
			if err == nil && (n == nil || n.Name == "" || n.VLAN != nil && (*n.VLAN < 0 || *n.VLAN > 4094)) {
				t.Fatalf("no error but network %+v", n)
			}
		}
	})
}
