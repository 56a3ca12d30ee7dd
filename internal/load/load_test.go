package load

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
)

const header = "apiVersion: vguard.dev/v1\nkind: Estate\n"

const base = header + `zones: [{name: z, exposure: internal}, {name: web, exposure: public}]
networks: [{name: n, zone: z}, {name: w, zone: web, vlan: 5}]
hypervisors: [{name: hv-1, capacity: {cpus: 8, memoryMiB: 1024}}]
datastores: [{name: db, writers: single}]
images: [{name: m, version: 1, master: true}]
`

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", base+`vms:
  - name: vm-1
    hypervisor: hv-1
    image: m@1
    nics: [{network: n, mac: "52:54:00:00:00:01", ports: [22, "8000-8080"]}]
    credentials: [{datastore: db, access: write}]
    manifest: m/vm-1.json
services:
  - {name: s, members: [vm-1]}
`)
	write(t, dir, "b.json", `{"apiVersion": "vguard.dev/v1", "kind": "Estate",
 "vms": [{"name": "vm-2", "hypervisor": "hv-1", "image": {"name": "m", "version": 1}, "securityLevel": "high"}]}`)
	write(t, dir, "m/vm-1.json", `{}`)
	write(t, dir, "p.yml", "apiVersion: vguard.dev/v1\nkind: Policy\nmasterLag: 2\nseparate:\n  - {name: r, groups: [{app: a}, {app: b}]}\n")
	write(t, dir, "notes.json", `{"findings": []}`) // not ours: skipped in a directory
	res, err := Paths([]string{dir}, Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	e := res.Estate
	if len(e.VMs) != 2 || e.VMs[0].Name != "vm-1" || e.VMs[1].Name != "vm-2" {
		t.Fatalf("vms = %v", e.VMs)
	}
	vm := e.VMs[0]
	if vm.Pos.Line != 9 || !strings.HasSuffix(vm.Pos.File, "a.yaml") {
		t.Errorf("vm-1 pos = %v", vm.Pos)
	}
	if vm.Environment != estate.EnvProd || vm.SecurityLevel != estate.LevelStandard {
		t.Errorf("vm defaults not applied: %v %v", vm.Environment, vm.SecurityLevel)
	}
	if got := vm.NICs[0].Ports; len(got) != 2 || got[1] != (estate.PortRange{Lo: 8000, Hi: 8080}) {
		t.Errorf("ports = %v", got)
	}
	if vm.Manifest != filepath.Join(dir, "m/vm-1.json") {
		t.Errorf("manifest path not resolved against the file: %q", vm.Manifest)
	}
	if e.VMs[1].Image.String() != "m@1" || e.VMs[1].SecurityLevel != estate.LevelHigh {
		t.Errorf("vm-2 = %+v", e.VMs[1])
	}
	h := e.Hypervisors[0]
	if h.Cluster != "default" || h.FailureDomain != "hv-1" {
		t.Errorf("hypervisor defaults: %q %q", h.Cluster, h.FailureDomain)
	}
	s := e.Services[0]
	if s.MinAvailable != 1 || s.MaxUnavailable != 1 || s.Spread != estate.SpreadHypervisor {
		t.Errorf("service defaults: %+v", s)
	}
	if e.Datastores[0].Writers != estate.WritersSingle || e.Datastores[0].Classification != estate.ClassInternal {
		t.Errorf("datastore: %+v", e.Datastores[0])
	}
	p := res.Policy
	if p.MasterLag != 2 || p.ExposedHostMinLevel != estate.LevelStandard || len(p.Separate) != 1 ||
		p.Separate[0].Scope != estate.ScopeHypervisor || len(p.SensitivePorts) != 19 {
		t.Errorf("policy = %+v", p)
	}
	if len(res.Files) != 3 {
		t.Errorf("files = %v, want the three vguard files", res.Files)
	}
}

// TestLoadErrors: each bad input gives every expected message, with
// file:line and path, and no result.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"typo", base + "vms:\n  - name: a\n    hypervsior: hv-1\n", []string{
			`x.yaml:10: vms[0]: unknown field "hypervsior" (did you mean "hypervisor"?)`}},
		{"dangling", base + "vms:\n  - {name: a, hypervisor: hv-9, homeZone: nowhere, image: m@2,\n     nics: [{network: vlan55}], credentials: [{datastore: nope, access: read}]}\n", []string{
			`x.yaml:9: vms[0].hypervisor: unknown hypervisor "hv-9"`,
			`x.yaml:9: vms[0].homeZone: unknown zone "nowhere"`,
			`x.yaml:9: vms[0].image: unknown image "m@2"`,
			`x.yaml:10: vms[0].nics[0].network: unknown network "vlan55"`,
			`x.yaml:10: vms[0].credentials[0].datastore: unknown datastore "nope"`}},
		{"enums", base + "vms:\n  - {name: a, hypervisor: hv-1, securityLevel: medium, environment: qa}\n", []string{
			`vms[0].securityLevel: unknown security level "medium"`,
			`vms[0].environment: unknown environment "qa"`}},
		{"types", base + "vms:\n  - {name: a, hypervisor: hv-1, gateway: yes please, nics: {network: n}, resources: {cpus: many}}\n", []string{
			`vms[0].gateway: want true or false`, `vms[0].nics: want a list`, `vms[0].resources.cpus: want an integer`}},
		{"dup", base + "vms:\n  - {name: a, hypervisor: hv-1}\n  - {name: a, hypervisor: hv-1}\n", []string{
			`x.yaml:10: vms[1].name: duplicate vm "a" (first defined at x.yaml:9)`}},
		{"control-names", base + "vms:\n  - {name: \"a\\0b\", hypervisor: hv-1}\n  - {name: \"\\e[31mred\", hypervisor: hv-1}\n---\n" + header + "images: [{name: \"m\\tx\", version: 1}]\n", []string{
			`x.yaml:9: vms[0].name: name "a\x00b" holds the control character U+0000`,
			`x.yaml:10: vms[1].name: name "\x1b[31mred" holds the control character U+001B`,
			`images[0].name: name "m\tx" holds the control character U+0009`}},
		{"empty-entry", base + "vms:\n  -\n  - null\n", []string{`vms[0]: empty entry`, `vms[1]: empty entry`}},
		{"dup-image", base + "---\n" + header + "images: [{name: m, version: 1}]\n", []string{`duplicate image "m@1"`}},
		{"version", "apiVersion: vguard.dev/v2\nkind: Estate\n", []string{`x.yaml:1: apiVersion: unsupported apiVersion "vguard.dev/v2"`}},
		{"no-version", "kind: Estate\n", []string{`missing apiVersion`}},
		{"kind", "apiVersion: vguard.dev/v1\nkind: Estat\n", []string{`x.yaml:2: kind: unexpected kind "Estat"`}},
		{"required", header + "zones: [{name: z}]\nnetworks: [{zone: z}]\n", []string{
			`x.yaml:3: zones[0]: missing required field "exposure"`, `x.yaml:4: networks[0]: missing required field "name"`}},
		{"vlan", header + "zones: [{name: z, exposure: public}]\nnetworks: [{name: n, zone: z, vlan: 5000}]\n", []string{`networks[0].vlan: vlan 5000 is outside 0..4094`}},
		{"ports", base + "vms:\n  - {name: a, hypervisor: hv-1, nics: [{network: n, ports: [70000, \"9-3\", x]}]}\n", []string{
			`vms[0].nics[0].ports[0]: port "70000"`, `vms[0].nics[0].ports[1]: port "9-3"`, `vms[0].nics[0].ports[2]: port "x"`}},
		{"mac", base + "vms:\n  - {name: a, hypervisor: hv-1, nics: [{network: n, mac: \"52:54:00\"}]}\n", []string{`vms[0].nics[0].mac: "52:54:00" is not a MAC address`}},
		{"service", base + "vms: [{name: a, hypervisor: hv-1}]\nservices:\n  - {name: s}\n  - {name: t, members: [a, b], selector: {app: x}}\n  - {name: u, members: [a], maxUnavailable: 0}\n", []string{
			`services[0]: give either members or selector`, `services[1]: give members or selector, not both`,
			`services[1].members[1]: unknown vm "b"`, `services[2].maxUnavailable: must be at least 1`}},
		{"firewall", base + "firewalls: [{name: f, protects: [n, q], rules: [{from: mars, action: allow}, {from: internet, action: maybe}]}]\n", []string{
			`firewalls[0].protects[1]: unknown network "q"`, `firewalls[0].rules[0].from: unknown source "mars"`, `firewalls[0].rules[1].action: unknown action "maybe"`}},
		{"side-file", base + "vms: [{name: a, hypervisor: hv-1, manifest: m/none.json}]\n", []string{`vms[0].manifest: cannot read manifest`}},
		{"dup-key", base + "vms: [{name: a, name: b, hypervisor: hv-1}]\n", []string{`vms[0].name: field given twice`}},
		{"not-a-map", "- a\n- b\n", []string{`x.yaml:1: a document must be a mapping`}},
		{"yaml-syntax", header + "zones: [\n", []string{`x.yaml:`}},
		{"json-syntax", "{\"apiVersion\": \"vguard.dev/v1\",\n \"kind\" \"Estate\"}", []string{`x.yaml:2: `}},
		{"empty", "", []string{`file holds no document`}},
		{"null-and-empty", base + "vms:\n  - {name: ~, hypervisor: \"\", nics: [{network: ~}]}\nfirewalls: [{name: f, rules: [{from: ~, action: allow}]}]\n", []string{
			`x.yaml:9: vms[0].name: must not be empty`, `x.yaml:9: vms[0].hypervisor: must not be empty`,
			`x.yaml:9: vms[0].nics[0].network: must not be empty`, `x.yaml:10: firewalls[0].rules[0].from: must not be empty`}},
		{"empty-ports", base + "firewalls: [{name: f, protects: [n], rules: [{from: internet, ports: [], action: deny}]}]\n", []string{
			`firewalls[0].rules[0].ports: an empty list matches no port`}},
		{"huge-capacity", header + "hypervisors: [{name: h, capacity: {cpus: 9223372036854775807}}]\n", []string{
			`hypervisors[0].capacity: capacity must be within`}},
		{"policy-only", "apiVersion: vguard.dev/v1\nkind: Policy\n", []string{`no Estate document found`}},
		{"policy", base + "---\napiVersion: vguard.dev/v1\nkind: Policy\nseverity: {VG999: high}\ndisable: [VG000]\nmasterLag: -1\noverCommit: {}\n" +
			"separate: [{name: r, groups: [{app: a}]}]\nplacement: [{name: p, vms: {}, hypervisors: {names: [hv-7]}, rule: must}]\n", []string{
			`severity.VG999: unknown check "VG999"`, `disable[0]: unknown check "VG000"`, `masterLag: must not be negative`,
			`unknown field "overCommit" (did you mean "overcommit"?)`, `separate[0].groups: a separate rule needs at least two groups`,
			`placement[0].vms: an empty selector would match every VM`, `placement[0].hypervisors.names[0]: unknown hypervisor "hv-7"`}},
	}
	known := func(id string) bool { return id == "VG101" }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := write(t, dir, "x.yaml", c.text)
			res, err := Paths([]string{p}, Options{KnownCheck: known})
			if err == nil {
				t.Fatalf("loaded without error: %+v", res.Estate)
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q; got:\n%s", w, msg)
				}
			}
			if _, ok := err.(Errors); !ok {
				t.Errorf("error is %T, want Errors", err)
			}
		})
	}
}

func TestPolicyMerge(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "e.yaml", base)
	write(t, dir, "p1.yaml", "apiVersion: vguard.dev/v1\nkind: Policy\nsensitivePorts: [22]\nchange: {blockAt: critical}\nzoneHardening: {internal: standard}\n")
	write(t, dir, "p2.yaml", "apiVersion: vguard.dev/v1\nkind: Policy\nsensitivePorts: [3389]\ndisable: [VG101]\n")
	res, err := Paths([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Policy
	if len(p.SensitivePorts) != 2 || p.SensitivePorts[0] != 22 || p.SensitivePorts[1] != 3389 {
		t.Errorf("sensitivePorts = %v, want the two lists appended, replacing the default", p.SensitivePorts)
	}
	if p.Change.BlockAt != estate.SevCritical || p.Change.CrossZoneMoves != estate.CrossZoneDeny {
		t.Errorf("change = %+v", p.Change)
	}
	if p.ZoneHardening[estate.ExposureInternal] != estate.LevelStandard || p.ZoneHardening[estate.ExposurePublic] != estate.LevelHigh {
		t.Errorf("zoneHardening = %v", p.ZoneHardening)
	}
	if !p.Disabled("VG101") {
		t.Error("VG101 not disabled")
	}

	write(t, dir, "p3.yaml", "apiVersion: vguard.dev/v1\nkind: Policy\nchange:\n  blockAt: low\n")
	_, err = Paths([]string{dir}, Options{})
	if err == nil || !strings.Contains(err.Error(), "p3.yaml:4: change.blockAt: set by two Policy documents (first at "+filepath.Join(dir, "p1.yaml")+":4)") {
		t.Errorf("conflicting scalars: err = %v", err)
	}
}

func TestDirectoryAndMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := Paths([]string{dir}, Options{})
	if err == nil || !strings.Contains(err.Error(), "directory holds no *.yaml") {
		t.Errorf("empty dir: %v", err)
	}
	_, err = Paths([]string{filepath.Join(dir, "nope.yaml")}, Options{})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: no such file or directory") {
		t.Errorf("missing file: %v", err)
	}
	// A file without a header that holds estate fields is an error, not a
	// file to pass over.
	write(t, dir, "headless.yaml", "vms: [{name: x, hypervisor: hv-1}]\n")
	if _, err := Paths([]string{dir}, Options{}); err == nil || !strings.Contains(err.Error(), "headless.yaml:1: apiVersion: missing apiVersion") {
		t.Errorf("headless estate file: %v", err)
	}
	os.Remove(filepath.Join(dir, "headless.yaml"))
	// Files are read in name order, and a file in a subdirectory is not read.
	write(t, dir, "b.yaml", base)
	write(t, dir, "a.yaml", header+"vms: [{name: x, hypervisor: hv-1}]\n")
	write(t, dir, "sub/c.yaml", "garbage: [")
	res, err := Paths([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Files[0]) != "a.yaml" || len(res.Files) != 2 {
		t.Errorf("files = %v", res.Files)
	}
}

func TestByteOrderMark(t *testing.T) {
	data := append([]byte("\xef\xbb\xbf"), `{"apiVersion": "vguard.dev/v1", "kind": "Estate", "hypervisors": [{"name": "h"}]}`...)
	if _, err := Bytes("bom.json", data, Options{}); err != nil {
		t.Fatalf("a UTF-8 BOM is refused: %v", err)
	}
}

func TestAliasBombFailsFast(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "metadata:\n  labels:\n    a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("    a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := Bytes("bomb.yaml", []byte(b.String()), Options{})
	if err == nil || !strings.Contains(err.Error(), "alias") {
		t.Fatalf("alias bomb: %v", err)
	}
}

func TestYAMLMergeKeys(t *testing.T) {
	text := base + "vms:\n  - &proto {name: a, hypervisor: hv-1, owner: team}\n  - {<<: *proto, name: b}\n"
	res, err := Bytes("m.yaml", []byte(text), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Estate.VMs[1]; v.Name != "b" || v.Owner != "team" {
		t.Errorf("merged vm = %+v", v)
	}
}
