package vsphere

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/vsphere/vspheretest"
)

const vmsPerCluster = 150 // 300 VMs

func TestSyncSimulator(t *testing.T) {
	sim := vspheretest.Start(t, vmsPerCluster)
	pciHost := vspheretest.Scenario(t, sim)
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	inv, err := Sync(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("synced %d VMs in %v", len(inv.Estate.VMs), time.Since(start))
	if strings.Contains(inv.Source, vspheretest.Password) {
		t.Fatal("the password is in the source")
	}
	x := estate.NewIndex(&inv.Estate)
	if len(x.VMs) != 2*vmsPerCluster || len(x.Hypervisors) != 8 {
		t.Fatalf("got %d VMs on %d hosts, want %d on 8", len(x.VMs), len(x.Hypervisors), 2*vmsPerCluster)
	}
	low := x.VMs[vspheretest.VMWebLow]
	if low.Owner != "web" || low.App != "shop" || low.SecurityLevel != estate.LevelLow || low.HomeZone != "internal" {
		t.Errorf("tags not honoured on %s: %+v", low.Name, low)
	}
	if len(low.NICs) != 1 || low.NICs[0].Network != vspheretest.PGInternal || low.NICs[0].MAC == "" {
		t.Errorf("%s NICs = %+v", low.Name, low.NICs)
	}
	if low.Identity.UUID == "" || low.Resources == nil || low.Resources.CPUs == 0 || low.Resources.MemoryMiB == 0 || low.Resources.Limited == nil {
		t.Errorf("%s identity/resources = %+v %+v", low.Name, low.Identity, low.Resources)
	}
	if hv := x.Hypervisors[low.Hypervisor]; hv == nil || hv.Cluster != "DC0_C0" || hv.Capacity == nil || hv.Capacity.CPUs == 0 {
		t.Errorf("%s runs on %q = %+v", low.Name, low.Hypervisor, hv)
	}
	if low.Identity.Hostname != "web-low.example.com" || *low.Resources.Limited {
		t.Errorf("%s: hostname %q, limited %v; want the guest host name, no limit", low.Name, low.Identity.Hostname, *low.Resources.Limited)
	}
	if hr := x.VMs[vspheretest.VMHR]; hr.Environment != estate.EnvStaging || hr.Resources == nil || hr.Resources.Limited == nil || !*hr.Resources.Limited {
		t.Errorf("%s: environment tag or CPU limit not read: %+v %+v", hr.Name, hr, hr.Resources)
	}
	if vn := x.Networks["VM Network"]; vn == nil || vn.VLAN == nil {
		t.Errorf("the standard port group's VLAN comes from the hosts: %+v", vn)
	}
	if high := x.VMs[vspheretest.VMWebHigh]; high.SecurityLevel != estate.LevelHigh || high.Owner != "web" || !high.Gateway {
		t.Errorf("custom attributes not honoured: %+v", high)
	}
	for name, want := range map[string]struct {
		zone string
		vlan int
	}{vspheretest.PGInternet: {"internet", 100}, vspheretest.PGInternal: {"internal", 200}, vspheretest.PGRestricted: {"restricted", 300}} {
		n := x.Networks[name]
		if n == nil || n.Zone != want.zone || n.VLAN == nil || *n.VLAN != want.vlan {
			t.Errorf("network %s = %+v, want zone %s VLAN %d", name, n, want.zone, want.vlan)
		}
	}
	domains := map[string]bool{}
	for _, h := range x.Hypervisors {
		domains[h.FailureDomain] = true
	}
	for _, d := range []string{"rack-a", "rack-b", "rack-c"} {
		if !domains[d] {
			t.Errorf("no host in failure domain %s: %v", d, domains)
		}
	}
	if len(inv.Separate) != 1 || len(inv.Separate[0].Groups) != 2 {
		t.Errorf("separate rules = %+v", inv.Separate)
	}
	if len(inv.Placement) != 1 || inv.Placement[0].Rule != estate.RuleMust || len(inv.Placement[0].Hypervisors.Names) != 1 ||
		inv.Placement[0].Hypervisors.Names[0] != pciHost {
		t.Errorf("placement rules = %+v", inv.Placement)
	}

	// Merged with an overlay, written, loaded back, checked.
	out := filepath.Join(t.TempDir(), "estate.yaml")
	built, err := connector.Build(inv, []string{"testdata/overlay.yaml"}, out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(built.Data), vspheretest.Password) {
		t.Fatal("the password is in the written estate")
	}
	if err := connector.WriteFile(out, built.Data); err != nil {
		t.Fatal(err)
	}
	res, err := load.Paths([]string{out}, load.Options{})
	if err != nil {
		t.Fatalf("written estate does not load: %v", err)
	}
	got := map[string]bool{}
	for _, f := range check.Evaluate(estate.NewIndex(res.Estate), res.Policy, check.Options{}).Findings {
		got[f.Check+" "+f.Subject] = true
	}
	if !got["VG402 vm/"+vspheretest.VMHR] {
		t.Errorf("the imported DRS VM-Host rule is broken: want VG402 on %s; got %d findings", vspheretest.VMHR, len(got))
	}
	if got["VG101 vm/"+vspheretest.VMWebHigh] {
		t.Errorf("%s is hardened: no VG101", vspheretest.VMWebHigh)
	}
	// The simulator places VMs itself: the anti-affinity rule is broken
	// exactly when the two share a host.
	x = estate.NewIndex(res.Estate)
	h1, h2 := x.VMs[vspheretest.VMWebLow].Hypervisor, x.VMs[vspheretest.VMWebHigh].Hypervisor
	if got["VG401 hypervisor/"+h1] != (h1 == h2) {
		t.Errorf("web VMs on %s and %s: VG401 on %s is %v", h1, h2, h1, got["VG401 hypervisor/"+h1])
	}
	// The watch, on the same simulator (building it is most of the time).
	t.Run("watch", func(t *testing.T) { testWatchNICMove(t, sim) })
}

// TestStoppedMidSync stops the simulator while the inventory is being read:
// the sync must fail with a clear error and return no inventory.
func TestStoppedMidSync(t *testing.T) {
	sim := vspheretest.Start(t, 2)
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	sim.Model.DelayConfig.MethodDelay = map[string]int{"RetrievePropertiesEx": 300}
	go func() {
		time.Sleep(150 * time.Millisecond) // during the first retrieval
		sim.Server.Close()
	}()
	inv, err := Sync(context.Background(), ep)
	if err == nil || inv != nil {
		t.Fatalf("want an error and no inventory, got %v, %v", inv, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "reading ") || !strings.Contains(msg, "nothing was written") {
		t.Errorf("error does not say what failed: %s", msg)
	}
	if strings.Contains(msg, vspheretest.Password) {
		t.Errorf("the password is in the error: %s", msg)
	}
}

// TestPasswordNeverShown makes the URL wrong in several ways; no error may
// hold the password. A password with an unescaped @ followed by /, ? or #
// parses (url.Parse splits the user information at the last @ before the
// first /), with part of the password as the host and the rest in the path,
// query or fragment: such URLs are refused before any connection, and no
// part of the password may show.
func TestPasswordNeverShown(t *testing.T) {
	sim := vspheretest.Start(t, 1)
	pw := vspheretest.Password
	good := sim.Server.URL
	cases := map[string]struct {
		raw     string
		refused bool     // by ParseEndpoint, with the escape hint
		secrets []string // besides pw
	}{
		"wrong password": {raw: "https://" + vspheretest.User + ":" + pw + "x@" + good.Host + "/sdk"},
		"wrong user":     {raw: "https://nobody:" + pw + "@" + good.Host + "/sdk"},
		"no server":      {raw: "https://u:" + pw + "@127.0.0.1:1/sdk"},
		"bad host":       {raw: "https://u:" + pw + "@no-such-host.invalid/sdk"},
		"bad port":       {raw: "https://u:" + pw + "@127.0.0.1:99999/sdk"},
		"bad escape":     {raw: "https://u:" + pw + "%zz@127.0.0.1/sdk", refused: true},
		"no scheme":      {raw: "u:" + pw + "@127.0.0.1/sdk"},
		"ftp":            {raw: "ftp://u:" + pw + "@127.0.0.1/sdk"},
		"wrong path":     {raw: "https://" + vspheretest.User + ":" + pw + "@" + good.Host + "/nope"},
		"fragment":       {raw: "https://" + vspheretest.User + ":" + pw + "@" + good.Host + "/sdk#secure", refused: true},
		"query":          {raw: "https://" + vspheretest.User + ":" + pw + "@" + good.Host + "/sdk?x=1", refused: true},
		"empty query":    {raw: "https://" + vspheretest.User + ":" + pw + "@" + good.Host + "/sdk?", refused: true},
		"opaque":         {raw: "https:" + vspheretest.User + ":" + pw + "@" + good.Host + "/sdk", refused: true},
		// The password is pw@Secr3tPart/2024 (or with ? or #): url.Parse
		// makes Secr3tPart the host.
		"@ then /":        {raw: "https://u:" + pw + "@Secr3tPart/2024@" + good.Host + "/sdk", refused: true, secrets: []string{"Secr3tPart", "2024"}},
		"@ then #":        {raw: "https://u:" + pw + "@Secr3tPart#2024@" + good.Host + "/sdk", refused: true, secrets: []string{"Secr3tPart", "2024"}},
		"@ then ?":        {raw: "https://u:" + pw + "@Secr3tPart?2024@" + good.Host + "/sdk", refused: true, secrets: []string{"Secr3tPart", "2024"}},
		"@ then / root":   {raw: "https://u:" + pw + "@Secr3tPart/2024@" + good.Host, refused: true, secrets: []string{"Secr3tPart", "2024"}},
		"/ then @ then /": {raw: "https://u:" + pw + "/Secr3tPart@2024@" + good.Host + "/sdk", refused: true, secrets: []string{"Secr3tPart", "2024"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ep, err := ParseEndpoint(c.raw, true)
			if c.refused {
				if err == nil {
					t.Fatalf("accepted, printed as %s", ep)
				}
				if !strings.Contains(err.Error(), "@ → %40") {
					t.Errorf("no escape hint: %v", err)
				}
			}
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err = Sync(ctx, ep)
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, s := range append([]string{pw}, c.secrets...) {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("%q of the password is in the error: %v", s, err)
				}
			}
			t.Log(err)
		})
	}
}

// TestMapRefusesUnknownWords: an attribute value outside the vocabulary
// fails the mapping, naming the VM and the value.
func TestMapRefusesUnknownWords(t *testing.T) {
	host := types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"}
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}
	r := &Raw{
		Hosts: []mo.HostSystem{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: host}, Name: "h1"}}},
		VMs: []mo.VirtualMachine{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: vm}, Name: "web-1"},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &host}}},
		Attrs: map[string]map[string]string{"vm-1": {AttrSecurityLevel: "ultra", AttrGateway: "maybe"}},
	}
	_, err := r.Map("test")
	if err == nil || !strings.Contains(err.Error(), `VM web-1: vguard.gateway "maybe"`) || !strings.Contains(err.Error(), `vguard.securityLevel "ultra"`) {
		t.Fatalf("want both bad values named, got %v", err)
	}
	r.Attrs["vm-1"] = map[string]string{AttrSecurityLevel: "high", AttrGateway: "yes"}
	inv, err := r.Map("test")
	if err != nil || !inv.Estate.VMs[0].Gateway || inv.Estate.VMs[0].SecurityLevel != estate.LevelHigh {
		t.Fatalf("good values: %v %+v", err, inv)
	}
}

// TestTagReadFailsAfterCategories: vguard.* categories exist but reading
// the attached tags fails: the sync fails (no inventory) rather than
// returning an estate without its tag-based security facts.
func TestTagReadFailsAfterCategories(t *testing.T) {
	sim := vspheretest.Start(t, 3)
	vspheretest.Scenario(t, sim)
	sim.FailTagReads(t)
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Sync(context.Background(), ep)
	if err == nil || inv != nil {
		t.Fatalf("want an error and no inventory, got %v", err)
	}
	if !strings.Contains(err.Error(), "reading the tags") || strings.Contains(err.Error(), vspheretest.Password) {
		t.Errorf("error: %v", err)
	}
}

// TestTagEndpointFailures: only vCenter's definite "no tagging" (404 for
// the vAPI endpoint, 401/403 for the list of categories) is a warning,
// with custom attributes still read; a tagging endpoint that fails (503, a
// reset connection) at the login or at the list of categories fails the
// sync with no inventory, rather than giving an estate without any
// tag-based fact.
func TestTagEndpointFailures(t *testing.T) {
	for _, c := range []struct {
		name    string
		pattern string
		status  int
		want    string // in the error, or in the warning when warn
		warn    bool
	}{
		{"categories 503", vspheretest.VAPIListCategories, http.StatusServiceUnavailable, "listing tag categories", false},
		{"categories reset", vspheretest.VAPIListCategories, 0, "listing tag categories", false},
		{"login 503", vspheretest.VAPILogin, http.StatusServiceUnavailable, "logging in to the vAPI endpoint", false},
		{"login 401", vspheretest.VAPILogin, http.StatusUnauthorized, "logging in to the vAPI endpoint", false},
		{"login 404", vspheretest.VAPILogin, http.StatusNotFound, "tags not read (the vAPI endpoint is not there", true},
		{"categories 403", vspheretest.VAPIListCategories, http.StatusForbidden, "tags not read (the user may not list tag categories", true},
		{"categories 401", vspheretest.VAPIListCategories, http.StatusUnauthorized, "tags not read (the user may not list tag categories", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim := vspheretest.Start(t, 3)
			vspheretest.Scenario(t, sim)
			sim.FailVAPI(t, c.pattern, c.status)
			ep, err := ParseEndpoint(sim.URL, true)
			if err != nil {
				t.Fatal(err)
			}
			inv, err := Sync(context.Background(), ep)
			if !c.warn {
				if err == nil || inv != nil {
					t.Fatalf("want an error and no inventory, got %v", err)
				}
				if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was written") ||
					strings.Contains(err.Error(), vspheretest.Password) {
					t.Errorf("error: %v", err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Log(inv.Warnings)
			if !slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.Contains(w, c.want) }) {
				t.Errorf("no warning %q: %q", c.want, inv.Warnings)
			}
			x := estate.NewIndex(&inv.Estate)
			if low := x.VMs[vspheretest.VMWebLow]; low.SecurityLevel != 0 || low.HomeZone != "" {
				t.Errorf("%s has tags although none were read: %+v", low.Name, low)
			}
			if high := x.VMs[vspheretest.VMWebHigh]; high.SecurityLevel != estate.LevelHigh {
				t.Errorf("custom attributes not read: %+v", high)
			}
		})
	}
}

// TestTagReadRequests: tags of other categories (one per VM here, as a
// backup or cost-centre category has in a large vCenter) cost no request
// each: only the attached vguard.* tags are read one by one, and the
// vguard.* facts are read as before.
func TestTagReadRequests(t *testing.T) {
	sim := vspheretest.Start(t, 10)
	vspheretest.Scenario(t, sim)
	ctx := context.Background()
	vms, err := sim.Finder(t).VirtualMachineList(ctx, "*")
	if err != nil {
		t.Fatal(err)
	}
	for i, vm := range vms {
		sim.Tag(t, "backup", fmt.Sprintf("policy-%03d", i), vm)
	}
	vguardTags := 0
	cats, err := sim.Tags.GetCategories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cats {
		if strings.HasPrefix(c.Name, "vguard.") {
			ids, err := sim.Tags.ListTagsForCategory(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			vguardTags += len(ids)
		}
	}
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	getTag := sim.CountVAPI(t, vspheretest.VAPIGetTag)
	inv, err := Sync(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if n := getTag(); n > int64(vguardTags) {
		t.Errorf("%d requests for single tags; want at most one per vguard.* tag (%d), none for the %d backup tags", n, vguardTags, len(vms))
	}
	low := estate.NewIndex(&inv.Estate).VMs[vspheretest.VMWebLow]
	if low.Owner != "web" || low.SecurityLevel != estate.LevelLow || low.HomeZone != "internal" {
		t.Errorf("tags not read: %+v", low)
	}
}

// TestTagSessionExpired: a 401 on the list of categories with the vAPI
// session of an earlier read (a watch's, expired) is not "no tagging": the
// session logs in again and the tags are read.
func TestTagSessionExpired(t *testing.T) {
	sim := vspheretest.Start(t, 3)
	vspheretest.Scenario(t, sim)
	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Login(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Logout(ctx)
	read := func() *Raw {
		t.Helper()
		r, err := s.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := read()
	// vCenter ends the session; the client still holds its ID.
	if err := s.rest.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	after := read()
	if len(after.Warnings) > 0 || !reflect.DeepEqual(before.Attrs, after.Attrs) {
		t.Errorf("tags lost with the session: warnings %q, attributes equal %v", after.Warnings, reflect.DeepEqual(before.Attrs, after.Attrs))
	}
}

// TestMapTrunkPortGroup: a standard port group with VLAN 4095 (guest
// tagging) is written without a VLAN, with a warning, and the built estate
// loads (it used to abort the sync).
func TestMapTrunkPortGroup(t *testing.T) {
	host := types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"}
	netRef := types.ManagedObjectReference{Type: "Network", Value: "network-1"}
	r := &Raw{
		Hosts: []mo.HostSystem{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: host}, Name: "h1"},
			Config: &types.HostConfigInfo{Network: &types.HostNetworkInfo{Portgroup: []types.HostPortGroup{
				{Spec: types.HostPortGroupSpec{Name: "VGT", VlanId: 4095}},
				{Spec: types.HostPortGroupSpec{Name: "V10", VlanId: 10}},
			}}}}},
		Networks: []mo.Network{
			{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: netRef}}, Name: "VGT",
				Host: []types.ManagedObjectReference{host}},
			{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: types.ManagedObjectReference{Type: "Network", Value: "network-2"}}}, Name: "V10",
				Host: []types.ManagedObjectReference{host}},
		},
		Attrs: map[string]map[string]string{"network-1": {AttrZone: "internal"}, "network-2": {AttrZone: "internal"}},
	}
	inv, err := r.Map("test")
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(&inv.Estate)
	if x.Networks["VGT"] == nil || x.Networks["V10"] == nil {
		t.Fatalf("networks: %+v", inv.Estate.Networks)
	}
	if x.Networks["VGT"].VLAN != nil || x.Networks["V10"].VLAN == nil || *x.Networks["V10"].VLAN != 10 {
		t.Fatalf("VLANs: VGT %v, V10 %v", x.Networks["VGT"].VLAN, x.Networks["V10"].VLAN)
	}
	if !strings.Contains(strings.Join(inv.Warnings, "\n"), "port group VGT tags VLANs in the guest") {
		t.Errorf("warnings: %q", inv.Warnings)
	}
	if _, err := connector.Build(inv, []string{"testdata/overlay.yaml"}, ""); err != nil {
		t.Fatalf("the estate does not load: %v", err)
	}
}

// TestMapStandardVLANPerHost: two standard port groups named VM Network,
// in two datacenters, with VLAN 10 on the hosts of one and 20 on those of
// the other. Each network takes the VLAN of its own hosts (Network.host),
// so they stay two networks, the second written as VM Network#network-2;
// port groups of that name on other hosts do not count. Hosts of one
// network that disagree keep the first VLAN, with a warning.
func TestMapStandardVLANPerHost(t *testing.T) {
	ref := func(kind, id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: kind, Value: id}
	}
	host := func(id, name string, vlan int32) mo.HostSystem {
		return mo.HostSystem{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("HostSystem", id)}, Name: name},
			Config: &types.HostConfigInfo{Network: &types.HostNetworkInfo{Portgroup: []types.HostPortGroup{
				{Spec: types.HostPortGroupSpec{Name: "VM Network", VlanId: vlan}},
			}}}}
	}
	net := func(id string, hosts ...string) mo.Network {
		n := mo.Network{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("Network", id)}}, Name: "VM Network"}
		for _, h := range hosts {
			n.Host = append(n.Host, ref("HostSystem", h))
		}
		return n
	}
	for _, reverse := range []bool{false, true} {
		r := &Raw{
			Hosts:    []mo.HostSystem{host("host-1", "esx-a1", 10), host("host-2", "esx-a2", 10), host("host-3", "esx-b1", 20)},
			Networks: []mo.Network{net("network-1", "host-1", "host-2"), net("network-2", "host-3")},
			Attrs:    map[string]map[string]string{},
		}
		if reverse {
			slices.Reverse(r.Hosts)
			slices.Reverse(r.Networks)
			slices.Reverse(r.Networks[1].Host)
		}
		inv, err := r.Map("test")
		if err != nil {
			t.Fatal(err)
		}
		x := estate.NewIndex(&inv.Estate)
		if n := x.Networks["VM Network"]; n == nil || n.VLAN == nil || *n.VLAN != 10 {
			t.Errorf("VM Network = %+v", n)
		}
		if n := x.Networks["VM Network#network-2"]; n == nil || n.VLAN == nil || *n.VLAN != 20 {
			t.Errorf("the second datacenter's VM Network = %+v; networks %v", n, slices.Collect(maps.Keys(x.Networks)))
		}
		if slices.ContainsFunc(inv.Warnings, func(w string) bool { return strings.Contains(w, "has VLAN") }) {
			t.Errorf("a network's hosts agree, yet: %q", inv.Warnings)
		}
	}
	// One network whose hosts disagree.
	r := &Raw{
		Hosts:    []mo.HostSystem{host("host-1", "esx-a1", 10), host("host-2", "esx-a2", 11)},
		Networks: []mo.Network{net("network-1", "host-2", "host-1")},
		Attrs:    map[string]map[string]string{},
	}
	inv, err := r.Map("test")
	if err != nil {
		t.Fatal(err)
	}
	if n := estate.NewIndex(&inv.Estate).Networks["VM Network"]; n == nil || n.VLAN == nil || *n.VLAN != 10 {
		t.Errorf("VM Network = %+v", n)
	}
	if !slices.Contains(inv.Warnings, "port group VM Network has VLAN 10 on esx-a1 and 11 on esx-a2; kept 10") {
		t.Errorf("warnings %q", inv.Warnings)
	}
}

// TestMapDuplicatesAndOpaque: the mapping does not depend on the API's
// order (duplicate VM names get the same suffix either way); two networks
// of one name with different zones stay apart; NICs on an NSX (opaque)
// network are named after the network, not its segment ID.
func TestMapDuplicatesAndOpaque(t *testing.T) {
	host := types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"}
	ref := func(kind, id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: kind, Value: id}
	}
	card := func(mac string, backing types.BaseVirtualDeviceBackingInfo) types.BaseVirtualDevice {
		return &types.VirtualE1000{VirtualEthernetCard: types.VirtualEthernetCard{VirtualDevice: types.VirtualDevice{Backing: backing}, MacAddress: mac}}
	}
	vm := func(id, name string, dev types.BaseVirtualDevice) mo.VirtualMachine {
		return mo.VirtualMachine{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("VirtualMachine", id)}, Name: name},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &host},
			Config:  &types.VirtualMachineConfigInfo{Hardware: types.VirtualHardware{Device: []types.BaseVirtualDevice{dev}}}}
	}
	net := func(id, name string, summary types.BaseNetworkSummary) mo.Network {
		return mo.Network{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("Network", id)}}, Name: name, Summary: summary}
	}
	raw := func(reverse bool) *Raw {
		r := &Raw{
			Hosts: []mo.HostSystem{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: host}, Name: "h1"}}},
			Networks: []mo.Network{
				net("network-1", "VM Network", nil),
				net("network-2", "VM Network", nil),
				net("network-3", "nsx-seg", &types.OpaqueNetworkSummary{OpaqueNetworkId: "seg-uuid-1"}),
			},
			VMs: []mo.VirtualMachine{
				vm("vm-1", "dup", card("00:50:56:00:00:01", &types.VirtualEthernetCardNetworkBackingInfo{Network: &[]types.ManagedObjectReference{ref("Network", "network-1")}[0]})),
				vm("vm-2", "dup", card("00:50:56:00:00:02", &types.VirtualEthernetCardNetworkBackingInfo{Network: &[]types.ManagedObjectReference{ref("Network", "network-2")}[0]})),
				vm("vm-3", "nsx-vm", card("00:50:56:00:00:03", &types.VirtualEthernetCardOpaqueNetworkBackingInfo{OpaqueNetworkId: "seg-uuid-1"})),
			},
			Attrs: map[string]map[string]string{"network-1": {AttrZone: "internal"}, "network-2": {AttrZone: "internet"}},
		}
		if reverse {
			slices.Reverse(r.VMs)
			slices.Reverse(r.Networks)
		}
		return r
	}
	a, err := raw(false).Map("test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := raw(true).Map("test")
	if err != nil {
		t.Fatal(err)
	}
	ea, err := connector.Build(a, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	eb, err := connector.Build(b, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(ea.Data) != string(eb.Data) || !slices.Equal(a.Warnings, b.Warnings) {
		t.Fatalf("the API's order changed the result:\n%s\n---\n%s\n%q\n%q", ea.Data, eb.Data, a.Warnings, b.Warnings)
	}
	x := estate.NewIndex(&a.Estate)
	if x.VMs["dup"] == nil || x.VMs["dup#vm-2"] == nil {
		t.Fatalf("VMs: %v", slices.Collect(maps.Keys(x.VMs)))
	}
	if n := x.Networks["VM Network"]; n == nil || n.Zone != "internal" {
		t.Errorf("VM Network = %+v", n)
	}
	if n := x.Networks["VM Network#network-2"]; n == nil || n.Zone != "internet" {
		t.Errorf("the second VM Network = %+v", n)
	}
	if nic := x.VMs["dup#vm-2"].NICs[0]; nic.Network != "VM Network#network-2" {
		t.Errorf("dup#vm-2 NIC on %q, want the internet-facing network", nic.Network)
	}
	if nic := x.VMs["nsx-vm"].NICs[0]; nic.Network != "nsx-seg" {
		t.Errorf("NSX NIC on %q, want nsx-seg", nic.Network)
	}
	if x.Networks["seg-uuid-1"] != nil {
		t.Error("the segment ID became a network of its own")
	}
}

// TestMapRulesTemplatesStandalone: a VM-Host rule against a host group
// becomes a mustNot placement rule; a VM-VM affinity rule is not imported,
// with a warning; templates are left out; a standalone host (parent not a
// cluster) gets the default cluster.
func TestMapRulesTemplatesStandalone(t *testing.T) {
	ref := func(kind, id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: kind, Value: id}
	}
	h1, h2 := ref("HostSystem", "host-1"), ref("HostSystem", "host-2")
	cl, cr := ref("ClusterComputeResource", "domain-c1"), ref("ComputeResource", "domain-s2")
	host := func(self, parent types.ManagedObjectReference, name string) mo.HostSystem {
		return mo.HostSystem{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: self}, Name: name, Parent: &parent}}
	}
	vm := func(id, name string, on types.ManagedObjectReference, template bool) mo.VirtualMachine {
		return mo.VirtualMachine{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("VirtualMachine", id)}, Name: name},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &on}, Config: &types.VirtualMachineConfigInfo{Template: template}}
	}
	yes := true
	r := &Raw{
		Hosts: []mo.HostSystem{host(h1, cl, "esx-1"), host(h2, cr, "esx-solo")},
		VMs:   []mo.VirtualMachine{vm("vm-1", "db-1", h1, false), vm("vm-2", "db-2", h1, false), vm("vm-3", "golden", h1, true)},
		Clusters: []mo.ClusterComputeResource{{ComputeResource: mo.ComputeResource{ManagedEntity: mo.ManagedEntity{
			ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: cl}, Name: "C1"},
			ConfigurationEx: &types.ClusterConfigInfoEx{
				Group: []types.BaseClusterGroupInfo{
					&types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "dbs"}, Vm: []types.ManagedObjectReference{ref("VirtualMachine", "vm-1")}},
					&types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "dmz-hosts"}, Host: []types.ManagedObjectReference{h1}},
				},
				Rule: []types.BaseClusterRuleInfo{
					&types.ClusterVmHostRuleInfo{ClusterRuleInfo: types.ClusterRuleInfo{Name: "db-not-dmz", Enabled: &yes},
						VmGroupName: "dbs", AntiAffineHostGroupName: "dmz-hosts"},
					&types.ClusterAffinityRuleSpec{ClusterRuleInfo: types.ClusterRuleInfo{Name: "db-together", Enabled: &yes},
						Vm: []types.ManagedObjectReference{ref("VirtualMachine", "vm-1"), ref("VirtualMachine", "vm-2")}},
				},
			}}}},
		Attrs: map[string]map[string]string{},
	}
	inv, err := r.Map("test")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Placement) != 1 || inv.Placement[0].Rule != estate.RuleMustNot || !slices.Equal(inv.Placement[0].Hypervisors.Names, []string{"esx-1"}) {
		t.Errorf("placement = %+v", inv.Placement)
	}
	if !strings.Contains(strings.Join(inv.Warnings, "\n"), "drs/C1/db-together keeps VMs together") {
		t.Errorf("no warning for the affinity rule: %q", inv.Warnings)
	}
	out, err := connector.Build(inv, []string{"testdata/overlay.yaml"}, "")
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(out.Result.Estate)
	if x.VMs["golden"] != nil || len(x.VMs) != 2 {
		t.Errorf("the template is not left out: %v", slices.Collect(maps.Keys(x.VMs)))
	}
	if h := x.Hypervisors["esx-solo"]; h == nil || h.Cluster != "default" {
		t.Errorf("standalone host = %+v, want cluster default", h)
	}
	got := map[string]bool{}
	for _, f := range check.Evaluate(x, out.Result.Policy, check.Options{}).Findings {
		got[f.Check+" "+f.Subject] = true
	}
	if !got["VG402 vm/db-1"] {
		t.Errorf("db-1 runs on a host its mustNot rule forbids: want VG402, got %v", got)
	}
}

// TestMapSameClusterName: two datacenters each have a cluster Prod with a
// VM-Host rule (dbs on db-hosts) that DRS keeps. The second cluster is
// written as Prod#domain-c2, with a warning, in the hosts' cluster, the
// rule names and the VM labels: whether the rules share a name (the
// merged estate would not load) or not (each rule's hosts would apply to
// the other's VMs, a false VG402), the estate loads with no placement
// finding.
func TestMapSameClusterName(t *testing.T) {
	ref := func(kind, id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: kind, Value: id}
	}
	h1, h2 := ref("HostSystem", "host-1"), ref("HostSystem", "host-2")
	c1, c2 := ref("ClusterComputeResource", "domain-c1"), ref("ClusterComputeResource", "domain-c2")
	host := func(self, parent types.ManagedObjectReference, name string) mo.HostSystem {
		return mo.HostSystem{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: self}, Name: name, Parent: &parent}}
	}
	vm := func(id, name string, on types.ManagedObjectReference) mo.VirtualMachine {
		return mo.VirtualMachine{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("VirtualMachine", id)}, Name: name},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &on}, Config: &types.VirtualMachineConfigInfo{}}
	}
	yes := true
	cluster := func(self types.ManagedObjectReference, vmID string, h types.ManagedObjectReference, rule string) mo.ClusterComputeResource {
		return mo.ClusterComputeResource{ComputeResource: mo.ComputeResource{ManagedEntity: mo.ManagedEntity{
			ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: self}, Name: "Prod"},
			ConfigurationEx: &types.ClusterConfigInfoEx{
				Group: []types.BaseClusterGroupInfo{
					&types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "dbs"}, Vm: []types.ManagedObjectReference{ref("VirtualMachine", vmID)}},
					&types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "db-hosts"}, Host: []types.ManagedObjectReference{h}},
				},
				Rule: []types.BaseClusterRuleInfo{
					&types.ClusterVmHostRuleInfo{ClusterRuleInfo: types.ClusterRuleInfo{Name: rule, Enabled: &yes, Mandatory: &yes},
						VmGroupName: "dbs", AffineHostGroupName: "db-hosts"},
				},
			}}}
	}
	for _, rule2 := range []string{"dbs-on-db-hosts", "dbs-pinned"} {
		for _, reverse := range []bool{false, true} {
			r := &Raw{
				Hosts:    []mo.HostSystem{host(h1, c1, "esx-a1"), host(h2, c2, "esx-b1")},
				VMs:      []mo.VirtualMachine{vm("vm-1", "db-a", h1), vm("vm-2", "db-b", h2)},
				Clusters: []mo.ClusterComputeResource{cluster(c1, "vm-1", h1, "dbs-on-db-hosts"), cluster(c2, "vm-2", h2, rule2)},
				Attrs:    map[string]map[string]string{},
			}
			if reverse {
				slices.Reverse(r.Clusters)
				slices.Reverse(r.Hosts)
			}
			inv, err := r.Map("test")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(inv.Warnings, "two clusters are named Prod; the one with id domain-c2 is written as Prod#domain-c2") {
				t.Errorf("%s: warnings %q", rule2, inv.Warnings)
			}
			out, err := connector.Build(inv, nil, "")
			if err != nil {
				t.Fatalf("%s: the estate does not load: %v", rule2, err)
			}
			x := estate.NewIndex(out.Result.Estate)
			if a, b := x.Hypervisors["esx-a1"].Cluster, x.Hypervisors["esx-b1"].Cluster; a != "Prod" || b != "Prod#domain-c2" {
				t.Errorf("%s: clusters %q and %q", rule2, a, b)
			}
			var names []string
			for _, p := range inv.Placement {
				names = append(names, p.Name)
			}
			slices.Sort(names)
			if want := []string{"drs/Prod#domain-c2/" + rule2, "drs/Prod/dbs-on-db-hosts"}; !slices.Equal(names, want) {
				t.Errorf("rules %q, want %q", names, want)
			}
			if got := x.VMs["db-b"].Labels; got["vsphere.drs.group/Prod#domain-c2/dbs"] != "true" || len(got) != 1 {
				t.Errorf("db-b labels %v", got)
			}
			for _, f := range check.Evaluate(x, out.Result.Policy, check.Options{}).Findings {
				if strings.HasPrefix(f.Check, "VG4") { // placement and separation
					t.Errorf("%s: false finding: %s %s %s", rule2, f.Check, f.Subject, f.Message)
				}
			}
		}
	}
}

// TestMapWarnsUnknownAttributes: a vguard.* name in the wrong case, or on
// the wrong kind of object, is reported rather than silently ignored.
func TestMapWarnsUnknownAttributes(t *testing.T) {
	host := types.ManagedObjectReference{Type: "HostSystem", Value: "host-1"}
	vm := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}
	r := &Raw{
		Hosts: []mo.HostSystem{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: host}, Name: "h1"}}},
		VMs: []mo.VirtualMachine{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: vm}, Name: "web-1"},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &host}}},
		Attrs: map[string]map[string]string{"vm-1": {"vguard.securitylevel": "high", AttrZone: "dmz"}, "host-1": {AttrSecurityLevel: "low"}},
	}
	inv, err := r.Map("test")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(inv.Warnings, "\n")
	for _, want := range []string{"VM web-1: vguard.securitylevel is not an attribute", "VM web-1: vguard.zone is not an attribute",
		"host h1: vguard.securityLevel is not an attribute"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning %q in %q", want, inv.Warnings)
		}
	}
}

// TestEndpointEscapeHint: a password with an unescaped / or # breaks the
// URL; the error says how to write it, and never shows it.
func TestEndpointEscapeHint(t *testing.T) {
	for _, raw := range []string{"https://admin:pa/ss@vc.example.com/sdk", "https://admin:pa#ss@vc.example.com/sdk", "https://admin:pa%zz@vc/sdk"} {
		_, err := ParseEndpoint(raw, false)
		if err == nil || !strings.Contains(err.Error(), "# → %23") || strings.Contains(err.Error(), "vc") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	ep, err := ParseEndpoint("https://admin:pa%2Fss%23@vc.example.com/sdk", false)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := ep.user.Password(); p != "pa/ss#" {
		t.Errorf("escaped password read as %q", p)
	}
	if ep.String() != "https://vc.example.com/sdk" {
		t.Errorf("printed as %s, want scheme, host and path only", ep)
	}
}

// TestSyncControlCharacterNames: vCenter names are free text, and the
// loader refuses control characters. A VM, port group or cluster named
// with a tab, DEL or a C1 character (and a zone tag so named) is written
// escaped (connector.SafeName), with a warning, and every reference to it
// the same way, so that one such name does not keep the estate from
// loading; a VM whose escaped name meets a VM really named so is a
// duplicate like any other (NAME#moref).
func TestSyncControlCharacterNames(t *testing.T) {
	sim := vspheretest.Start(t, 4)
	vspheretest.Scenario(t, sim)
	ctx := context.Background()
	f := sim.Finder(t)
	rename := func(o interface {
		Rename(context.Context, string) (*object.Task, error)
	}, name string) {
		t.Helper()
		task, err := o.Rename(ctx, name)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("rename to %q: %v", name, err)
		}
	}
	vm := func(name string) *object.VirtualMachine {
		v, err := f.VirtualMachine(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	low, high, other := vm(vspheretest.VMWebLow), vm(vspheretest.VMWebHigh), vm("DC0_C1_RP0_VM0")
	n, err := f.Network(ctx, vspheretest.PGInternal)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := f.ClusterComputeResource(ctx, "DC0_C1")
	if err != nil {
		t.Fatal(err)
	}
	// The lower moref keeps the plain name, as for any duplicate.
	first, second := low, high
	if strings.Compare(low.Reference().Value, high.Reference().Value) > 0 {
		first, second = high, low
	}
	rename(first, "web%092")
	rename(second, "web\t2")
	rename(n.(*object.DistributedVirtualPortgroup), "int\u0085net")
	rename(cl, "C\x7f1")
	sim.Tag(t, "vguard.homeZone", "lab\tzone", other)

	ep, err := ParseEndpoint(sim.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Sync(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	warnings := strings.Join(inv.Warnings, "\n")
	for _, want := range []string{
		`VM "web\t2" (` + second.Reference().Value + `): its name holds control characters or bytes that are not UTF-8; written as web%092`,
		"two VMs are named web%092; the one with id " + second.Reference().Value + " is written as web%092#" + second.Reference().Value,
		`network "int\u0085net" (`,
		`cluster "C\x7f1" (domain-`,
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("no warning %q in:\n%s", want, warnings)
		}
	}
	built, err := connector.Build(inv, nil, "")
	if err != nil {
		t.Fatalf("one name with a control character keeps the estate from loading: %v", err)
	}
	if i := strings.IndexFunc(string(built.Data)+warnings, func(r rune) bool { return r == '\t' || r == 0x7f || r == 0x85 }); i >= 0 {
		t.Errorf("a control character was written or warned raw")
	}
	x := estate.NewIndex(built.Result.Estate)
	esc := x.VMs["web%092#"+second.Reference().Value]
	if x.VMs["web%092"] == nil || esc == nil {
		t.Fatalf("VMs named web%%092: %v", slices.Sorted(maps.Keys(x.VMs)))
	}
	lowVM := esc
	if second != low {
		lowVM = x.VMs["web%092"]
	}
	if len(lowVM.NICs) != 1 || lowVM.NICs[0].Network != "int%C2%85net" || x.Networks["int%C2%85net"] == nil || x.Networks["int%C2%85net"].Zone != "internal" {
		t.Errorf("the NIC on the renamed port group: %+v", lowVM.NICs)
	}
	for _, h := range x.Hypervisors {
		if strings.HasPrefix(h.Name, "DC0_C1") && h.Cluster != "C%7F1" {
			t.Errorf("host %s in cluster %q, want C%%7F1", h.Name, h.Cluster)
		}
	}
	if z := x.VMs["DC0_C1_RP0_VM0"].HomeZone; z != "lab%09zone" || x.Zones[z] == nil {
		t.Errorf("home zone %q: a zone's name comes from a tag, free text too", z)
	}
}

// TestMapControlCharacterRules: a host (named so on the way in: vCenter
// does not rename hosts) and DRS rules and groups named with control
// characters are escaped in the rules' names, labels and host lists alike,
// so the imported rules still load and hold.
func TestMapControlCharacterRules(t *testing.T) {
	ref := func(kind, id string) types.ManagedObjectReference {
		return types.ManagedObjectReference{Type: kind, Value: id}
	}
	h1, cl := ref("HostSystem", "host-1"), ref("ClusterComputeResource", "domain-c1")
	vm := func(id, name string) mo.VirtualMachine {
		return mo.VirtualMachine{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: ref("VirtualMachine", id)}, Name: name},
			Runtime: types.VirtualMachineRuntimeInfo{Host: &h1}, Config: &types.VirtualMachineConfigInfo{}}
	}
	yes := true
	r := &Raw{
		Hosts: []mo.HostSystem{{ManagedEntity: mo.ManagedEntity{ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: h1}, Name: "esx\t1", Parent: &cl}}},
		VMs:   []mo.VirtualMachine{vm("vm-1", "db-1"), vm("vm-2", "db\u00852")},
		Clusters: []mo.ClusterComputeResource{{ComputeResource: mo.ComputeResource{ManagedEntity: mo.ManagedEntity{
			ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: cl}, Name: "C1"},
			ConfigurationEx: &types.ClusterConfigInfoEx{
				Group: []types.BaseClusterGroupInfo{
					&types.ClusterVmGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "db\ts"}, Vm: []types.ManagedObjectReference{ref("VirtualMachine", "vm-1")}},
					&types.ClusterHostGroup{ClusterGroupInfo: types.ClusterGroupInfo{Name: "dmz\thosts"}, Host: []types.ManagedObjectReference{h1}},
				},
				Rule: []types.BaseClusterRuleInfo{
					&types.ClusterVmHostRuleInfo{ClusterRuleInfo: types.ClusterRuleInfo{Name: "db\tnot-dmz", Enabled: &yes},
						VmGroupName: "db\ts", AntiAffineHostGroupName: "dmz\thosts"},
					&types.ClusterAntiAffinityRuleSpec{ClusterRuleInfo: types.ClusterRuleInfo{Name: "apart\u0085", Enabled: &yes},
						Vm: []types.ManagedObjectReference{ref("VirtualMachine", "vm-1"), ref("VirtualMachine", "vm-2")}},
				},
			}}}},
		Attrs: map[string]map[string]string{},
	}
	inv, err := r.Map("test")
	if err != nil {
		t.Fatal(err)
	}
	out, err := connector.Build(inv, nil, "")
	if err != nil {
		t.Fatalf("the estate does not load: %v", err)
	}
	if len(out.Result.Policy.Placement) != 1 || out.Result.Policy.Placement[0].Name != "drs/C1/db%09not-dmz" ||
		!slices.Equal(out.Result.Policy.Placement[0].Hypervisors.Names, []string{"esx%091"}) {
		t.Errorf("placement = %+v", out.Result.Policy.Placement)
	}
	if len(out.Result.Policy.Separate) != 1 || out.Result.Policy.Separate[0].Name != "drs/C1/apart%C2%85" {
		t.Errorf("separate = %+v", out.Result.Policy.Separate)
	}
	x := estate.NewIndex(out.Result.Estate)
	got := map[string]bool{}
	for _, f := range check.Evaluate(x, out.Result.Policy, check.Options{}).Findings {
		got[f.Check+" "+f.Subject] = true
	}
	if !got["VG402 vm/db-1"] || !got["VG401 hypervisor/esx%091"] {
		t.Errorf("the escaped rules do not hold: want VG402 on db-1 and VG401 on esx%%091, got %v", got)
	}
	if !strings.Contains(strings.Join(inv.Warnings, "\n"), `host "esx\t1" (host-1)`) {
		t.Errorf("warnings %q", inv.Warnings)
	}
}
