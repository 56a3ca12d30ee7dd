package estate

import (
	"slices"
	"sort"
	"strings"
	"sync"
)

// updates holds the lookups that incremental judging needs and a full check
// does not. The cheap ones are built by EnableUpdates; the ones over every
// VM (by image, by datastore, by identity value) are built on first use,
// since a change that touches no identity never needs the identity lookup,
// and building it costs more than judging the change.
type updates struct {
	// imagesChanged: an image was added or removed since the index was
	// built, so the estate's own list is no longer the images (AllImages).
	imagesChanged bool
	// Services by how they pick members, to find a VM's services.
	staticSvc     map[string][]*Service // by member name
	selSvcByApp   map[string][]*Service
	selSvcByOwner map[string][]*Service
	selSvcOther   []*Service

	imagesByName map[string][]*Image
	hvByNetwork  map[string][]*Hypervisor // by management or migration network
	hvByDomain   map[string][]*Hypervisor // by failure domain

	byImage     lazyLookup[ImageRef]
	members     memberLookup       // every version of an image name
	byDatastore lazyLookup[string] // VMs holding a credential for it, once each
	byIdentity  identityLookup
	// mutated is set by the first change to the index: until then the
	// estate's own lists are still true.
	mutated bool
	// By label and by environment, for selectors that name neither an app
	// nor an owner (VG601 asks whether a group matches any VM). An
	// environment holds most VMs, so it is counted rather than listed.
	byLabel lazyLookup[Label]
	byEnv   lazyCount[Environment]
}

// IdentitySource answers which VMs held an identity value when the index
// was last unchanged: VG201's full run offers one as a by-product, so that
// judging needs no map of every value.
type IdentitySource interface {
	Holders(k IdentityKey) []*VM
}

// identityLookup maps identity values to the VMs holding them: either a
// source offered by a full evaluation plus the changes made since (overlay),
// or, without one, a map built on first use. Nearly every value has one
// holder, so the map keeps the first holder apart from the rest: that saves
// a slice per value.
type identityLookup struct {
	mu  sync.Mutex // guards src against a concurrent offer
	src IdentitySource
	// Changes since src was taken: VMs added, and VMs of src removed.
	added   map[IdentityKey][]*VM
	addedVM map[*VM]bool
	removed map[*VM]bool

	once  sync.Once
	first map[IdentityKey]*VM
	more  map[IdentityKey][]*VM // holders after the first
}

func (l *identityLookup) offer(src IdentitySource) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.src == nil && l.first == nil {
		l.src = src
		l.added, l.addedVM, l.removed = map[IdentityKey][]*VM{}, map[*VM]bool{}, map[*VM]bool{}
	}
}

func (l *identityLookup) source() IdentitySource {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src
}

func (l *identityLookup) build(x *Index) {
	if l.source() != nil {
		return
	}
	l.once.Do(func() {
		l.first = make(map[IdentityKey]*VM, 5*len(x.VMs))
		l.more = map[IdentityKey][]*VM{}
		for _, vm := range x.VMs {
			l.add(vm)
		}
	})
}

func (l *identityLookup) holders(k IdentityKey) []*VM {
	if src := l.source(); src != nil {
		var out []*VM
		for _, vm := range src.Holders(k) {
			if !l.removed[vm] {
				out = append(out, vm)
			}
		}
		return append(out, l.added[k]...)
	}
	f := l.first[k]
	if f == nil {
		return nil
	}
	return append([]*VM{f}, l.more[k]...)
}

func (l *identityLookup) add(vm *VM) {
	if l.src != nil {
		if l.removed[vm] { // a VM of the source, put back
			delete(l.removed, vm)
			return
		}
		l.addedVM[vm] = true
		for _, k := range identityKeys(vm) {
			l.added[k] = append(l.added[k], vm)
		}
		return
	}
	if l.first == nil {
		return
	}
	IdentityValues(vm, func(kind IdentityKind, v string) {
		k := IdentityKey{kind, v}
		switch f := l.first[k]; {
		case f == nil:
			l.first[k] = vm
		case f != vm && !slices.Contains(l.more[k], vm):
			l.more[k] = append(l.more[k], vm)
		}
	})
}

func (l *identityLookup) remove(vm *VM) {
	if l.src != nil {
		if !l.addedVM[vm] {
			l.removed[vm] = true
			return
		}
		delete(l.addedVM, vm)
		for _, k := range identityKeys(vm) {
			removeFrom(l.added, k, vm)
		}
		return
	}
	if l.first == nil {
		return
	}
	IdentityValues(vm, func(kind IdentityKind, v string) {
		k := IdentityKey{kind, v}
		if l.first[k] != vm {
			removeFrom(l.more, k, vm)
			return
		}
		if rest := l.more[k]; len(rest) > 0 {
			l.first[k] = rest[0]
			if len(rest) == 1 {
				delete(l.more, k)
			} else {
				l.more[k] = rest[1:]
			}
		} else {
			delete(l.first, k)
		}
	})
}

// lazyLookup is a map from a key to the VMs that have it, built from the
// index's current VMs on first use and kept up to date from then on. Lists
// are in no particular order: adding is an append, as judging a change adds
// and removes its VMs several times.
type lazyLookup[K comparable] struct {
	once sync.Once
	m    map[K][]*VM
	keys func(vm *VM) []K
}

func (l *lazyLookup[K]) get(x *Index) map[K][]*VM {
	l.once.Do(func() {
		l.m = make(map[K][]*VM, len(x.VMs))
		for _, vm := range x.VMs {
			l.add(vm)
		}
	})
	return l.m
}

func (l *lazyLookup[K]) add(vm *VM) {
	if l.m == nil {
		return
	}
	for _, k := range l.keys(vm) {
		l.m[k] = append(l.m[k], vm)
	}
}

func (l *lazyLookup[K]) remove(vm *VM) {
	if l.m == nil {
		return
	}
	for _, k := range l.keys(vm) {
		removeFrom(l.m, k, vm)
	}
}

// ImageMember is a VM of an image name as ImageMembers lists it: with the
// image version it runs and its reference in the `vm/NAME` form of
// checks.md, kept beside the VM rather than read from it. A master may have
// tens of thousands of VMs, and a check that judges them all when the
// master gains a version (VG204) then reads one compact list in order
// instead of visiting each VM where it lies in memory, and shares the
// reference instead of building it per finding.
type ImageMember struct {
	VM      *VM
	Version int
	Ref     string
	Pos     Pos
}

// memberLookup maps image names to their members, built on first use and
// kept up to date like lazyLookup. Each image name's list is a base sorted
// by VM name, which never moves, and the changes made since: a master's
// list may hold 40,000 members, and judging a change to one of its VMs
// adds and removes that VM four times, which must not shift the list each
// time. The changes are folded into a new base once they are many.
type memberLookup struct {
	once sync.Once
	m    map[string]*memberList
}

type memberList struct {
	base    []ImageMember // sorted by VM name
	removed map[*VM]bool  // members of base removed since
	added   []ImageMember // sorted by VM name
}

// foldAt is how many changes a list takes before they are folded into its
// base.
const foldAt = 4096

func (l *memberLookup) get(x *Index) map[string]*memberList {
	l.once.Do(func() {
		byName := map[string][]ImageMember{}
		for _, vm := range x.VMs {
			if vm.Image != nil {
				byName[vm.Image.Name] = append(byName[vm.Image.Name], ImageMember{VM: vm, Version: vm.Image.Version, Pos: vm.Pos})
			}
		}
		l.m = make(map[string]*memberList, len(byName))
		for name, list := range byName {
			l.m[name] = newMemberList(list)
		}
	})
	return l.m
}

// newMemberList sorts members into a base whose references are cut from
// one string written in the base's order: a judgement that compares the
// findings of a whole master then reads them front to back, not all over
// the heap.
func newMemberList(members []ImageMember) *memberList {
	slices.SortFunc(members, byMemberName)
	size := 0
	for _, m := range members {
		size += len("vm/") + len(m.VM.Name)
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, m := range members {
		sb.WriteString("vm/")
		sb.WriteString(m.VM.Name)
	}
	all, start := sb.String(), 0
	for i := range members {
		end := start + len("vm/") + len(members[i].VM.Name)
		members[i].Ref = all[start:end]
		start = end
	}
	return &memberList{base: members, removed: map[*VM]bool{}}
}

func member(vm *VM) ImageMember {
	return ImageMember{VM: vm, Version: vm.Image.Version, Ref: "vm/" + vm.Name, Pos: vm.Pos}
}

func byMemberName(a, b ImageMember) int { return strings.Compare(a.VM.Name, b.VM.Name) }

func (l *memberLookup) add(vm *VM) {
	if l.m == nil || vm.Image == nil {
		return
	}
	ml := l.m[vm.Image.Name]
	if ml == nil {
		ml = newMemberList(nil)
		l.m[vm.Image.Name] = ml
	}
	if ml.removed[vm] {
		delete(ml.removed, vm) // a change undone: the VM is back in base
		return
	}
	m := member(vm)
	i, _ := slices.BinarySearchFunc(ml.added, m, byMemberName)
	ml.added = slices.Insert(ml.added, i, m)
	ml.foldIfMany()
}

func (l *memberLookup) remove(vm *VM) {
	if l.m == nil || vm.Image == nil {
		return
	}
	ml := l.m[vm.Image.Name]
	if ml == nil {
		return
	}
	if i, ok := slices.BinarySearchFunc(ml.added, ImageMember{VM: vm}, byMemberName); ok && ml.added[i].VM == vm {
		ml.added = slices.Delete(ml.added, i, i+1)
		return
	}
	if i, ok := slices.BinarySearchFunc(ml.base, ImageMember{VM: vm}, byMemberName); ok && ml.base[i].VM == vm {
		ml.removed[vm] = true
		ml.foldIfMany()
	}
}

func (ml *memberList) foldIfMany() {
	if len(ml.added)+len(ml.removed) < foldAt {
		return
	}
	all := make([]ImageMember, 0, len(ml.base)+len(ml.added))
	ml.each(func(m ImageMember) { all = append(all, m) })
	*ml = *newMemberList(all)
}

// each calls fn for every member, in VM name order: base and added merged,
// removed ones left out.
func (ml *memberList) each(fn func(ImageMember)) {
	a := ml.added
	for _, m := range ml.base {
		for len(a) > 0 && a[0].VM.Name < m.VM.Name {
			fn(a[0])
			a = a[1:]
		}
		if len(ml.removed) > 0 && ml.removed[m.VM] {
			continue
		}
		fn(m)
	}
	for _, m := range a {
		fn(m)
	}
}

// lazyCount counts the VMs of each key, built on first use like lazyLookup.
type lazyCount[K comparable] struct {
	once sync.Once
	m    map[K]int
	key  func(vm *VM) K
}

func (l *lazyCount[K]) get(x *Index) map[K]int {
	l.once.Do(func() {
		l.m = map[K]int{}
		for _, vm := range x.VMs {
			l.m[l.key(vm)]++
		}
	})
	return l.m
}

func (l *lazyCount[K]) add(vm *VM, d int) {
	if l.m == nil {
		return
	}
	k := l.key(vm)
	l.m[k] += d
	if l.m[k] == 0 {
		delete(l.m, k)
	}
}

// Label is one label of a VM.
type Label struct{ Key, Value string }

// IdentityKey is one normalized identity value of a kind.
type IdentityKey struct {
	Kind  IdentityKind
	Value string
}

// EnableUpdates builds the lookups that let the index follow changes
// (AddVM, RemoveVM, AddImage, RemoveImage) and answer the questions of
// incremental judging (VMsOfImage, CredentialHolders, SharingIdentity,
// ServicesOf). Calling it again does nothing. It is cheap: the lookups over
// every VM are built when first asked for.
func (x *Index) EnableUpdates() {
	if x.upd != nil {
		return
	}
	u := &updates{
		staticSvc:     map[string][]*Service{},
		selSvcByApp:   map[string][]*Service{},
		selSvcByOwner: map[string][]*Service{},
		imagesByName:  map[string][]*Image{},
		hvByNetwork:   map[string][]*Hypervisor{},
		hvByDomain:    map[string][]*Hypervisor{},
	}
	u.byImage.keys = func(vm *VM) []ImageRef {
		if vm.Image == nil {
			return nil
		}
		return []ImageRef{*vm.Image}
	}
	u.byDatastore.keys = func(vm *VM) []string {
		var out []string
		for _, c := range vm.Credentials {
			if !slices.Contains(out, c.Datastore) {
				out = append(out, c.Datastore)
			}
		}
		return out
	}
	u.byLabel.keys = func(vm *VM) []Label {
		out := make([]Label, 0, len(vm.Labels))
		for k, v := range vm.Labels {
			out = append(out, Label{k, v})
		}
		return out
	}
	u.byEnv.key = func(vm *VM) Environment { return vm.Environment }
	x.upd = u
	for _, s := range x.Estate.Services {
		switch sel := s.Selector; {
		case sel == nil:
			for _, m := range s.Members {
				if !slices.Contains(u.staticSvc[m], s) { // a name listed twice is one member
					u.staticSvc[m] = append(u.staticSvc[m], s)
				}
			}
		case sel.App != "":
			u.selSvcByApp[sel.App] = append(u.selSvcByApp[sel.App], s)
		case sel.Owner != "":
			u.selSvcByOwner[sel.Owner] = append(u.selSvcByOwner[sel.Owner], s)
		default:
			u.selSvcOther = append(u.selSvcOther, s)
		}
	}
	for _, im := range x.Estate.Images {
		u.imagesByName[im.Name] = append(u.imagesByName[im.Name], im)
	}
	for _, h := range x.Estate.Hypervisors {
		u.hvByDomain[h.FailureDomain] = append(u.hvByDomain[h.FailureDomain], h)
		for _, n := range []string{h.ManagementNetwork, h.MigrationNetwork} {
			if n != "" && !slices.Contains(u.hvByNetwork[n], h) {
				u.hvByNetwork[n] = append(u.hvByNetwork[n], h)
			}
		}
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

// AllVMs lists every VM of the index as it is now. Without EnableUpdates
// it is the estate's list; with it, a list made from the name index, in no
// particular order (slow on a large estate: judging code must not need it)
// once the index has been changed.
func (x *Index) AllVMs() []*VM {
	if x.upd == nil || !x.upd.mutated {
		return x.Estate.VMs
	}
	out := make([]*VM, 0, len(x.VMs))
	for _, vm := range x.VMs {
		out = append(out, vm)
	}
	return out
}

// AllImages lists every image version of the index as it is now: the
// estate's list until an image was added or removed (Judge.Commit of an
// add-image), then a list made from the index, sorted by reference.
func (x *Index) AllImages() []*Image {
	if x.upd == nil || !x.upd.imagesChanged {
		return x.Estate.Images
	}
	out := make([]*Image, 0, len(x.Images))
	for _, im := range x.Images {
		out = append(out, im)
	}
	slices.SortFunc(out, func(a, b *Image) int { return strings.Compare(a.Ref().String(), b.Ref().String()) })
	return out
}

// OfferIdentitySource lets a full evaluation hand over what it learnt of
// identity values. It is taken only while the index has updates enabled and
// has not changed since (the source describes the index as it is), and
// before any identity lookup was built.
func (x *Index) OfferIdentitySource(src IdentitySource) {
	if x.upd == nil || x.upd.mutated {
		return
	}
	x.upd.byIdentity.offer(src)
}

// Warm builds the lookups over every VM that are otherwise built on first
// use, so that no judgement pays for them. It only reads the index, and may
// run concurrently with an evaluation that does not change it.
func (x *Index) Warm() {
	u := x.mustUpdates()
	u.byImage.get(x)
	u.members.get(x)
	u.byDatastore.get(x)
	u.byIdentity.build(x)
}

// ImageVersions lists the versions of the image of that name, in no
// particular order (an index with updates enabled only).
func (x *Index) ImageVersions(name string) []*Image { return x.mustUpdates().imagesByName[name] }

// VMsOfImage lists the VMs made from an image version.
func (x *Index) VMsOfImage(r ImageRef) []*VM { return x.mustUpdates().byImage.get(x)[r] }

// ImageMembers calls fn for each VM made from any version of the image of
// that name, in VM name order.
func (x *Index) ImageMembers(name string, fn func(ImageMember)) {
	if ml := x.mustUpdates().members.get(x)[name]; ml != nil {
		ml.each(fn)
	}
}

// CredentialHolders lists the VMs holding a credential for a datastore.
func (x *Index) CredentialHolders(datastore string) []*VM {
	return x.mustUpdates().byDatastore.get(x)[datastore]
}

// SharingIdentity lists the VMs that hold an identity value (vm's own
// among them, when it holds it).
func (x *Index) SharingIdentity(k IdentityKey) []*VM {
	u := x.mustUpdates()
	u.byIdentity.build(x)
	return u.byIdentity.holders(k)
}

// VMsWithLabel lists the VMs that carry the label key=value.
func (x *Index) VMsWithLabel(key, value string) []*VM {
	return x.mustUpdates().byLabel.get(x)[Label{key, value}]
}

// VMsInEnvironment counts the VMs of an environment.
func (x *Index) VMsInEnvironment(env Environment) int {
	return x.mustUpdates().byEnv.get(x)[env]
}

// IdentityKeys lists vm's distinct identity values.
func IdentityKeys(vm *VM) []IdentityKey { return identityKeys(vm) }

// ServicesOf lists the services the indexed VM of that name is a member
// of. Membership depends only on the VM itself (its name in a service's
// members, or its fields matching a selector), so it is computed, not kept.
func (x *Index) ServicesOf(vm string) []*Service {
	x.mustUpdates()
	if v := x.VMs[vm]; v != nil {
		return x.servicesTaking(v)
	}
	return nil
}

// HypervisorsUsingNetwork lists the hypervisors whose management or
// migration network it is.
func (x *Index) HypervisorsUsingNetwork(network string) []*Hypervisor {
	return x.mustUpdates().hvByNetwork[network]
}

// HypervisorsInDomain lists the hypervisors of a failure domain.
func (x *Index) HypervisorsInDomain(fd string) []*Hypervisor {
	return x.mustUpdates().hvByDomain[fd]
}

// FailureDomainCount counts the distinct failure domains of the
// hypervisors.
func (x *Index) FailureDomainCount() int { return len(x.mustUpdates().hvByDomain) }

// AddVM adds a VM, whose name must be new, to every lookup. The VM's
// references must resolve.
func (x *Index) AddVM(vm *VM) {
	u := x.mustUpdates()
	u.mutated = true
	x.VMs[vm.Name] = vm
	x.VMsOn[vm.Hypervisor] = append(x.VMsOn[vm.Hypervisor], vm)
	for i, nic := range vm.NICs {
		if !seenNetwork(vm.NICs[:i], nic.Network) {
			x.VMsOnNetwork[nic.Network] = append(x.VMsOnNetwork[nic.Network], vm)
		}
	}
	x.ByApp[vm.App] = append(x.ByApp[vm.App], vm)
	x.ByOwner[vm.Owner] = append(x.ByOwner[vm.Owner], vm)
	u.byImage.add(vm)
	u.members.add(vm)
	u.byDatastore.add(vm)
	u.byIdentity.add(vm)
	u.byLabel.add(vm)
	u.byEnv.add(vm, 1)
	for _, s := range x.servicesTaking(vm) {
		m := x.Members[s.Name]
		i := sort.Search(len(m), func(i int) bool { return m[i].Name >= vm.Name })
		x.Members[s.Name] = slices.Insert(m, i, vm)
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
	u.mutated = true
	delete(x.VMs, vm.Name)
	removeFrom(x.VMsOn, vm.Hypervisor, vm)
	for i, nic := range vm.NICs {
		if !seenNetwork(vm.NICs[:i], nic.Network) {
			removeFrom(x.VMsOnNetwork, nic.Network, vm)
		}
	}
	removeFrom(x.ByApp, vm.App, vm)
	removeFrom(x.ByOwner, vm.Owner, vm)
	u.byImage.remove(vm)
	u.members.remove(vm)
	u.byDatastore.remove(vm)
	u.byIdentity.remove(vm)
	u.byLabel.remove(vm)
	u.byEnv.add(vm, -1)
	for _, s := range x.servicesTaking(vm) {
		x.Members[s.Name] = slices.DeleteFunc(x.Members[s.Name], func(o *VM) bool { return o == vm })
	}
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
	u.imagesChanged = true
	x.Images[im.Ref()] = im
	u.imagesByName[im.Name] = append(u.imagesByName[im.Name], im)
	x.recomputeNewest(im.Name)
}

// RemoveImage removes an image version (the object the index holds).
func (x *Index) RemoveImage(im *Image) {
	u := x.mustUpdates()
	u.imagesChanged = true
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
