package check

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/manifest"
)

func integrityChecks() []*Check {
	return []*Check{
		{
			ID: "VG201", Name: "duplicate-identity", Title: "VMs share an identity",
			Pillar: Integrity, Severity: estate.SevHigh,
			Description: "Two or more VMs share an identity value: uuid, machineId, hostname, an SSH host key or a NIC MAC.",
			Remediation: "Give each copy its own identity: sanitize clones (new machine-id, SSH host keys, hostname, MACs and UUID) before they join a network.",
			Reads:       FactIdentity | FactNetworks | FactExistence, // MACs are NIC facts
			Run:         runDuplicateIdentity,
		},
		{
			ID: "VG202", Name: "multi-writer", Title: "Single-writer datastore written by several VMs",
			Pillar: Integrity, Severity: estate.SevCritical,
			Description: "A datastore with writers: single is written by two or more VMs (write credentials).",
			Remediation: "Keep one writer: revoke the write credential of the other VMs or give them read-only access.",
			Reads:       FactCredentials | FactExistence,
			Run:         runMultiWriter,
		},
		{
			ID: "VG203", Name: "master-drift", Title: "VM drifted from its master image",
			Pillar: Integrity, Severity: estate.SevMedium,
			Description: "A VM made from a master image has a manifest that differs from the master's manifest (ignoring the default ignore list).",
			Remediation: "Reconcile the VM with its master: fold a wanted change into a new master version and roll it out, or rebuild the VM from the master.",
			// A new image version changes no manifest a VM is compared with.
			Reads: FactImage | FactExistence,
			Run:   runMasterDrift,
		},
		{
			ID: "VG204", Name: "behind-master", Title: "VM behind the newest master",
			Pillar: Integrity, Severity: estate.SevLow,
			Description: "A VM runs a master image more than masterLag versions older than the newest version of that master.",
			Remediation: "Roll the newest master version out to the VM (`vguard rollout plan`).",
			// FactImages: a newer master puts the VMs of older ones behind.
			Reads: FactImage | FactExistence | FactImages,
			Run:   runBehindMaster,
		},
	}
}

// evidenceCap bounds the lists in a finding's evidence.
const evidenceCap = 10

// Identity kinds of VG201, in the order evidence and messages name them.
const (
	idUUID       = estate.IdentityUUID
	idMachineID  = estate.IdentityMachineID
	idHostname   = estate.IdentityHostname
	idSSHHostKey = estate.IdentitySSHHostKey
	idMAC        = estate.IdentityMAC
	idKinds      = estate.IdentityKinds
)

// idKindWords name the kinds in messages.
var idKindWords = [idKinds]string{"uuid", "machine id", "hostname", "SSH host key", "MAC"}

// idEvidenceKeys are the evidence keys of the shared values of each kind.
var idEvidenceKeys = [idKinds]string{"uuids", "machineIds", "hostnames", "sshHostKeys", "macs"}

// runDuplicateIdentity is VG201. The VMs holding each shared identity value
// (found by sorting values, never by comparing VMs pairwise) are joined in a
// union-find, so VMs are grouped transitively (A shares a uuid with B, B a
// MAC with C: one group). One finding per group. A scoped run walks the
// groups of the scope instead (duplicateIdentityScoped).
func runDuplicateIdentity(c *Context) {
	if c.Scoped() {
		duplicateIdentityScoped(c)
		return
	}
	vms := c.VMs()
	vals := identityValues(vms)
	parent := make([]int32, len(vms))
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	// For each value held by two or more VMs, join them all to the first.
	var shared []idValue // with the first VM that holds each
	sv := forEachShared(vals, func(same []int32) {
		first := vals[same[0]]
		shared = append(shared, first)
		for _, k := range same[1:] {
			if ri, rj := find(first.vm), find(vals[k].vm); ri != rj {
				// The lower index becomes the root so roots are stable.
				parent[max(ri, rj)] = min(ri, rj)
			}
		}
	})
	if sv != nil {
		sv.vms = vms
		c.Index.OfferIdentitySource(sv)
	}
	if len(shared) == 0 {
		return
	}
	// Gather the shared values and the members of each group by root.
	values := map[int32]*[idKinds][]string{}
	for _, sv := range shared {
		r := find(sv.vm)
		v := values[r]
		if v == nil {
			v = &[idKinds][]string{}
			values[r] = v
		}
		v[sv.kind] = append(v[sv.kind], sv.value)
	}
	members := make(map[int32][]*estate.VM, len(values))
	for i, vm := range vms {
		if r := find(int32(i)); values[r] != nil {
			members[r] = append(members[r], vm)
		}
	}
	for r, group := range members {
		emitIdentityGroup(c, group, values[r])
	}
}

// duplicateIdentityScoped is VG201 on a scope: the groups that a changed VM
// belongs to, or belonged to before the change. They are found through the
// index from the holders of the identity values of every version in scope
// (not only from the VMs in scope: a VM that leaves a group of three leaves
// a group of two behind, reachable only through the values it held), then
// followed transitively through every value two or more VMs share, in the
// index's current state. Each group is then the group of the full run, with
// the same finding.
func duplicateIdentityScoped(c *Context) {
	x := c.Index
	seen := map[*estate.VM]bool{}
	walked := map[estate.IdentityKey]bool{}
	for _, v := range c.Scope().Versions {
		for _, k := range estate.IdentityKeys(v) {
			for _, start := range x.SharingIdentity(k) {
				if seen[start] {
					continue
				}
				if group, values := identityGroup(x, start, seen, walked); len(group) > 1 {
					emitIdentityGroup(c, group, values)
				}
			}
		}
	}
}

// identityGroup walks from start through every identity value that two or
// more VMs hold, to the whole group of start, and the values its members
// share. seen and walked mark the VMs and values met, across groups.
func identityGroup(x *estate.Index, start *estate.VM, seen map[*estate.VM]bool, walked map[estate.IdentityKey]bool) ([]*estate.VM, *[idKinds][]string) {
	seen[start] = true
	group := []*estate.VM{start}
	var values [idKinds][]string
	for i := 0; i < len(group); i++ {
		for _, key := range estate.IdentityKeys(group[i]) {
			holders := x.SharingIdentity(key)
			if len(holders) < 2 || walked[key] {
				continue
			}
			walked[key] = true
			values[key.Kind] = append(values[key.Kind], key.Value)
			for _, h := range holders {
				if !seen[h] {
					seen[h] = true
					group = append(group, h)
				}
			}
		}
	}
	return group, &values
}

// emitIdentityGroup makes the finding of one identity group: its members
// (reordered here) and the values they share, by kind. The first member by
// name is the subject, so that the finding does not depend on the order in
// which the group was found.
func emitIdentityGroup(c *Context, group []*estate.VM, values *[idKinds][]string) {
	sort.Slice(group, func(i, j int) bool { return group[i].Name < group[j].Name })
	subject := group[0]
	related := make([]string, 0, len(group)-1)
	names := make([]string, 0, len(group)-1)
	for _, vm := range group[1:] {
		related = append(related, VMRef(vm.Name))
		names = append(names, vm.Name)
	}
	ev := map[string]any{"vms": len(group)}
	var kinds []string
	for kind, vs := range values {
		if len(vs) == 0 {
			continue
		}
		sort.Strings(vs)
		ev[idEvidenceKeys[kind]] = capList(vs)
		kinds = append(kinds, idKindWords[kind])
	}
	c.Emit(Finding{
		Subject: VMRef(subject.Name),
		Related: related,
		Pos:     subject.Pos,
		Message: fmt.Sprintf("VM %s shares its %s with %s; give each copy its own identity.",
			subject.Name, joinAnd(kinds), listNames(names, "VM", "VMs")),
		Evidence: ev,
	})
}

// idValue is one normalized identity value of one VM.
type idValue struct {
	value string
	vm    int32
	kind  uint8
}

// identityValues lists the normalized identity values of every VM, in VM
// order; empty values are unknown and left out.
func identityValues(vms []*estate.VM) []idValue {
	n := 3 * len(vms)
	for _, vm := range vms {
		n += len(vm.Identity.SSHHostKeys) + len(vm.NICs)
	}
	out := make([]idValue, 0, n)
	for i, vm := range vms {
		estate.IdentityValues(vm, func(kind estate.IdentityKind, v string) {
			out = append(out, idValue{value: v, vm: int32(i), kind: kind})
		})
	}
	return out
}

// forEachShared calls fn for each (kind, value) that two or more different
// VMs hold, with the indexes into vals of one entry per holder, in VM order
// (a VM that repeats its own value, say one MAC on two NICs, is no clone).
//
// It radix-sorts 64-bit keys, a hash of (kind, value) in the high bits and
// the index into vals in the low bits, then walks runs of equal hashes,
// comparing the values themselves so that a hash collision never joins two
// VMs. At 100k VMs with six values each this beats a map from value to
// first VM, whose random probes miss the cache.
//
// It returns the sorted values, which answer "who holds this value" (see
// sortedValues) for judging changes later.
func forEachShared(vals []idValue, fn func(same []int32)) *sortedValues {
	if len(vals) < 2 {
		return nil
	}
	idxBits := uint(bits.Len(uint(len(vals))))
	seed := maphash.MakeSeed()
	keys := make([]uint64, len(vals))
	for i, v := range vals {
		keys[i] = idHash(seed, v.kind, v.value)<<idxBits | uint64(i)
	}
	radixSort(keys)
	sv := &sortedValues{keys: keys, vals: vals, idxBits: idxBits, seed: seed}
	mask := uint64(1)<<idxBits - 1
	var run, same []int32
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi]>>idxBits == keys[lo]>>idxBits {
			hi++
		}
		if hi-lo > 1 {
			// Keys of one hash are in vals order, hence in VM order. Split
			// the run by actual value; it almost always is one value.
			run = run[:0]
			for _, k := range keys[lo:hi] {
				run = append(run, int32(k&mask))
			}
			for len(run) > 0 {
				v0 := vals[run[0]]
				same = append(same[:0], run[0])
				rest := run[:0]
				for _, k := range run[1:] {
					v := vals[k]
					switch {
					case v.kind != v0.kind || v.value != v0.value:
						rest = append(rest, k)
					case v.vm != vals[same[len(same)-1]].vm:
						same = append(same, k)
					}
				}
				if len(same) > 1 {
					fn(same)
				}
				run = rest
			}
		}
		lo = hi
	}
	return sv
}

func idHash(seed maphash.Seed, kind estate.IdentityKind, value string) uint64 {
	return maphash.String(seed, value) ^ (uint64(kind)+1)*0x9e3779b97f4a7c15
}

// sortedValues is every identity value of an estate, sorted by hash: the
// by-product of VG201's full run. It answers which VMs hold a value by
// binary search, so that judging a change needs no map of all values (whose
// building cost a quarter of a `vguard plan` on 100k VMs).
type sortedValues struct {
	keys    []uint64
	vals    []idValue
	idxBits uint
	seed    maphash.Seed
	vms     []*estate.VM
}

// Holders lists the VMs that held k when the values were taken.
func (sv *sortedValues) Holders(k estate.IdentityKey) []*estate.VM {
	h := idHash(sv.seed, k.Kind, k.Value) << sv.idxBits >> sv.idxBits
	i := sort.Search(len(sv.keys), func(i int) bool { return sv.keys[i]>>sv.idxBits >= h })
	mask := uint64(1)<<sv.idxBits - 1
	var out []*estate.VM
	for ; i < len(sv.keys) && sv.keys[i]>>sv.idxBits == h; i++ {
		v := sv.vals[sv.keys[i]&mask]
		if v.kind == k.Kind && v.value == k.Value {
			if vm := sv.vms[v.vm]; len(out) == 0 || out[len(out)-1] != vm {
				out = append(out, vm)
			}
		}
	}
	return out
}

// radixSort sorts keys in place, least significant byte first.
func radixSort(keys []uint64) {
	buf := make([]uint64, len(keys))
	src, dst := keys, buf
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for _, k := range src {
			count[byte(k>>shift)]++
		}
		if count[byte(src[0]>>shift)] == len(src) {
			continue // every key has this byte: nothing to do
		}
		pos := 0
		for b := range count {
			pos, count[b] = pos+count[b], pos
		}
		for _, k := range src {
			b := byte(k >> shift)
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
}

// runMultiWriter is VG202: one pass over the VMs' credentials collects the
// writers of each single-writer datastore; a scoped run asks the index for
// the credential holders of each datastore in scope instead.
func runMultiWriter(c *Context) {
	x := c.Index
	writers := map[string][]string{}
	addWriter := func(vm *estate.VM, cr estate.Credential) {
		if cr.Access != estate.AccessWrite {
			return
		}
		ds := x.Datastores[cr.Datastore]
		if ds == nil || ds.Writers != estate.WritersSingle {
			return
		}
		w := writers[ds.Name]
		if len(w) > 0 && w[len(w)-1] == vm.Name {
			return // a second write credential of the same VM
		}
		writers[ds.Name] = append(w, vm.Name)
	}
	if c.Scoped() {
		for _, ds := range c.Datastores() {
			if ds.Writers != estate.WritersSingle {
				continue
			}
			for _, vm := range x.CredentialHolders(ds.Name) {
				for _, cr := range vm.Credentials {
					if cr.Datastore == ds.Name {
						addWriter(vm, cr)
					}
				}
			}
		}
	} else {
		for _, vm := range c.VMs() {
			for _, cr := range vm.Credentials {
				addWriter(vm, cr)
			}
		}
	}
	for _, ds := range c.Datastores() {
		w := writers[ds.Name]
		if len(w) < 2 {
			continue
		}
		sort.Strings(w)
		related := make([]string, len(w))
		for i, name := range w {
			related[i] = VMRef(name)
		}
		c.Emit(Finding{
			Subject: DatastoreRef(ds.Name),
			Related: related,
			Pos:     ds.Pos,
			Message: fmt.Sprintf("Datastore %s allows a single writer but %d VMs hold write credentials for it (%s); keep one writer.",
				ds.Name, len(w), listNames(w, "VM", "VMs")),
			Evidence: map[string]any{"writers": len(w), "vms": capList(w)},
		})
	}
}

// runMasterDrift is VG203. Drift is computed once per distinct pair of
// (master manifest, VM manifest) paths: a farm of 100k VMs built from a
// handful of masters costs a handful of comparisons. A finding depends on
// its VM alone (and on image manifests, which no change alters), so a scoped
// run judges the VMs in scope.
func runMasterDrift(c *Context) {
	if c.Files == nil {
		return
	}
	x := c.Index
	type result struct {
		drift *manifest.Drift
		ok    bool
	}
	memo := map[[2]string]result{}
	var errs fileErrors
	defer errs.report(c)
	for _, vm := range judgedVMs(c) {
		if vm.Image == nil || vm.Manifest == "" {
			continue
		}
		im := x.Images[*vm.Image]
		if im == nil || !im.Master || im.Manifest == "" || im.Manifest == vm.Manifest {
			continue
		}
		key := [2]string{im.Manifest, vm.Manifest}
		r, seen := memo[key]
		if !seen {
			r.drift, r.ok = drift(c.Files, &errs, im, vm)
			memo[key] = r
		} else if !r.ok {
			errs.add(vm.Manifest, "manifest", "vm", vm.Name, vm.Pos, nil) // counts a repeat
		}
		if !r.ok || r.drift.Empty() {
			continue
		}
		d := r.drift
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Related: []string{ImageRef(im.Ref())},
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s has drifted from its master %s in %s (%d added, %d removed, %d modified, e.g. %s); reconcile it with the master.",
				vm.Name, im.Ref(), plural(d.Total(), "path", "paths"), len(d.Added), len(d.Removed), len(d.Modified), d.Examples(1)[0]),
			Evidence: map[string]any{
				"added": len(d.Added), "removed": len(d.Removed), "modified": len(d.Modified),
				"examples": d.Examples(5),
			},
		})
	}
}

// drift reads the two manifests, recording an unreadable one against the
// object that names it, and compares them (through the SideFiles' own
// cache when it has one).
func drift(files SideFiles, errs *fileErrors, im *estate.Image, vm *estate.VM) (*manifest.Drift, bool) {
	base, err := files.Manifest(im.Manifest)
	if err != nil {
		errs.add(im.Manifest, "manifest", "image", im.Ref().String(), im.Pos, err)
		return nil, false
	}
	other, err := files.Manifest(vm.Manifest)
	if err != nil {
		errs.add(vm.Manifest, "manifest", "vm", vm.Name, vm.Pos, err)
		return nil, false
	}
	md, ok := files.(ManifestDiffer)
	if !ok {
		return manifest.Diff(base, other), true
	}
	d, err := md.Drift(im.Manifest, vm.Manifest)
	if err != nil { // both read above; only a SideFiles of its own can fail here
		errs.add(vm.Manifest, "manifest", "vm", vm.Name, vm.Pos, err)
		return nil, false
	}
	return d, true
}

// runBehindMaster is VG204: the newest version of each master name is in
// the index, so each VM is one lookup. A finding depends on its VM and on
// the newest version of its master. A scoped run judges the VMs in scope
// and, for each master in scope (one that gained a newer version), every VM
// made from it, which may be tens of thousands: those are read from the
// index's compact member list of the master, in name order, so that their
// findings need no sorting, and the findings of one image version share
// everything but their subject and position. That is why the message does
// not repeat the VM's name, which the subject gives.
func runBehindMaster(c *Context) {
	x := c.Index
	// What a finding says depends only on the image: worked out once per
	// image.
	memo := map[*estate.Image]*behindImage{}
	behindOf := func(im *estate.Image) *behindImage {
		if b := memo[im]; b != nil {
			return b
		}
		newest := estate.ImageRef{Name: im.Name, Version: x.NewestMaster[im.Name]}
		b := &behindImage{behind: newest.Version - im.Version}
		if b.behind > c.Policy.MasterLag {
			ref := im.Ref().String()
			b.related = []string{ImageRef(im.Ref())}
			b.message = fmt.Sprintf("Runs %s, %s behind the newest master %s (masterLag %d); roll the new master out to it.",
				ref, plural(b.behind, "version", "versions"), newest, c.Policy.MasterLag)
			// Shared by every finding of the image: reports only read it.
			b.evidence = map[string]any{
				"running": ref, "newest": newest.String(), "behind": b.behind, "masterLag": c.Policy.MasterLag,
			}
		}
		memo[im] = b
		return b
	}
	emit := func(subject string, pos estate.Pos, b *behindImage) {
		c.Emit(Finding{Subject: subject, Related: b.related, Pos: pos, Message: b.message, Evidence: b.evidence})
	}
	var masters map[string]bool
	if c.Scoped() {
		masters = c.Scope().Masters
		for name := range masters {
			behind := map[int]*behindImage{} // by version
			for _, im := range x.ImageVersions(name) {
				if !im.Master {
					continue // a VM of a non-master version is judged by no one
				}
				if b := behindOf(im); b.behind > c.Policy.MasterLag {
					behind[im.Version] = b
				}
			}
			if len(behind) == 0 {
				continue
			}
			// Counted first, so that the findings are appended without
			// growing the slice again and again.
			n := 0
			x.ImageMembers(name, func(m estate.ImageMember) {
				if behind[m.Version] != nil {
					n++
				}
			})
			c.reserve(n)
			x.ImageMembers(name, func(m estate.ImageMember) {
				if b := behind[m.Version]; b != nil {
					emit(m.Ref, m.Pos, b)
				}
			})
		}
	}
	for _, vm := range judgedVMs(c) {
		if vm.Image == nil || masters[vm.Image.Name] {
			continue // judged above, with its master
		}
		im := x.Images[*vm.Image]
		if im == nil || !im.Master {
			continue
		}
		if b := behindOf(im); b.behind > c.Policy.MasterLag {
			emit(VMRef(vm.Name), vm.Pos, b)
		}
	}
}

// behindImage is what the VG204 findings of one image version share.
type behindImage struct {
	behind   int
	related  []string
	message  string
	evidence map[string]any
}

// judgedVMs lists the VMs to judge as c.VMs() does, but in a scoped run in
// no particular order, for the per-VM checks whose findings and errors do
// not depend on it: the scope of a newer master version holds every VM of
// that master, tens of thousands on a large estate, and sorting them would
// cost more than judging them.
func judgedVMs(c *Context) []*estate.VM {
	if !c.Scoped() {
		return c.VMs()
	}
	out := make([]*estate.VM, 0, len(c.Scope().VMs))
	for name := range c.Scope().VMs {
		if vm := c.Index.VMs[name]; vm != nil {
			out = append(out, vm)
		}
	}
	return out
}

// plural writes "1 version" or "3 versions".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// joinAnd writes "a", "a and b" or "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// capList returns at most evidenceCap items of a sorted list.
func capList(s []string) []string {
	if len(s) > evidenceCap {
		return s[:evidenceCap]
	}
	return s
}

// listNames writes "a", "a and b", "a, b and c" or "a, b, c and 7 more VMs".
func listNames(names []string, one, many string) string {
	const show = 3
	switch n := len(names); {
	case n == 0:
		return "no " + many
	case n == 1:
		return one + " " + names[0]
	case n <= show+1:
		return many + " " + strings.Join(names[:n-1], ", ") + " and " + names[n-1]
	default:
		return many + " " + strings.Join(names[:show], ", ") + " and " + strconv.Itoa(n-show) + " more"
	}
}
