package check

import (
	"fmt"
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
			Run:         runDuplicateIdentity,
		},
		{
			ID: "VG202", Name: "multi-writer", Title: "Single-writer datastore written by several VMs",
			Pillar: Integrity, Severity: estate.SevCritical,
			Description: "A datastore with writers: single is written by two or more VMs (write credentials).",
			Remediation: "Keep one writer: revoke the write credential of the other VMs or give them read-only access.",
			Run:         runMultiWriter,
		},
		{
			ID: "VG203", Name: "master-drift", Title: "VM drifted from its master image",
			Pillar: Integrity, Severity: estate.SevMedium,
			Description: "A VM made from a master image has a manifest that differs from the master's manifest (ignoring the default ignore list).",
			Remediation: "Reconcile the VM with its master: fold a wanted change into a new master version and roll it out, or rebuild the VM from the master.",
			Run:         runMasterDrift,
		},
		{
			ID: "VG204", Name: "behind-master", Title: "VM behind the newest master",
			Pillar: Integrity, Severity: estate.SevLow,
			Description: "A VM runs a master image more than masterLag versions older than the newest version of that master.",
			Remediation: "Roll the newest master version out to the VM (`vguard rollout plan`).",
			Run:         runBehindMaster,
		},
	}
}

// evidenceCap bounds the lists in a finding's evidence.
const evidenceCap = 10

// Identity kinds of VG201, in the order evidence and messages name them.
const (
	idUUID = iota
	idMachineID
	idHostname
	idSSHHostKey
	idMAC
	idKinds
)

var idKindNames = [idKinds]string{"uuid", "machineId", "hostname", "sshHostKey", "mac"}

// idEvidenceKeys are the evidence keys of the shared values of each kind.
var idEvidenceKeys = [idKinds]string{"uuids", "machineIds", "hostnames", "sshHostKeys", "macs"}

type idKey struct {
	kind  uint8
	value string
}

// runDuplicateIdentity is VG201. Each identity value maps to the first VM
// that has it; a later VM with the same value is joined to that VM in a
// union-find, so VMs are grouped transitively (A shares a uuid with B, B a
// MAC with C: one group) without comparing pairs. One finding per group.
func runDuplicateIdentity(c *Context) {
	vms := c.Index.Estate.VMs
	first := make(map[idKey]int32, len(vms)*3)
	shared := map[idKey]bool{}
	parent := make([]int32, len(vms))
	for i := range parent {
		parent[i] = int32(i)
	}
	var find func(int32) int32
	find = func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	see := func(i int32, kind uint8, v string) {
		if v == "" {
			return
		}
		k := idKey{kind, v}
		j, ok := first[k]
		if !ok {
			first[k] = i
			return
		}
		if j == i {
			return // a VM repeating its own value (two NICs, one MAC) is no clone
		}
		shared[k] = true
		if ri, rj := find(i), find(j); ri != rj {
			// The lower index becomes the root so roots are stable.
			if ri < rj {
				parent[rj] = ri
			} else {
				parent[ri] = rj
			}
		}
	}
	for i, vm := range vms {
		id := &vm.Identity
		see(int32(i), idUUID, normHex32(id.UUID))
		see(int32(i), idMachineID, normHex32(id.MachineID))
		see(int32(i), idHostname, normHostname(id.Hostname))
		for _, k := range id.SSHHostKeys {
			see(int32(i), idSSHHostKey, strings.TrimSpace(k))
		}
		for _, nic := range vm.NICs {
			see(int32(i), idMAC, normMAC(nic.MAC))
		}
	}
	if len(shared) == 0 {
		return
	}
	// Gather the shared values and the members of each group by root.
	values := map[int32]*[idKinds][]string{}
	for k := range shared {
		r := find(first[k])
		v := values[r]
		if v == nil {
			v = &[idKinds][]string{}
			values[r] = v
		}
		v[k.kind] = append(v[k.kind], k.value)
	}
	members := make(map[int32][]*estate.VM, len(values))
	for i, vm := range vms {
		if r := find(int32(i)); values[r] != nil {
			members[r] = append(members[r], vm)
		}
	}
	for r, group := range members {
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
		for kind, vs := range values[r] {
			if len(vs) == 0 {
				continue
			}
			sort.Strings(vs)
			ev[idEvidenceKeys[kind]] = capList(vs)
			kinds = append(kinds, idKindNames[kind])
		}
		c.Emit(Finding{
			Subject: VMRef(subject.Name),
			Related: related,
			Pos:     subject.Pos,
			Message: fmt.Sprintf("VM %s shares its %s with %s; give each copy its own identity.",
				subject.Name, strings.Join(kinds, ", "), listNames(names, "VM", "VMs")),
			Evidence: ev,
		})
	}
}

// normHex32 normalizes a UUID or machine id: when it holds 32 hex digits
// (with any dashes, spaces or braces), those digits in lowercase, so that
// "{4C4C4544-...}" and "4c4c4544..." are one value; otherwise the trimmed,
// lowercased text.
func normHex32(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == '-' || c == ' ' || c == '{' || c == '}':
			continue
		default:
			return strings.ToLower(s)
		}
		if n == len(b) {
			return strings.ToLower(s)
		}
		b[n] = c
		n++
	}
	if n != len(b) {
		return strings.ToLower(s)
	}
	return string(b[:])
}

// normHostname compares hostnames as DNS does: case-insensitively and with
// or without the root's trailing dot.
func normHostname(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// normMAC writes a MAC as lowercase colon-separated octets, whether it was
// given as 52-54-00-AB-CD-EF, 52:54:00:ab:cd:ef or 5254.00ab.cdef; text that
// is not 12 hex digits is only lowercased, with '-' made ':'.
func normMAC(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	const hex = "0123456789abcdef"
	var digits [12]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ':' || c == '-' || c == '.':
			continue
		default:
			return strings.ReplaceAll(strings.ToLower(s), "-", ":")
		}
		if n == len(digits) {
			return strings.ReplaceAll(strings.ToLower(s), "-", ":")
		}
		digits[n] = hex[d]
		n++
	}
	if n != len(digits) {
		return strings.ReplaceAll(strings.ToLower(s), "-", ":")
	}
	var out [17]byte
	for i := 0; i < 6; i++ {
		out[i*3], out[i*3+1] = digits[i*2], digits[i*2+1]
		if i < 5 {
			out[i*3+2] = ':'
		}
	}
	if string(out[:]) == s {
		return s // already canonical: no new string
	}
	return string(out[:])
}

// runMultiWriter is VG202: one pass over the VMs' credentials collects the
// writers of each single-writer datastore.
func runMultiWriter(c *Context) {
	x := c.Index
	writers := map[string][]string{}
	for _, vm := range x.Estate.VMs {
		for _, cr := range vm.Credentials {
			if cr.Access != estate.AccessWrite {
				continue
			}
			ds := x.Datastores[cr.Datastore]
			if ds == nil || ds.Writers != estate.WritersSingle {
				continue
			}
			w := writers[ds.Name]
			if len(w) > 0 && w[len(w)-1] == vm.Name {
				continue // a second write credential of the same VM
			}
			writers[ds.Name] = append(w, vm.Name)
		}
	}
	for _, ds := range x.Estate.Datastores {
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
// handful of masters costs a handful of comparisons.
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
	for _, vm := range x.Estate.VMs {
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
			Message: fmt.Sprintf("VM %s has drifted from its master %s in %d paths (%d added, %d removed, %d modified, e.g. %s); reconcile it with the master.",
				vm.Name, im.Ref(), d.Total(), len(d.Added), len(d.Removed), len(d.Modified), d.Examples(1)[0]),
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
	if _, err := files.Manifest(im.Manifest); err != nil {
		errs.add(im.Manifest, "manifest", "image", im.Ref().String(), im.Pos, err)
		return nil, false
	}
	if _, err := files.Manifest(vm.Manifest); err != nil {
		errs.add(vm.Manifest, "manifest", "vm", vm.Name, vm.Pos, err)
		return nil, false
	}
	var d *manifest.Drift
	var err error
	if md, ok := files.(ManifestDiffer); ok {
		d, err = md.Drift(im.Manifest, vm.Manifest)
	} else {
		d, err = driftOf(files, im.Manifest, vm.Manifest)
	}
	if err != nil { // both read above; only a SideFiles of its own can fail here
		errs.add(vm.Manifest, "manifest", "vm", vm.Name, vm.Pos, err)
		return nil, false
	}
	return d, true
}

// runBehindMaster is VG204: the newest version of each master name is in
// the index, so each VM is one lookup.
func runBehindMaster(c *Context) {
	x := c.Index
	for _, vm := range x.Estate.VMs {
		if vm.Image == nil {
			continue
		}
		im := x.Images[*vm.Image]
		if im == nil || !im.Master {
			continue
		}
		newest := x.NewestMaster[im.Name]
		behind := newest - im.Version
		if behind <= c.Policy.MasterLag {
			continue
		}
		newestRef := estate.ImageRef{Name: im.Name, Version: newest}
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Related: []string{ImageRef(im.Ref())},
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s runs %s, %d versions behind the newest master %s (masterLag %d); roll the new master out to it.",
				vm.Name, im.Ref(), behind, newestRef, c.Policy.MasterLag),
			Evidence: map[string]any{
				"running": im.Ref().String(), "newest": newestRef.String(),
				"behind": behind, "masterLag": c.Policy.MasterLag,
			},
		})
	}
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
