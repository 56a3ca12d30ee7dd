package libvirt

import (
	"context"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vguard-dev/vguard/internal/check"
	"github.com/vguard-dev/vguard/internal/connector"
	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/libvirt/libvirttest"
	"github.com/vguard-dev/vguard/internal/load"
)

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSyncRealDaemon reads two hypervisors (two test-driver estates) from a
// real libvirtd, lays the overlay over them, and checks that the written
// documents load and that vguard finds what the facts imply.
func TestSyncRealDaemon(t *testing.T) {
	d := libvirttest.Start(t)
	targets := []Target{
		{Name: "hv-a", URI: d.URI(abs(t, "testdata/hv-a.xml"))},
		{Name: "hv-b", URI: d.URI(abs(t, "testdata/hv-b.xml"))},
	}
	inv, err := Sync(context.Background(), targets)
	if err != nil {
		t.Fatalf("sync: %v (daemon log %s)", err, d.Log)
	}
	x := estate.NewIndex(&inv.Estate)
	if len(x.Hypervisors) != 2 || len(x.VMs) != 4 {
		t.Fatalf("got %d hypervisors and %d VMs, want 2 and 4", len(x.Hypervisors), len(x.VMs))
	}
	web1 := x.VMs["web-1"]
	if web1.Hypervisor != "hv-a" || web1.Owner != "web" || web1.App != "shop" || web1.SecurityLevel != estate.LevelLow ||
		web1.Labels["tier"] != "front" || web1.Identity.UUID != "6695eb01-f6a4-8304-79aa-97f2502e1931" {
		t.Errorf("web-1 mapped wrong: %+v", web1)
	}
	if r := web1.Resources; r == nil || r.CPUs != 2 || r.MemoryMiB != 4096 || r.Limited == nil || *r.Limited {
		t.Errorf("web-1 resources = %+v, want 2 CPUs, 4096 MiB, not limited", r)
	}
	if len(web1.NICs) != 1 || web1.NICs[0].Network != "dmz" || web1.NICs[0].MAC != "52:54:00:aa:00:01" {
		t.Errorf("web-1 NICs = %+v", web1.NICs)
	}
	hr1 := x.VMs["hr-app-1"]
	if got := []string{hr1.NICs[0].Network, hr1.NICs[1].Network}; !slices.Equal(got, []string{"hr-net", "br-backup"}) {
		t.Errorf("hr-app-1 NIC networks = %v: a bridge owned by a libvirt network is that network, another bridge its own", got)
	}
	if r := hr1.Resources; r.Limited == nil || !*r.Limited || r.MemoryMiB != 8192 {
		t.Errorf("hr-app-1 has a CPU quota: resources = %+v", r)
	}
	if r := x.VMs["web-2"].Resources; r.Limited == nil || !*r.Limited || r.MemoryMiB != 2048 {
		t.Errorf("web-2 has a memory hard limit: resources = %+v", r)
	}
	if n := x.Networks["dmz"]; n.Zone != "internet" || n.VLAN == nil || *n.VLAN != 10 {
		t.Errorf("dmz = %+v", n)
	}
	if c := x.Hypervisors["hv-a"].Capacity; c == nil || c.CPUs != 32 || c.MemoryMiB != 131072 {
		t.Errorf("hv-a capacity = %+v", c)
	}

	out := filepath.Join(t.TempDir(), "estate.yaml")
	built, err := connector.Build(inv, []string{"testdata/overlay.yaml"}, out)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := connector.WriteFile(out, built.Data); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("VG_DUMP") != "" {
		t.Logf("%s\nwarnings: %q", built.Data, built.Warnings)
	}
	res, err := load.Paths([]string{out}, load.Options{})
	if err != nil {
		t.Fatalf("the written estate does not load: %v\n%s", err, built.Data)
	}
	x = estate.NewIndex(res.Estate)
	if hr := x.VMs["hr-app-1"]; len(hr.Credentials) != 1 || hr.Labels["pci"] != "true" || hr.Owner != "hr" {
		t.Errorf("overlay not laid over hr-app-1: %+v", hr)
	}
	if w := x.VMs["web-1"]; len(w.NICs[0].Ports) != 2 || w.NICs[0].Network != "dmz" {
		t.Errorf("overlay ports not on web-1's NIC: %+v", w.NICs)
	}
	if h := x.Hypervisors["hv-a"]; h.Cluster != "lab" || h.Capacity == nil || h.Capacity.CPUs != 32 {
		t.Errorf("hv-a = %+v: overlay cluster and discovered capacity both kept", h)
	}
	got := map[string]bool{}
	for _, f := range check.Evaluate(x, res.Policy, check.Options{}).Findings {
		got[f.Check+" "+f.Subject] = true
	}
	for _, want := range []string{"VG101 vm/web-1", "VG106 vm/hr-app-1", "VG107 vm/hr-app-1", "VG109 vm/web-1",
		"VG301 service/shop", "VG304 vm/web-1"} {
		if !got[want] {
			t.Errorf("missing finding %s; got %v", want, got)
		}
	}
	if got["VG101 vm/web-2"] {
		t.Error("web-2 is hardened (high): VG101 must not fire on it")
	}
	n401 := 0
	for k := range got {
		if strings.HasPrefix(k, "VG401 ") {
			n401++
		}
	}
	if n401 == 0 {
		t.Errorf("the overlay's separate rule is broken on both hypervisors: want VG401, got %v", got)
	}
}

func TestSyncUnreachable(t *testing.T) {
	_, err := Sync(context.Background(), []Target{{URI: "test+unix:///default?socket=/nonexistent/sock"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/sock") {
		t.Fatalf("want a clear error naming the socket, got %v", err)
	}
}

func TestWriteFileNeverPartial(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := connector.WriteFile(filepath.Join(dir, "missing", "estate.yaml"), []byte("new")); err == nil {
		t.Fatal("want an error writing into a missing directory")
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatal("existing file changed")
	}
}

func TestParseTargetAndRedact(t *testing.T) {
	tg, err := ParseTarget("hv-a=qemu+libssh2://root:S3cretPw@127.0.0.1:1/system?known_hosts_verify=ignore")
	if err != nil || tg.Name != "hv-a" || !strings.HasPrefix(tg.URI, "qemu+libssh2://") {
		t.Fatalf("got %+v, %v", tg, err)
	}
	if tg, _ := ParseTarget("qemu:///system?socket=/run/x"); tg.Name != "" || tg.URI != "qemu:///system?socket=/run/x" {
		t.Errorf("a query's = is not a name: %+v", tg)
	}
	if r := Redact(tg.URI); strings.Contains(r, "S3cretPw") || !strings.Contains(r, "root") {
		t.Errorf("Redact = %q", r)
	}
	_, err = Dial(tg)
	if err == nil || strings.Contains(err.Error(), "S3cretPw") {
		t.Errorf("dial error must exist and hide the password: %v", err)
	}
	if _, err := ParseTarget("not a uri"); err == nil {
		t.Error("want an error")
	}
	if _, err := ParseTarget("qemu+ssh://u:S3cretPw@h/%zz"); err == nil || strings.Contains(err.Error(), "S3cretPw") {
		t.Errorf("an unparsable URI: want an error without the password, got %v", err)
	}

	// A password holding '@' then '/', '?' or '#': url.Parse cuts the
	// authority at that character and the user information at the '@'
	// before it, so the password's tail would be the host and the path.
	for _, uri := range []string{
		"qemu+ssh://root:Sup3r@Secr3tPart/2024@hv-a/system",
		"hv-a=qemu+ssh://root:Sup3r@Secr3tPart?2024@hv-a/system",
		"qemu+tls://root:Sup3r@Secr3tPart#2024@hv-a/system",
		"qemu+ssh://root:1234?5678@hv-a/system", // parses as host root, port 1234
		"qemu+ssh://root:1234#5678@hv-a/system",
		"qemu+ssh://root:Sup3r@Secr3tPart/2024@hv-a:22/system?keyfile=/k",
	} {
		_, err := ParseTarget(uri)
		if err == nil {
			t.Errorf("ParseTarget accepted %s", uri)
			continue
		}
		for _, part := range []string{"Sup3r", "Secr3tPart", "2024", "1234", "5678"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("the error quotes %q: %v", part, err)
			}
		}
		if !strings.Contains(err.Error(), "%40") {
			t.Errorf("the error does not say how to write an '@': %v", err)
		}
		_, u, _ := strings.Cut(uri, "=qemu")
		if u != "" {
			u = "qemu" + u
		} else {
			u = uri
		}
		if r := Redact(u); strings.ContainsAny(r, "@?#") || strings.Contains(r, "Secr3tPart") || strings.Contains(r, "2024") || strings.Contains(r, "5678") {
			t.Errorf("Redact(%s) = %q", u, r)
		}
	}
	if r := Redact("root:Sup3r@x://a/b@c"); strings.Contains(r, "Sup3r") {
		t.Errorf("Redact printed a scheme that is no scheme: %q", r)
	}
	// Written with %40, the same password is accepted, and redacted.
	tg, err = ParseTarget("qemu+ssh://root:Sup3r%40Secr3tPart%2F2024@hv-a/system?keyfile=/home/a%40b/k")
	if err != nil {
		t.Fatalf("an escaped password: %v", err)
	}
	if u, _ := url.Parse(tg.URI); u.Hostname() != "hv-a" {
		t.Errorf("host %q", u.Hostname())
	} else if p, _ := u.User.Password(); p != "Sup3r@Secr3tPart/2024" {
		t.Errorf("password %q", p)
	}
	if r := Redact(tg.URI); strings.Contains(r, "Sup3r") || strings.Contains(r, "Secr3tPart") || !strings.Contains(r, "@hv-a/system") {
		t.Errorf("Redact = %q", r)
	}
}

// TestSyncMetadataOfRunningDomain: `virsh metadata --config` on a running
// domain changes only its persistent definition; sync must still see it
// (it used to read the live XML only).
func TestSyncMetadataOfRunningDomain(t *testing.T) {
	d := libvirttest.Start(t)
	uri := d.URI("default")
	c, err := Dial(Target{Name: "hv", URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dom, err := c.L.DomainLookupByName("test")
	if err != nil {
		t.Fatal(err)
	}
	if dom.ID <= 0 {
		t.Fatalf("the test driver's domain %q does not run", dom.Name)
	}
	err = c.L.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement),
		golibvirt.OptString{`<vm securityLevel="high" owner="ops"/>`}, golibvirt.OptString{"vguard"}, golibvirt.OptString{Namespace},
		golibvirt.DomainAffectConfig)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Sync(context.Background(), []Target{{Name: "hv", URI: uri}})
	if err != nil {
		t.Fatal(err)
	}
	vm := estate.NewIndex(&inv.Estate).VMs["test"]
	if vm == nil || vm.SecurityLevel != estate.LevelHigh || vm.Owner != "ops" {
		t.Fatalf("metadata set with --config not seen: %+v", vm)
	}
}

// TestSyncLiveGatewayFalseWins: gateway="false" in a running domain's live
// metadata is a value, not a silence: a stale gateway="true" in its
// persistent definition must not make it a gateway (which exempts it from
// VG102 and VG103). Where the live metadata says nothing, the persistent
// value is taken.
func TestSyncLiveGatewayFalseWins(t *testing.T) {
	d := libvirttest.Start(t)
	uri := d.URI("default")
	c, err := Dial(Target{Name: "hv", URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dom, err := c.L.DomainLookupByName("test")
	if err != nil {
		t.Fatal(err)
	}
	set := func(xml string, flags golibvirt.DomainModificationImpact) {
		t.Helper()
		err := c.L.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement),
			golibvirt.OptString{xml}, golibvirt.OptString{"vguard"}, golibvirt.OptString{Namespace}, flags)
		if err != nil {
			t.Fatal(err)
		}
	}
	gateway := func() bool {
		t.Helper()
		inv, err := Sync(context.Background(), []Target{{Name: "hv", URI: uri}})
		if err != nil {
			t.Fatal(err)
		}
		return estate.NewIndex(&inv.Estate).VMs["test"].Gateway
	}
	set(`<vm gateway="true" owner="ops"/>`, golibvirt.DomainAffectConfig)
	set(`<vm owner="ops"/>`, golibvirt.DomainAffectLive)
	if !gateway() {
		t.Error("live metadata without gateway: the persistent gateway=\"true\" is not taken")
	}
	set(`<vm gateway="false" owner="ops"/>`, golibvirt.DomainAffectLive)
	if gateway() {
		t.Error("live gateway=\"false\" lost to the persistent gateway=\"true\"")
	}
}

// TestReadSkipsWhatWentAway: a domain undefined, a transient domain
// destroyed and a network undefined between the list and the read of
// their XML are skipped with a warning; the read (a watch's re-read, made
// exactly while domains change) does not fail.
func TestReadSkipsWhatWentAway(t *testing.T) {
	d := libvirttest.Start(t)
	uri := d.URI("default")
	m, err := Dial(Target{Name: "mutator", URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	doomed, err := m.L.DomainDefineXML(`<domain type='test'><name>doomed</name><memory>1024</memory><os><type>hvm</type></os></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	flash, err := m.L.DomainCreateXML(`<domain type='test'><name>flash</name><memory>1024</memory><os><type>hvm</type></os></domain>`, 0)
	if err != nil {
		t.Fatal(err)
	}
	net, err := m.L.NetworkDefineXML(`<network><name>doomed-net</name><bridge name='virbr7'/></network>`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(Target{Name: "hv", URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.listed = func(what string) {
		switch what {
		case "networks":
			if err := m.L.NetworkUndefine(net); err != nil {
				t.Error(err)
			}
		case "domains":
			if err := m.L.DomainUndefine(doomed); err != nil {
				t.Error(err)
			}
			if err := m.L.DomainDestroy(flash); err != nil {
				t.Error(err)
			}
		}
	}
	h, err := c.read()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var names []string
	for _, d := range h.domains {
		names = append(names, d.vm.Name)
	}
	for _, n := range h.networks {
		names = append(names, n.Name)
	}
	if slices.Contains(names, "doomed") || slices.Contains(names, "flash") || slices.Contains(names, "doomed-net") || !slices.Contains(names, "test") {
		t.Errorf("read %v", names)
	}
	for _, w := range []string{"domain doomed went away", "domain flash went away", "network doomed-net went away"} {
		if !slices.ContainsFunc(h.warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning %q in %q", w, h.warnings)
		}
	}
}

// TestSyncControlCharacterNames: libvirt refuses only a newline in a name,
// and the loader refuses every control character. A domain, network,
// portgroup or bridge named with a tab, DEL or a C1 character is written
// escaped (connector.SafeName), with a warning, with every reference to it
// escaped the same way, so that one such name does not keep the whole
// estate from loading. A domain whose escaped name meets a domain really
// named so is written NAME#UUID, and the hook finds each by its own XML.
func TestSyncControlCharacterNames(t *testing.T) {
	d := libvirttest.Start(t)
	uri := d.URI("default")
	c, err := Dial(Target{Name: "hv", URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.L.NetworkDefineXML(`<network><name>lan` + "\u0085" + `x</name><bridge name='vbr` + "\x7f" + `9'/>
<metadata><vguard:network xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" zone="dmz&#9;a"/></metadata>
<portgroup name='pg&#9;1'/></network>`); err != nil {
		t.Fatal(err)
	}
	const tabUUID, plainUUID = "0b9c5a46-3f4e-4a52-9d1e-6c1f2d3e4a01", "0b9c5a46-3f4e-4a52-9d1e-6c1f2d3e4a02"
	domain := func(name, uuid, devices string) string {
		return `<domain type='test'><name>` + name + `</name><uuid>` + uuid + `</uuid><memory>1024</memory><os><type>hvm</type></os>
<metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" securityLevel="high" homeZone="lab&#133;1"/></metadata>
<devices>` + devices + `</devices></domain>`
	}
	tabXML := domain("web\t2", tabUUID, `<interface type='network'><mac address='52:54:00:00:0a:01'/><source network='lan`+"\u0085"+`x' portgroup='pg&#9;1'/></interface>
<interface type='bridge'><mac address='52:54:00:00:0a:02'/><source bridge='vbr`+"\x7f"+`9'/></interface>
<interface type='bridge'><mac address='52:54:00:00:0a:03'/><source bridge='br&#9;x'/></interface>`)
	var defined []string // as libvirt gives them to the hook
	for _, x := range []string{tabXML, domain("web%092", plainUUID, ""), domain("db\u00851", "", "")} {
		dom, err := c.L.DomainDefineXML(x)
		if err != nil {
			t.Fatalf("libvirt refused %s: %v", x, err)
		}
		if x, err = c.L.DomainGetXMLDesc(dom, 0); err != nil {
			t.Fatal(err)
		}
		defined = append(defined, x)
	}
	inv, err := Sync(context.Background(), []Target{{Name: "hv", URI: uri}})
	if err != nil {
		t.Fatal(err)
	}
	warnings := strings.Join(inv.Warnings, "\n")
	for _, want := range []string{
		`domain "web\t2" (` + tabUUID + `): its name holds control characters or bytes that are not UTF-8; written as web%092`,
		`network "lan\u0085x"`,
		`domains "web%092" and "web\t2" are both written as web%092; the one with UUID ` + tabUUID + ` is written as web%092#` + tabUUID,
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
		t.Errorf("a control character was written or warned raw:\n%s\n%s", built.Data, warnings)
	}
	x := estate.NewIndex(built.Result.Estate)
	tab, plain := x.VMs["web%092#"+tabUUID], x.VMs["web%092"]
	if tab == nil || plain == nil || plain.Identity.UUID != plainUUID || x.VMs["db%C2%851"] == nil {
		t.Fatalf("VMs: %v", slices.Sorted(maps.Keys(x.VMs)))
	}
	if got := []string{tab.NICs[0].Network, tab.NICs[1].Network, tab.NICs[2].Network}; !slices.Equal(got, []string{"lan%C2%85x/pg%091", "lan%C2%85x", "br%09x"}) {
		t.Errorf("NIC networks %q: the escaped portgroup, the network owning the escaped bridge, a bridge of its own", got)
	}
	if tab.HomeZone != "lab%C2%851" || x.Networks["lan%C2%85x"].Zone != "dmz%09a" || x.Zones["dmz%09a"] == nil {
		t.Errorf("zones are names too: homeZone %q, network zone %q", tab.HomeZone, x.Networks["lan%C2%85x"].Zone)
	}
	// The hook maps each domain's XML to its name in the estate: nothing
	// changes for either, and the carried findings are looked up under
	// that name.
	for i, want := range []string{"web%092#" + tabUUID, "web%092", "db%C2%851"} {
		chg, vm, err := HookChange(x, "hv", defined[i])
		if err != nil || vm != want || len(chg.Operations) != 0 {
			t.Errorf("hook: %s, change %q, %v; want %s, no change", vm, Describe(chg), err, want)
		}
	}
}
