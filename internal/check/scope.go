package check

import (
	"slices"
	"sort"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Facts is a set of kinds of facts of an estate. A check declares the facts
// it reads (Check.Reads); a change says which it touches; a check whose
// facts a change leaves alone cannot change its findings and is not re-run.
type Facts uint16

const (
	// FactPlacement: which hypervisor a VM runs on.
	FactPlacement Facts = 1 << iota
	// FactNetworks: a VM's NICs (networks, MACs, ports).
	FactNetworks
	// FactIdentity: a VM's identity values (uuid, machine id, hostname,
	// SSH host keys); MACs are FactNetworks.
	FactIdentity
	// FactCredentials: the datastores a VM holds credentials for.
	FactCredentials
	// FactImage: a VM's image, manifest and scan report.
	FactImage
	// FactProfile: a VM's owner, app, environment, security level, home
	// zone, gateway flag and labels (what selectors and zone rules read).
	FactProfile
	// FactResources: a VM's resources.
	FactResources
	// FactExistence: a VM was created or deleted.
	FactExistence
	// FactImages: the image catalogue (add-image).
	FactImages

	// FactsAll is every fact.
	FactsAll Facts = 1<<iota - 1
)

// Scope limits an evaluation to the parts of an estate that a change can
// affect: the changed VMs and every unit whose findings depend on them (the
// hypervisors, failure domains, clusters, services, datastores, images and
// networks they touch). A scoped check emits exactly the findings of the
// units in scope, so that evaluating the same scope before and after a
// change yields every finding the change introduces or resolves.
type Scope struct {
	Facts          Facts
	VMs            map[string]bool
	Hypervisors    map[string]bool
	FailureDomains map[string]bool
	Clusters       map[string]bool
	Services       map[string]bool
	Datastores     map[string]bool
	Images         map[estate.ImageRef]bool
	Networks       map[string]bool
	// Masters names master images that gained a newer version: every VM
	// made from any version of one of them is in scope for the checks that
	// read the image catalogue (FactImages), and for those alone. They are
	// kept by name, not as VMs, since one master may have tens of thousands
	// of VMs, and a check reaches them through the images of that name.
	Masters map[string]bool
	// Versions are the VM versions put in scope, for the units a version
	// reaches only through its own facts: a VM that leaves an identity
	// group leaves the rest of the group behind, and after the change only
	// the identity values it held before lead to them (VG201). Kept as VMs,
	// not as their values: working out the values of the tens of thousands
	// of VMs that a newer master puts in scope would cost more than judging
	// the change, and only a check that needs them should pay.
	Versions []*estate.VM
}

// NewScope returns an empty scope.
func NewScope() *Scope {
	return &Scope{
		VMs: map[string]bool{}, Hypervisors: map[string]bool{}, FailureDomains: map[string]bool{},
		Clusters: map[string]bool{}, Services: map[string]bool{}, Datastores: map[string]bool{},
		Images: map[estate.ImageRef]bool{}, Networks: map[string]bool{}, Masters: map[string]bool{},
	}
}

// AddVM puts vm in scope with every unit it touches: call it with both the
// before and the after version of each changed VM, so that the units it
// leaves and the units it joins are both judged. x is the index before the
// change, with updates enabled: the services of a version are those it is a
// member of there, or would join.
func (s *Scope) AddVM(x *estate.Index, vm *estate.VM) {
	s.VMs[vm.Name] = true
	s.Hypervisors[vm.Hypervisor] = true
	if h := x.Hypervisors[vm.Hypervisor]; h != nil {
		s.FailureDomains[h.FailureDomain] = true
		s.Clusters[h.Cluster] = true
	}
	for _, nic := range vm.NICs {
		s.Networks[nic.Network] = true
	}
	for _, c := range vm.Credentials {
		s.Datastores[c.Datastore] = true
	}
	if vm.Image != nil {
		s.Images[*vm.Image] = true
	}
	s.Versions = append(s.Versions, vm)
	for _, svc := range x.ServicesOf(vm.Name) {
		s.Services[svc.Name] = true
	}
	for _, svc := range x.ServicesTaking(vm) {
		s.Services[svc.Name] = true
	}
}

// Scoped reports whether this evaluation is limited to a scope.
func (c *Context) Scoped() bool { return c.scope != nil }

// Scope returns the evaluation's scope, nil when it judges everything.
func (c *Context) Scope() *Scope { return c.scope }

// VMs returns the VMs to judge: every VM, or the VMs in scope that exist
// in this state of the estate (sorted by name).
func (c *Context) VMs() []*estate.VM {
	if c.scope == nil {
		return c.Index.AllVMs()
	}
	out := make([]*estate.VM, 0, len(c.scope.VMs))
	for name := range c.scope.VMs {
		if vm := c.Index.VMs[name]; vm != nil {
			out = append(out, vm)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Hypervisors returns the hypervisors to judge.
func (c *Context) Hypervisors() []*estate.Hypervisor {
	if c.scope == nil {
		return c.Index.Estate.Hypervisors
	}
	return pick(c.scope.Hypervisors, c.Index.Hypervisors)
}

// HypervisorInScope reports whether hypervisor h is judged.
func (c *Context) HypervisorInScope(h string) bool { return c.scope == nil || c.scope.Hypervisors[h] }

// FailureDomainInScope reports whether failure domain fd is judged.
func (c *Context) FailureDomainInScope(fd string) bool {
	return c.scope == nil || c.scope.FailureDomains[fd]
}

// ClusterInScope reports whether cluster name is judged.
func (c *Context) ClusterInScope(name string) bool { return c.scope == nil || c.scope.Clusters[name] }

// NetworkInScope reports whether network name is judged (a change touched
// it).
func (c *Context) NetworkInScope(name string) bool { return c.scope == nil || c.scope.Networks[name] }

// Services returns the services to judge.
func (c *Context) Services() []*estate.Service {
	if c.scope == nil {
		return c.Index.Estate.Services
	}
	out := make([]*estate.Service, 0, len(c.scope.Services))
	for name := range c.scope.Services {
		if s := c.Index.Services[name]; s != nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Datastores returns the datastores to judge.
func (c *Context) Datastores() []*estate.Datastore {
	if c.scope == nil {
		return c.Index.Estate.Datastores
	}
	return pick(c.scope.Datastores, c.Index.Datastores)
}

// Images returns the image versions to judge.
func (c *Context) Images() []*estate.Image {
	if c.scope == nil {
		return c.Index.AllImages()
	}
	out := make([]*estate.Image, 0, len(c.scope.Images))
	for r := range c.scope.Images {
		if im := c.Index.Images[r]; im != nil {
			out = append(out, im)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref().String() < out[j].Ref().String() })
	return out
}

// pick looks up the names of set in byName, skipping unknown ones, sorted
// by name so that scoped runs are deterministic.
func pick[T any](set map[string]bool, byName map[string]T) []T {
	names := make([]string, 0, len(set))
	for n := range set {
		if _, ok := byName[n]; ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]T, len(names))
	for i, n := range names {
		out[i] = byName[n]
	}
	return out
}
