package connector

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/load"
)

func discovered() *Inventory {
	f := false
	vlan := 5
	return &Inventory{
		Source: "test",
		Estate: estate.Estate{
			Networks:    []*estate.Network{{Name: "pg-web", VLAN: &vlan}, {Name: "pg-db"}},
			Hypervisors: []*estate.Hypervisor{{Name: "h1", Cluster: "c1"}, {Name: "h2", Cluster: "c1"}},
			VMs: []*estate.VM{
				{Name: "web-1", Hypervisor: "h1", Owner: "web", NICs: []estate.NIC{{Network: "pg-web", MAC: "00:50:56:00:00:01"}},
					Labels: map[string]string{"from": "platform"}, Resources: &estate.Resources{CPUs: 2, MemoryMiB: 2048, Limited: &f}},
				{Name: "db-1", Hypervisor: "h2", NICs: []estate.NIC{{Network: "pg-db", MAC: "00:50:56:00:00:02"}}},
			},
		},
		Separate: []*estate.SeparateRule{{Name: "drs/c1/apart", Scope: estate.ScopeHypervisor,
			Groups: []estate.Selector{{Labels: map[string]string{"k": "web-1"}}, {Labels: map[string]string{"k": "db-1"}}}}},
	}
}

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

func TestOverlayMerge(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "ov/10-zones.yaml", `apiVersion: vguard.dev/v1
kind: Estate
zones: [{name: dmz, exposure: public}, {name: core, exposure: internal}]
networks:
  - {name: pg-web, zone: dmz}
  - {name: pg-db, zone: core}
datastores: [{name: orders, classification: confidential, owner: db}]
vms:
  - name: web-1
    securityLevel: low
    labels: {team: a}
    manifest: m/web-1.json
    nics: [{network: pg-web, ports: [443]}]
  - {name: laptop-vm, hypervisor: h1, owner: dev, nics: [{network: pg-web}]}
services:
  - {name: web, members: [web-1], minAvailable: 0}
`)
	write(t, dir, "ov/m/web-1.json", `{"format": "vguard-manifest/v1", "entries": []}`)
	write(t, dir, "ov/20-later.yaml", `apiVersion: vguard.dev/v1
kind: Estate
vms:
  - {name: web-1, securityLevel: high, owner: shop}
---
apiVersion: vguard.dev/v1
kind: Policy
change: {blockAt: medium}
`)
	out := filepath.Join(dir, "out", "estate.yaml")
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	o, err := Build(discovered(), []string{filepath.Join(dir, "ov")}, out)
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(o.Result.Estate)
	web := x.VMs["web-1"]
	if web.SecurityLevel != estate.LevelHigh {
		t.Errorf("a later overlay file patches an earlier one: securityLevel = %v", web.SecurityLevel)
	}
	if web.Labels["from"] != "platform" || web.Labels["team"] != "a" {
		t.Errorf("labels are merged: %v", web.Labels)
	}
	if len(web.NICs) != 1 || web.NICs[0].MAC != "00:50:56:00:00:01" || len(web.NICs[0].Ports) != 1 {
		t.Errorf("NIC patched by network: %+v", web.NICs)
	}
	if web.Resources == nil || web.Resources.CPUs != 2 || web.Hypervisor != "h1" {
		t.Errorf("discovered facts kept: %+v", web)
	}
	if !strings.Contains(string(o.Data), "manifest: ../ov/m/web-1.json") {
		t.Errorf("a manifest path is read relative to the overlay file and written relative to the output:\n%s", o.Data)
	}
	if x.VMs["laptop-vm"] == nil || x.Datastores["orders"] == nil {
		t.Error("objects only in the overlay are added")
	}
	if x.Services["web"].MinAvailable != 0 {
		t.Error("an explicit minAvailable: 0 survives the round trip")
	}
	if o.Result.Policy.Change.BlockAt != estate.SevMedium || len(o.Result.Policy.Separate) != 1 {
		t.Errorf("policy: overlay policy and imported rules both kept: %+v", o.Result.Policy)
	}
	warned := false
	for _, w := range o.Warnings {
		warned = warned || strings.Contains(w, "vms[0].owner: the overlay replaces the value the platform reported")
	}
	if !warned {
		t.Errorf("replacing a discovered owner is noted: %q", o.Warnings)
	}
}

func TestZonesFilled(t *testing.T) {
	inv := discovered()
	inv.Estate.Networks[0].Zone = "public"
	inv.Estate.VMs[1].HomeZone = "vault"
	o, err := Build(inv, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	x := estate.NewIndex(o.Result.Estate)
	if z := x.Zones["public"]; z == nil || z.Exposure != estate.ExposurePublic {
		t.Errorf("a zone named by an exposure word gets it: %+v", z)
	}
	if z := x.Zones["vault"]; z == nil || z.Exposure != estate.ExposureInternal {
		t.Errorf("another undeclared zone is internal: %+v", z)
	}
	if x.Networks["pg-db"].Zone != UnzonedZone {
		t.Errorf("pg-db zone = %q", x.Networks["pg-db"].Zone)
	}
	if len(o.Warnings) != 2 {
		t.Errorf("want a warning for vault and one for the unzoned network, got %q", o.Warnings)
	}
}

func TestOverlayErrors(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct{ text, want string }{
		"typo":       {"apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: web-1, ownr: x}\n", `typo.yaml:4: vms[0]: unknown field "ownr" (did you mean "owner"?)`},
		"incomplete": {"apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: new-1}\n", `missing required field "hypervisor"`},
		"change":     {"apiVersion: vguard.dev/v1\nkind: Change\noperations: []\n", `not "Change"`},
		"field":      {"apiVersion: vguard.dev/v1\nkind: Estate\nvmz: []\n", `unknown field "vmz"`},
		"nic":        {"apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - name: db-1\n    nics: [{network: nowhere}]\n", `no NIC of VM "db-1"`},
		"version":    {"apiVersion: v2\nkind: Estate\n", "want apiVersion vguard.dev/v1"},
		"syntax":     {"apiVersion: [\n", "syntax.yaml:"},
	} {
		t.Run(name, func(t *testing.T) {
			p := write(t, dir, name+".yaml", c.text)
			_, err := Build(discovered(), []string{p}, "")
			var lerrs load.Errors
			if !errors.As(err, &lerrs) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want load.Errors with %q, got %v", c.want, err)
			}
		})
	}
	if _, err := Build(discovered(), []string{filepath.Join(dir, "missing.yaml")}, ""); err == nil {
		t.Error("a missing overlay is an error")
	}
	p := write(t, dir, "dangling.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: db-1, homeZone: x, credentials: [{datastore: none, access: read}]}\n")
	_, err := Build(discovered(), []string{p}, "")
	var invalid *InvalidError
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), `unknown datastore "none"`) {
		t.Fatalf("a reference nobody defines: want InvalidError, got %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	a, err := Build(discovered(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(discovered(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Data) != string(b.Data) {
		t.Error("the same inventory gives different bytes")
	}
}

// FuzzOverlay lays arbitrary overlay documents over an inventory: an error,
// or documents that load, never a panic.
func FuzzOverlay(f *testing.F) {
	f.Add("apiVersion: vguard.dev/v1\nkind: Estate\nzones: [{name: z, exposure: public}]\nnetworks: [{name: pg-web, zone: z}]\n")
	f.Add("apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - name: web-1\n    nics: [{mac: '00-50-56-00-00-01', ports: [22]}]\n    labels: {a: b}\n")
	f.Add("apiVersion: vguard.dev/v1\nkind: Policy\nseparate: [{name: s, groups: [{app: a}, {app: b}]}]\n")
	f.Add("apiVersion: vguard.dev/v1\nkind: Estate\nimages: [{name: i, version: 1}, {name: i, version: 1, master: true}]\n")
	f.Add("{}")
	dir := f.TempDir()
	p := filepath.Join(dir, "overlay.yaml")
	f.Fuzz(func(t *testing.T, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		o, err := Build(discovered(), []string{p}, "")
		if err == nil {
			if _, lerr := load.Bytes("again.yaml", o.Data, load.Options{}); lerr != nil {
				t.Fatalf("Build's documents do not load: %v", lerr)
			}
		}
	})
}

// TestWatcherKeepsGoing: after a good first estate, an inventory that
// does not load (here an overlay broken between two updates) is reported
// through OnInvalid and skipped: no event, the estate file keeps the last
// good estate, and the next good inventory is judged against the last good
// findings.
func TestWatcherKeepsGoing(t *testing.T) {
	dir := t.TempDir()
	overlay := write(t, dir, "overlay.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: db-1, owner: db}\n")
	out := filepath.Join(dir, "estate.yaml")
	var events []Event
	var invalid []error
	w := &Watcher{Overlays: []string{overlay}, Output: out,
		Emit:      func(ev Event) error { events = append(events, ev); return nil },
		OnInvalid: func(err error) { invalid = append(invalid, err) }}
	if err := w.Update(discovered()); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(out)
	n := len(events)
	write(t, dir, "overlay.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: db-1, ownr: db}\n")
	if err := w.Update(discovered()); err != nil {
		t.Fatalf("a bad overlay ended the watch: %v", err)
	}
	if len(invalid) != 1 || !strings.Contains(invalid[0].Error(), `unknown field "ownr"`) || len(events) != n {
		t.Fatalf("OnInvalid got %v; events %d -> %d", invalid, n, len(events))
	}
	if b, _ := os.ReadFile(out); string(b) != string(good) {
		t.Error("the estate file changed on a bad inventory")
	}
	write(t, dir, "overlay.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: db-1, owner: db}\n")
	if err := w.Update(discovered()); err != nil || len(events) != n {
		t.Fatalf("the good inventory again: %v, events %d -> %d", err, n, len(events))
	}
	// Without OnInvalid, and on the first inventory, the error is returned.
	write(t, dir, "overlay.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - {name: db-1, ownr: db}\n")
	w2 := &Watcher{Overlays: []string{overlay}, Emit: func(Event) error { return nil }, OnInvalid: func(error) {}}
	if err := w2.Update(discovered()); err == nil {
		t.Error("a first inventory that does not load must be an error")
	}
}

// TestWriteFileKeepsMode: rewriting an estate keeps the mode an operator
// gave it (0640 for a file only a group may read); a new file is 0644.
func TestWriteFileKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "estate.yaml")
	if err := WriteFile(p, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v", fi.Mode())
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "two" || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %q mode %v, want two 0640", b, fi.Mode())
	}
}

// TestRedactSecret: every form a password takes in a URL is hidden.
func TestRedactSecret(t *testing.T) {
	pw := "p@ss#w/rd?x y"
	msg := "dial user:" + pw + "@h, user:" + url.UserPassword("u", pw).String() + "@h, ?p=" + url.QueryEscape(pw) + ", /" + url.PathEscape(pw)
	got := RedactSecret(msg, pw)
	for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), "p%40ss"} {
		if strings.Contains(got, form) {
			t.Errorf("%q left in %q", form, got)
		}
	}
	if RedactSecret("plain", "") != "plain" {
		t.Error("an empty secret changes the message")
	}
}

// TestOverlayWarnsNICReplaced: an overlay that moves a discovered NIC to
// another network is noted, as for every discovered value it replaces;
// matching a NIC by its MAC (any spelling) is not.
func TestOverlayWarnsNICReplaced(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "ov.yaml", "apiVersion: vguard.dev/v1\nkind: Estate\nvms:\n  - name: db-1\n    nics: [{mac: 00-50-56-00-00-02, network: pg-web, ports: [5432]}]\n")
	o, err := Build(discovered(), []string{p}, "")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(o.Warnings, "\n")
	if !strings.Contains(all, "vms[0].nics[0].network: the overlay replaces the value the platform reported") {
		t.Errorf("no warning for the moved NIC: %q", o.Warnings)
	}
	if strings.Contains(all, ".mac:") || strings.Contains(all, ".ports:") {
		t.Errorf("the matching MAC or an added value is not a replacement: %q", o.Warnings)
	}
	if nic := estate.NewIndex(o.Result.Estate).VMs["db-1"].NICs[0]; nic.Network != "pg-web" || nic.MAC != "00:50:56:00:00:02" {
		t.Errorf("NIC = %+v", nic)
	}
}

// TestInvalidNamesObjects: an error in the merged estate names the object
// (not an index in a file never written) and not the output path, which
// still holds the previous estate.
func TestInvalidNamesObjects(t *testing.T) {
	inv := discovered()
	bad := 5000
	inv.Estate.Networks[1].VLAN = &bad // pg-db
	_, err := Build(inv, nil, filepath.Join(t.TempDir(), "estate.yaml"))
	var invalid *InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("want InvalidError, got %v", err)
	}
	msg := invalid.Error()
	if !strings.Contains(msg, `<merged estate>: network "pg-db" vlan:`) || strings.Contains(msg, "estate.yaml") {
		t.Errorf("message: %s", msg)
	}
}
