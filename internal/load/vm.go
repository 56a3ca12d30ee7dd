package load

import (
	"fmt"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// Bounds on capacities and resources: far beyond any machine, and low
// enough that sums over a whole estate cannot overflow.
const (
	MaxCPUs      = 1 << 20
	MaxMemoryMiB = 1 << 40
)

// Names tells which objects exist, for validating a VM against an estate:
// the loader's own name sets, or the index a Change is applied to.
type Names interface {
	// Has reports whether an object of kind ("zone", "network",
	// "hypervisor", "datastore") and name exists.
	Has(kind, name string) bool
	// HasImage reports whether an image version exists.
	HasImage(r estate.ImageRef) bool
}

// CheckVM validates a VM's references and values; path is the VM's own
// path (e.g. "vms[3]") and report receives each problem.
func CheckVM(vm *estate.VM, path string, ns Names, report func(pos estate.Pos, path, msg string)) {
	ref := func(kind, name string, pos estate.Pos, field string) {
		if name != "" && !ns.Has(kind, name) {
			report(pos, field, fmt.Sprintf("unknown %s %q", kind, name))
		}
	}
	ref("hypervisor", vm.Hypervisor, vm.Pos, path+".hypervisor")
	ref("zone", vm.HomeZone, vm.Pos, path+".homeZone")
	for j, nic := range vm.NICs {
		np := syntax.IndexPath(path+".nics", j)
		ref("network", nic.Network, nic.Pos, np+".network")
		if nic.MAC != "" && !macRE.MatchString(nic.MAC) {
			report(nic.Pos, np+".mac", fmt.Sprintf("%q is not a MAC address", nic.MAC))
		}
	}
	for j, c := range vm.Credentials {
		ref("datastore", c.Datastore, c.Pos, syntax.IndexPath(path+".credentials", j)+".datastore")
	}
	if vm.Image != nil && vm.Image.Name != "" && !ns.HasImage(*vm.Image) {
		report(vm.Pos, path+".image", fmt.Sprintf("unknown image %q", vm.Image.String()))
	}
	if r := vm.Resources; r != nil && (r.CPUs < 0 || r.MemoryMiB < 0 || r.CPUs > MaxCPUs || r.MemoryMiB > MaxMemoryMiB) {
		report(vm.Pos, path+".resources", fmt.Sprintf("resources must be within 0..%d cpus and 0..%d MiB", MaxCPUs, MaxMemoryMiB))
	}
	if strings.TrimSpace(vm.Name) != vm.Name {
		report(vm.Pos, path+".name", fmt.Sprintf("name %q has leading or trailing spaces", vm.Name))
	}
}

// DefaultVM gives a VM the defaults of documents.md for what it leaves out.
func DefaultVM(vm *estate.VM) {
	if vm.Environment == 0 {
		vm.Environment = estate.EnvProd
	}
	if vm.SecurityLevel == 0 {
		vm.SecurityLevel = estate.LevelStandard
	}
}
