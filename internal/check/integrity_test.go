package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/gen"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// memFiles is an in-memory SideFiles without a drift cache of its own, so
// that the checks' generic path is tested too. It counts reads.
type memFiles struct {
	mu        sync.Mutex
	manifests map[string]*manifest.Manifest
	scans     map[string]*scanreport.Report
	reads     map[string]int
}

func (m *memFiles) Manifest(p string) (*manifest.Manifest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[p]++
	if mf := m.manifests[p]; mf != nil {
		return mf, nil
	}
	return nil, fmt.Errorf("open %s: no such file or directory", p)
}

func (m *memFiles) Scan(p string) (*scanreport.Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[p]++
	if r := m.scans[p]; r != nil {
		return r, nil
	}
	return nil, fmt.Errorf("open %s: no such file or directory", p)
}

func newMemFiles() *memFiles {
	return &memFiles{manifests: map[string]*manifest.Manifest{}, scans: map[string]*scanreport.Report{}, reads: map[string]int{}}
}

func igVM(name string, mod func(*estate.VM)) *estate.VM {
	v := &estate.VM{Name: name, Hypervisor: "hv-1", Environment: estate.EnvProd, SecurityLevel: estate.LevelStandard}
	if mod != nil {
		mod(v)
	}
	return v
}

func igEstate(vms ...*estate.VM) *estate.Estate {
	return &estate.Estate{
		Hypervisors: []*estate.Hypervisor{{Name: "hv-1", Cluster: "default", FailureDomain: "hv-1"}},
		VMs:         vms,
	}
}

func igRun(t testing.TB, e *estate.Estate, p *estate.Policy, files SideFiles, id string) Result {
	t.Helper()
	if p == nil {
		p = estate.DefaultPolicy()
	}
	return Evaluate(estate.NewIndex(e), p, Options{Only: []string{id}, Files: files})
}

// igKeys gives "subject related,related severity" per finding.
func igKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Subject+" "+strings.Join(f.Related, ",")+" "+f.Severity.String())
	}
	slices.Sort(out)
	return out
}

func igWant(t *testing.T, res Result, want ...string) {
	t.Helper()
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	if got := igKeys(res.Findings); !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
}

func TestDuplicateIdentity(t *testing.T) {
	e := igEstate(
		igVM("z", func(v *estate.VM) { v.Identity.MachineID = "ABCDEF00ABCDEF00ABCDEF00ABCDEF00" }),
		igVM("y", func(v *estate.VM) {
			v.Identity.MachineID = "abcdef00abcdef00abcdef00abcdef00"
			v.NICs = []estate.NIC{{Network: "n", MAC: "5254.00AB.CDEF"}}
		}),
		igVM("x", func(v *estate.VM) { v.NICs = []estate.NIC{{Network: "n", MAC: " 52:54:00:ab:cd:ef "}} }),
		igVM("w", func(v *estate.VM) { v.Identity.Hostname = "  " }),
		igVM("v", func(v *estate.VM) { v.Identity.Hostname = "" }),
	)
	res := igRun(t, e, nil, nil, "VG201")
	igWant(t, res, "vm/x vm/y,vm/z high")
	f := res.Findings[0]
	want := map[string]any{"vms": 3, "machineIds": []string{"abcdef00abcdef00abcdef00abcdef00"}, "macs": []string{"52:54:00:ab:cd:ef"}}
	if !reflect.DeepEqual(f.Evidence, want) {
		t.Errorf("evidence %v, want %v", f.Evidence, want)
	}
	if f.Message != "VM x shares its machine id and MAC with VMs y and z; give each copy its own identity." {
		t.Errorf("message %q", f.Message)
	}
}

func TestDuplicateIdentityCapsEvidence(t *testing.T) {
	var vms []*estate.VM
	for i := 0; i < 30; i++ {
		vms = append(vms, igVM(fmt.Sprintf("clone-%02d", i), func(v *estate.VM) {
			v.Identity.UUID = "4c4c4544-0042-3510-8052-b2c04f4e3032"
			// Chained MACs: clone i shares one MAC with i-1 and one with i+1.
			v.NICs = []estate.NIC{{Network: "n", MAC: fmt.Sprintf("52:54:00:00:00:%02x", i)}, {Network: "n", MAC: fmt.Sprintf("52:54:00:00:00:%02x", i+1)}}
		}))
	}
	res := igRun(t, igEstate(vms...), nil, nil, "VG201")
	if len(res.Findings) != 1 {
		t.Fatalf("want one group, got %d", len(res.Findings))
	}
	f := res.Findings[0]
	if f.Subject != "vm/clone-00" || len(f.Related) != 29 {
		t.Errorf("subject %s, %d related", f.Subject, len(f.Related))
	}
	if macs := f.Evidence["macs"].([]string); len(macs) != evidenceCap {
		t.Errorf("evidence macs not capped: %d", len(macs))
	}
	if f.Evidence["vms"] != 30 || !strings.Contains(f.Message, "VMs clone-01, clone-02, clone-03 and 26 more") {
		t.Errorf("evidence %v message %q", f.Evidence, f.Message)
	}
}

func TestMultiWriter(t *testing.T) {
	e := igEstate(
		igVM("b", func(v *estate.VM) {
			v.Credentials = []estate.Credential{{Datastore: "ledger", Access: estate.AccessWrite}}
		}),
		igVM("a", func(v *estate.VM) {
			v.Credentials = []estate.Credential{{Datastore: "ledger", Access: estate.AccessWrite}, {Datastore: "ledger", Access: estate.AccessWrite}}
		}),
		igVM("c", func(v *estate.VM) {
			v.Credentials = []estate.Credential{{Datastore: "ledger", Access: estate.AccessRead}, {Datastore: "solo", Access: estate.AccessWrite}}
		}),
	)
	e.Datastores = []*estate.Datastore{
		{Name: "ledger", Writers: estate.WritersSingle, Classification: estate.ClassInternal},
		{Name: "solo", Writers: estate.WritersSingle, Classification: estate.ClassInternal},
	}
	res := igRun(t, e, nil, nil, "VG202")
	igWant(t, res, "datastore/ledger vm/a,vm/b critical")
	if res.Findings[0].Evidence["writers"] != 2 {
		t.Errorf("evidence %v", res.Findings[0].Evidence)
	}
}

func mf(t testing.TB, entries ...manifest.Entry) *manifest.Manifest {
	t.Helper()
	m, err := manifest.New(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileEntry(p, sum string) manifest.Entry {
	return manifest.Entry{Path: p, Type: manifest.File, Mode: 0o644, Size: 1, SHA256: strings.Repeat(sum, 32)}
}

func masterEstate(vms ...*estate.VM) *estate.Estate {
	e := igEstate(vms...)
	e.Images = []*estate.Image{
		{Name: "web", Version: 1, Master: true, Manifest: "m/web-1.json"},
		{Name: "web", Version: 2, Master: true, Manifest: "m/web-2.json"},
	}
	return e
}

func onImage(version int, manifestPath string) func(*estate.VM) {
	return func(v *estate.VM) {
		v.Image = &estate.ImageRef{Name: "web", Version: version}
		v.Manifest = manifestPath
	}
}

func TestMasterDrift(t *testing.T) {
	files := newMemFiles()
	files.manifests["m/web-1.json"] = mf(t, fileEntry("/etc/app.conf", "a1"), fileEntry("/var/log/x", "01"))
	files.manifests["m/web-2.json"] = mf(t, fileEntry("/etc/app.conf", "a2"))
	files.manifests["m/same.json"] = mf(t, fileEntry("/etc/app.conf", "a1"), fileEntry("/var/log/x", "02"))
	files.manifests["m/drift.json"] = mf(t, fileEntry("/etc/app.conf", "ff"), fileEntry("/etc/new", "01"))
	var vms []*estate.VM
	for i := 0; i < 50; i++ {
		vms = append(vms, igVM(fmt.Sprintf("same-%d", i), onImage(1, "m/same.json")))
	}
	vms = append(vms,
		igVM("drift-1", onImage(1, "m/drift.json")),
		igVM("drift-2", onImage(1, "m/drift.json")),
		igVM("drift-3", onImage(2, "m/drift.json")),
	)
	res := igRun(t, masterEstate(vms...), nil, files, "VG203")
	igWant(t, res,
		"vm/drift-1 image/web@1 medium", "vm/drift-2 image/web@1 medium", "vm/drift-3 image/web@2 medium")
	f := res.Findings[0]
	want := map[string]any{"added": 1, "removed": 0, "modified": 1, "examples": []string{"/etc/app.conf", "/etc/new"}}
	if !reflect.DeepEqual(f.Evidence, want) {
		t.Errorf("evidence %v, want %v", f.Evidence, want)
	}
	if !strings.Contains(f.Message, "in 2 paths (1 added, 0 removed, 1 modified, e.g. /etc/app.conf)") {
		t.Errorf("message %q", f.Message)
	}
	// 50 VMs on one manifest pair: each file is read once per distinct pair.
	if files.reads["m/same.json"] != 1 || files.reads["m/web-1.json"] != 2 || files.reads["m/drift.json"] != 2 {
		t.Errorf("reads %v", files.reads)
	}
	// Without side files the check cannot judge, and does not fire.
	igWant(t, igRun(t, masterEstate(vms...), nil, nil, "VG203"))
}

func TestMasterDriftUnreadable(t *testing.T) {
	files := newMemFiles()
	files.manifests["m/web-1.json"] = mf(t, fileEntry("/etc/app.conf", "a1"))
	files.manifests["m/ok.json"] = mf(t, fileEntry("/etc/app.conf", "a1"), fileEntry("/etc/x", "00"))
	e := masterEstate(
		igVM("a", onImage(1, "m/missing.json")),
		igVM("b", onImage(1, "m/missing.json")),
		igVM("c", onImage(1, "m/missing.json")),
		igVM("d", onImage(2, "m/ok.json")), // web@2's manifest is missing
		igVM("e", onImage(2, "m/missing.json")),
		igVM("f", onImage(1, "m/ok.json")),
	)
	e.VMs[0].Pos = estate.Pos{File: "estate.yaml", Line: 7}
	res := igRun(t, e, nil, files, "VG203")
	var msgs []string
	for _, err := range res.Errors {
		msgs = append(msgs, err.Error())
	}
	want := []string{
		"estate.yaml:7: VG203: vm a (and 2 more VMs): manifest: open m/missing.json: no such file or directory",
		"VG203: image web@2: manifest: open m/web-2.json: no such file or directory",
	}
	if !slices.Equal(msgs, want) {
		t.Errorf("errors\n got %q\nwant %q", msgs, want)
	}
	if got := igKeys(res.Findings); !slices.Equal(got, []string{"vm/f image/web@1 medium"}) {
		t.Errorf("findings %q", got)
	}
}

func TestBehindMaster(t *testing.T) {
	e := masterEstate(
		igVM("old", onImage(1, "")),
		igVM("new", onImage(2, "")),
		igVM("gone", func(v *estate.VM) { v.Image = &estate.ImageRef{Name: "other", Version: 1} }),
	)
	e.Images = append(e.Images, &estate.Image{Name: "web", Version: 5, Master: false})
	res := igRun(t, e, nil, nil, "VG204")
	igWant(t, res, "vm/old image/web@1 low")
	want := map[string]any{"running": "web@1", "newest": "web@2", "behind": 1, "masterLag": 0}
	if !reflect.DeepEqual(res.Findings[0].Evidence, want) {
		t.Errorf("evidence %v", res.Findings[0].Evidence)
	}
	p := estate.DefaultPolicy()
	p.MasterLag = 1
	igWant(t, igRun(t, e, p, nil, "VG204"))
}

func TestDiskFiles(t *testing.T) {
	dir := t.TempDir()
	m1 := filepath.Join(dir, "a.json")
	m2 := filepath.Join(dir, "b.json")
	write := func(p string, m *manifest.Manifest) {
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(m1, mf(t, fileEntry("/a", "01")))
	write(m2, mf(t, fileEntry("/a", "02")))
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\"format\": \"vguard-manifest/v1\",\n \"entries\": [{\"path\": \"x\"}]}"), 0o644)
	scan := filepath.Join(dir, "scan.json")
	os.WriteFile(scan, []byte(`{"secrets": [{"rule": "r", "path": "/p"}]}`), 0o644)

	d := NewDiskFiles()
	var wg sync.WaitGroup
	got := make([]*manifest.Manifest, 64)
	drifts := make([]*manifest.Drift, 64)
	for i := range got {
		wg.Go(func() {
			got[i], _ = d.Manifest(m1)
			drifts[i], _ = d.Drift(m1, m2)
			d.Scan(scan)
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] == nil || got[i] != got[0] || drifts[i] != drifts[0] {
			t.Fatalf("call %d: not the one cached parse or drift", i)
		}
	}
	if len(drifts[0].Modified) != 1 {
		t.Errorf("drift %+v", drifts[0])
	}
	// Cached: later changes on disk are not seen by this DiskFiles.
	os.Remove(m1)
	if m, err := d.Manifest(m1); err != nil || m != got[0] {
		t.Errorf("not cached: %v", err)
	}
	if r, err := d.Scan(scan); err != nil || len(r.Secrets) != 1 {
		t.Errorf("scan: %v %v", r, err)
	}
	_, err := d.Manifest(bad)
	var pe *manifest.Error
	if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), bad+":2: entries[0].path:") {
		t.Errorf("bad manifest error %v", err)
	}
	if _, err := d.Drift(m2, bad); err == nil {
		t.Error("drift against a bad manifest succeeded")
	}
	if _, err := d.Scan(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing scan error %v", err)
	}
}

// bigIntegrityEstate is 100k VMs on 2000 hypervisors, built from 4 masters
// of 5 versions, every VM with a full identity, two NICs and a manifest (one
// of a handful), and one pair of clones per 1000 VMs.
func bigIntegrityEstate(t testing.TB) (*estate.Estate, *memFiles) {
	const nVM, nHV = 100_000, 2000
	files := newMemFiles()
	e := &estate.Estate{}
	for h := 0; h < nHV; h++ {
		e.Hypervisors = append(e.Hypervisors, &estate.Hypervisor{Name: fmt.Sprintf("hv-%d", h), Cluster: "default", FailureDomain: fmt.Sprintf("hv-%d", h)})
	}
	var entries []manifest.Entry
	for i := 0; i < 2000; i++ {
		entries = append(entries, fileEntry(fmt.Sprintf("/usr/lib/f%04d", i), "ab"))
	}
	for m := 0; m < 4; m++ {
		for v := 1; v <= 5; v++ {
			p := fmt.Sprintf("m/m%d-%d.json", m, v)
			e.Images = append(e.Images, &estate.Image{Name: fmt.Sprintf("master-%d", m), Version: v, Master: true, Manifest: p, Scan: "s/clean.json"})
			files.manifests[p] = mf(t, slices.Clone(entries)...)
		}
	}
	drifted := slices.Clone(entries)
	drifted[7].SHA256 = strings.Repeat("cd", 32)
	files.manifests["m/drifted.json"] = mf(t, drifted...)
	files.scans["s/clean.json"] = &scanreport.Report{}
	files.scans["s/dirty.json"] = &scanreport.Report{Secrets: []scanreport.Secret{{Rule: "r", Path: "/p"}}}
	e.Datastores = []*estate.Datastore{{Name: "db", Writers: estate.WritersSingle}}
	for i := 0; i < nVM; i++ {
		m, v := i%4, 1+i%5
		id := i
		if i%1000 == 1 {
			id = i - 1 // a clone of the previous VM
		}
		vm := &estate.VM{
			Name: fmt.Sprintf("vm-%06d", i), Hypervisor: fmt.Sprintf("hv-%d", i%nHV),
			Identity: estate.Identity{
				UUID:        fmt.Sprintf("00000000-0000-0000-0000-%012d", id),
				MachineID:   fmt.Sprintf("%032x", id),
				Hostname:    fmt.Sprintf("vm-%06d.example.com", id),
				SSHHostKeys: []string{fmt.Sprintf("SHA256:key%d", id)},
			},
			NICs: []estate.NIC{
				{Network: "n", MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", id>>16&0xff, id>>8&0xff, id&0xff)},
				{Network: "n2", MAC: fmt.Sprintf("52:54:01:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)},
			},
			Image:    &estate.ImageRef{Name: fmt.Sprintf("master-%d", m), Version: v},
			Manifest: fmt.Sprintf("m/m%d-%d.json", m, v),
		}
		if i%997 == 0 {
			vm.Manifest = "m/drifted.json"
			vm.Scan = "s/dirty.json"
			vm.Credentials = []estate.Credential{{Datastore: "db", Access: estate.AccessWrite}}
		}
		e.VMs = append(e.VMs, vm)
	}
	return e, files
}

func TestIntegrityScale(t *testing.T) {
	if testing.Short() {
		t.Skip("100k VMs")
	}
	e, files := bigIntegrityEstate(t)
	x := estate.NewIndex(e)
	p := estate.DefaultPolicy()
	for _, id := range []string{"VG201", "VG202", "VG203", "VG204", "VG105"} {
		start := time.Now()
		res := Evaluate(x, p, Options{Only: []string{id}, Files: files})
		took := time.Since(start)
		if len(res.Errors) > 0 {
			t.Fatalf("%s: %v", id, res.Errors[0])
		}
		t.Logf("%s: %d findings in %v", id, len(res.Findings), took)
		if len(res.Findings) == 0 {
			t.Errorf("%s: no findings on the big estate", id)
		}
		// Generous bound for a loaded CI machine; the benchmark gives the
		// real figure.
		if took > 2*time.Second {
			t.Errorf("%s took %v on 100k VMs", id, took)
		}
	}
}

func BenchmarkIntegrity(b *testing.B) {
	e, files := bigIntegrityEstate(b)
	x := estate.NewIndex(e)
	p := estate.DefaultPolicy()
	for _, id := range []string{"VG201", "VG202", "VG203", "VG204", "VG105"} {
		b.Run(id, func(b *testing.B) {
			for b.Loop() {
				Evaluate(x, p, Options{Only: []string{id}, Files: files})
			}
		})
	}
}

func TestRadixSort(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000, 100_000} {
		keys := make([]uint64, n)
		x := uint64(n)
		for i := range keys {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			keys[i] = x
			if i%5 == 0 {
				keys[i] &= 0xffff // many keys with equal high bytes
			}
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		radixSort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("n=%d: not sorted", n)
		}
	}
}

func TestForEachShared(t *testing.T) {
	vals := []idValue{
		{value: "x", vm: 0, kind: idHostname},
		{value: "x", vm: 0, kind: idMAC}, // same text, other kind
		{value: "m", vm: 1, kind: idMAC},
		{value: "m", vm: 1, kind: idMAC}, // VM 1 repeats its own MAC
		{value: "x", vm: 2, kind: idHostname},
		{value: "m", vm: 3, kind: idMAC},
		{value: "x", vm: 3, kind: idHostname},
		{value: "solo", vm: 4, kind: idUUID},
		{value: "r", vm: 5, kind: idUUID},
		{value: "r", vm: 5, kind: idUUID},
	}
	var got []string
	forEachShared(vals, func(same []int32) {
		var vms []string
		for _, k := range same {
			vms = append(vms, fmt.Sprint(vals[k].vm))
		}
		v := vals[same[0]]
		got = append(got, fmt.Sprintf("%s/%s:%s", idKindWords[v.kind], v.value, strings.Join(vms, ",")))
	})
	slices.Sort(got)
	want := []string{"MAC/m:1,3", "hostname/x:0,2,3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// scopedRun evaluates check id on x limited to the scope of the given VM
// versions (before and after a change), with every fact touched.
func scopedRun(t testing.TB, x *estate.Index, files SideFiles, id string, versions ...*estate.VM) Result {
	t.Helper()
	s := NewScope()
	s.Facts = FactsAll
	for _, vm := range versions {
		s.AddVM(x, vm)
	}
	res := Evaluate(x, estate.DefaultPolicy(), Options{Only: []string{id}, Files: files, Scope: s})
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	return res
}

// TestScopedDuplicateIdentity: a VM that leaves a group of three for
// another group. Before the change the scope holds both groups it touches;
// after it, the pair it left behind (which holds no VM of the scope) and
// the group it joined. Groups it never touched are not judged.
func TestScopedDuplicateIdentity(t *testing.T) {
	uuid := func(u string) func(*estate.VM) { return func(v *estate.VM) { v.Identity.UUID = u } }
	host := func(h string) func(*estate.VM) { return func(v *estate.VM) { v.Identity.Hostname = h } }
	a := igVM("a", uuid("u1"))
	e := igEstate(a, igVM("b", uuid("u1")), igVM("c", uuid("u1")),
		igVM("d", host("h1")), igVM("e", host("h1")),
		igVM("far-1", uuid("u9")), igVM("far-2", uuid("u9")))
	x := estate.NewIndex(e)
	x.EnableUpdates()
	moved := a.Clone()
	moved.Identity = estate.Identity{Hostname: "H1."}
	igWant(t, scopedRun(t, x, nil, "VG201", a, moved), "vm/a vm/b,vm/c high", "vm/d vm/e high")
	x.RemoveVM(a)
	x.AddVM(moved)
	after := scopedRun(t, x, nil, "VG201", a, moved)
	igWant(t, after, "vm/a vm/d,vm/e high", "vm/b vm/c high")
	// Each group's finding is the full run's, message and evidence included.
	full := Evaluate(estate.NewIndex(&estate.Estate{Hypervisors: e.Hypervisors, VMs: x.AllVMs()}),
		estate.DefaultPolicy(), Options{Only: []string{"VG201"}}).Findings
	for _, f := range after.Findings {
		i := slices.IndexFunc(full, func(g Finding) bool { return g.Key() == f.Key() })
		if i < 0 || full[i].Message != f.Message || !reflect.DeepEqual(full[i].Evidence, f.Evidence) {
			t.Errorf("scoped %s differs from the full run's", f.Key())
		}
	}
}

// TestScopedIntegrity: VG202 judges the datastores in scope, with every
// writer; VG105 the images in scope, naming every VM made from them, and the
// VMs in scope; VG203 and VG204 the VMs in scope, and after a newer master,
// the VMs of that master that the change puts in scope.
func TestScopedIntegrity(t *testing.T) {
	files := newMemFiles()
	files.scans["s/leaky.json"] = &scanreport.Report{Secrets: []scanreport.Secret{{Rule: "password", Path: "/etc/app.ini"}}}
	files.manifests["m/web-1.json"] = mf(t, fileEntry("/etc/app.conf", "a1"))
	files.manifests["m/web-2.json"] = mf(t, fileEntry("/etc/app.conf", "a2"))
	files.manifests["m/hotfix.json"] = mf(t, fileEntry("/etc/app.conf", "ff"))
	write := func(ds string) estate.Credential { return estate.Credential{Datastore: ds, Access: estate.AccessWrite} }
	w1 := igVM("w1", func(v *estate.VM) {
		onImage(1, "m/hotfix.json")(v)
		v.Credentials = []estate.Credential{write("ledger")}
		v.Scan = "s/leaky.json"
	})
	e := masterEstate(w1,
		igVM("w2", func(v *estate.VM) {
			onImage(1, "m/hotfix.json")(v)
			v.Credentials = []estate.Credential{write("ledger")}
		}),
		igVM("far-1", func(v *estate.VM) {
			onImage(1, "m/hotfix.json")(v)
			v.Credentials = []estate.Credential{write("other")}
		}),
		igVM("far-2", func(v *estate.VM) {
			onImage(2, "m/hotfix.json")(v)
			v.Credentials = []estate.Credential{write("other")}
		}),
	)
	e.Images[0].Scan = "s/leaky.json"
	e.Images[1].Scan = "s/leaky.json"
	e.Datastores = []*estate.Datastore{{Name: "ledger", Writers: estate.WritersSingle}, {Name: "other", Writers: estate.WritersSingle}}
	x := estate.NewIndex(e)
	x.EnableUpdates()
	igWant(t, scopedRun(t, x, files, "VG202", w1), "datastore/ledger vm/w1,vm/w2 critical")
	igWant(t, scopedRun(t, x, files, "VG105", w1), "image/web@1 vm/far-1,vm/w1,vm/w2 high", "vm/w1  high")
	igWant(t, scopedRun(t, x, files, "VG203", w1), "vm/w1 image/web@1 medium")
	igWant(t, scopedRun(t, x, files, "VG204", w1), "vm/w1 image/web@1 low")

	// web@3 puts every VM of web behind: the scope of such a change holds
	// them all.
	x.AddImage(&estate.Image{Name: "web", Version: 3, Master: true, Manifest: "m/web-2.json"})
	all := []*estate.VM{}
	for _, name := range []string{"w1", "w2", "far-1", "far-2"} {
		all = append(all, x.VMs[name])
	}
	igWant(t, scopedRun(t, x, files, "VG204", all...),
		"vm/far-1 image/web@1 low", "vm/far-2 image/web@2 low", "vm/w1 image/web@1 low", "vm/w2 image/web@1 low")
}

// BenchmarkScopedIntegrity measures VG105 and VG201–VG204 judging the
// scope of one VM on the 100k-VM estate of `vguard gen --vms 100000
// --hypervisors 2000 --seed 1`, as `vguard plan` does twice per change;
// each round takes the next of 100 VMs spread over the estate. "clone"
// scopes hold a VM and a clone of it that kept its identity (the identity
// walk), "new-master" the scope of a newer master version: every VM of
// that master name, judged before and after the version is added (when
// each of them gets a finding). The index's lookups over every VM are built before
// timing, as the first change of a plan builds them. The whole-change
// budget is 5 ms for all checks.
func BenchmarkScopedIntegrity(b *testing.B) {
	e, p := gen.Estate(gen.Options{VMs: 100_000, Hypervisors: 2000, Seed: 1})
	x := estate.NewIndex(e)
	x.EnableUpdates()
	var one, clones []*Scope
	for i := 0; i < len(e.VMs); i += len(e.VMs) / 100 {
		s := NewScope()
		s.Facts = FactsAll
		s.AddVM(x, e.VMs[i])
		one = append(one, s)
		s = NewScope()
		s.Facts = FactsAll
		s.AddVM(x, e.VMs[i])
		c := e.VMs[i].Clone()
		c.Name += "-clone"
		s.AddVM(x, c)
		clones = append(clones, s)
	}
	master := NewScope()
	master.Facts = FactImages
	for _, vm := range e.VMs {
		if vm.Image != nil && vm.Image.Name == "app-master" {
			master.AddVM(x, vm)
		}
	}
	ids := []string{"VG105", "VG201", "VG202", "VG203", "VG204"}
	files := NewDiskFiles()
	for _, s := range []*Scope{one[0], clones[0], master} { // builds the lazy lookups
		Evaluate(x, p, Options{Only: ids, Files: files, Scope: s})
	}
	bench := func(ids []string, scopes []*Scope) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				Evaluate(x, p, Options{Only: ids, Files: files, Scope: scopes[i%len(scopes)]})
				i++
			}
		}
	}
	b.Run("all", bench(ids, one))
	for _, id := range ids {
		b.Run(id, bench([]string{id}, one))
	}
	b.Run("clone/all", bench(ids, clones))
	name := fmt.Sprintf("new-master/vms=%d", len(master.VMs))
	b.Run(name+"/before", bench(ids, []*Scope{master}))
	// After the change, every VM of the master is behind: a finding each.
	newer := &estate.Image{Name: "app-master", Version: x.NewestMaster["app-master"] + 1, Master: true}
	x.AddImage(newer)
	b.Run(name+"/after", bench(ids, []*Scope{master}))
	x.RemoveImage(newer)
}

// TestFileErrorsOrder: the errors of unreadable side files do not depend on
// the order in which the objects that refer to them are judged (an
// updatable index lists VMs in no fixed order; a scoped run judges its VMs
// in any). An object that meets one error twice counts once.
func TestFileErrorsOrder(t *testing.T) {
	type ref struct{ path, kind, name string }
	refs := []ref{
		{"m/b.json", "vm", "web-2"}, {"m/b.json", "vm", "web-1"}, {"m/b.json", "vm", "web-3"},
		{"m/a.json", "vm", "db-1"}, {"m/a.json", "image", "db@2"}, {"m/a.json", "image", "db@1"},
		{"m/a.json", "image", "db@2"},
	}
	report := func(order []ref) []string {
		var fe fileErrors
		met := map[string]bool{}
		for _, r := range order {
			var err error
			if !met[r.path] { // the first to meet an error reads it; the rest repeat it
				err, met[r.path] = errors.New("unreadable"), true
			}
			fe.add(r.path, "manifest", r.kind, r.name, estate.Pos{}, err)
		}
		c := &Context{check: Lookup("VG203")}
		fe.report(c)
		var out []string
		for _, err := range c.errs {
			out = append(out, err.Error())
		}
		return out
	}
	want := []string{
		"VG203: image db@1 (and 1 more image): manifest: unreadable",
		"VG203: vm web-1 (and 2 more VMs): manifest: unreadable",
	}
	if got := report(refs); !slices.Equal(got, want) {
		t.Errorf("errors\n got %q\nwant %q", got, want)
	}
	slices.Reverse(refs)
	if got := report(refs); !slices.Equal(got, want) {
		t.Errorf("reversed: errors\n got %q\nwant %q", got, want)
	}
}
