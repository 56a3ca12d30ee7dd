package gen

import (
	"io"
	"slices"
	"strconv"

	"github.com/vguard-dev/vguard/internal/estate"
)

// Violations. Each is a mistake an administrator makes, applied to a small
// share of otherwise clean objects; a VM carries at most one (touched), so
// that every finding has one cause. Strays are VMs placed where they must
// not be; they are counted out of the VM budget before the pools are
// filled, so that the estate has exactly the VMs asked for.

type stray uint8

const (
	strayLowOnDMZ         stray = iota // VG106: a weakly hardened VM beside exposed ones
	strayIntruder                      // VG107: another team's VM on a dedicated host
	strayRestrictedShared              // VG107: restricted data on a shared host
	strayWebOnPCI                      // VG401 (hypervisor scope): a web VM on a PCI host
	strayTestInPCIRack                 // VG401 (failureDomain scope): a test VM in a PCI rack
	strayPCIOffPCI                     // VG402 must: a PCI VM on a general host
	strayDevOnProd                     // VG402 mustNot: a dev VM on a production host
	numStray
)

func (w *world) planStrays() {
	has := func(ks ...kind) bool {
		for _, k := range ks {
			if len(w.byKind[k]) == 0 {
				return false
			}
		}
		return true
	}
	n := w.opts.VMs
	set := func(s stray, ok bool, rate float64) {
		if ok {
			w.budget[s] = w.count(n, rate)
		}
	}
	set(strayLowOnDMZ, has(kindDMZ, kindApp), 0.001)
	if has(kindCore, kindApp) && n <= 100*w.opts.Hypervisors {
		// Every restricted VM of the host fires (VG107, and VG304 for its
		// uncapped VMs), so intruders come without the minimum of one, and
		// not at all when hosts are packed with hundreds of VMs.
		w.budget[strayIntruder] = int(float64(n)*0.00005 + 0.5)
	}
	set(strayRestrictedShared, has(kindCore, kindApp), 0.0005)
	set(strayWebOnPCI, has(kindPCI, kindDMZ), 0.0003)
	set(strayTestInPCIRack, has(kindPCI, kindDev), 0.0003)
	set(strayPCIOffPCI, has(kindPCI, kindApp), 0.0005)
	set(strayDevOnProd, has(kindDev, kindApp), 0.0005)
	total := 0
	for _, c := range w.budget {
		total += c
	}
	if total > n/10 {
		w.budget = [numStray]int{}
	}
}

// appsWhere returns the apps that pass keep, in creation order.
func (w *world) appsWhere(keep func(*app) bool) []*app {
	var out []*app
	for _, a := range w.apps {
		if keep(a) && !a.sel {
			out = append(out, a)
		}
	}
	return out
}

// strayHost picks a host of a cluster of kind k that passes keep, preferring
// hosts no other stray went to (so that two strays do not add up to a
// finding neither would cause alone).
func (w *world) strayHost(k kind, keep func(*host) bool) *host {
	var fresh, all []*host
	for _, cl := range w.byKind[k] {
		for _, h := range cl.hosts {
			if keep != nil && !keep(h) {
				continue
			}
			all = append(all, h)
			if !h.stray {
				fresh = append(fresh, h)
			}
		}
	}
	if len(fresh) > 0 {
		all = fresh
	}
	if len(all) == 0 {
		return nil
	}
	h := all[w.rng.IntN(len(all))]
	h.stray = true
	return h
}

// pickVMs returns up to n untouched VMs that pass keep, chosen at random,
// and marks them touched.
func (w *world) pickVMs(rate float64, keep func(*vmInfo) bool) []*vmInfo {
	var cand []*vmInfo
	for _, v := range w.vms {
		if !v.touched && keep(v) {
			cand = append(cand, v)
		}
	}
	n := w.count(len(cand), rate)
	for i := range n {
		j := i + w.rng.IntN(len(cand)-i)
		cand[i], cand[j] = cand[j], cand[i]
		cand[i].touched = true
	}
	return cand[:n]
}

func boolPtr(b bool) *bool { return &b }

func (w *world) inject() {
	w.placeStrays()

	// VG101: a web VM that was never hardened (low ones are critical).
	for _, v := range w.pickVMs(0.02, func(v *vmInfo) bool { return v.app.role == roleWeb }) {
		v.vm.SecurityLevel = estate.LevelStandard
		if w.chance(0.35) {
			v.vm.SecurityLevel = estate.LevelLow
		}
	}
	// VG102: a VM approved for the restricted core (or, if it is there,
	// for corp) running on its app's VLAN elsewhere.
	for _, v := range w.pickVMs(0.0025, func(v *vmInfo) bool { return v.vm.HomeZone != "" && !v.vm.Gateway }) {
		v.vm.HomeZone = w.core.z.Name
		if v.app.zone == w.core {
			v.vm.HomeZone = w.corp.z.Name
		}
	}
	// VG103: a corp VM given a leg into the restricted core.
	for _, v := range w.pickVMs(0.01, func(v *vmInfo) bool {
		return v.app.role == roleApp && v.vm.HomeZone == "" && len(v.vm.NICs) == 1
	}) {
		net := w.core.guest[w.rng.IntN(len(w.core.guest))]
		v.vm.NICs = append(v.vm.NICs, estate.NIC{Network: net, MAC: w.mac()})
	}
	// VG104: a VM holding a credential to another app's datastore.
	others := w.appsWhere(func(a *app) bool { return a.data != nil && a.data.Classification != estate.ClassRestricted })
	for _, v := range w.pickVMs(0.0025, func(v *vmInfo) bool {
		switch v.app.role {
		case roleWeb, rolePartner, roleApp, rolePCI:
			return true
		}
		return false
	}) {
		for range 20 {
			o := others[w.rng.IntN(len(others))]
			if o.owner != v.vm.Owner && !slices.Contains(o.data.AuthorizedApps, v.vm.App) {
				v.vm.Credentials = append(v.vm.Credentials, estate.Credential{Datastore: o.data.Name,
					Access: estate.AccessRead, Path: "/home/deploy/.config/" + o.name + ".conf"})
				break
			}
		}
	}
	// VG108: a jump VM attached to its cluster's management network, and
	// a few hypervisors migrating unencrypted over a guest VLAN.
	for _, v := range w.pickVMs(0.00002, func(v *vmInfo) bool {
		return v.app.role == roleApp && v.host.cluster.kind == kindApp
	}) {
		v.vm.NICs = append(v.vm.NICs, estate.NIC{Network: v.host.cluster.mgmt, MAC: w.mac()})
	}
	var appHosts []*host
	for _, cl := range w.byKind[kindApp] {
		appHosts = append(appHosts, cl.hosts...)
	}
	for i := range w.count(len(appHosts), 0.003) {
		j := i + w.rng.IntN(len(appHosts)-i)
		appHosts[i], appHosts[j] = appHosts[j], appHosts[i]
		h := appHosts[i].h
		h.MigrationNetwork = w.corp.guest[w.rng.IntN(len(w.corp.guest))]
		h.MigrationEncrypted = false
	}
	// VG109: a web VM moved to the legacy VLAN, listening for RDP.
	for _, v := range w.pickVMs(0.007, func(v *vmInfo) bool { return v.app.role == roleWeb }) {
		v.vm.NICs[0].Network = w.dmz.legacy
		v.vm.NICs[0].Ports = ports(443, 3389)
	}
	// VG201: clones that kept their source's machine id and host keys, and
	// a few that kept a MAC.
	w.clones(0.0015, func(src, dst *estate.VM) {
		dst.Identity.MachineID = src.Identity.MachineID
		dst.Identity.SSHHostKeys = slices.Clone(src.Identity.SSHHostKeys)
	})
	w.clones(0.0005, func(src, dst *estate.VM) { dst.NICs[0].MAC = src.NICs[0].MAC })
	// VG202: a second VM writing a single-writer journal.
	journals := w.appsWhere(func(a *app) bool { return a.journal != nil && len(a.vms) >= 2 })
	for i := range w.count(len(journals), 0.05) {
		j := i + w.rng.IntN(len(journals)-i)
		journals[i], journals[j] = journals[j], journals[i]
		a := journals[i]
		v := a.vms[1+w.rng.IntN(len(a.vms)-1)]
		v.touched = true
		v.vm.Credentials = append(v.vm.Credentials, estate.Credential{Datastore: a.journal.Name,
			Access: estate.AccessWrite, Path: "/etc/" + a.name + "/journal.conf"})
	}
	// VG203: a member of a farm patched by hand.
	for _, v := range w.pickVMs(0.01, func(v *vmInfo) bool {
		m := v.app.master
		return m != nil && m.hotfix != "" && v.vm.Image != nil && v.vm.Image.Version == m.newest &&
			(v.vm.Manifest == m.running || v.vm.Manifest == m.manifest(m.newest))
	}) {
		v.vm.Manifest = v.app.master.hotfix
	}
	// VG204: VMs left on an older master version.
	for _, v := range w.pickVMs(0.01, func(v *vmInfo) bool {
		m := v.app.master
		return m != nil && v.vm.Image != nil && v.vm.Image.Name == m.name
	}) {
		m := v.app.master
		ver := m.newest - 1
		if m.newest > 2 && w.chance(0.3) {
			ver = 1 + w.rng.IntN(m.newest-2)
		}
		v.vm.Image.Version = ver
		if v.vm.Manifest != "" {
			v.vm.Manifest = m.manifest(ver)
		}
	}
	// VG105: a VM whose disk scan found a private key and a password.
	for _, v := range w.pickVMs(0.001, func(v *vmInfo) bool { return true }) {
		v.vm.Scan = vmScanLeaky
	}
	// VG304: an uncapped VM on a shared host.
	for _, v := range w.pickVMs(0.003, func(v *vmInfo) bool {
		r := v.vm.Resources
		return r != nil && r.Limited != nil && *r.Limited && v.host.mixed
	}) {
		v.vm.Resources.Limited = boolPtr(false)
	}
	// VG402 and VG601: GPU VMs for a rule whose GPU hosts were retired.
	for _, v := range w.pickVMs(0.003, func(v *vmInfo) bool { return v.app.role == roleDev }) {
		v.vm.Labels = map[string]string{"gpu": "true"}
	}
}

// clones picks pairs of VMs of one app with identities and lets copy make
// the second a careless clone of the first (VG201).
func (w *world) clones(rate float64, copy func(src, dst *estate.VM)) {
	for _, src := range w.pickVMs(rate, func(v *vmInfo) bool { return !v.vm.Identity.Empty() && len(v.app.vms) >= 2 }) {
		vms := src.app.vms
		off := w.rng.IntN(len(vms))
		for i := range vms {
			dst := vms[(off+i)%len(vms)]
			if dst != src && !dst.touched && !dst.vm.Identity.Empty() {
				dst.touched = true
				copy(src.vm, dst.vm)
				break
			}
		}
	}
}

// placeStrays creates the stray VMs of the budget. When an estate is too
// small to have the right app or host, the VM is made in its app's own pool
// instead, so that the estate still has exactly the VMs asked for.
func (w *world) placeStrays() {
	role := func(r role) func(*app) bool { return func(a *app) bool { return a.role == r } }
	for s := range numStray {
		for range w.budget[s] {
			var apps []*app
			var h *host
			var adjust func(v *vmInfo)
			switch s {
			case strayLowOnDMZ:
				apps = w.appsWhere(role(roleApp))
				h = w.strayHost(kindDMZ, func(h *host) bool { return h.exposed })
				adjust = func(v *vmInfo) { v.vm.SecurityLevel = estate.LevelLow }
			case strayIntruder:
				apps = w.appsWhere(role(roleApp))
				h = w.strayHost(kindCore, func(h *host) bool { return h.vms > 0 })
			case strayRestrictedShared:
				apps = w.appsWhere(func(a *app) bool { return a.role == roleCore && a.data != nil })
				h = w.strayHost(kindApp, nil)
				adjust = func(v *vmInfo) {
					a := v.app
					if !slices.ContainsFunc(v.vm.Credentials, func(c estate.Credential) bool { return c.Datastore == a.data.Name }) {
						v.vm.Credentials = append(v.vm.Credentials, estate.Credential{Datastore: a.data.Name,
							Access: estate.AccessRead, Path: "/etc/" + a.name + "/datastore.conf"})
					}
					if r := v.vm.Resources; r != nil {
						r.Limited = boolPtr(true)
					}
				}
			case strayWebOnPCI:
				apps = w.appsWhere(role(roleWeb))
				h = w.strayHost(kindPCI, nil)
			case strayTestInPCIRack:
				apps = w.appsWhere(func(a *app) bool { return a.role == roleDev && a.env == estate.EnvTest })
				h = w.strayHost(kindPCI, nil)
			case strayPCIOffPCI:
				apps = w.appsWhere(role(rolePCI))
				h = w.strayHost(kindApp, nil)
			case strayDevOnProd:
				apps = w.appsWhere(func(a *app) bool { return a.role == roleDev && a.env == estate.EnvDev })
				h = w.strayHost(kindApp, nil)
			}
			if len(apps) == 0 || h == nil {
				all := w.appsWhere(func(a *app) bool { return a.role != roleGateway })
				a := all[w.rng.IntN(len(all))]
				w.newVM(a, a.pool.next())
				continue
			}
			a := apps[w.rng.IntN(len(apps))]
			v := w.newVM(a, h)
			v.touched = true
			if adjust != nil {
				adjust(v)
			}
		}
	}
}

// ---- policy ----

// makePolicy is the resolved policy of policy.yaml: the defaults of
// documents.md plus separate and placement rules.
func (w *world) makePolicy() {
	p := estate.DefaultPolicy()
	p.Meta.Name = w.e.Meta.Name
	p.Separate = []*estate.SeparateRule{
		{Name: "pci-apart-from-web", Scope: estate.ScopeHypervisor, Groups: []estate.Selector{
			{Labels: map[string]string{"pci": "true"}}, {Labels: map[string]string{"tier": "web"}}}},
		{Name: "pci-racks-free-of-test", Scope: estate.ScopeFailureDomain, Groups: []estate.Selector{
			{Labels: map[string]string{"pci": "true"}}, {Environment: estate.EnvTest}}},
	}
	p.Placement = []*estate.PlacementRule{
		{Name: "pci-on-pci-hosts", VMs: estate.Selector{Labels: map[string]string{"pci": "true"}},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"pci": "true"}}, Rule: estate.RuleMust},
		{Name: "no-dev-on-prod-hosts", VMs: estate.Selector{Environment: estate.EnvDev},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"env": "prod"}}, Rule: estate.RuleMustNot},
		// The GPU hosts were retired but the rule stayed: it matches no
		// hypervisor (VG601) and every GPU VM breaks it (VG402).
		{Name: "gpu-on-gpu-hosts", VMs: estate.Selector{Labels: map[string]string{"gpu": "true"}},
			Hypervisors: estate.HypervisorSelector{Labels: map[string]string{"gpu": "true"}}, Rule: estate.RuleMust},
	}
	w.p = p
}

// writePolicy writes w.p's rules as policy.yaml; everything else is left at
// the defaults, so that the estate on stdout without a policy is judged the
// same way apart from the placement rules.
func writePolicy(out io.Writer, w *world) error {
	b := []byte("# Policy of the synthetic estate written by `vguard gen` (" +
		strconv.Itoa(w.opts.VMs) + " VMs, " + strconv.Itoa(w.opts.Hypervisors) + " hypervisors, seed " +
		strconv.FormatInt(w.opts.Seed, 10) + ").\n# Fields not set here keep the defaults of documents.md.\n" +
		"apiVersion: vguard.dev/v1\nkind: Policy\nmetadata: {name: " + w.p.Meta.Name + "}\nseparate:\n")
	for _, r := range w.p.Separate {
		b = append(b, "  - name: "+r.Name+"\n    scope: "+r.Scope.String()+"\n    groups:\n"...)
		for _, g := range r.Groups {
			b = append(b, "      - "...)
			b = appendSelectorYAML(b, g)
			b = append(b, '\n')
		}
	}
	b = append(b, "placement:\n"...)
	for _, r := range w.p.Placement {
		b = append(b, "  - name: "+r.Name+"\n    vms: "...)
		b = appendSelectorYAML(b, r.VMs)
		b = append(b, "\n    hypervisors: {labels: "...)
		b = appendLabelsYAML(b, r.Hypervisors.Labels)
		b = append(b, "}\n    rule: "+r.Rule.String()+"\n"...)
	}
	_, err := out.Write(b)
	return err
}

func appendSelectorYAML(b []byte, s estate.Selector) []byte {
	b = append(b, '{')
	if s.Environment != 0 {
		b = append(b, "environment: "+s.Environment.String()...)
	}
	if len(s.Labels) > 0 {
		b = append(b, "labels: "...)
		b = appendLabelsYAML(b, s.Labels)
	}
	return append(b, '}')
}

func appendLabelsYAML(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, k+": "...)
		b = strconv.AppendQuote(b, m[k])
	}
	return append(b, '}')
}
