package gen

import (
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
)

// The estate is laid out the way a mid-sized operator runs one:
//
//   - Clusters of hypervisors of five kinds: general "app" clusters for
//     internal workloads, "dmz" clusters for internet-facing and partner
//     VMs (and the gateways between zones), "pci" clusters for cardholder
//     data, "core" clusters whose hosts are each dedicated to one team with
//     restricted data, and "dev" clusters. Each cluster spans several racks
//     (the failure domains) and has a management and a vMotion network.
//   - Zones of every exposure, each with several VLANs (and a storage VLAN
//     where databases live), behind firewalls that let only web ports in
//     from the internet.
//   - Teams own apps; an app lives in one placement pool (a cluster, or the
//     hosts of one team in a core cluster), runs on one VLAN of its zone,
//     is built from one master image and has its own datastores. Its VMs
//     are grouped into services of 2 to 8 members spread over hypervisors or
//     racks, plus some standalone VMs.
//
// Keeping each kind of workload on its own kind of cluster is what makes the
// background clean (no low-hardened VM beside an exposed one, no other
// team's VM beside restricted data, ...). The violations are then applied
// on top by inject, each to a small share of the objects.

type kind uint8

const (
	kindApp kind = iota
	kindDMZ
	kindPCI
	kindCore
	kindDev
	numKinds
)

// clusterPattern assigns kinds to clusters in order: every kind appears in
// the first five, and over ten clusters half are general app clusters.
var clusterPattern = []kind{kindApp, kindDMZ, kindPCI, kindCore, kindDev, kindApp, kindApp, kindDMZ, kindApp, kindApp}

var kindPrefix = [numKinds]string{"app", "dmz", "pci", "core", "dev"}

type role uint8

const (
	roleWeb role = iota
	rolePartner
	roleGateway
	roleApp
	rolePCI
	roleCore
	roleDev
	numRoles
)

var teamsFor = [numRoles][]string{
	roleWeb:     {"portal", "catalog", "media", "mobile", "storefront", "search"},
	rolePartner: {"b2b", "partners", "logistics", "edi", "suppliers"},
	roleGateway: {"netops"},
	roleApp: {"billing", "crm", "erp", "inventory", "support", "messaging", "notify", "analytics",
		"reporting", "marketing", "pricing", "geo", "identity", "monitoring", "logging", "backup",
		"orders", "shipping", "content", "events"},
	rolePCI:  {"payments", "checkout", "fraud", "cards"},
	roleCore: {"hr", "finance", "legal", "compliance", "treasury", "audit"},
	roleDev:  {"devtools", "ci", "ml", "data", "qa"},
}

// appWord is a kind of app within a role, with the ports its VMs listen on.
type appWord struct {
	word  string
	ports []int
	db    bool // a database: a second NIC on the zone's storage VLAN
}

var wordsFor = [numRoles][]appWord{
	roleWeb:     {{"web", []int{443}, false}, {"www", []int{80, 443}, false}, {"portal", []int{443}, false}, {"shop", []int{443}, false}, {"static", []int{80, 443}, false}},
	rolePartner: {{"api", []int{8443}, false}, {"edi", []int{443}, false}, {"exchange", []int{443}, false}},
	roleGateway: {{"edge-gw", []int{443}, false}},
	roleApp: {{"api", []int{8080}, false}, {"worker", nil, false}, {"db", []int{5432}, true}, {"cache", []int{6379}, false},
		{"search", []int{9200}, false}, {"queue", []int{5672}, false}, {"batch", nil, false}, {"reports", []int{8443}, false}},
	rolePCI:  {{"api", []int{8443}, false}, {"vault", []int{8200}, false}, {"db", []int{5432}, true}, {"tokenizer", []int{8443}, false}},
	roleCore: {{"app", []int{8443}, false}, {"db", []int{1433}, true}, {"files", []int{445}, false}, {"etl", nil, false}},
	roleDev:  {{"build", []int{22, 8080}, false}, {"lab", []int{22}, false}, {"sandbox", []int{22, 8000}, false}},
}

// zoneInfo is a zone with its VLANs.
type zoneInfo struct {
	z       *estate.Zone
	guest   []string // guest VLAN network names
	storage string   // storage VLAN, "" when the zone has none
	legacy  string   // dmz only: the VLAN behind the laxer legacy firewall
}

type cluster struct {
	name  string
	kind  kind
	index int
	hosts []*host
	pools []*pool
	mgmt  string
}

type host struct {
	h       *estate.Hypervisor
	cluster *cluster
	rack    int // index of the rack within the cluster
	exposed bool
	stray   bool   // received a VM placed by inject
	owner   string // owner of the first VM placed here
	mixed   bool   // VMs of more than one owner run here
	vms     int
	cpus    int
	mem     int64
}

// pool is where an app's VMs go: a whole cluster, or the hosts of one team
// in a core cluster.
type pool struct {
	cluster  *cluster
	hosts    []*host
	racks    [][]*host
	owner    string // the team the hosts are dedicated to, "" when shared
	quota    int
	apps     []*app // apps deployed as services with member lists and standalone VMs
	selApps  []*app // apps whose one service selects them by app
	gateway  *app   // dmz pools: the gateways between the dmz and corp zones
	cursor   int
	rackNext int
	rackCur  []int
}

type app struct {
	name    string
	owner   string
	role    role
	word    appWord
	zone    *zoneInfo
	vlan    string
	env     estate.Environment
	master  *master // nil when built from a plain image
	image   *estate.ImageRef
	data    *estate.Datastore // shared by the app's VMs
	journal *estate.Datastore // single-writer datastore, nil when none
	pool    *pool
	sel     bool // its VMs are the members of one service with a selector
	seq     int  // VMs made so far
	svcs    int  // services made so far
	vms     []*vmInfo
}

type vmInfo struct {
	vm      *estate.VM
	app     *app
	host    *host
	touched bool // already carries an injected violation
}

type world struct {
	opts Options
	rng  *rand.Rand
	e    *estate.Estate
	p    *estate.Policy

	dmz, extranet, corp, dev, pci, core, mgmt *zoneInfo

	clusters []*cluster
	byKind   [numKinds][]*cluster
	pools    []*pool
	apps     []*app
	appNames map[string]int
	masters  []*master
	byMaster map[string]*master
	vms      []*vmInfo
	nics     uint64
	services int
	want301  int
	want302  int
	n301     int
	budget   [numStray]int
	scratch  []byte
}

func build(opts Options) *world {
	w := &world{
		opts:     opts,
		rng:      rand.New(rand.NewPCG(uint64(opts.Seed), 0x9e3779b97f4a7c15)),
		e:        &estate.Estate{},
		appNames: map[string]int{},
		byMaster: map[string]*master{},
		vms:      make([]*vmInfo, 0, opts.VMs),
	}
	w.e.Meta.Name = "synthetic-" + strconv.Itoa(opts.VMs) + "-seed-" + strconv.FormatInt(opts.Seed, 10)
	w.makeZones()
	w.makeClusters()
	w.makeImages()
	w.makeFirewalls()
	w.planStrays()
	w.makeApps()
	for _, p := range w.pools {
		w.fillPool(p)
	}
	w.inject()
	if len(w.vms) != opts.VMs {
		panic(errShortBudget)
	}
	w.setCapacities()
	w.makePolicy()
	w.e.VMs = make([]*estate.VM, len(w.vms))
	for i, v := range w.vms {
		w.e.VMs[i] = v.vm
	}
	slices.SortFunc(w.e.VMs, func(a, b *estate.VM) int { return strings.Compare(a.Name, b.Name) })
	return w
}

// count is how many objects of n get a violation at rate: at least one in
// any estate big enough to be meant as a demo (100 VMs), none below.
func (w *world) count(n int, rate float64) int {
	if w.opts.VMs < 100 || n == 0 {
		return 0
	}
	return min(n, max(1, int(float64(n)*rate+0.5)))
}

func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// ---- zones, networks, clusters, hypervisors ----

func (w *world) makeZones() {
	guests := clamp(w.opts.VMs/8000, 3, 24)
	mk := func(name string, exp estate.Exposure, base int, storage bool) *zoneInfo {
		zi := &zoneInfo{z: &estate.Zone{Name: name, Exposure: exp}}
		w.e.Zones = append(w.e.Zones, zi.z)
		for i := 1; i <= guests; i++ {
			zi.guest = append(zi.guest, w.network(base+i, name, estate.PurposeGuest))
		}
		if storage {
			zi.storage = w.network(base+90, name, estate.PurposeStorage)
		}
		return zi
	}
	w.dmz = mk("internet-dmz", estate.ExposurePublic, 100, false)
	w.dmz.legacy = w.dmz.guest[len(w.dmz.guest)-1]
	w.extranet = mk("partner-extranet", estate.ExposurePartner, 200, false)
	w.corp = mk("corp-internal", estate.ExposureInternal, 300, true)
	w.dev = mk("dev-lab", estate.ExposureInternal, 400, false)
	w.pci = mk("pci-cde", estate.ExposureRestricted, 500, true)
	w.core = mk("restricted-core", estate.ExposureRestricted, 600, true)
	w.mgmt = &zoneInfo{z: &estate.Zone{Name: "infra-mgmt", Exposure: estate.ExposureRestricted}}
	w.e.Zones = append(w.e.Zones, w.mgmt.z)
}

func (w *world) network(vlan int, zone string, purpose estate.NetworkPurpose) string {
	name := "vlan" + strconv.Itoa(vlan)
	w.e.Networks = append(w.e.Networks, &estate.Network{Name: name, Zone: zone, VLAN: &vlan, Purpose: purpose})
	return name
}

func (w *world) makeClusters() {
	n := w.opts.Hypervisors
	size := clamp(n/5, 3, 16)
	nc := (n + size - 1) / size
	base, extra := n/nc, n%nc
	var perKind [numKinds]int
	rackSeq := 0
	for c := range nc {
		hosts := base
		if c < extra {
			hosts++
		}
		k := clusterPattern[c%len(clusterPattern)]
		perKind[k]++
		cl := &cluster{name: kindPrefix[k] + "-" + pad(perKind[k], 2), kind: k, index: c}
		w.clusters = append(w.clusters, cl)
		w.byKind[k] = append(w.byKind[k], cl)

		// One management and one vMotion VLAN per cluster, in the
		// management zone where no guest VM attaches.
		cl.mgmt = "mgmt-" + cl.name
		vmotion := "vmotion-" + cl.name
		mgmtNet := &estate.Network{Name: cl.mgmt, Zone: w.mgmt.z.Name, Purpose: estate.PurposeManagement}
		motionNet := &estate.Network{Name: vmotion, Zone: w.mgmt.z.Name, Purpose: estate.PurposeMigration}
		if c < 1000 {
			v1, v2 := 1000+c, 2000+c
			mgmtNet.VLAN, motionNet.VLAN = &v1, &v2
		}
		w.e.Networks = append(w.e.Networks, mgmtNet, motionNet)

		rackSize := 1
		switch {
		case hosts >= 12:
			rackSize = 4
		case hosts >= 4:
			rackSize = 2
		}
		for i := range hosts {
			rack := i / rackSize
			labels := map[string]string{"env": "prod"}
			switch k {
			case kindDev:
				labels["env"] = "dev"
			case kindPCI:
				labels["pci"] = "true"
			}
			h := &estate.Hypervisor{
				Name:               "hv-" + cl.name + "-" + pad(i+1, 2),
				Cluster:            cl.name,
				FailureDomain:      "rack-" + pad(rackSeq+rack+1, 3),
				Capacity:           &estate.Capacity{},
				ManagementNetwork:  cl.mgmt,
				MigrationNetwork:   vmotion,
				MigrationEncrypted: w.chance(0.6),
				Labels:             labels,
			}
			w.e.Hypervisors = append(w.e.Hypervisors, h)
			cl.hosts = append(cl.hosts, &host{h: h, cluster: cl, rack: rack})
		}
		rackSeq += (hosts + rackSize - 1) / rackSize
		w.makePools(cl)
	}
}

// makePools splits a cluster into placement pools: core clusters give each
// of up to four teams its own hosts, one per rack where possible, so that a
// team's services can still be spread over racks.
func (w *world) makePools(cl *cluster) {
	if cl.kind != kindCore {
		cl.pools = []*pool{newPool(cl, cl.hosts, "")}
		w.pools = append(w.pools, cl.pools...)
		return
	}
	teams := teamsFor[roleCore]
	k := min(4, len(cl.hosts))
	off := (len(w.byKind[kindCore]) - 1) * 2 // rotate teams between core clusters
	for j := range k {
		owner := teams[(off+j)%len(teams)]
		var hosts []*host
		for i := j; i < len(cl.hosts); i += k {
			hosts = append(hosts, cl.hosts[i])
			cl.hosts[i].h.Labels["dedicated"] = owner
		}
		p := newPool(cl, hosts, owner)
		cl.pools = append(cl.pools, p)
		w.pools = append(w.pools, p)
	}
}

func newPool(cl *cluster, hosts []*host, owner string) *pool {
	p := &pool{cluster: cl, hosts: hosts, owner: owner}
	byRack := map[int][]*host{}
	var order []int
	for _, h := range hosts {
		if _, ok := byRack[h.rack]; !ok {
			order = append(order, h.rack)
		}
		byRack[h.rack] = append(byRack[h.rack], h)
	}
	for _, r := range order {
		p.racks = append(p.racks, byRack[r])
	}
	p.rackCur = make([]int, len(p.racks))
	return p
}

// ---- firewalls ----

func ports(ps ...int) []estate.PortRange {
	out := make([]estate.PortRange, len(ps))
	for i, p := range ps {
		out[i] = estate.PortRange{Lo: p, Hi: p}
	}
	return out
}

func (w *world) makeFirewalls() {
	allow, deny := estate.ActionAllow, estate.ActionDeny
	w.e.Firewalls = []*estate.Firewall{
		{Name: "edge-dmz", Protects: w.dmz.guest[:len(w.dmz.guest)-1], DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: estate.FromInternet, Ports: ports(80, 443), Action: allow},
			{From: w.corp.z.Name, Ports: ports(22), Action: allow},
		}},
		// The legacy VLAN's firewall still carries the RDP exception a
		// vendor once needed: VMs there that listen on 3389 fire VG109.
		{Name: "edge-dmz-legacy", Protects: []string{w.dmz.legacy}, DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: estate.FromInternet, Ports: ports(80, 443, 3389), Action: allow},
		}},
		{Name: "edge-extranet", Protects: w.extranet.guest, DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: estate.FromInternet, Ports: ports(443, 8443), Action: allow},
		}},
		{Name: "fw-pci", Protects: append(slices.Clone(w.pci.guest), w.pci.storage), DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: w.dmz.z.Name, Ports: ports(8443), Action: allow},
			{From: w.corp.z.Name, Ports: ports(443), Action: allow},
		}},
		{Name: "fw-core", Protects: append(slices.Clone(w.core.guest), w.core.storage), DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: w.corp.z.Name, Ports: ports(443, 445, 8443), Action: allow},
		}},
		{Name: "fw-lab", Protects: w.dev.guest, DefaultAction: deny, Rules: []estate.FirewallRule{
			{From: w.corp.z.Name, Ports: []estate.PortRange{{Lo: 22, Hi: 22}, {Lo: 8000, Hi: 8999}}, Action: allow},
			{From: estate.FromAny, Action: deny},
		}},
	}
}

// ---- apps ----

func (w *world) appName(base string) string {
	n := w.appNames[base]
	w.appNames[base] = n + 1
	if n == 0 {
		return base
	}
	return base + "-" + strconv.Itoa(n+1)
}

func (w *world) makeApps() {
	// Quotas: the VMs not reserved for strays, spread over pools by hosts.
	total := w.opts.VMs
	for _, n := range w.budget {
		total -= n
	}
	seen := 0
	for _, p := range w.pools {
		before := total * seen / w.opts.Hypervisors
		seen += len(p.hosts)
		p.quota = total*seen/w.opts.Hypervisors - before
	}
	for _, p := range w.pools {
		// The first apps of a pool are fixed so that every pool has what
		// the violations need (a web app in each dmz, a test app in each
		// dev cluster); the rest are drawn.
		var roles []role
		switch p.cluster.kind {
		case kindApp:
			roles = []role{roleApp}
		case kindDMZ:
			roles = []role{roleGateway, roleWeb, rolePartner}
		case kindPCI:
			roles = []role{rolePCI}
		case kindCore:
			roles = []role{roleCore}
		case kindDev:
			roles = []role{roleDev, roleDev}
		}
		size := 120
		if p.cluster.kind == kindDMZ || p.cluster.kind == kindDev {
			size = 60
		}
		napps := max(len(roles), p.quota/size)
		for i := range napps {
			r := roles[min(i, len(roles)-1)]
			if i >= len(roles) && p.cluster.kind == kindDMZ {
				r = roleWeb
				if w.chance(0.3) {
					r = rolePartner
				}
			}
			a := w.newApp(p, r, i)
			switch {
			case r == roleGateway:
				p.gateway = a
			case i >= len(roles) && w.chance(0.08):
				a.sel = true
				p.selApps = append(p.selApps, a)
			default:
				p.apps = append(p.apps, a)
			}
		}
	}
}

func (w *world) newApp(p *pool, r role, i int) *app {
	owner := p.owner
	if owner == "" {
		owner = teamsFor[r][w.rng.IntN(len(teamsFor[r]))]
	}
	word := wordsFor[r][w.rng.IntN(len(wordsFor[r]))]
	a := &app{owner: owner, role: r, word: word, pool: p, env: estate.EnvProd}
	a.name = w.appName(owner + "-" + word.word)
	class := estate.ClassInternal
	switch r {
	case roleWeb:
		a.zone, a.master = w.dmz, w.byMaster["web-master"]
	case rolePartner:
		a.zone, a.master, class = w.extranet, w.byMaster["api-master"], estate.ClassConfidential
	case roleGateway:
		a.zone, a.image = w.dmz, &estate.ImageRef{Name: "fw-appliance", Version: 1}
	case roleApp:
		a.zone, a.master = w.corp, w.byMaster["app-master"]
		if !word.db && w.chance(0.2) {
			a.master, a.word.ports = w.byMaster["win-master"], []int{443, 3389}
		}
		switch x := w.rng.Float64(); {
		case x < 0.1:
			class = estate.ClassPublic
		case x < 0.4:
			class = estate.ClassConfidential
		}
		if w.chance(0.1) {
			a.env = estate.EnvStaging
		}
	case rolePCI:
		a.zone, a.master, class = w.pci, w.byMaster["pci-master"], estate.ClassConfidential
	case roleCore:
		a.zone, a.master, class = w.core, w.byMaster["core-master"], estate.ClassRestricted
	case roleDev:
		a.zone, a.image = w.dev, &estate.ImageRef{Name: "dev-base", Version: 2}
		a.env = [4]estate.Environment{estate.EnvDev, estate.EnvTest, estate.EnvDev, estate.EnvStaging}[i%4]
	}
	// Any VLAN of the zone, the dmz's legacy one included: its laxer
	// firewall matters only to a VM that listens on RDP (VG109).
	a.vlan = a.zone.guest[w.rng.IntN(len(a.zone.guest))]
	if r != roleGateway && (r != roleDev || w.chance(0.3)) {
		d := &estate.Datastore{Name: a.name + "-data", Classification: class, Owner: owner, Writers: estate.WritersMulti}
		if r == roleCore || w.chance(0.85) {
			d.AuthorizedApps = []string{a.name}
		}
		w.e.Datastores = append(w.e.Datastores, d)
		a.data = d
		if r != roleDev && w.chance(0.3) {
			j := &estate.Datastore{Name: a.name + "-journal", Classification: class, Owner: owner,
				Writers: estate.WritersSingle, AuthorizedApps: []string{a.name}}
			w.e.Datastores = append(w.e.Datastores, j)
			a.journal = j
		}
	}
	w.apps = append(w.apps, a)
	return a
}

// ---- VMs and services ----

var serviceSizes = []int{2, 2, 3, 3, 3, 4, 4, 5, 6, 8}

func (w *world) fillPool(p *pool) {
	// Gateways first: an HA pair per four hypervisors of a dmz cluster.
	if a := p.gateway; a != nil {
		for range max(1, len(p.hosts)/4) {
			if p.quota < 2 || len(p.hosts) < 2 {
				break
			}
			w.deploy(p, a, 2, false)
		}
	}
	for _, a := range p.selApps {
		if p.quota < 2 {
			break
		}
		w.deploy(p, a, min(p.quota, serviceSizes[w.rng.IntN(len(serviceSizes))]), true)
	}
	for p.quota > 0 {
		a := p.apps[w.rng.IntN(len(p.apps))]
		k := min(p.quota, serviceSizes[w.rng.IntN(len(serviceSizes))])
		if k < 2 || len(p.hosts) < 2 || w.chance(0.2) {
			w.newVM(a, p.next())
			p.quota--
			continue
		}
		w.deploy(p, a, k, false)
	}
}

// next is the next host of the pool in round-robin order.
func (p *pool) next() *host {
	h := p.hosts[p.cursor%len(p.hosts)]
	p.cursor++
	return h
}

// deploy creates a service of k VMs of a. Most services are spread over
// distinct hypervisors (or racks) with a minAvailable the spread can keep;
// one in 150 has every member on one unit (VG301) and one in 90 has two
// members on one hypervisor with a minAvailable that needs them all but one
// (VG302).
func (w *world) deploy(p *pool, a *app, k int, selector bool) {
	s := &estate.Service{MaxUnavailable: 1, Spread: estate.SpreadHypervisor, Criticality: estate.CriticalityStandard}
	if w.chance(0.2) {
		s.Criticality = estate.CriticalityCritical
	}
	idx := w.services
	w.services++
	if idx%150 == 10 {
		w.want301++
	}
	if idx%90 == 5 {
		w.want302++
	}
	var hosts []*host
	switch {
	case w.want301 > 0:
		w.want301--
		w.n301++
		k = min(k, 3)
		if w.n301%2 == 0 {
			if rack := p.bigRack(); rack != nil {
				// Distinct hypervisors, but one rack: the service is
				// spread by failure domain and a rack loss takes it all.
				s.Spread = estate.SpreadFailureDomain
				k = min(k, len(rack))
				off := w.rng.IntN(len(rack))
				for j := range k {
					hosts = append(hosts, rack[(off+j)%len(rack)])
				}
				break
			}
		}
		h := p.next()
		for range k {
			hosts = append(hosts, h)
		}
		s.MinAvailable = 1
	case w.want302 > 0 && len(p.hosts) >= 2 && p.quota >= 3:
		w.want302--
		k = min(max(k, 3), len(p.hosts)+1, p.quota)
		h := p.next()
		hosts = append(hosts, h, h)
		for len(hosts) < k {
			if o := p.next(); o != h {
				hosts = append(hosts, o)
			}
		}
		s.MinAvailable = k - 1
	case len(p.racks) >= 2 && w.chance(0.25):
		s.Spread = estate.SpreadFailureDomain
		k = min(k, len(p.racks))
		for j := range k {
			r := (p.rackNext + j) % len(p.racks)
			rack := p.racks[r]
			hosts = append(hosts, rack[p.rackCur[r]%len(rack)])
			p.rackCur[r]++
		}
		p.rackNext += k
	default:
		k = min(k, len(p.hosts))
		for range k {
			hosts = append(hosts, p.next())
		}
	}
	k = len(hosts)
	if s.MinAvailable == 0 {
		// Every member on its own unit: losing one leaves k-1.
		s.MinAvailable = k - 1
		if k > 3 {
			s.MinAvailable = (k+1)/2 + w.rng.IntN(k-1-(k+1)/2+1)
		}
		s.MaxUnavailable = max(1, min(k-s.MinAvailable, 1+w.rng.IntN(2)))
	}
	members := make([]string, k)
	for j, h := range hosts {
		members[j] = w.newVM(a, h).vm.Name
	}
	p.quota -= k
	if selector {
		s.Name = a.name
		s.Selector = &estate.Selector{App: a.name}
	} else {
		a.svcs++
		s.Name = a.name + "-svc" + strconv.Itoa(a.svcs)
		s.Members = members
	}
	w.e.Services = append(w.e.Services, s)
}

// bigRack returns a rack of the pool with at least two hosts, or nil.
func (p *pool) bigRack() []*host {
	for _, r := range p.racks {
		if len(r) >= 2 {
			return r
		}
	}
	return nil
}

var cpuChoices = [numRoles][]int{
	roleWeb:     {2, 2, 4},
	rolePartner: {2, 4},
	roleGateway: {4},
	roleApp:     {2, 4, 4, 8},
	rolePCI:     {4, 8},
	roleCore:    {4, 8, 16},
	roleDev:     {1, 2, 2, 4},
}

var memPerCPU = []int64{2048, 4096, 4096, 8192}

// newVM creates a clean VM of app a on host h.
func (w *world) newVM(a *app, h *host) *vmInfo {
	a.seq++
	name := a.name + "-" + pad(a.seq, 4)
	vm := &estate.VM{
		Name:        name,
		Hypervisor:  h.h.Name,
		Owner:       a.owner,
		App:         a.name,
		Environment: a.env,
	}
	switch a.role {
	case roleWeb, roleGateway:
		vm.SecurityLevel = estate.LevelHigh
	case roleDev:
		vm.SecurityLevel = estate.LevelLow
		if w.chance(0.1) {
			vm.SecurityLevel = estate.LevelStandard
		}
	case roleApp:
		switch x := w.rng.Float64(); {
		case x < 0.3:
			vm.SecurityLevel = estate.LevelLow
		case x < 0.95:
			vm.SecurityLevel = estate.LevelStandard
		default:
			vm.SecurityLevel = estate.LevelHigh
		}
	default:
		vm.SecurityLevel = estate.LevelStandard
		if w.chance(0.25) {
			vm.SecurityLevel = estate.LevelHigh
		}
	}
	if a.role != roleGateway && w.chance(0.8) {
		vm.HomeZone = a.zone.z.Name
	}
	vm.NICs = append(vm.NICs, estate.NIC{Network: a.vlan, MAC: w.mac(), Ports: ports(a.word.ports...)})
	switch {
	case a.role == roleGateway:
		vm.Gateway = true
		vm.NICs = append(vm.NICs, estate.NIC{Network: w.corp.guest[0], MAC: w.mac()})
	case a.word.db && a.zone.storage != "":
		vm.NICs = append(vm.NICs, estate.NIC{Network: a.zone.storage, MAC: w.mac()})
	}
	if w.chance(0.97) {
		vm.Identity = w.identity(name)
	}
	switch {
	case a.master != nil && w.chance(0.98):
		m := a.master
		vm.Image = &estate.ImageRef{Name: m.name, Version: m.newest}
		if w.chance(0.6) {
			vm.Manifest = m.manifest(m.newest)
			if w.chance(0.5) {
				vm.Manifest = m.running
			}
		}
	case a.image != nil:
		ref := *a.image
		vm.Image = &ref
	}
	if w.chance(0.03) {
		vm.Scan = vmScanClean
	}
	if a.data != nil && w.chance(0.6) {
		acc := estate.AccessRead
		if w.chance(0.5) {
			acc = estate.AccessWrite
		}
		vm.Credentials = append(vm.Credentials, estate.Credential{Datastore: a.data.Name, Access: acc, Path: "/etc/" + a.name + "/datastore.conf"})
	}
	if a.journal != nil && len(a.vms) == 0 {
		vm.Credentials = append(vm.Credentials, estate.Credential{Datastore: a.journal.Name, Access: estate.AccessWrite, Path: "/etc/" + a.name + "/journal.conf"})
	}
	if w.chance(0.98) {
		cpus := cpuChoices[a.role][w.rng.IntN(len(cpuChoices[a.role]))]
		mem := int64(cpus) * memPerCPU[w.rng.IntN(len(memPerCPU))]
		vm.Resources = &estate.Resources{CPUs: cpus, MemoryMiB: mem}
		if w.chance(0.95) {
			// Dedicated hosts need no caps; shared ones cap every VM.
			limited := a.pool.owner == ""
			vm.Resources.Limited = &limited
		}
		h.cpus += cpus
		h.mem += mem
	}
	switch a.role {
	case roleWeb:
		vm.Labels = map[string]string{"tier": "web"}
	case rolePCI:
		vm.Labels = map[string]string{"pci": "true"}
	}
	h.vms++
	if h.owner == "" {
		h.owner = a.owner
	} else if h.owner != a.owner {
		h.mixed = true
	}
	if a.zone == w.dmz {
		h.exposed = true
	}
	v := &vmInfo{vm: vm, app: a, host: h}
	a.vms = append(a.vms, v)
	w.vms = append(w.vms, v)
	return v
}

// mac returns a new locally administered MAC; the counter makes every NIC's
// MAC unique.
func (w *world) mac() string {
	v := uint64(0x525400000000) + w.nics
	w.nics++
	b := w.scratch[:0]
	for i := 5; i >= 0; i-- {
		x := byte(v >> (8 * i))
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
		if i > 0 {
			b = append(b, ':')
		}
	}
	w.scratch = b
	return string(b)
}

const hexDigits = "0123456789abcdef"

func (w *world) hex(b []byte, n int) []byte {
	for n > 0 {
		x := w.rng.Uint64()
		for i := 0; i < 16 && n > 0; i++ {
			b = append(b, hexDigits[x&15])
			x >>= 4
			n--
		}
	}
	return b
}

func (w *world) identity(hostname string) estate.Identity {
	b := w.hex(w.scratch[:0], 32)
	// RFC 4122 version 4 layout: 8-4-4-4-12 with the version nibble 4.
	u := make([]byte, 0, 36)
	u = append(u, b[0:8]...)
	u = append(u, '-')
	u = append(u, b[8:12]...)
	u = append(u, '-', '4')
	u = append(u, b[13:16]...)
	u = append(u, '-', "89ab"[b[16]&3])
	u = append(u, b[17:20]...)
	u = append(u, '-')
	u = append(u, b[20:32]...)
	id := estate.Identity{UUID: string(u), Hostname: hostname}
	id.MachineID = string(w.hex(b[:0], 32))
	keys := 1
	if w.chance(0.3) {
		keys = 2
	}
	for range keys {
		var raw [32]byte
		for i := 0; i < 32; i += 8 {
			x := w.rng.Uint64()
			for j := range 8 {
				raw[i+j] = byte(x >> (8 * j))
			}
		}
		id.SSHHostKeys = append(id.SSHHostKeys, "SHA256:"+base64.RawStdEncoding.EncodeToString(raw[:]))
	}
	w.scratch = b
	return id
}

// ---- capacity ----

var (
	cpuModels = []int{32, 48, 64, 96, 128, 192, 256}
	memModels = []int64{256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144} // GiB
)

// setCapacities gives each cluster uniform hosts big enough that the other
// hosts can take the VMs of any one of them (with the default overcommit and
// 15% headroom), except one cluster in 25 (and one in any smaller estate), whose memory is sized so that they
// cannot (VG303) while the cluster as a whole still fits.
func (w *world) setCapacities() {
	oc := estate.DefaultPolicy().Overcommit
	for _, cl := range w.clusters {
		var cpus int
		var mem int64
		for _, h := range cl.hosts {
			cpus += h.cpus
			mem += h.mem
		}
		spare := max(len(cl.hosts)-1, 1)
		needCPU := int(float64(cpus)/(float64(spare)*oc.CPU*0.85)) + 1
		needMem := int64(float64(mem)/(float64(spare)*oc.Memory*0.85)) + 1
		c := roundUpModel(needCPU, cpuModels, 64)
		m := roundUpModel64(needMem, memModels, 512, 1024)
		if cl.index%25 == min(5, len(w.clusters)-1) && len(cl.hosts) >= 2 && mem > 0 {
			// Between (n-1)*cap and n*cap: full, but no failover.
			m = (int64(float64(mem)/(float64(len(cl.hosts))-0.5)) + 1023) / 1024 * 1024
		}
		for _, h := range cl.hosts {
			h.h.Capacity.CPUs = c
			h.h.Capacity.MemoryMiB = m
		}
	}
}

func roundUpModel(need int, models []int, step int) int {
	for _, m := range models {
		if m >= need {
			return m
		}
	}
	return (need + step - 1) / step * step
}

// roundUpModel64 picks the smallest memory model (GiB) of at least need MiB.
func roundUpModel64(needMiB int64, modelsGiB []int64, stepGiB, unit int64) int64 {
	for _, m := range modelsGiB {
		if m*unit >= needMiB {
			return m * unit
		}
	}
	step := stepGiB * unit
	return (needMiB + step - 1) / step * step
}
