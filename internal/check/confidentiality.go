package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

func confidentialityChecks() []*Check {
	return []*Check{
		{
			ID: "VG101", Name: "zone-hardening", Title: "VM below its zone's hardening minimum",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM has a NIC in a zone whose zoneHardening minimum is above the VM's securityLevel.",
			Remediation: "Move the NIC to a network of the VM's approved zone, or harden the VM to the zone's minimum before it joins.",
			Reads:       FactNetworks | FactProfile | FactExistence,
			Run:         runZoneHardening,
		},
		{
			ID: "VG102", Name: "off-home-zone", Title: "VM attached outside its home zone",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM with a homeZone has a NIC in another zone (gateways excepted).",
			Remediation: "Move the NIC back to a network of the VM's home zone; if the VM really belongs elsewhere, re-approve it for that zone and update homeZone.",
			Reads:       FactNetworks | FactProfile | FactExistence,
			Run:         runOffHomeZone,
		},
		{
			ID: "VG103", Name: "zone-bridge", Title: "VM bridges security zones",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM that is not a gateway has NICs in two or more zones.",
			Remediation: "Remove the NICs that join the extra zones and route the traffic through a firewall; if the VM is a firewall, router or VPN appliance, mark it gateway: true.",
			Reads:       FactNetworks | FactProfile | FactExistence,
			Run:         runZoneBridge,
		},
		{
			ID: "VG104", Name: "unauthorized-datastore-access", Title: "Credential for a datastore the VM is not authorized for",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM holds a credential for a datastore whose authorizedApps does not list the VM's app, or (without authorizedApps) whose owner differs from the VM's owner.",
			Remediation: "Remove the credential from the VM and rotate it; if the access is intended, add the VM's app to the datastore's authorizedApps.",
			Reads:       FactCredentials | FactProfile | FactExistence,
			Run:         runUnauthorizedDatastore,
		},
		{
			ID: "VG106", Name: "exposed-coresidency", Title: "Weakly hardened VM shares a host with an internet-exposed VM",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM below exposedHostMinLevel, itself not internet-exposed, shares a hypervisor with an internet-exposed VM.",
			Remediation: "Migrate the VM to a hypervisor without internet-exposed VMs (or keep exposed VMs on dedicated hosts), or harden it to exposedHostMinLevel.",
			Reads:       FactPlacement | FactNetworks | FactProfile | FactExistence,
			Run:         runExposedCoresidency,
		},
		{
			ID: "VG107", Name: "sensitive-data-shared-host", Title: "VM with sensitive data access shares a host with another owner",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A VM holding a credential to a datastore at or above dedicatedClassification shares a hypervisor with a VM of another owner.",
			Remediation: "Run the VM on a hypervisor dedicated to its owner, for example with a placement rule, or migrate the other owners' VMs away.",
			Reads:       FactPlacement | FactCredentials | FactProfile | FactExistence,
			Run:         runSensitiveSharedHost,
		},
		{
			ID: "VG108", Name: "management-plane-exposure", Title: "Hypervisor management or migration traffic exposed",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A hypervisor's management network is in a public or partner zone or attached by a guest VM, or its unencrypted migration traffic runs on such a network.",
			Remediation: "Put management and migration traffic on dedicated networks in an internal or restricted zone that no guest VM attaches to, and turn on migration encryption.",
			Reads:       FactNetworks | FactExistence,
			Run:         runManagementExposure,
		},
		{
			ID: "VG109", Name: "exposed-sensitive-port", Title: "Sensitive port reachable from the internet",
			Pillar: Confidentiality, Severity: estate.SevHigh,
			Description: "A port in sensitivePorts on an internet-exposed NIC is reachable from the internet through the firewalls that protect its network.",
			Remediation: "Stop listening on the port on the exposed NIC, or add a firewall rule that denies it from the internet before any rule that allows it.",
			Reads:       FactNetworks | FactExistence,
			Run:         runExposedSensitivePort,
		},
	}
}

// runZoneHardening is VG101: one finding per VM, naming every network (and
// its zone) whose zone asks for more hardening than the VM has.
func runZoneHardening(c *Context) {
	x := c.Index
	for _, vm := range c.VMs() {
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

// runOffHomeZone is VG102: one finding per VM with a homeZone, naming every
// network (and its zone) outside that zone. Gateways exist to join zones, so
// they are exempt. A NIC on a network whose zone is unknown is not judged.
func runOffHomeZone(c *Context) {
	x := c.Index
	for _, vm := range c.VMs() {
		if vm.HomeZone == "" || vm.Gateway {
			continue
		}
		var related, zones []string
		for _, nic := range vm.NICs {
			z := x.ZoneOf(nic.Network)
			if z == nil || z.Name == vm.HomeZone {
				continue
			}
			related = append(related, NetworkRef(nic.Network), ZoneRef(z.Name))
			if !slices.Contains(zones, z.Name) {
				zones = append(zones, z.Name)
			}
		}
		if related == nil {
			continue
		}
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Related: related,
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s, approved for zone %s, is attached to zone %s.",
				vm.Name, vm.HomeZone, strings.Join(zones, ", ")),
			Evidence: map[string]any{"homeZone": vm.HomeZone, "zones": zones},
		})
	}
}

// runZoneBridge is VG103: a non-gateway VM whose NICs reach two or more
// zones joins them past every firewall. The finding names all of its networks
// and zones, since any of them may be the wrong one.
func runZoneBridge(c *Context) {
	x := c.Index
	for _, vm := range c.VMs() {
		if vm.Gateway || len(vm.NICs) < 2 {
			continue
		}
		zs := x.ZonesOf(vm)
		if len(zs) < 2 {
			continue
		}
		related := make([]string, 0, len(vm.NICs)+len(zs))
		zones := make([]string, 0, len(zs))
		for _, z := range zs {
			related = append(related, ZoneRef(z.Name))
			zones = append(zones, z.Name)
		}
		for _, nic := range vm.NICs {
			if x.ZoneOf(nic.Network) != nil {
				related = append(related, NetworkRef(nic.Network))
			}
		}
		c.Emit(Finding{
			Subject: VMRef(vm.Name),
			Related: related,
			Pos:     vm.Pos,
			Message: fmt.Sprintf("VM %s is not a gateway but bridges zones %s.",
				vm.Name, strings.Join(zones, ", ")),
			Evidence: map[string]any{"zones": zones},
		})
	}
}

// runUnauthorizedDatastore is VG104: one finding per (VM, datastore) the VM
// holds a credential for without being authorized. authorizedApps, when the
// datastore has it, is the whole rule (a VM of the owning team but another
// app is still unauthorized); otherwise the owners must match.
//
// Unknown facts do not fire: a VM without an app against authorizedApps, or
// a VM or datastore without an owner when owners are compared. That follows
// documents.md ("missing optional facts mean unknown"); an unlabelled VM is a
// gap in the inventory, not proof of misuse.
func runUnauthorizedDatastore(c *Context) {
	x := c.Index
	for _, vm := range c.VMs() {
		for i, cred := range vm.Credentials {
			if seenDatastore(vm.Credentials[:i], cred.Datastore) {
				continue
			}
			d := x.Datastores[cred.Datastore]
			if d == nil {
				continue
			}
			var why string
			var ev map[string]any
			switch {
			case d.AuthorizedApps != nil:
				// An allow-list denies what it does not list: a VM of no
				// known app is not an authorized app (and `authorizedApps:
				// []` authorizes none).
				if vm.App != "" && slices.Contains(d.AuthorizedApps, vm.App) {
					continue
				}
				why = fmt.Sprintf("app %s is not in its authorizedApps", vm.App)
				if vm.App == "" {
					why = "the VM names no app and the datastore admits only its authorizedApps"
				}
				ev = map[string]any{"app": vm.App, "authorizedApps": d.AuthorizedApps}
			case d.Owner != "" && vm.Owner != "" && d.Owner != vm.Owner:
				why = fmt.Sprintf("it belongs to %s, not %s", d.Owner, vm.Owner)
				ev = map[string]any{"owner": vm.Owner, "datastoreOwner": d.Owner}
			default:
				continue
			}
			ev["datastore"], ev["classification"] = d.Name, d.Classification.String()
			ev["access"] = strongestAccess(vm.Credentials[i:], d.Name).String()
			sev := estate.SevHigh
			if d.Classification >= estate.ClassConfidential {
				sev = estate.SevCritical
			}
			c.Emit(Finding{
				Severity: sev,
				Subject:  VMRef(vm.Name),
				Related:  []string{DatastoreRef(d.Name)},
				Pos:      vm.Pos,
				Message: fmt.Sprintf("VM %s holds a credential for %s datastore %s although %s.",
					vm.Name, d.Classification, d.Name, why),
				Evidence: ev,
			})
		}
	}
}

func seenDatastore(creds []estate.Credential, name string) bool {
	for _, cr := range creds {
		if cr.Datastore == name {
			return true
		}
	}
	return false
}

// strongestAccess is write if any of creds writes to the datastore, else read.
func strongestAccess(creds []estate.Credential, datastore string) estate.Access {
	a := estate.AccessRead
	for _, cr := range creds {
		if cr.Datastore == datastore && cr.Access == estate.AccessWrite {
			a = estate.AccessWrite
		}
	}
	return a
}

// runExposedCoresidency is VG106. Each hypervisor's internet-exposed VMs are
// found once; every weakly hardened, unexposed VM on it then gets one finding
// that names them all. A finding depends only on the VMs of its hypervisor,
// so a scoped run judges the whole neighbourhood of each hypervisor in scope.
func runExposedCoresidency(c *Context) {
	x := c.Index
	min := c.Policy.ExposedHostMinLevel
	for _, h := range c.Hypervisors() {
		var related []string
		var weak []*estate.VM
		for _, vm := range x.VMsOn[h.Name] {
			switch {
			case x.Exposed(vm):
				related = append(related, VMRef(vm.Name))
			case vm.SecurityLevel < min:
				weak = append(weak, vm)
			}
		}
		if related == nil || weak == nil {
			continue
		}
		exposed := len(related)
		related = append(related, HypervisorRef(h.Name))
		for _, vm := range weak {
			c.Emit(Finding{
				Subject: VMRef(vm.Name),
				Related: slices.Clone(related),
				Pos:     vm.Pos,
				Message: fmt.Sprintf("VM %s (securityLevel %s, below %s) runs on hypervisor %s with %d internet-exposed VM(s).",
					vm.Name, vm.SecurityLevel, min, h.Name, exposed),
				Evidence: map[string]any{
					"securityLevel": vm.SecurityLevel.String(), "required": min.String(),
					"hypervisor": h.Name, "exposedVMs": exposed,
				},
			})
		}
	}
}

// runSensitiveSharedHost is VG107. Per hypervisor, VMs are grouped by owner
// once; the list of "other owners' VMs" is then built once per owner present
// and shared by every sensitive VM of that owner, so the work is bounded by
// the size of the findings rather than by pairs of VMs. As for VG106, a
// scoped run judges every VM of each hypervisor in scope.
//
// Owners are facts that may be missing: a sensitive VM without an owner does
// not fire (it cannot be told apart from its neighbours), and a neighbour
// without an owner does not count as another owner.
func runSensitiveSharedHost(c *Context) {
	x := c.Index
	min := c.Policy.DedicatedClassification
	for _, h := range c.Hypervisors() {
		vms := x.VMsOn[h.Name]
		// Most hosts hold no sensitive VM: find out before grouping owners.
		if !slices.ContainsFunc(vms, func(vm *estate.VM) bool { return vm.Owner != "" && holdsSensitive(x, vm, min) }) {
			continue
		}
		var owners []string
		byOwner := map[string][]string{}
		for _, vm := range vms {
			if vm.Owner == "" {
				continue
			}
			if _, ok := byOwner[vm.Owner]; !ok {
				owners = append(owners, vm.Owner)
			}
			byOwner[vm.Owner] = append(byOwner[vm.Owner], VMRef(vm.Name))
		}
		if len(owners) < 2 {
			continue
		}
		slices.Sort(owners)
		othersOf := map[string][]string{}
		for _, vm := range vms {
			if vm.Owner == "" {
				continue
			}
			stores, top := sensitiveStores(x, vm, min)
			if stores == nil {
				continue
			}
			others, ok := othersOf[vm.Owner]
			if !ok {
				for _, o := range owners {
					if o != vm.Owner {
						others = append(others, byOwner[o]...)
					}
				}
				othersOf[vm.Owner] = others
			}
			related := make([]string, 0, len(others)+len(stores)+1)
			related = append(related, HypervisorRef(h.Name))
			for _, s := range stores {
				related = append(related, DatastoreRef(s))
			}
			related = append(related, others...)
			otherOwners := slices.DeleteFunc(slices.Clone(owners), func(o string) bool { return o == vm.Owner })
			c.Emit(Finding{
				Subject: VMRef(vm.Name),
				Related: related,
				Pos:     vm.Pos,
				Message: fmt.Sprintf("VM %s of %s holds credentials to %s (%s) but shares hypervisor %s with VMs of %s.",
					vm.Name, vm.Owner, strings.Join(stores, ", "), classRange(min, top), h.Name, strings.Join(otherOwners, ", ")),
				Evidence: map[string]any{
					"owner": vm.Owner, "otherOwners": otherOwners, "hypervisor": h.Name,
					"datastores": stores, "classification": top.String(),
				},
			})
		}
	}
}

// classRange words the classification of the datastores a VG107 finding
// names: "restricted data" when they all sit at the bar, else "data
// classified confidential or higher" (the bar itself).
func classRange(bar, top estate.Classification) string {
	if bar >= top {
		return top.String() + " data"
	}
	return "data classified " + bar.String() + " or higher"
}

func holdsSensitive(x *estate.Index, vm *estate.VM, min estate.Classification) bool {
	for _, cr := range vm.Credentials {
		if d := x.Datastores[cr.Datastore]; d != nil && d.Classification >= min {
			return true
		}
	}
	return false
}

// sensitiveStores returns the datastores at or above min that vm holds a
// credential for (read or write), in credential order, and the highest
// classification among them.
func sensitiveStores(x *estate.Index, vm *estate.VM, min estate.Classification) ([]string, estate.Classification) {
	var out []string
	var top estate.Classification
	for _, cr := range vm.Credentials {
		d := x.Datastores[cr.Datastore]
		if d == nil || d.Classification < min || slices.Contains(out, d.Name) {
			continue
		}
		out = append(out, d.Name)
		top = max(top, d.Classification)
	}
	return out, top
}

// runManagementExposure is VG108: one finding per hypervisor, whose evidence
// lists every condition that holds. A management network must be neither in
// a public/partner zone nor shared with guests (any VM with a NIC on it);
// the same holds for the migration network unless migration is encrypted.
// The zone is related only when the zone is what fired.
func runManagementExposure(c *Context) {
	x := c.Index
	// Many hypervisors share a management network: name its guests once.
	samples := map[string]string{}
	for _, h := range managementJudged(c) {
		var related, reasons []string
		judge := func(role, network string) {
			if network == "" {
				return
			}
			if z := x.ZoneOf(network); z != nil && (z.Exposure == estate.ExposurePublic || z.Exposure == estate.ExposurePartner) {
				related = append(related, NetworkRef(network), ZoneRef(z.Name))
				reasons = append(reasons, fmt.Sprintf("%s network %s is in %s zone %s", role, network, z.Exposure, z.Name))
			}
			if guests := x.VMsOnNetwork[network]; len(guests) > 0 {
				related = append(related, NetworkRef(network))
				sample, ok := samples[network]
				if !ok {
					sample = nameSample(guests, 3)
					samples[network] = sample
				}
				reasons = append(reasons, fmt.Sprintf("%s network %s is attached by guest VMs %s", role, network, sample))
			}
		}
		judge("management", h.ManagementNetwork)
		if !h.MigrationEncrypted {
			judge("unencrypted migration", h.MigrationNetwork)
		}
		if reasons == nil {
			continue
		}
		ev := map[string]any{"reasons": reasons, "migrationEncrypted": strconv.FormatBool(h.MigrationEncrypted)}
		if h.ManagementNetwork != "" {
			ev["managementNetwork"] = h.ManagementNetwork
		}
		if h.MigrationNetwork != "" {
			ev["migrationNetwork"] = h.MigrationNetwork
		}
		c.Emit(Finding{
			Subject:  HypervisorRef(h.Name),
			Related:  related,
			Pos:      h.Pos,
			Message:  fmt.Sprintf("Hypervisor %s exposes its management plane: %s.", h.Name, strings.Join(reasons, "; ")),
			Evidence: ev,
		})
	}
}

// managementJudged returns the hypervisors VG108 judges. A finding depends
// on the hypervisor's own networks (which no change alters) and on the guests
// attached to them, so a scoped run judges the hypervisors whose management
// or migration network is in scope: those whose guests a change can alter.
// They need not be in the scope's hypervisors, since the guests run anywhere.
func managementJudged(c *Context) []*estate.Hypervisor {
	if !c.Scoped() {
		return c.Index.Estate.Hypervisors
	}
	var out []*estate.Hypervisor
	seen := map[*estate.Hypervisor]bool{}
	for n := range c.Scope().Networks {
		for _, h := range c.Index.HypervisorsUsingNetwork(n) {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// nameSample names the first n VMs by name, then how many more there are,
// so that a network shared by thousands of guests still gives a short
// message. The index's lists change order as VMs come and go, so the sample
// is taken by name: the n smallest, found in one pass without sorting all.
func nameSample(vms []*estate.VM, n int) string {
	names := make([]string, 0, n+1)
	for _, vm := range vms {
		i, _ := slices.BinarySearch(names, vm.Name)
		if i < n {
			names = slices.Insert(names, i, vm.Name)[:min(len(names)+1, n)]
		}
	}
	s := strings.Join(names, ", ")
	if len(vms) > n {
		s += fmt.Sprintf(" and %d more", len(vms)-n)
	}
	return s
}

// runExposedSensitivePort is VG109: one finding per (VM, internet-exposed
// network) listing the sensitive ports the VM listens on there that every
// firewall protecting the network lets in from the internet. A NIC without
// ports is unknown and not judged. The firewall verdict depends only on
// (network, port), so it is computed once per pair.
func runExposedSensitivePort(c *Context) {
	x := c.Index
	type netPort struct {
		network string
		port    int
	}
	verdicts := map[netPort]bool{}
	reachable := func(network string, port int) bool {
		k := netPort{network, port}
		if v, ok := verdicts[k]; ok {
			return v
		}
		v := true
		for _, f := range x.FirewallsOf[network] {
			if !allowsFromInternet(f, port) {
				v = false
				break
			}
		}
		verdicts[k] = v
		return v
	}
	for _, vm := range c.VMs() {
		var nets []string
		var open map[string][]int
		for _, nic := range vm.NICs {
			if len(nic.Ports) == 0 {
				continue
			}
			if z := x.ZoneOf(nic.Network); z == nil || z.Exposure != estate.ExposurePublic {
				continue
			}
			for _, p := range c.Policy.SensitivePorts {
				if !inRanges(nic.Ports, p) || !reachable(nic.Network, p) {
					continue
				}
				if open == nil {
					open = map[string][]int{}
				}
				ps, seen := open[nic.Network]
				if !seen {
					nets = append(nets, nic.Network)
				}
				if !slices.Contains(ps, p) {
					open[nic.Network] = append(ps, p)
				}
			}
		}
		for _, n := range nets {
			ports := open[n]
			slices.Sort(ports)
			words := make([]string, len(ports))
			for i, p := range ports {
				words[i] = strconv.Itoa(p)
			}
			fws := x.FirewallsOf[n]
			related := make([]string, 0, len(fws)+1)
			related = append(related, NetworkRef(n))
			fwNames := make([]string, 0, len(fws))
			for _, f := range fws {
				related = append(related, FirewallRef(f.Name))
				fwNames = append(fwNames, f.Name)
			}
			through := "no firewall protects it"
			if len(fwNames) > 0 {
				through = "firewall " + fwNames[0] + " lets them in from the internet"
				if len(fwNames) > 1 {
					through = "firewalls " + strings.Join(fwNames, ", ") + " all let them in from the internet"
				}
			}
			c.Emit(Finding{
				Subject: VMRef(vm.Name),
				Related: related,
				Pos:     vm.Pos,
				Message: fmt.Sprintf("VM %s listens on sensitive port(s) %s on internet-exposed network %s, where %s.",
					vm.Name, strings.Join(words, ", "), n, through),
				Evidence: map[string]any{"ports": words, "network": n, "firewalls": fwNames},
			})
		}
	}
}

// allowsFromInternet reports whether f lets internet traffic to port through:
// the first rule that matches internet traffic (from `internet` or `any`) and
// the port decides, else the default action. Rules from a zone or network
// name are about internal traffic and never match the internet. A firewall
// with no default action (never after loading) denies.
func allowsFromInternet(f *estate.Firewall, port int) bool {
	for i := range f.Rules {
		r := &f.Rules[i]
		if (r.From == estate.FromInternet || r.From == estate.FromAny) && r.MatchesPort(port) {
			return r.Action == estate.ActionAllow
		}
	}
	return f.DefaultAction == estate.ActionAllow
}

func inRanges(rs []estate.PortRange, p int) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}
