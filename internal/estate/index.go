package estate

import "sort"

// Index holds the lookups every check needs, built once per estate so that
// no check has to scan the estate or compare pairs of VMs. It assumes a
// loaded estate: references resolve and names are unique.
type Index struct {
	Estate *Estate

	Zones       map[string]*Zone
	Networks    map[string]*Network
	Hypervisors map[string]*Hypervisor
	Datastores  map[string]*Datastore
	Images      map[ImageRef]*Image
	VMs         map[string]*VM
	Services    map[string]*Service
	Firewalls   map[string]*Firewall

	// VMsOn lists the VMs of each hypervisor, in estate order.
	VMsOn map[string][]*VM
	// VMsOnNetwork lists the VMs with a NIC on each network, once each.
	VMsOnNetwork map[string][]*VM
	// Clusters lists the hypervisors of each cluster, in estate order.
	Clusters map[string][]*Hypervisor
	// FirewallsOf lists the firewalls that protect each network.
	FirewallsOf map[string][]*Firewall
	// NewestMaster is the highest version of each master image name.
	NewestMaster map[string]int
	// Members lists the member VMs of each service, sorted by name.
	Members map[string][]*VM
	// ByApp and ByOwner group VMs by app and by owner.
	ByApp, ByOwner map[string][]*VM

	// upd holds the lookups that only incremental judging needs; nil until
	// EnableUpdates.
	upd *updates
}

// NewIndex builds the index of e.
func NewIndex(e *Estate) *Index {
	x := &Index{
		Estate:       e,
		Zones:        make(map[string]*Zone, len(e.Zones)),
		Networks:     make(map[string]*Network, len(e.Networks)),
		Hypervisors:  make(map[string]*Hypervisor, len(e.Hypervisors)),
		Datastores:   make(map[string]*Datastore, len(e.Datastores)),
		Images:       make(map[ImageRef]*Image, len(e.Images)),
		VMs:          make(map[string]*VM, len(e.VMs)),
		Services:     make(map[string]*Service, len(e.Services)),
		Firewalls:    make(map[string]*Firewall, len(e.Firewalls)),
		VMsOn:        make(map[string][]*VM, len(e.Hypervisors)),
		VMsOnNetwork: make(map[string][]*VM, len(e.Networks)),
		Clusters:     map[string][]*Hypervisor{},
		FirewallsOf:  map[string][]*Firewall{},
		NewestMaster: map[string]int{},
		Members:      make(map[string][]*VM, len(e.Services)),
	}
	for _, z := range e.Zones {
		x.Zones[z.Name] = z
	}
	for _, n := range e.Networks {
		x.Networks[n.Name] = n
	}
	for _, h := range e.Hypervisors {
		x.Hypervisors[h.Name] = h
		x.Clusters[h.Cluster] = append(x.Clusters[h.Cluster], h)
	}
	for _, d := range e.Datastores {
		x.Datastores[d.Name] = d
	}
	for _, im := range e.Images {
		x.Images[im.Ref()] = im
		if im.Master && im.Version > x.NewestMaster[im.Name] {
			x.NewestMaster[im.Name] = im.Version
		}
	}
	for _, f := range e.Firewalls {
		x.Firewalls[f.Name] = f
		for _, n := range f.Protects {
			x.FirewallsOf[n] = append(x.FirewallsOf[n], f)
		}
	}
	for _, vm := range e.VMs {
		x.VMs[vm.Name] = vm
		x.VMsOn[vm.Hypervisor] = append(x.VMsOn[vm.Hypervisor], vm)
		for i, nic := range vm.NICs {
			if !seenNetwork(vm.NICs[:i], nic.Network) {
				x.VMsOnNetwork[nic.Network] = append(x.VMsOnNetwork[nic.Network], vm)
			}
		}
	}
	// Selectors mostly name an app (or an owner): candidates come from
	// those groups, so that many selector services do not each scan every VM.
	x.ByApp, x.ByOwner = map[string][]*VM{}, map[string][]*VM{}
	for _, vm := range e.VMs {
		x.ByApp[vm.App] = append(x.ByApp[vm.App], vm)
		x.ByOwner[vm.Owner] = append(x.ByOwner[vm.Owner], vm)
	}
	for _, s := range e.Services {
		x.Services[s.Name] = s
		var candidates []*VM
		if s.Selector != nil {
			candidates = x.Candidates(s.Selector)
		}
		x.Members[s.Name] = x.resolveMembers(s, candidates)
	}
	return x
}

// Candidates returns a superset of the VMs sel matches, as small as the
// app and owner groups allow; callers still test each with sel.Matches.
func (x *Index) Candidates(sel *Selector) []*VM {
	switch {
	case sel.App != "":
		return x.ByApp[sel.App]
	case sel.Owner != "":
		return x.ByOwner[sel.Owner]
	}
	return x.AllVMs()
}

func seenNetwork(nics []NIC, network string) bool {
	for _, n := range nics {
		if n.Network == network {
			return true
		}
	}
	return false
}

// resolveMembers lists the members of s; a selector is matched against
// candidates, a superset of its matches.
func (x *Index) resolveMembers(s *Service, candidates []*VM) []*VM {
	var out []*VM
	if s.Selector != nil {
		for _, vm := range candidates {
			if s.Selector.Matches(vm) {
				out = append(out, vm)
			}
		}
	} else {
		seen := make(map[string]bool, len(s.Members))
		for _, name := range s.Members {
			if vm := x.VMs[name]; vm != nil && !seen[name] {
				seen[name] = true
				out = append(out, vm)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ZoneOf returns the zone of a network, or nil when unknown.
func (x *Index) ZoneOf(network string) *Zone {
	if n := x.Networks[network]; n != nil {
		return x.Zones[n.Zone]
	}
	return nil
}

// Exposed reports whether vm has a NIC on a network in a public zone.
func (x *Index) Exposed(vm *VM) bool {
	for _, nic := range vm.NICs {
		if z := x.ZoneOf(nic.Network); z != nil && z.Exposure == ExposurePublic {
			return true
		}
	}
	return false
}

// ZonesOf returns the distinct zones of vm's NICs in NIC order.
func (x *Index) ZonesOf(vm *VM) []*Zone {
	var out []*Zone
	for _, nic := range vm.NICs {
		z := x.ZoneOf(nic.Network)
		if z == nil {
			continue
		}
		dup := false
		for _, o := range out {
			if o == z {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, z)
		}
	}
	return out
}

// FailureDomainOf returns the failure domain of the hypervisor vm runs on.
func (x *Index) FailureDomainOf(vm *VM) string {
	if h := x.Hypervisors[vm.Hypervisor]; h != nil {
		return h.FailureDomain
	}
	return vm.Hypervisor
}

// UnitOf returns the failure unit vm belongs to under the given spread.
func (x *Index) UnitOf(vm *VM, spread Spread) string {
	if spread == SpreadFailureDomain {
		return x.FailureDomainOf(vm)
	}
	return vm.Hypervisor
}
