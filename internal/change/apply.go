package change

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// applied is the net effect of a change on an index: for every VM it
// touched, the version before (nil when the change created it) and the
// version after (nil when it deleted it).
type applied struct {
	before map[string]*estate.VM
	after  map[string]*estate.VM
	names  []string // touched VM names, in first-touch order
	images []*estate.Image
	// masters are master names that gained a newer version: every VM of
	// them may fall behind (VG204).
	masters []string
	facts   check.Facts
	// origin is, for each clone, the source VM as it was before the change.
	origin map[string]*estate.VM
	// unsanitized lists the clones made without sanitize from a source with
	// identity values or credentials (VG502), by clone name.
	unsanitized map[string]*Operation
	// created names the VMs whose version after the change was created by
	// it: they did not move from anywhere (no VG501).
	created map[string]bool
}

// indexNames answers load.Names from an index.
type indexNames struct{ x *estate.Index }

func (n indexNames) Has(kind, name string) bool {
	switch kind {
	case "zone":
		return n.x.Zones[name] != nil
	case "network":
		return n.x.Networks[name] != nil
	case "hypervisor":
		return n.x.Hypervisors[name] != nil
	case "datastore":
		return n.x.Datastores[name] != nil
	}
	return false
}

func (n indexNames) HasImage(r estate.ImageRef) bool { return n.x.Images[r] != nil }

// applier applies one change's operations to an index, keeping what it
// needs to undo them.
type applier struct {
	x      *estate.Index
	c      *Change
	a      *applied
	errs   load.Errors
	exists func(what, path string) error // nil: os.Stat
}

// apply applies every operation of c to x in order. When an operation is
// invalid, every error is returned and x is left as it was; otherwise x is
// left in the after state (callers undo it).
func apply(x *estate.Index, c *Change, exists func(what, path string) error) (*applied, load.Errors) {
	ap := &applier{x: x, c: c, exists: exists, a: &applied{
		before: map[string]*estate.VM{}, after: map[string]*estate.VM{},
		origin: map[string]*estate.VM{}, unsanitized: map[string]*Operation{}, created: map[string]bool{},
	}}
	for _, op := range c.Operations {
		ap.op(op)
	}
	if len(ap.errs) > 0 {
		ap.a.undo(x)
		return nil, ap.errs
	}
	return ap.a, nil
}

func (ap *applier) errorf(op *Operation, field, format string, args ...any) {
	path := op.path()
	if field != "" {
		path += "." + field
	}
	ap.errs = append(ap.errs, &syntax.Error{File: ap.c.File, Line: op.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// vm returns the VM an operation names, reporting it when missing.
func (ap *applier) vm(op *Operation) *estate.VM {
	vm := ap.x.VMs[op.VM]
	if vm == nil {
		ap.errorf(op, "vm", "unknown vm %q", op.VM)
	}
	return vm
}

// replace swaps the index's VM old (nil: none) for nv (nil: none),
// recording the net effect.
func (ap *applier) replace(old, nv *estate.VM) {
	a := ap.a
	name := ""
	if old != nil {
		name = old.Name
		ap.x.RemoveVM(old)
	} else {
		name = nv.Name
	}
	if _, seen := a.after[name]; !seen {
		a.names = append(a.names, name)
		a.before[name] = old
	}
	if nv != nil {
		ap.x.AddVM(nv)
	}
	a.after[name] = nv
	if nv == nil {
		// A VM deleted is no longer the clone it may have been; a name
		// used again starts afresh.
		delete(a.origin, name)
		delete(a.unsanitized, name)
		delete(a.created, name)
	}
}

func (ap *applier) network(op *Operation, field, name string) bool {
	if ap.x.Networks[name] == nil {
		ap.errorf(op, field, "unknown network %q", name)
		return false
	}
	return true
}

func (ap *applier) op(op *Operation) {
	x, a := ap.x, ap.a
	switch op.Op {
	case OpMigrate:
		vm := ap.vm(op)
		if x.Hypervisors[op.ToHypervisor] == nil {
			ap.errorf(op, "toHypervisor", "unknown hypervisor %q", op.ToHypervisor)
			return
		}
		if vm == nil {
			return
		}
		nv := vm.Clone()
		nv.Hypervisor = op.ToHypervisor
		ap.replace(vm, nv)
		a.facts |= check.FactPlacement

	case OpAttachNIC:
		vm := ap.vm(op)
		if !ap.network(op, "network", op.Network) || vm == nil {
			return
		}
		nv := vm.Clone()
		nv.NICs = append(nv.NICs, estate.NIC{Pos: op.Pos, Network: op.Network, MAC: op.MAC, Ports: op.Ports})
		if !ap.validVM(op, nv) {
			return
		}
		ap.replace(vm, nv)
		a.facts |= check.FactNetworks

	case OpDetachNIC:
		vm := ap.vm(op)
		if !ap.network(op, "network", op.Network) || vm == nil {
			return
		}
		nv := vm.Clone()
		nv.NICs = slices.DeleteFunc(nv.NICs, func(n estate.NIC) bool {
			return n.Network == op.Network && (op.MAC == "" || estate.NormalizeMAC(n.MAC) == estate.NormalizeMAC(op.MAC))
		})
		if len(nv.NICs) == len(vm.NICs) {
			what := "no NIC"
			if op.MAC != "" {
				what = "no NIC with MAC " + op.MAC
			}
			ap.errorf(op, "network", "vm %q has %s on network %q", op.VM, what, op.Network)
			return
		}
		ap.replace(vm, nv)
		a.facts |= check.FactNetworks

	case OpMoveNIC:
		vm := ap.vm(op)
		okFrom := ap.network(op, "fromNetwork", op.FromNetwork)
		if !ap.network(op, "toNetwork", op.ToNetwork) || !okFrom || vm == nil {
			return
		}
		nv := vm.Clone()
		moved := 0
		for i := range nv.NICs {
			if nv.NICs[i].Network == op.FromNetwork {
				nv.NICs[i].Network = op.ToNetwork
				moved++
			}
		}
		if moved == 0 {
			ap.errorf(op, "fromNetwork", "vm %q has no NIC on network %q", op.VM, op.FromNetwork)
			return
		}
		ap.replace(vm, nv)
		a.facts |= check.FactNetworks

	case OpClone:
		src := ap.vm(op)
		if op.Name == "" {
			ap.errorf(op, "name", "must not be empty")
			return
		}
		if x.VMs[op.Name] != nil {
			ap.errorf(op, "name", "duplicate vm %q: a VM of that name exists", op.Name)
			return
		}
		if src == nil {
			return
		}
		nv := src.Clone()
		nv.Name, nv.Pos = op.Name, op.Pos
		if op.Sanitize {
			nv.Identity = estate.Identity{}
			for i := range nv.NICs {
				nv.NICs[i].MAC = ""
			}
			nv.Credentials = nil
		}
		if op.Set != nil && !ap.patch(op, nv) {
			return
		}
		if !ap.validVM(op, nv) {
			return
		}
		origin := src
		if b, touched := a.before[src.Name]; touched {
			origin = b
		}
		if o, isClone := a.origin[src.Name]; isClone {
			origin = o
		}
		ap.replace(nil, nv)
		a.origin[op.Name] = origin
		if !op.Sanitize && carriesIdentity(src) {
			a.unsanitized[op.Name] = op
		}
		a.facts |= check.FactsAll &^ check.FactImages

	case OpCreate:
		nv := &estate.VM{}
		errs := syntax.Decode(ap.c.File, op.Spec, op.path()+".spec", nv)
		if len(errs) > 0 {
			ap.errs = append(ap.errs, errs...)
			return
		}
		nv.Pos = op.Pos
		if x.VMs[nv.Name] != nil {
			ap.errorf(op, "spec.name", "duplicate vm %q: a VM of that name exists", nv.Name)
			return
		}
		load.DefaultVM(nv)
		ap.resolve(op, "spec", &nv.Manifest, &nv.Scan)
		if !ap.validVM(op, nv) {
			return
		}
		ap.replace(nil, nv)
		a.created[nv.Name] = true
		a.facts |= check.FactsAll &^ check.FactImages

	case OpDelete:
		vm := ap.vm(op)
		if vm == nil {
			return
		}
		ap.replace(vm, nil)
		a.facts |= check.FactsAll &^ check.FactImages

	case OpUpdate:
		vm := ap.vm(op)
		if vm == nil {
			return
		}
		nv := vm.Clone()
		if !ap.patch(op, nv) || !ap.validVM(op, nv) {
			return
		}
		ap.replace(vm, nv)
		a.facts |= setFacts(op.Set)

	case OpAddImage:
		im := &estate.Image{}
		errs := syntax.Decode(ap.c.File, op.Spec, op.path()+".spec", im)
		if len(errs) > 0 {
			ap.errs = append(ap.errs, errs...)
			return
		}
		im.Pos = op.Pos
		if im.Version < 1 {
			ap.errorf(op, "spec.version", "version must be an integer >= 1")
			return
		}
		if x.Images[im.Ref()] != nil {
			ap.errorf(op, "spec", "duplicate image %q: that version exists", im.Ref())
			return
		}
		ap.resolve(op, "spec", &im.Manifest, &im.Scan)
		if im.Master && im.Version > x.NewestMaster[im.Name] {
			a.masters = append(a.masters, im.Name)
		}
		x.AddImage(im)
		a.images = append(a.images, im)
		a.facts |= check.FactImages
	}
}

// carriesIdentity reports whether a clone of vm would copy identity values
// (uuid, machine id, hostname, SSH host keys, MACs) or credentials.
func carriesIdentity(vm *estate.VM) bool {
	if len(vm.Credentials) > 0 {
		return true
	}
	carries := false
	estate.IdentityValues(vm, func(estate.IdentityKind, string) { carries = true })
	return carries
}

// patch lays an operation's `set` over nv.
func (ap *applier) patch(op *Operation, nv *estate.VM) bool {
	if op.Set.Kind != syntax.MapNode {
		ap.errorf(op, "set", "want a mapping of VM fields")
		return false
	}
	if n := op.Set.Get("name"); n != nil {
		ap.errorf(op, "set.name", "set cannot rename a VM (clone it under the new name, then delete it)")
		return false
	}
	errs := syntax.DecodePatch(ap.c.File, op.Set, op.path()+".set", nv)
	if len(errs) > 0 {
		ap.errs = append(ap.errs, errs...)
		return false
	}
	if op.Set.Get("manifest") != nil || op.Set.Get("scan") != nil {
		m, s := &nv.Manifest, &nv.Scan
		if op.Set.Get("manifest") == nil {
			m = new(string)
		}
		if op.Set.Get("scan") == nil {
			s = new(string)
		}
		ap.resolve(op, "set", m, s)
	}
	return true
}

// resolve makes the manifest and scan paths an operation gives relative to
// the change file's directory, and checks that they exist.
func (ap *applier) resolve(op *Operation, field string, paths ...*string) {
	for i, p := range paths {
		if *p == "" {
			continue
		}
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(ap.c.dir(), *p)
		}
		what := [...]string{"manifest", "scan"}[i]
		if ap.exists != nil {
			if err := ap.exists([...]string{"manifest", "scan report"}[i], *p); err != nil {
				ap.errorf(op, field+"."+what, "cannot read %s %q: %v", what, *p, err)
			}
		} else if _, err := os.Stat(*p); err != nil {
			ap.errorf(op, field+"."+what, "cannot read %s %q: %v", what, *p, err.(*os.PathError).Err)
		}
	}
}

// validVM checks a VM an operation produces against the index.
func (ap *applier) validVM(op *Operation, vm *estate.VM) bool {
	before := len(ap.errs)
	prefix := op.path()
	switch {
	case op.Spec != nil:
		prefix += ".spec"
	case op.Set != nil:
		prefix += ".set"
	}
	load.CheckVM(vm, prefix, indexNames{ap.x}, func(_ estate.Pos, path, msg string) {
		line := op.Line
		switch {
		case op.Spec != nil || op.Set != nil:
			// Point at the field in the operation's set or spec.
			n := op.Spec
			if n == nil {
				n = op.Set
			}
			if l := lineAt(n, strings.TrimPrefix(path, prefix)); l > 0 {
				line = l
			}
		case nicField.MatchString(path):
			// attach-nic: the new NIC's fields are the operation's own.
			path = op.path() + "." + nicField.FindStringSubmatch(path)[1]
		}
		ap.errs = append(ap.errs, &syntax.Error{File: ap.c.File, Line: line, Path: path, Msg: msg})
	})
	return len(ap.errs) == before
}

var (
	nicField = regexp.MustCompile(`\.nics\[\d+\]\.(network|mac)$`)
	pathStep = regexp.MustCompile(`\.([A-Za-z]+)|\[(\d+)\]`)
)

// lineAt is the line of the node at path (".nics[0].network") under n, or
// of the deepest node on the way that exists; 0 when none.
func lineAt(n *syntax.Node, path string) int {
	line := 0
	for _, m := range pathStep.FindAllStringSubmatch(path, -1) {
		switch {
		case n == nil:
			return line
		case m[1] != "":
			n = n.Get(m[1])
		default:
			i, _ := strconv.Atoi(m[2])
			if n.Kind != syntax.SeqNode || i >= len(n.Items) {
				return line
			}
			n = n.Items[i]
		}
		if n != nil {
			line = n.Line
		}
	}
	return line
}

// setFacts says which facts an update's `set` touches.
func setFacts(set *syntax.Node) check.Facts {
	var f check.Facts
	for i := 0; i+1 < len(set.Items); i += 2 {
		switch set.Items[i].Value {
		case "hypervisor":
			f |= check.FactPlacement
		case "nics":
			f |= check.FactNetworks
		case "identity":
			f |= check.FactIdentity
		case "credentials":
			f |= check.FactCredentials
		case "image", "manifest", "scan":
			f |= check.FactImage
		case "resources":
			f |= check.FactResources
		default: // owner, app, environment, securityLevel, homeZone, gateway, labels
			f |= check.FactProfile
		}
	}
	return f
}

// undo takes x back to the state before the change.
func (a *applied) undo(x *estate.Index) {
	for _, im := range slices.Backward(a.images) {
		x.RemoveImage(im)
	}
	for _, name := range a.names {
		if v := a.after[name]; v != nil {
			x.RemoveVM(v)
		}
	}
	for _, name := range a.names {
		if v := a.before[name]; v != nil {
			x.AddVM(v)
		}
	}
}

// redo takes x from the state before the change to the state after it.
func (a *applied) redo(x *estate.Index) {
	for _, name := range a.names {
		if v := a.before[name]; v != nil {
			x.RemoveVM(v)
		}
	}
	for _, name := range a.names {
		if v := a.after[name]; v != nil {
			x.AddVM(v)
		}
	}
	for _, im := range a.images {
		x.AddImage(im)
	}
}
