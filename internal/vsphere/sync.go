package vsphere

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
)

// The attribute categories (tag categories or custom attribute names)
// vguard reads, by the kind of object they apply to.
const (
	AttrOwner         = "vguard.owner"
	AttrApp           = "vguard.app"
	AttrEnvironment   = "vguard.environment"
	AttrSecurityLevel = "vguard.securityLevel"
	AttrHomeZone      = "vguard.homeZone"
	AttrGateway       = "vguard.gateway"
	AttrZone          = "vguard.zone"
	AttrFailureDomain = "vguard.failureDomain"
)

// The properties read for each kind: only what the mapping uses.
var (
	hostProps    = []string{"name", "parent", "summary.hardware", "config.network.portgroup", "customValue"}
	vmProps      = []string{"name", "runtime.host", "config.uuid", "config.template", "config.hardware", "config.cpuAllocation", "config.memoryAllocation", "guest.hostName", "customValue"}
	netProps     = []string{"name", "summary", "host", "customValue"}
	dvpgProps    = []string{"name", "key", "config.defaultPortConfig", "config.uplink", "customValue"}
	clusterProps = []string{"name", "configurationEx"}
)

// Raw is what one sync reads from vCenter, before mapping.
type Raw struct {
	Hosts    []mo.HostSystem
	VMs      []mo.VirtualMachine
	Networks []mo.Network
	DVPGs    []mo.DistributedVirtualPortgroup
	Clusters []mo.ClusterComputeResource
	// Attrs are the vguard.* attributes of each object (by moref value):
	// custom attributes, then tags, which win.
	Attrs    map[string]map[string]string
	Warnings []string
}

// Read retrieves the inventory in one container view: a request per
// object kind (paged by the collector), plus one for custom attribute
// definitions and a few for tags (tagAttributes).
func (s *Session) Read(ctx context.Context) (*Raw, error) {
	c := s.C
	m := view.NewManager(c)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder,
		[]string{"HostSystem", "VirtualMachine", "Network", "ClusterComputeResource"}, true)
	if err != nil {
		return nil, s.fail("creating a container view", err)
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	r := &Raw{Attrs: map[string]map[string]string{}}
	for _, q := range []struct {
		kind  string
		props []string
		dst   any
	}{
		{"HostSystem", hostProps, &r.Hosts},
		{"VirtualMachine", vmProps, &r.VMs},
		{"Network", netProps, &r.Networks},
		{"DistributedVirtualPortgroup", dvpgProps, &r.DVPGs},
		{"ClusterComputeResource", clusterProps, &r.Clusters},
	} {
		if err := v.Retrieve(ctx, []string{q.kind}, q.props, q.dst); err != nil {
			return nil, s.fail("reading "+q.kind+" objects", err)
		}
	}
	if err := s.customAttributes(ctx, r); err != nil {
		return nil, err
	}
	if err := s.tagAttributes(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Session) fail(what string, err error) error {
	if err == nil {
		err = errors.New("internal error: no cause given")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s from %s: %w", what, s.ep, err)
	}
	if s.watching {
		// A watch writes as it goes: the file holds the last good estate.
		return fmt.Errorf("%s from %s: %w", what, s.ep, s.ep.redact(err))
	}
	return fmt.Errorf("%s from %s: %w (nothing was written)", what, s.ep, s.ep.redact(err))
}

// customAttributes maps each object's custom values named vguard.* into
// r.Attrs.
func (s *Session) customAttributes(ctx context.Context, r *Raw) error {
	if s.C.ServiceContent.CustomFieldsManager == nil {
		return nil // a bare ESXi host has none
	}
	defs, err := object.NewCustomFieldsManager(s.C).Field(ctx)
	if err != nil {
		return s.fail("reading custom attribute definitions", err)
	}
	names := map[int32]string{}
	for _, d := range defs {
		if strings.HasPrefix(d.Name, "vguard.") {
			names[d.Key] = d.Name
		}
	}
	add := func(ref types.ManagedObjectReference, values []types.BaseCustomFieldValue) {
		for _, bv := range values {
			sv, ok := bv.(*types.CustomFieldStringValue)
			if !ok || names[sv.Key] == "" || sv.Value == "" {
				continue
			}
			if r.Attrs[ref.Value] == nil {
				r.Attrs[ref.Value] = map[string]string{}
			}
			r.Attrs[ref.Value][names[sv.Key]] = sv.Value
		}
	}
	for i := range r.Hosts {
		add(r.Hosts[i].Self, r.Hosts[i].CustomValue)
	}
	for i := range r.VMs {
		add(r.VMs[i].Self, r.VMs[i].CustomValue)
	}
	for i := range r.Networks {
		add(r.Networks[i].Self, r.Networks[i].CustomValue)
	}
	return nil
}

// tagAttributes reads the tags of every host, VM and network in vguard.*
// categories, in batches. Only vCenter's definite answer that there is no
// tagging to read (tagCategories) gives a warning instead: custom
// attributes and the overlay still apply. Any other failure, from the
// vAPI login to the last batch of attached tags, is an error: every
// tag-based security fact would silently fall back to its default, an
// estate that looks complete but is not.
func (s *Session) tagAttributes(ctx context.Context, r *Raw) error {
	tm, cats, why, err := s.tagCategories(ctx)
	if err != nil {
		return s.fail("reading tags", err)
	}
	if why != "" {
		r.Warnings = append(r.Warnings, fmt.Sprintf("tags not read (%s); custom attributes still apply", why))
		return nil
	}
	catName := map[string]string{}
	for _, c := range cats {
		catName[c.ID] = c.Name
	}
	if len(catName) == 0 {
		return nil
	}
	var refs []mo.Reference
	for i := range r.Hosts {
		refs = append(refs, r.Hosts[i].Self)
	}
	for i := range r.VMs {
		refs = append(refs, r.VMs[i].Self)
	}
	for i := range r.Networks {
		refs = append(refs, r.Networks[i].Self)
	}
	// Which tags each object has, by ID only: a request per 2000 objects,
	// whatever the tags' categories. Read before the tags themselves, so
	// that a vguard.* tag made and attached in between is known by the
	// time its ID is looked up.
	attached := map[string][]string{} // object moref -> tag IDs
	inUse := map[string]bool{}
	const batch = 2000
	for start := 0; start < len(refs); start += batch {
		part := refs[start:min(start+batch, len(refs))]
		res, err := tm.ListAttachedTagsOnObjects(ctx, part)
		if err != nil {
			return s.fail("reading the tags in vguard.* categories", err)
		}
		for _, a := range res {
			id := a.ObjectID.Reference().Value
			attached[id] = append(attached[id], a.TagIDs...)
			for _, t := range a.TagIDs {
				inUse[t] = true
			}
		}
	}
	if len(inUse) == 0 {
		return nil
	}
	// The names of the attached vguard.* tags: a list of each vguard.*
	// category's tag IDs, and a read of each such tag that is attached.
	// Tags of other categories (backup, cost centre: thousands, in some
	// vCenters) are never read one by one.
	type tagName struct{ cat, name string }
	vguardTag := map[string]tagName{} // tag ID
	for _, catID := range slices.Sorted(maps.Keys(catName)) {
		ids, err := tm.ListTagsForCategory(ctx, catID)
		if err != nil {
			return s.fail("listing the tags of "+catName[catID], err)
		}
		for _, id := range ids {
			if !inUse[id] {
				continue
			}
			t, err := tm.GetTag(ctx, id)
			switch {
			case rest.IsStatusError(err, http.StatusNotFound):
				continue // deleted since it was listed: no longer attached
			case err != nil:
				return s.fail("reading a tag of "+catName[catID], err)
			}
			vguardTag[id] = tagName{catName[catID], t.Name}
		}
	}
	// Tags are gathered apart and applied only when every request above
	// succeeded.
	got := map[string]map[string][]string{}
	for id, tagIDs := range attached {
		for _, tid := range tagIDs {
			t, ok := vguardTag[tid]
			if !ok {
				continue // another category's
			}
			if got[id] == nil {
				got[id] = map[string][]string{}
			}
			if !slices.Contains(got[id][t.cat], t.name) {
				got[id][t.cat] = append(got[id][t.cat], t.name)
			}
		}
	}
	for id, cats := range got {
		if r.Attrs[id] == nil {
			r.Attrs[id] = map[string]string{}
		}
		for cat, values := range cats {
			if len(values) > 1 {
				// A security fact picked at random is worse than an
				// error: Map refuses the object.
				slices.Sort(values)
				r.Attrs[id][cat] = conflict(values)
				continue
			}
			r.Attrs[id][cat] = values[0]
		}
	}
	return nil
}

// tagCategories logs in to the vAPI endpoint and returns the vguard.*
// tag categories. When vCenter answers definitely that there are no tags
// to read, it returns why instead (and no error): 404 for the endpoint (a
// bare ESXi host, no tagging service) or 401/403 for the list of
// categories (a user who may not list them). Every other failure (a 5xx,
// a reset connection, a timeout, a 401 at the login of a user the SOAP
// login just accepted) is an error: taken for "no tagging", it would
// drop every tag-based fact from an estate that looks complete.
func (s *Session) tagCategories(ctx context.Context) (tm *tags.Manager, cats []tags.Category, why string, err error) {
	cached := s.rest != nil
	rc, err := s.restClient(ctx)
	if err != nil {
		if rest.IsStatusError(err, http.StatusNotFound) {
			return nil, nil, fmt.Sprintf("the vAPI endpoint is not there: %v", s.ep.redact(err)), nil
		}
		return nil, nil, "", fmt.Errorf("logging in to the vAPI endpoint: %w", err)
	}
	tm = tags.NewManager(rc)
	ids, err := tm.ListCategories(ctx)
	if cached && rest.IsStatusError(err, http.StatusUnauthorized) {
		// The session of an earlier read (a watch's) may have expired:
		// log in again before taking 401 for a lack of rights.
		s.rest = nil
		if rc, err = s.restClient(ctx); err != nil {
			return nil, nil, "", fmt.Errorf("logging in to the vAPI endpoint again: %w", err)
		}
		tm = tags.NewManager(rc)
		ids, err = tm.ListCategories(ctx)
	}
	switch {
	case rest.IsStatusError(err, http.StatusUnauthorized), rest.IsStatusError(err, http.StatusForbidden):
		return nil, nil, fmt.Sprintf("the user may not list tag categories: %v", s.ep.redact(err)), nil
	case err != nil:
		return nil, nil, "", fmt.Errorf("listing tag categories: %w", err)
	}
	for _, id := range ids {
		c, err := tm.GetCategory(ctx, id)
		switch {
		case rest.IsStatusError(err, http.StatusNotFound):
			continue // deleted since it was listed
		case err != nil:
			return nil, nil, "", fmt.Errorf("reading tag category %s: %w", id, err)
		}
		if strings.HasPrefix(c.Name, "vguard.") {
			cats = append(cats, *c)
		}
	}
	return tm, cats, "", nil
}

// conflictMark starts an attribute value that stands for several tags of
// one category on one object; Map refuses it.
const conflictMark = "\x00several:"

func conflict(values []string) string { return conflictMark + strings.Join(values, "\x00") }

// checkConflict returns an error for a value made by conflict.
func checkConflict(attr, v string) error {
	rest, ok := strings.CutPrefix(v, conflictMark)
	if !ok {
		return nil
	}
	return fmt.Errorf("%s has several tags (%s); give it one", attr, strings.Join(strings.Split(rest, "\x00"), ", "))
}

// Sync logs in, reads and maps the inventory.
func Sync(ctx context.Context, ep *Endpoint) (*connector.Inventory, error) {
	s, err := Login(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer s.Logout(context.WithoutCancel(ctx))
	raw, err := s.Read(ctx)
	if err != nil {
		return nil, err
	}
	return raw.Map("vsphere " + ep.String())
}

// Map turns what was read into an inventory. An attribute value that is
// not a word vguard knows (securityLevel: ultra) is an error: a security
// fact silently dropped would make a check pass that should not.
func (r *Raw) Map(source string) (*connector.Inventory, error) {
	inv := &connector.Inventory{Source: source, Warnings: slices.Clone(r.Warnings)}
	e := &inv.Estate
	var errs []error
	// The API's order (and a watch's map order) varies: in moref order,
	// which duplicate gets the plain name, and which value a conflict
	// keeps, are the same on every run.
	byRef := func(a, b mo.Reference) int { return strings.Compare(a.Reference().Value, b.Reference().Value) }
	slices.SortFunc(r.Hosts, func(a, b mo.HostSystem) int { return byRef(a, b) })
	slices.SortFunc(r.VMs, func(a, b mo.VirtualMachine) int { return byRef(a, b) })
	slices.SortFunc(r.Networks, func(a, b mo.Network) int { return byRef(a, b) })
	slices.SortFunc(r.DVPGs, func(a, b mo.DistributedVirtualPortgroup) int { return byRef(a, b) })
	slices.SortFunc(r.Clusters, func(a, b mo.ClusterComputeResource) int { return byRef(a, b) })
	// attr is an object's attribute; several tags of one category on it
	// are an error.
	attr := func(kind, name string, ref types.ManagedObjectReference, a string) string {
		v := r.Attrs[ref.Value][a]
		if err := checkConflict(a, v); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", kind, name, err))
			return ""
		}
		return v
	}

	// A vguard.* name vguard does not read on that kind of object (a typo
	// such as vguard.securitylevel, or a zone on a VM) would silently
	// change nothing: say so.
	known := func(kind, name string, ref types.ManagedObjectReference, want ...string) {
		for k := range r.Attrs[ref.Value] {
			if !slices.Contains(want, k) {
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("%s %s: %s is not an attribute vguard reads on a %s (want %s); ignored",
					kind, name, k, kind, strings.Join(want, ", ")))
			}
		}
	}
	for i := range r.Hosts {
		known("host", connector.Escape(r.Hosts[i].Name), r.Hosts[i].Self, AttrFailureDomain)
	}
	for i := range r.Networks {
		known("network", connector.Escape(r.Networks[i].Name), r.Networks[i].Self, AttrZone)
	}
	for i := range r.VMs {
		known("VM", connector.Escape(r.VMs[i].Name), r.VMs[i].Self, AttrOwner, AttrApp, AttrEnvironment, AttrSecurityLevel, AttrHomeZone, AttrGateway)
	}
	// safe is the name an object is written as: names are free text in
	// vCenter, and one holding a control character would keep the whole
	// estate from loading (connector.SafeName).
	safe := func(kind, name string, ref types.ManagedObjectReference) string {
		s, escaped := connector.SafeName(name)
		if escaped {
			inv.Warnings = append(inv.Warnings, connector.EscapedWarning(kind, name, ref.Value, s))
		}
		return s
	}

	clusterOf := r.clusterNames(inv)
	hostName := map[string]string{}
	// A standard port group is defined on each host apart, and its name
	// is unique only per host: "VM Network" may be VLAN 10 in one
	// datacenter and 20 in another. So each network takes its VLAN from
	// the port groups of its own hosts (Network.host).
	hostPGs := map[string]map[string]int{} // host moref -> port group name -> VLAN ID
	trunk := map[string]bool{}             // network moref -> guest tagging (VLAN 4095)
	for i := range r.Hosts {
		h := &r.Hosts[i]
		name := safe("host", h.Name, h.Self)
		hv := &estate.Hypervisor{Name: name, FailureDomain: attr("host", name, h.Self, AttrFailureDomain)}
		if h.Parent != nil {
			hv.Cluster = clusterOf[h.Parent.Value]
		}
		if hw := h.Summary.Hardware; hw != nil {
			hv.Capacity = &estate.Capacity{CPUs: int(hw.NumCpuThreads), MemoryMiB: hw.MemorySize >> 20}
		}
		if h.Config != nil && h.Config.Network != nil {
			pgs := map[string]int{}
			for _, pg := range h.Config.Network.Portgroup {
				pgs[pg.Spec.Name] = int(pg.Spec.VlanId)
			}
			hostPGs[h.Self.Value] = pgs
		}
		hostName[h.Self.Value] = name
		e.Hypervisors = append(e.Hypervisors, hv)
	}

	netName := map[string]string{}   // network moref -> name
	dvpgByKey := map[string]string{} // port group key -> moref
	nets := map[string]*estate.Network{}
	uplink := map[string]bool{}
	dvpgVLAN := map[string]*int{}
	for i := range r.DVPGs {
		pg := &r.DVPGs[i]
		if pg.Config.Uplink != nil && *pg.Config.Uplink {
			uplink[pg.Self.Value] = true
			continue
		}
		dvpgByKey[pg.Key] = pg.Self.Value
		if ps, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok && ps.Vlan != nil {
			if id, ok := ps.Vlan.(*types.VmwareDistributedVirtualSwitchVlanIdSpec); ok {
				if v := int(id.VlanId); validVLAN(v) {
					dvpgVLAN[pg.Self.Value] = &v
				} else {
					trunk[pg.Self.Value] = true
				}
			}
		}
	}
	opaqueName := map[string]string{} // NSX segment ID -> network name
	for i := range r.Networks {
		n := &r.Networks[i]
		if uplink[n.Self.Value] {
			continue
		}
		name := safe("network", n.Name, n.Self)
		// A zone is named by a tag or attribute value: free text too.
		zone := connector.Escape(attr("network", name, n.Self, AttrZone))
		vlan := dvpgVLAN[n.Self.Value]
		if n.Self.Type == "Network" {
			var warn string
			vlan, trunk[n.Self.Value], warn = standardVLAN(n, hostPGs, hostName)
			if warn != "" {
				inv.Warnings = append(inv.Warnings, warn)
			}
		}
		if trunk[n.Self.Value] {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("port group %s tags VLANs in the guest (VLAN 4095); written without a VLAN", name))
		}
		if prev := nets[name]; prev != nil && (zone != "" && prev.Zone != "" && zone != prev.Zone ||
			vlan != nil && prev.VLAN != nil && *vlan != *prev.VLAN) {
			// Same name, different security facts (two datacenters, two
			// switches): merging them would keep one zone at random.
			base := name
			name = base + "#" + n.Self.Value
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("two networks are named %s with a different zone or VLAN; the one with id %s is written as %s",
				base, n.Self.Value, name))
		}
		netName[n.Self.Value] = name
		if sum, ok := n.Summary.(*types.OpaqueNetworkSummary); ok && sum.OpaqueNetworkId != "" {
			opaqueName[sum.OpaqueNetworkId] = name
		}
		net := nets[name]
		if net == nil {
			net = &estate.Network{Name: name}
			nets[name] = net
		}
		if zone != "" {
			net.Zone = zone
		}
		if vlan != nil {
			net.VLAN = vlan
		}
	}

	vmNames := map[string]string{} // moref -> estate name
	seen := map[string]bool{}
	for i := range r.VMs {
		m := &r.VMs[i]
		if m.Config != nil && m.Config.Template {
			continue
		}
		if m.Runtime.Host == nil || hostName[m.Runtime.Host.Value] == "" {
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("VM %s (%s) has no host; left out", connector.Escape(m.Name), m.Self.Value))
			continue
		}
		name := safe("VM", m.Name, m.Self)
		if base := name; seen[base] {
			// A duplicate in vCenter (VM names are unique per folder), or
			// an escaped name that met a VM really named so.
			name = base + "#" + m.Self.Value
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("two VMs are named %s; the one with id %s is written as %s", base, m.Self.Value, name))
		}
		seen[name] = true
		vmNames[m.Self.Value] = name
		vm := &estate.VM{Name: name, Hypervisor: hostName[m.Runtime.Host.Value]}
		if err := setVMAttrs(vm, r.Attrs[m.Self.Value]); err != nil {
			errs = append(errs, fmt.Errorf("VM %s: %w", name, err))
		}
		if m.Guest != nil {
			vm.Identity.Hostname = m.Guest.HostName
		}
		if cfg := m.Config; cfg != nil {
			vm.Identity.UUID = strings.ToLower(cfg.Uuid)
			limited := cfg.CpuAllocation != nil && cfg.CpuAllocation.Limit != nil && *cfg.CpuAllocation.Limit >= 0 ||
				cfg.MemoryAllocation != nil && cfg.MemoryAllocation.Limit != nil && *cfg.MemoryAllocation.Limit >= 0
			vm.Resources = &estate.Resources{CPUs: int(cfg.Hardware.NumCPU), MemoryMiB: int64(cfg.Hardware.MemoryMB), Limited: &limited}
			for _, dev := range cfg.Hardware.Device {
				card, ok := dev.(types.BaseVirtualEthernetCard)
				if !ok {
					continue
				}
				nic, warn := nicOf(card.GetVirtualEthernetCard(), netName, dvpgByKey, opaqueName)
				if warn != "" {
					inv.Warnings = append(inv.Warnings, fmt.Sprintf("VM %s: %s", name, warn))
				}
				if nets[nic.Network] == nil {
					nets[nic.Network] = &estate.Network{Name: nic.Network}
				}
				vm.NICs = append(vm.NICs, nic)
			}
		}
		e.VMs = append(e.VMs, vm)
	}
	for _, n := range nets {
		e.Networks = append(e.Networks, n)
	}
	r.rules(inv, vmNames, hostName, clusterOf)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Strings(inv.Warnings)
	inv.SortObjects()
	return inv, nil
}

// standardVLAN is the VLAN of a standard port group network, from the
// port groups of that name on the network's own hosts (in moref order, so
// that the VLAN kept when they differ is the same on every run). 4095
// (guest tagging, VGT) on any of them makes it a trunk, with no one VLAN
// to write.
func standardVLAN(n *mo.Network, hostPGs map[string]map[string]int, hostName map[string]string) (vlan *int, trunk bool, warn string) {
	hosts := slices.Clone(n.Host)
	slices.SortFunc(hosts, func(a, b types.ManagedObjectReference) int { return strings.Compare(a.Value, b.Value) })
	first := ""
	for _, h := range hosts {
		id, ok := hostPGs[h.Value][n.Name]
		switch {
		case !ok:
		case !validVLAN(id):
			trunk = true
		case vlan == nil:
			vlan, first = &id, hostName[h.Value]
		case *vlan != id && warn == "":
			warn = fmt.Sprintf("port group %s has VLAN %d on %s and %d on %s; kept %d", connector.Escape(n.Name), *vlan, first, id, hostName[h.Value], *vlan)
		}
	}
	if trunk {
		return nil, true, ""
	}
	return vlan, false, warn
}

// validVLAN reports whether id is one VLAN (4095 is a trunk to the guest).
func validVLAN(id int) bool { return id >= 0 && id <= 4094 }

func nicOf(card *types.VirtualEthernetCard, netName, dvpgByKey, opaqueName map[string]string) (estate.NIC, string) {
	nic := estate.NIC{MAC: strings.ToLower(card.MacAddress)}
	switch b := card.Backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil && netName[b.Network.Value] != "" {
			nic.Network = netName[b.Network.Value]
		} else {
			nic.Network = connector.Escape(b.DeviceName)
		}
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		nic.Network = netName[dvpgByKey[b.Port.PortgroupKey]]
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		// NSX segments are named in the backing by ID only.
		nic.Network = opaqueName[b.OpaqueNetworkId]
		if nic.Network == "" {
			nic.Network = connector.Escape(b.OpaqueNetworkId)
		}
	}
	if nic.Network == "" {
		nic.Network = "unknown-backing"
		return nic, fmt.Sprintf("NIC %s has a backing vguard cannot map; put on network %q", card.MacAddress, nic.Network)
	}
	return nic, ""
}

// setVMAttrs applies a VM's vguard.* attributes.
func setVMAttrs(vm *estate.VM, attrs map[string]string) error {
	var errs []error
	for k, v := range attrs {
		err := checkConflict(k, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch k {
		case AttrOwner:
			vm.Owner = v
		case AttrApp:
			vm.App = v
		case AttrHomeZone:
			vm.HomeZone = connector.Escape(v) // names a zone
		case AttrEnvironment:
			err = vm.Environment.UnmarshalText([]byte(v))
		case AttrSecurityLevel:
			err = vm.SecurityLevel.UnmarshalText([]byte(v))
		case AttrGateway:
			switch strings.ToLower(v) {
			case "true", "yes":
				vm.Gateway = true
			case "false", "no":
			default:
				err = fmt.Errorf("want true or false")
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", k, v, err))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// clusterNames names each cluster in the estate, by moref. A cluster name
// is unique only within its datacenter (two datacenters with a cluster
// Prod are common): merged, their hosts would be one cluster, and their
// DRS rules would share names (which the loader refuses) and VM labels
// (each rule's hosts applied to the other's VMs). So the second (in
// moref order, the same on every run) is written as NAME#domain-c123,
// with a warning, as duplicate VMs are.
func (r *Raw) clusterNames(inv *connector.Inventory) map[string]string {
	names := map[string]string{}
	seen := map[string]bool{}
	for i := range r.Clusters {
		cl := &r.Clusters[i]
		name, escaped := connector.SafeName(cl.Name)
		if escaped {
			inv.Warnings = append(inv.Warnings, connector.EscapedWarning("cluster", cl.Name, cl.Self.Value, name))
		}
		if base := name; seen[base] {
			name = base + "#" + cl.Self.Value
			inv.Warnings = append(inv.Warnings, fmt.Sprintf("two clusters are named %s; the one with id %s is written as %s", base, cl.Self.Value, name))
		}
		seen[name] = true
		names[cl.Self.Value] = name
	}
	return names
}

// rules imports enabled DRS rules. A VM-VM anti-affinity rule becomes a
// separate rule with one group per VM (each VM is picked by a label the
// import adds); a VM-Host rule becomes a placement rule over the VM group
// (by label) and the host group's hosts (by name). VM-VM affinity has no
// vguard counterpart and is noted.
func (r *Raw) rules(inv *connector.Inventory, vmNames, hostName, clusterOf map[string]string) {
	byName := map[string]*estate.VM{}
	for _, vm := range inv.Estate.VMs {
		byName[vm.Name] = vm
	}
	label := func(moref, key, value string) bool {
		vm := byName[vmNames[moref]]
		if vm == nil {
			return false
		}
		if vm.Labels == nil {
			vm.Labels = map[string]string{}
		}
		vm.Labels[key] = value
		return true
	}
	for i := range r.Clusters {
		cl := &r.Clusters[i]
		cfg, ok := cl.ConfigurationEx.(*types.ClusterConfigInfoEx)
		if !ok {
			continue
		}
		clName := clusterOf[cl.Self.Value]
		vmGroups := map[string][]types.ManagedObjectReference{}
		hostGroups := map[string][]types.ManagedObjectReference{}
		for _, g := range cfg.Group {
			switch g := g.(type) {
			case *types.ClusterVmGroup:
				vmGroups[g.Name] = g.Vm
			case *types.ClusterHostGroup:
				hostGroups[g.Name] = g.Host
			}
		}
		for _, br := range cfg.Rule {
			info := br.GetClusterRuleInfo()
			if info.Enabled != nil && !*info.Enabled {
				continue
			}
			// A rule's name is free text too; it names a policy rule.
			ruleName := connector.Escape(info.Name)
			name := "drs/" + clName + "/" + ruleName
			switch rule := br.(type) {
			case *types.ClusterAntiAffinityRuleSpec:
				key := "vsphere.drs.separate/" + clName + "/" + ruleName
				sr := &estate.SeparateRule{Name: name, Scope: estate.ScopeHypervisor}
				for _, ref := range rule.Vm {
					if label(ref.Value, key, vmNames[ref.Value]) {
						sr.Groups = append(sr.Groups, estate.Selector{Labels: map[string]string{key: vmNames[ref.Value]}})
					}
				}
				if len(sr.Groups) >= 2 {
					inv.Separate = append(inv.Separate, sr)
				}
			case *types.ClusterVmHostRuleInfo:
				key := "vsphere.drs.group/" + clName + "/" + connector.Escape(rule.VmGroupName)
				n := 0
				for _, ref := range vmGroups[rule.VmGroupName] {
					if label(ref.Value, key, "true") {
						n++
					}
				}
				group, kind := rule.AffineHostGroupName, estate.RuleMust
				if group == "" {
					group, kind = rule.AntiAffineHostGroupName, estate.RuleMustNot
				}
				var hosts []string
				for _, ref := range hostGroups[group] {
					if h := hostName[ref.Value]; h != "" {
						hosts = append(hosts, h)
					}
				}
				if n == 0 || len(hosts) == 0 {
					inv.Warnings = append(inv.Warnings, fmt.Sprintf("DRS rule %s names an empty VM or host group; not imported", name))
					continue
				}
				sort.Strings(hosts)
				inv.Placement = append(inv.Placement, &estate.PlacementRule{Name: name, Rule: kind,
					VMs: estate.Selector{Labels: map[string]string{key: "true"}}, Hypervisors: estate.HypervisorSelector{Names: hosts}})
			case *types.ClusterAffinityRuleSpec:
				inv.Warnings = append(inv.Warnings, fmt.Sprintf("DRS rule %s keeps VMs together; vguard has no such rule, not imported", name))
			}
		}
	}
}
