// Package vspheretest runs govmomi's in-process vCenter simulator (vcsim)
// for tests, sized to hundreds of VMs, with the tagging (vAPI) endpoint, a
// password of its own, and a scenario laid on through the real API: VLANs
// on distributed port groups, vguard.* tags and custom attributes on VMs,
// hosts and networks, and DRS rules.
package vspheretest

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	// The tagging endpoint of the simulator.
	_ "github.com/vmware/govmomi/vapi/simulator"
)

// User and Password log in to the simulator. The password is distinctive
// so that tests can assert it never appears in output.
const (
	User     = "administrator@vsphere.local"
	Password = "Sup3r-S3cret-Pw"
)

// Sim is a running simulator.
type Sim struct {
	Model  *simulator.Model
	Server *simulator.Server
	// URL is https://USER:PASSWORD@127.0.0.1:PORT/sdk.
	URL string
	// Client is a logged-in client for arranging the scenario.
	Client *govmomi.Client
	Tags   *tags.Manager

	mu   sync.Mutex
	vapi map[string]*vapiRule // by FailVAPI and CountVAPI pattern
}

// Start runs a vCenter with 2 clusters of 4 hosts, 3 distributed port
// groups and vms VMs per cluster; it is stopped when t ends.
func Start(t testing.TB, vms int) *Sim {
	t.Helper()
	m := simulator.VPX()
	m.Cluster, m.ClusterHost, m.Host = 2, 4, 0
	m.Portgroup = 3
	m.Machine = vms
	m.Autostart = false
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	m.Service.TLS = new(tls.Config)
	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{User: url.UserPassword(User, Password)}
	s := m.Service.NewServer()
	sim := &Sim{Model: m, Server: s, URL: s.URL.String()}
	t.Cleanup(func() {
		s.Close()
		m.Remove()
	})
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, s.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	sim.Client = c
	rc := rest.NewClient(c.Client)
	if err := rc.Login(ctx, s.URL.User); err != nil {
		t.Fatal(err)
	}
	sim.Tags = tags.NewManager(rc)
	sim.standardNetworkHosts()
	return sim
}

// standardNetworkHosts fills Network.host of the standard port group
// networks ("VM Network") with the hosts that have a port group of that
// name, as vCenter does; the simulator fills it only for distributed port
// groups, and vsphere reads a standard network's VLAN from its own hosts.
func (s *Sim) standardNetworkHosts() {
	m := s.Model.Map()
	hostsOf := map[string][]types.ManagedObjectReference{} // port group name -> hosts
	for _, e := range m.All("HostSystem") {
		h, ok := e.(*simulator.HostSystem)
		if !ok || h.Config == nil || h.Config.Network == nil {
			continue
		}
		for _, pg := range h.Config.Network.Portgroup {
			hostsOf[pg.Spec.Name] = append(hostsOf[pg.Spec.Name], h.Self)
		}
	}
	for _, e := range m.All("Network") {
		n, ok := e.(*mo.Network)
		if !ok || len(n.Host) > 0 || len(hostsOf[n.Name]) == 0 {
			continue
		}
		hosts := hostsOf[n.Name]
		slices.SortFunc(hosts, func(a, b types.ManagedObjectReference) int { return strings.Compare(a.Value, b.Value) })
		m.Update(simulator.NewContext(), n, []types.PropertyChange{{Name: "host", Val: hosts}})
	}
}

// Finder returns a finder on the simulator's datacenter.
func (s *Sim) Finder(t testing.TB) *find.Finder {
	t.Helper()
	f := find.NewFinder(s.Client.Client, true)
	dc, err := f.DefaultDatacenter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	return f
}

// Tag attaches the tag value in category cat (both made if missing) to ref.
func (s *Sim) Tag(t testing.TB, cat, value string, ref object.Reference) {
	t.Helper()
	ctx := context.Background()
	c, err := s.Tags.GetCategory(ctx, cat)
	if err != nil {
		id, err := s.Tags.CreateCategory(ctx, &tags.Category{Name: cat, Cardinality: "SINGLE"})
		if err != nil {
			t.Fatal(err)
		}
		c = &tags.Category{ID: id, Name: cat}
	}
	tag, err := s.Tags.GetTagForCategory(ctx, value, c.ID)
	var tagID string
	if err != nil {
		tagID, err = s.Tags.CreateTag(ctx, &tags.Tag{Name: value, CategoryID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
	} else {
		tagID = tag.ID
	}
	if err := s.Tags.AttachTag(ctx, tagID, ref.Reference()); err != nil {
		t.Fatal(err)
	}
}

// Attr sets the custom attribute name (made if missing) on ref.
func (s *Sim) Attr(t testing.TB, name, value string, ref object.Reference) {
	t.Helper()
	ctx := context.Background()
	cfm, err := object.GetCustomFieldsManager(s.Client.Client)
	if err != nil {
		t.Fatal(err)
	}
	key, err := cfm.FindKey(ctx, name)
	if err != nil {
		def, err := cfm.Add(ctx, name, "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		key = def.Key
	}
	if err := cfm.Set(ctx, ref.Reference(), key, value); err != nil {
		t.Fatal(err)
	}
}

// SetVLAN gives a distributed port group a VLAN ID.
func (s *Sim) SetVLAN(t testing.TB, pg *object.DistributedVirtualPortgroup, vlan int32) {
	t.Helper()
	ctx := context.Background()
	spec := types.DVPortgroupConfigSpec{
		DefaultPortConfig: &types.VMwareDVSPortSetting{Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: vlan}},
	}
	task, err := pg.Reconfigure(ctx, spec)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// MoveNIC puts the first NIC of vm on the distributed port group pg.
func (s *Sim) MoveNIC(t testing.TB, vm *object.VirtualMachine, pg *object.DistributedVirtualPortgroup) {
	t.Helper()
	ctx := context.Background()
	devs, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	if len(nics) == 0 {
		t.Fatalf("%s has no NIC", vm.Name())
	}
	backing, err := pg.EthernetCardBackingInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	card := nics[0].(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	card.Backing = backing
	if err := vm.EditDevice(ctx, nics[0]); err != nil {
		t.Fatal(err)
	}
}

// Reconfigure applies a cluster configuration (DRS rules and groups).
func (s *Sim) Reconfigure(t testing.TB, cl *object.ClusterComputeResource, spec *types.ClusterConfigSpecEx) {
	t.Helper()
	ctx := context.Background()
	task, err := cl.Reconfigure(ctx, spec, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// FailTagReads makes every later request for the tags attached to objects
// fail with 503, as a vAPI endpoint that breaks after categories were
// listed does. Listing categories still works.
func (s *Sim) FailTagReads(t testing.TB) {
	t.Helper()
	s.FailVAPI(t, "POST /rest/com/vmware/cis/tagging/tag-association", http.StatusServiceUnavailable)
}

// vAPI requests for FailVAPI and CountVAPI.
const (
	VAPILogin          = "POST /rest/com/vmware/cis/session"
	VAPIListCategories = "GET /rest/com/vmware/cis/tagging/category"
	VAPIGetTag         = "GET /rest/com/vmware/cis/tagging/tag/{id}"
)

// FailVAPI makes every later request that matches pattern (a ServeMux
// pattern, such as VAPIListCategories) fail: with the HTTP status, or,
// for status 0, by closing the connection without an answer, as a reset
// does. The function it returns makes the requests succeed again.
func (s *Sim) FailVAPI(t testing.TB, pattern string, status int) (restore func()) {
	t.Helper()
	rule := s.vapiRule(pattern)
	rule.status.Store(int64(status))
	return func() { rule.status.Store(passThrough) }
}

// CountVAPI counts the later requests that match pattern; the function it
// returns tells how many there were.
func (s *Sim) CountVAPI(t testing.TB, pattern string) (count func() int64) {
	t.Helper()
	rule := s.vapiRule(pattern)
	rule.count.Store(0)
	return rule.count.Load
}

// vapiRule is how the requests of one pattern are served: by the
// simulator, or failed.
type vapiRule struct {
	status atomic.Int64 // passThrough, 0 (reset) or an HTTP status
	count  atomic.Int64
}

const passThrough = -1

// vapiRule returns the rule of pattern, putting its handler in front of
// the simulator's own on first use.
func (s *Sim) vapiRule(pattern string) *vapiRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vapi == nil {
		s.vapi = map[string]*vapiRule{}
	}
	if rule := s.vapi[pattern]; rule != nil {
		return rule
	}
	rule := new(vapiRule)
	rule.status.Store(passThrough)
	s.vapi[pattern] = rule
	method, path, _ := strings.Cut(pattern, " ")
	orig, _ := s.Model.Service.ServeMux.Handler(&http.Request{Method: method, URL: &url.URL{Path: path}})
	s.Model.Service.ServeMux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rule.count.Add(1)
		switch status := rule.status.Load(); status {
		case passThrough:
			orig.ServeHTTP(w, r)
		case 0:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				http.Error(w, "cannot reset: "+err.Error(), http.StatusInternalServerError)
				return
			}
			conn.Close()
		default:
			http.Error(w, "failed by the test", int(status))
		}
	})
	return rule
}
