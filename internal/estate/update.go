package estate

import (
	"slices"
	"sort"
)

// updates holds the lookups that incremental judging needs and a full check
// does not: they cost time to build, so only EnableUpdates builds them.
type updates struct {
	// all lists every VM (order unspecified); pos is each VM's place in it.
	all []*VM
	pos map[*VM]int

	byImage     map[ImageRef][]*VM
	byDatastore map[string][]*VM // VMs holding a credential for it, once each
	byIdentity  map[IdentityKey][]*VM
	servicesOf  map[string][]*Service // by VM name

	// Services by how they pick members, to find a new VM's services.
	staticSvc     map[string][]*Service // by member name
	selSvcByApp   map[string][]*Service
	selSvcByOwner map[string][]*Service
	selSvcOther   []*Service

	imagesByName map[string][]*Image
	hvByNetwork  map[string][]*Hypervisor // by management or migration network
}

// IdentityKey is one normalized identity value of a kind.
type IdentityKey struct {
	Kind  IdentityKind
	Value string
}

// EnableUpdates builds the lookups that let the index follow changes
// (AddVM, RemoveVM, AddImage, RemoveImage) and answer the questions of
// incremental judging (VMsOfImage, CredentialHolders, SharingIdentity,
// ServicesOf). Calling it again does nothing.
func (x *Index) EnableUpdates() {
	if x.upd != nil {
		return
	}
	u := &updates{
		pos:           make(map[*VM]int, len(x.Estate.VMs)),
		byImage:       map[ImageRef][]*VM{},
		byDatastore:   map[string][]*VM{},
		byIdentity:    make(map[IdentityKey][]*VM, 4*len(x.Estate.VMs)),
		servicesOf:    make(map[string][]*Service, len(x.Estate.VMs)),
		staticSvc:     map[string][]*Service{},
		selSvcByApp:   map[string][]*Service{},
		selSvcByOwner: map[string][]*Service{},
		imagesByName:  map[string][]*Image{},
		hvByNetwork:   map[string][]*Hypervisor{},
	}
	x.upd = u
	for _, s := range x.Estate.Services {
		switch sel := s.Selector; {
		case sel == nil:
			for _, m := range s.Members {
				u.staticSvc[m] = append(u.staticSvc[m], s)
			}
		case sel.App != "":
			u.selSvcByApp[sel.App] = append(u.selSvcByApp[sel.App], s)
		case sel.Owner != "":
			u.selSvcByOwner[sel.Owner] = append(u.selSvcByOwner[sel.Owner], s)
		default:
			u.selSvcOther = append(u.selSvcOther, s)
		}
		for _, vm := range x.Members[s.Name] {
			u.servicesOf[vm.Name] = append(u.servicesOf[vm.Name], s)
		}
	}
	for _, im := range x.Estate.Images {
		u.imagesByName[im.Name] = append(u.imagesByName[im.Name], im)
	}
	for _, h := range x.Estate.Hypervisors {
		for _, n := range []string{h.ManagementNetwork, h.MigrationNetwork} {
			if n != "" && !slices.Contains(u.hvByNetwork[n], h) {
				u.hvByNetwork[n] = append(u.hvByNetwork[n], h)
			}
		}
	}
	u.all = make([]*VM, 0, len(x.Estate.VMs))
	for _, vm := range x.Estate.VMs {
		u.pos[vm] = len(u.all)
		u.all = append(u.all, vm)
		x.indexSideways(vm)
	}
}

// indexSideways adds vm to the lookups only EnableUpdates keeps.
func (x *Index) indexSideways(vm *VM) {
	u := x.upd
	if vm.Image != nil {
		u.byImage[*vm.Image] = append(u.byImage[*vm.Image], vm)
	}
	for i, c := range vm.Credentials {
		if !slices.ContainsFunc(vm.Credentials[:i], func(o Credential) bool { return o.Datastore == c.Datastore }) {
			u.byDatastore[c.Datastore] = append(u.byDatastore[c.Datastore], vm)
		}
	}
	for _, k := range identityKeys(vm) {
		u.byIdentity[k] = append(u.byIdentity[k], vm)
	}
}

// identityKeys lists vm's distinct identity values.
func identityKeys(vm *VM) []IdentityKey {
	var keys []IdentityKey
	IdentityValues(vm, func(kind IdentityKind, v string) {
		k := IdentityKey{kind, v}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	})
	return keys
}

func (x *Index) mustUpdates() *updates {
	if x.upd == nil {
		panic("estate: index updates used before EnableUpdates")
	}
	return x.upd
}

// AllVMs lists every VM of the index as it is now, in no particular order.
// Without EnableUpdates it is the estate's list.
func (x *Index) AllVMs() []*VM {
	if x.upd == nil {
		return x.Estate.VMs
	}
	return x.upd.all
}

// VMsOfImage lists the VMs made from an image version.
func (x *Index) VMsOfImage(r ImageRef) []*VM { return x.mustUpdates().byImage[r] }

// CredentialHolders lists the VMs holding a credential for a datastore.
func (x *Index) CredentialHolders(datastore string) []*VM {
	return x.mustUpdates().byDatastore[datastore]
}

// SharingIdentity lists the VMs that hold an identity value (vm's own
// among them, when it holds it).
func (x *Index) SharingIdentity(k IdentityKey) []*VM { return x.mustUpdates().byIdentity[k] }

// IdentityKeys lists vm's distinct identity values.
func IdentityKeys(vm *VM) []IdentityKey { return identityKeys(vm) }

// ServicesOf lists the services vm is a member of.
func (x *Index) ServicesOf(vm string) []*Service { return x.mustUpdates().servicesOf[vm] }

// HypervisorsUsingNetwork lists the hypervisors whose management or
// migration network it is.
func (x *Index) HypervisorsUsingNetwork(network string) []*Hypervisor {
	return x.mustUpdates().hvByNetwork[network]
}

// AddVM adds a VM, whose name must be new, to every lookup. The VM's
// references must resolve.
func (x *Index) AddVM(vm *VM) {
	u := x.mustUpdates()
	x.VMs[vm.Name] = vm
	x.VMsOn[vm.Hypervisor] = append(x.VMsOn[vm.Hypervisor], vm)
	for i, nic := range vm.NICs {
		if !seenNetwork(vm.NICs[:i], nic.Network) {
			x.VMsOnNetwork[nic.Network] = append(x.VMsOnNetwork[nic.Network], vm)
		}
	}
	x.ByApp[vm.App] = append(x.ByApp[vm.App], vm)
	x.ByOwner[vm.Owner] = append(x.ByOwner[vm.Owner], vm)
	u.pos[vm] = len(u.all)
	u.all = append(u.all, vm)
	x.indexSideways(vm)
	for _, s := range x.servicesTaking(vm) {
		m := x.Members[s.Name]
		i := sort.Search(len(m), func(i int) bool { return m[i].Name >= vm.Name })
		x.Members[s.Name] = slices.Insert(m, i, vm)
		u.servicesOf[vm.Name] = append(u.servicesOf[vm.Name], s)
	}
}

// ServicesTaking lists the services vm would be a member of if it were
// added now (with updates enabled).
func (x *Index) ServicesTaking(vm *VM) []*Service {
	x.mustUpdates()
	return x.servicesTaking(vm)
}

// servicesTaking lists the services vm would be a member of.
func (x *Index) servicesTaking(vm *VM) []*Service {
	u := x.upd
	var out []*Service
	out = append(out, u.staticSvc[vm.Name]...)
	for _, group := range [][]*Service{u.selSvcByApp[vm.App], u.selSvcByOwner[vm.Owner], u.selSvcOther} {
		for _, s := range group {
			if s.Selector.Matches(vm) {
				out = append(out, s)
			}
		}
	}
	return out
}

// RemoveVM removes vm (the very object the index holds) from every lookup.
func (x *Index) RemoveVM(vm *VM) {
	u := x.mustUpdates()
	delete(x.VMs, vm.Name)
	removeFrom(x.VMsOn, vm.Hypervisor, vm)
	for i, nic := range vm.NICs {
		if !seenNetwork(vm.NICs[:i], nic.Network) {
			removeFrom(x.VMsOnNetwork, nic.Network, vm)
		}
	}
	removeFrom(x.ByApp, vm.App, vm)
	removeFrom(x.ByOwner, vm.Owner, vm)
	// Swap the last VM into vm's place in the list of all.
	i, last := u.pos[vm], u.all[len(u.all)-1]
	u.all[i], u.pos[last] = last, i
	u.all = u.all[:len(u.all)-1]
	delete(u.pos, vm)
	if vm.Image != nil {
		removeFrom(u.byImage, *vm.Image, vm)
	}
	for _, c := range vm.Credentials {
		removeFrom(u.byDatastore, c.Datastore, vm)
	}
	for _, k := range identityKeys(vm) {
		removeFrom(u.byIdentity, k, vm)
	}
	for _, s := range u.servicesOf[vm.Name] {
		x.Members[s.Name] = slices.DeleteFunc(x.Members[s.Name], func(o *VM) bool { return o == vm })
	}
	delete(u.servicesOf, vm.Name)
}

// removeFrom deletes vm from the list under key, keeping the order of the
// rest, and drops the key when the list empties (as a fresh index would not
// have it).
func removeFrom[K comparable](m map[K][]*VM, key K, vm *VM) {
	list := slices.DeleteFunc(m[key], func(o *VM) bool { return o == vm })
	if len(list) == 0 {
		delete(m, key)
		return
	}
	m[key] = list
}

// AddImage adds an image version, whose (name, version) must be new.
func (x *Index) AddImage(im *Image) {
	u := x.mustUpdates()
	x.Images[im.Ref()] = im
	u.imagesByName[im.Name] = append(u.imagesByName[im.Name], im)
	x.recomputeNewest(im.Name)
}

// RemoveImage removes an image version (the object the index holds).
func (x *Index) RemoveImage(im *Image) {
	u := x.mustUpdates()
	delete(x.Images, im.Ref())
	u.imagesByName[im.Name] = slices.DeleteFunc(u.imagesByName[im.Name], func(o *Image) bool { return o == im })
	x.recomputeNewest(im.Name)
}

func (x *Index) recomputeNewest(name string) {
	newest := 0
	for _, im := range x.upd.imagesByName[name] {
		if im.Master && im.Version > newest {
			newest = im.Version
		}
	}
	if newest == 0 {
		delete(x.NewestMaster, name)
	} else {
		x.NewestMaster[name] = newest
	}
}
