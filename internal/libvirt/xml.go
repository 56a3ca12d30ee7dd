// Package libvirt reads a libvirt estate: it turns domain and network XML
// (libvirt.org/go/libvirtxml) into vguard's VMs and networks, reading the
// security attributes people put in each object's <metadata> under the
// namespace https://vguard.dev/xmlns/libvirt/v1, and syncs and watches
// hypervisors through libvirtd's own RPC protocol
// (github.com/digitalocean/go-libvirt, no cgo). One URI is one hypervisor.
package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
)

// Namespace is the XML namespace of vguard's metadata elements:
//
//	<metadata>
//	  <vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1"
//	      owner="hr" app="hr-app" environment="prod" securityLevel="low"
//	      homeZone="restricted" gateway="false">
//	    <vguard:label name="pci" value="true"/>
//	  </vguard:vm>
//	</metadata>
//
// and in a network's <metadata>: <vguard:network zone="dmz" purpose="guest"/>.
const Namespace = "https://vguard.dev/xmlns/libvirt/v1"

// NIC kinds that are not a libvirt network or a host bridge are named by
// their type, e.g. "user" for user-mode (SLIRP) networking.

// DomainVM turns a domain's XML into a VM on hypervisor hv. The NICs name
// libvirt networks by their name and host bridges by the bridge's name
// (bridgeNet maps a bridge, as connector.Escape writes it, to the libvirt
// network that owns it, when one does). Warnings say what could not be
// mapped exactly. libvirt refuses only a newline in a name: every name
// is written as connector.SafeName gives it, by sync and hook alike.
func DomainVM(domXML, hv string, bridgeNet map[string]string) (*estate.VM, []string, error) {
	vm, _, warnings, err := domainVM(domXML, hv, bridgeNet)
	return vm, warnings, err
}

// domainVM is DomainVM that also says whether the metadata gives gateway
// (nil: it does not): gateway="false" and no gateway are both a false
// vm.Gateway, and only the second may be filled from elsewhere.
func domainVM(domXML, hv string, bridgeNet map[string]string) (*estate.VM, *bool, []string, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domXML); err != nil {
		return nil, nil, nil, fmt.Errorf("domain XML: %w", err)
	}
	if strings.TrimSpace(d.Name) == "" {
		return nil, nil, nil, errors.New("domain XML: the domain has no name")
	}
	name, escaped := connector.SafeName(d.Name)
	vm := &estate.VM{Name: name, Hypervisor: hv}
	var warnings []string
	if escaped {
		warnings = append(warnings, connector.EscapedWarning("domain", d.Name, strings.ToLower(d.UUID), name))
	}
	var gateway *bool
	if d.Metadata != nil {
		var err error
		if gateway, err = vmMetadata(d.Metadata.XML, vm); err != nil {
			return nil, nil, nil, fmt.Errorf("domain %s: <metadata>: %w", name, err)
		}
	}
	vm.Identity.UUID = strings.ToLower(d.UUID)
	if d.Devices != nil {
		for i, nic := range d.Devices.Interfaces {
			n, w := nicOf(&nic, bridgeNet)
			if w != "" {
				warnings = append(warnings, fmt.Sprintf("domain %s: interface %d: %s", name, i, w))
			}
			vm.NICs = append(vm.NICs, n)
		}
	}
	res := &estate.Resources{}
	if d.VCPU != nil {
		res.CPUs = int(d.VCPU.Value)
	}
	if d.Memory != nil {
		mib, err := toMiB(d.Memory.Value, d.Memory.Unit)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("domain %s: <memory>: %w", name, err)
		}
		res.MemoryMiB = mib
	}
	limited := false
	if t := d.CPUTune; t != nil {
		limited = limited || t.Quota != nil && t.Quota.Value > 0 || t.GlobalQuota != nil && t.GlobalQuota.Value > 0
	}
	if t := d.MemoryTune; t != nil {
		limited = limited || t.HardLimit != nil && t.HardLimit.Value > 0
	}
	res.Limited = &limited
	vm.Resources = res
	return vm, gateway, warnings, nil
}

func nicOf(nic *libvirtxml.DomainInterface, bridgeNet map[string]string) (estate.NIC, string) {
	var n estate.NIC
	if nic.MAC != nil {
		n.MAC = strings.ToLower(nic.MAC.Address)
	}
	src := nic.Source
	// Names as the network's own mapping (networkOf) writes them.
	esc := connector.Escape
	switch {
	case src != nil && src.Network != nil && src.Network.Network != "":
		n.Network = esc(src.Network.Network)
		if pg := src.Network.PortGroup; pg != "" {
			// A portgroup of a trunk network is a network of its own to
			// vguard (OVS trunks give each its own VLAN, often its own
			// zone); sync defines it as NETWORK/PORTGROUP.
			n.Network += "/" + esc(pg)
		}
	case src != nil && src.Bridge != nil && src.Bridge.Bridge != "":
		n.Network = esc(src.Bridge.Bridge)
		if owner, ok := bridgeNet[n.Network]; ok {
			n.Network = owner
		}
	case src != nil && src.Direct != nil && src.Direct.Dev != "":
		n.Network = esc(src.Direct.Dev)
	default:
		kind := interfaceKind(src)
		n.Network = kind
		return n, fmt.Sprintf("a %s interface has no libvirt network or bridge; it is put on network %q", kind, kind)
	}
	return n, ""
}

func interfaceKind(src *libvirtxml.DomainInterfaceSource) string {
	switch {
	case src == nil:
		return "unknown"
	case src.User != nil:
		return "user"
	case src.Ethernet != nil:
		return "ethernet"
	case src.VHostUser != nil:
		return "vhostuser"
	case src.Hostdev != nil:
		return "hostdev"
	case src.Internal != nil:
		return "internal"
	case src.Network != nil:
		return "network"
	case src.Bridge != nil:
		return "bridge"
	}
	return "other"
}

// toMiB converts a libvirt memory size (default unit KiB) to MiB.
func toMiB(v uint, unit string) (int64, error) {
	mult := map[string]float64{
		"": 1.0 / 1024, "k": 1.0 / 1024, "KiB": 1.0 / 1024, "KB": 1000.0 / 1024 / 1024,
		"b": 1.0 / 1024 / 1024, "bytes": 1.0 / 1024 / 1024,
		"M": 1, "MiB": 1, "MB": 1e6 / 1024 / 1024,
		"G": 1024, "GiB": 1024, "GB": 1e9 / 1024 / 1024,
		"T": 1024 * 1024, "TiB": 1024 * 1024, "TB": 1e12 / 1024 / 1024,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return int64(float64(v) * m), nil
}

// metaElements returns the vguard elements named local in a <metadata>
// element's inner XML, with their attributes and child labels.
type metaElement struct {
	attrs  map[string]string
	labels map[string]string
}

func findMeta(inner, local string) (*metaElement, error) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	var found *metaElement
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return found, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Space == Namespace && t.Name.Local == local:
				if found != nil {
					return nil, fmt.Errorf("more than one <%s> element in namespace %s", local, Namespace)
				}
				found = &metaElement{attrs: map[string]string{}}
				for _, a := range t.Attr {
					if a.Name.Space == "" {
						found.attrs[a.Name.Local] = a.Value
					}
				}
			case depth == 2 && found != nil && t.Name.Space == Namespace && t.Name.Local == "label":
				var name, value string
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "name":
						name = a.Value
					case "value":
						value = a.Value
					}
				}
				if name == "" {
					return nil, errors.New("a <label> needs a name attribute")
				}
				if found.labels == nil {
					found.labels = map[string]string{}
				}
				found.labels[name] = value
			}
		case xml.EndElement:
			depth--
		}
	}
}

// vmMetadata reads <vguard:vm> into vm, and returns the gateway attribute
// when it is given.
func vmMetadata(inner string, vm *estate.VM) (gateway *bool, err error) {
	m, err := findMeta(inner, "vm")
	if err != nil || m == nil {
		return nil, err
	}
	for k, v := range m.attrs {
		var err error
		switch k {
		case "owner":
			vm.Owner = v
		case "app":
			vm.App = v
		case "homeZone":
			vm.HomeZone = connector.Escape(v) // names a zone
		case "environment":
			err = vm.Environment.UnmarshalText([]byte(v))
		case "securityLevel":
			err = vm.SecurityLevel.UnmarshalText([]byte(v))
		case "gateway":
			var g bool
			g, err = strconv.ParseBool(v)
			vm.Gateway, gateway = g, &g
		default:
			err = fmt.Errorf("unknown attribute (want owner, app, environment, securityLevel, homeZone, gateway)")
		}
		if err != nil {
			return nil, fmt.Errorf("vguard:vm %s=%q: %w", k, v, err)
		}
	}
	vm.Labels = m.labels
	return gateway, nil
}

// NetworkOf turns a libvirt network's XML into a network, with its bridge
// name (for domains whose NICs name the bridge rather than the network).
func NetworkOf(netXML string) (*estate.Network, string, error) {
	return networkOf(netXML, func(string) {})
}

// NetworkOfXML is NetworkOf with the network's portgroups, each a network
// NETWORK/PORTGROUP of its own (its VLAN, or else the network's; the
// network's zone and purpose), and the warnings about what could not be
// mapped (a VLAN tag that is not one VLAN). nets[0] is the network.
func NetworkOfXML(netXML string) (nets []*estate.Network, bridge string, warnings []string, err error) {
	warn := func(m string) { warnings = append(warnings, m) }
	net, bridge, err := networkOf(netXML, warn)
	if err != nil {
		return nil, "", warnings, err
	}
	nets = append(nets, net)
	var n libvirtxml.Network
	if err := n.Unmarshal(netXML); err != nil { // parsed once already
		return nil, "", warnings, fmt.Errorf("network XML: %w", err)
	}
	for _, pg := range n.PortGroups {
		if pg.Name == "" {
			continue
		}
		p := &estate.Network{Name: net.Name + "/" + connector.Escape(pg.Name), Zone: net.Zone, Purpose: net.Purpose, VLAN: net.VLAN}
		if pg.VLAN != nil && len(pg.VLAN.Tags) == 1 {
			if id := int(pg.VLAN.Tags[0].ID); id <= 4094 {
				p.VLAN = &id
			} else {
				p.VLAN = nil
				warn(fmt.Sprintf("network %s: VLAN tag %d is not one VLAN; written without a VLAN", p.Name, id))
			}
		}
		nets = append(nets, p)
	}
	return nets, bridge, warnings, nil
}

func networkOf(netXML string, warn func(string)) (*estate.Network, string, error) {
	var n libvirtxml.Network
	if err := n.Unmarshal(netXML); err != nil {
		return nil, "", fmt.Errorf("network XML: %w", err)
	}
	if strings.TrimSpace(n.Name) == "" {
		return nil, "", errors.New("network XML: the network has no name")
	}
	name, escaped := connector.SafeName(n.Name)
	if escaped {
		warn(connector.EscapedWarning("network", n.Name, strings.ToLower(n.UUID), name))
	}
	net := &estate.Network{Name: name}
	if n.VLAN != nil && len(n.VLAN.Tags) == 1 {
		if id := int(n.VLAN.Tags[0].ID); id <= 4094 {
			net.VLAN = &id
		} else {
			// 4095 is no one VLAN (the loader refuses it): a trunk.
			warn(fmt.Sprintf("network %s: VLAN tag %d is not one VLAN; written without a VLAN", name, id))
		}
	}
	if n.Metadata != nil {
		m, err := findMeta(n.Metadata.XML, "network")
		if err != nil {
			return nil, "", fmt.Errorf("network %s: <metadata>: %w", name, err)
		}
		if m != nil {
			for k, v := range m.attrs {
				var err error
				switch k {
				case "zone":
					net.Zone = connector.Escape(v) // names a zone
				case "purpose":
					err = net.Purpose.UnmarshalText([]byte(v))
				case "vlan":
					var id int
					id, err = strconv.Atoi(v)
					if err == nil && (id < 0 || id > 4094) {
						err = errors.New("want 0..4094")
					}
					net.VLAN = &id
				default:
					err = errors.New("unknown attribute (want zone, purpose, vlan)")
				}
				if err != nil {
					return nil, "", fmt.Errorf("network %s: vguard:network %s=%q: %w", name, k, v, err)
				}
			}
		}
	}
	bridge := ""
	if n.Bridge != nil {
		// A key of bridgeNet and of the hypervisor's labels: as nicOf
		// writes a bridge.
		bridge = connector.Escape(n.Bridge.Name)
	}
	return net, bridge, nil
}

// isXML reports whether b looks like an XML document (for the hook's
// stdin, which libvirt fills with the domain XML).
func isXML(b []byte) bool { return bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) }
