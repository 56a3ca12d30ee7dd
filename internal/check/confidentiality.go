package check

import (
	"fmt"

	"github.com/vguard-dev/vguard/internal/estate"
)

func confidentialityChecks() []*Check {
	return []*Check{
		{
			ID: "VG101", Name: "zone-hardening", Title: "VM below its zone's hardening minimum",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM has a NIC in a zone whose zoneHardening minimum is above the VM's securityLevel.",
			Remediation: "Move the NIC to a network of the VM's approved zone, or harden the VM to the zone's minimum before it joins.",
			Run:         runZoneHardening,
		},
	}
}

// runZoneHardening is VG101: one finding per VM, naming every network (and
// its zone) whose zone asks for more hardening than the VM has.
func runZoneHardening(c *Context) {
	x := c.Index
	for _, vm := range x.Estate.VMs {
		var related []string
		required := estate.SecurityLevel(0)
		for _, nic := range vm.NICs {
			z := x.ZoneOf(nic.Network)
			if z == nil {
				continue
			}
			min := c.Policy.ZoneHardening[z.Exposure]
			if vm.SecurityLevel >= min {
				continue
			}
			related = append(related, NetworkRef(nic.Network), ZoneRef(z.Name))
			required = max(required, min)
		}
		if related == nil {
			continue
		}
		sev := estate.SevHigh
		if vm.SecurityLevel == estate.LevelLow && x.Exposed(vm) {
			sev = estate.SevCritical
		}
		c.Emit(Finding{
			Severity: sev,
			Subject:  VMRef(vm.Name),
			Related:  related,
			Pos:      vm.Pos,
			Message: fmt.Sprintf("VM %s (securityLevel %s) is attached to a zone that requires at least %s.",
				vm.Name, vm.SecurityLevel, required),
			Evidence: map[string]any{"securityLevel": vm.SecurityLevel.String(), "required": required.String()},
		})
	}
}
