package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/libvirt/libvirttest"
	"github.com/vguard-dev/vguard/internal/load"
	"github.com/vguard-dev/vguard/internal/token"
)

// sharedOverlay is what several connectors of one site share: zones, a
// network only an overlay knows, a datastore, a service and a Policy.
const sharedOverlay = `apiVersion: vguard.dev/v1
kind: Estate
metadata: {name: lab}
zones:
  - {name: internet, exposure: public}
  - {name: restricted, exposure: restricted}
networks:
  - {name: br-backup, zone: restricted, purpose: storage}
datastores:
  - {name: hr-db, classification: restricted, owner: hr, writers: single}
services:
  - {name: shop, selector: {app: shop}, spread: failureDomain}
---
apiVersion: vguard.dev/v1
kind: Policy
separate:
  - name: hr-apart-from-web
    groups: [{app: hr-app}, {app: shop}]
`

// TestConnectorsShareDefinitions runs two libvirt connectors in one
// server, each with a host on the shared network dmz and both with one
// overlay (docs/serve.md's example): both estates are stored and compose
// into one. An upload may define a zone a connector names with the same
// fields; one with other fields is refused, naming both documents.
func TestConnectorsShareDefinitions(t *testing.T) {
	d := libvirttest.Start(t)
	hvA, _ := filepath.Abs("../libvirt/testdata/hv-a.xml")
	hvB, _ := filepath.Abs("../libvirt/testdata/hv-b.xml")
	overlay := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(overlay, []byte(sharedOverlay), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, logs := connectorServer(t, "store: {sqlite: vguard.db}\nconnectors:\n"+
		"  - {name: site-a, kind: libvirt, every: 1h, settings: {uris: [\"hv-a="+d.URI(hvA)+"\"], overlays: ["+overlay+"]}}\n"+
		"  - {name: site-b, kind: libvirt, every: 1h, settings: {uris: [\"hv-b="+d.URI(hvB)+"\"], overlays: ["+overlay+"]}}\n")
	_, admin, err := CreateToken(context.Background(), ts.st, "admin", "admin", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts.tokens[token.Admin] = admin
	deadline := time.Now().Add(30 * time.Second)
	for {
		var e struct {
			Documents []docInfo
			Estate    *struct{ VMs, Zones, Networks int }
		}
		json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/estate", nil, 200), &e)
		if e.Estate != nil && e.Estate.VMs == 4 && len(e.Documents) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("both estates never arrived: %+v\nlog: %s", e, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "duplicate") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a connector failed:\n%s", logs)
	}
	same := "apiVersion: vguard.dev/v1\nkind: Estate\nzones:\n  - {name: internet, exposure: public}\n"
	ts.must(token.Admin, "PUT", "/api/v1/estate?name=zones.yaml", []byte(same), 200)
	other := "apiVersion: vguard.dev/v1\nkind: Estate\nzones:\n  - {name: internet, exposure: internal}\n"
	code, out := ts.do(token.Admin, "PUT", "/api/v1/estate?name=zones.yaml", []byte(other))
	if code/100 != 4 || !strings.Contains(string(out), "connectors/site-a/estate.yaml") || !strings.Contains(string(out), "zones.yaml") {
		t.Errorf("a conflicting zone: %d %s; want a 4xx naming both documents", code, out)
	}
	// A person's documents still define a name once.
	twice := "apiVersion: vguard.dev/v1\nkind: Estate\nzones:\n  - {name: lab, exposure: public}\n  - {name: lab, exposure: public}\n"
	if code, out := ts.do(token.Admin, "PUT", "/api/v1/estate?name=twice.yaml", []byte(twice)); code/100 != 4 || !strings.Contains(string(out), "duplicate zone") {
		t.Errorf("a zone given twice in one upload: %d %s", code, out)
	}
}

// TestHungConnectorFailsAlone: a libvirtd that accepts connections and
// never answers (SIGSTOP) makes its connector's syncs fail at their
// timeout, recorded; the other connector goes on syncing, and the server
// closes at once.
func TestHungConnectorFailsAlone(t *testing.T) {
	dA, dB := libvirttest.Start(t), libvirttest.Start(t)
	hvA, _ := filepath.Abs("../libvirt/testdata/hv-a.xml")
	hvB, _ := filepath.Abs("../libvirt/testdata/hv-b.xml")
	overlay := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(overlay, []byte(sharedOverlay), 0o600); err != nil {
		t.Fatal(err)
	}
	// Stopped before the server starts: the first sync already hangs.
	if err := syscall.Kill(dA.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(dA.Pid, syscall.SIGCONT) })
	// hung comes first: connectors run one after another would never
	// reach live.
	ts, logs := connectorServer(t, "store: {sqlite: vguard.db}\nconnectors:\n"+
		"  - {name: hung, kind: libvirt, every: 1h, timeout: 1s, settings: {uris: [\"hv-a="+dA.URI(hvA)+"\"], overlays: ["+overlay+"]}}\n"+
		"  - {name: live, kind: libvirt, every: 1h, settings: {uris: [\"hv-b="+dB.URI(hvB)+"\"], overlays: ["+overlay+"]}}\n",
		func(o *Options) { o.LeaseTTL = 600 * time.Millisecond })
	deadline := time.Now().Add(15 * time.Second)
	var okLive, failedHung int
	for time.Now().Before(deadline) && (okLive < 1 || failedHung < 1) {
		time.Sleep(100 * time.Millisecond)
		recs, err := ts.st.AuditRecords(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		okLive, failedHung = 0, 0
		for _, r := range recs {
			switch {
			case r.Subject == "live" && strings.Contains(string(r.Data), `"ok":true`):
				okLive++
			case r.Subject == "hung" && strings.Contains(string(r.Data), "did not finish within its timeout (1s)"):
				failedHung++
			}
		}
	}
	if okLive < 1 || failedHung < 1 {
		syscall.Kill(dA.Pid, syscall.SIGCONT) // or the cleanup's Close waits for it
		t.Fatalf("%d syncs of the live connector, %d timeouts of the hung one; want 1 each\nlog: %s", okLive, failedHung, logs)
	}
	start := time.Now()
	ts.srv.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a connector hung", d)
	}
}

// TestConnectorOverlaySideFiles: a manifest an overlay names is stored
// under connectors/NAME/<path under the overlay directory>, whatever the
// server's working directory; uploaded under that name, the sync loads.
func TestConnectorOverlaySideFiles(t *testing.T) {
	d := libvirttest.Start(t)
	hvA, _ := filepath.Abs("../libvirt/testdata/hv-a.xml")
	hvB, _ := filepath.Abs("../libvirt/testdata/hv-b.xml")
	dir := t.TempDir()
	overlay := strings.Replace(string(read(t, "../libvirt/testdata/overlay.yaml")),
		"  - name: web-1\n", "  - name: web-1\n    manifest: manifests/web-1.json\n", 1)
	manifest := read(t, "../../examples/04-farm-drift/manifests/web-1.json")
	os.MkdirAll(filepath.Join(dir, "manifests"), 0o700)
	os.WriteFile(filepath.Join(dir, "manifests", "web-1.json"), manifest, 0o600)
	os.WriteFile(filepath.Join(dir, "o.yaml"), []byte(overlay), 0o600)
	ts, logs := connectorServer(t, "store: {sqlite: vguard.db}\nconnectors:\n  - {name: kvm, kind: libvirt, every: 10s, settings: {uris: [\"hv-a="+
		d.URI(hvA)+"\", \"hv-b="+d.URI(hvB)+"\"], overlays: ["+filepath.Join(dir, "o.yaml")+"]}}\n")
	const name = "connectors/kvm/manifests/web-1.json"
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), name) {
		if time.Now().After(deadline) {
			t.Fatalf("the first sync did not ask for %s:\n%s", name, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, op, err := CreateToken(context.Background(), ts.st, "op", "operator", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts.tokens[token.Operator] = op
	ts.must(token.Operator, "PUT", "/api/v1/manifests/"+name, manifest, 200)
	deadline = time.Now().Add(30 * time.Second)
	for {
		var e struct{ Estate *struct{ VMs int } }
		json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/estate", nil, 200), &e)
		if e.Estate != nil && e.Estate.VMs == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the estate never loaded with the manifest:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGuessedZonesYield: zones a connector only guesses (its networks name
// them, nothing defines them) are stored apart, in defaults.yaml, and yield
// to an upload that defines them as they are.
func TestGuessedZonesYield(t *testing.T) {
	d := libvirttest.Start(t)
	hvA, _ := filepath.Abs("../libvirt/testdata/hv-a.xml")
	overlay := filepath.Join(t.TempDir(), "site.yaml")
	noZones := strings.Replace(sharedOverlay, "zones:\n  - {name: internet, exposure: public}\n  - {name: restricted, exposure: restricted}\n", "", 1)
	if err := os.WriteFile(overlay, []byte(noZones), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, logs := connectorServer(t, "store: {sqlite: vguard.db}\nconnectors:\n"+
		"  - {name: site-a, kind: libvirt, every: 1h, settings: {uris: [\"hv-a="+d.URI(hvA)+"\"], overlays: ["+overlay+"]}}\n")
	_, admin, err := CreateToken(context.Background(), ts.st, "admin", "admin", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts.tokens[token.Admin] = admin
	type estate struct {
		Documents []docInfo
		Estate    *struct{ VMs int }
	}
	var e estate
	deadline := time.Now().Add(20 * time.Second)
	for e.Estate == nil || e.Estate.VMs != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the estate never arrived: %+v\n%s", e, logs)
		}
		time.Sleep(50 * time.Millisecond)
		json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/estate", nil, 200), &e)
	}
	if len(e.Documents) != 2 || e.Documents[0].Name != "connectors/site-a/defaults.yaml" {
		t.Fatalf("documents %+v; want the guesses apart", e.Documents)
	}
	// internet was guessed internal; the upload says public.
	zones := "apiVersion: vguard.dev/v1\nkind: Estate\nzones:\n  - {name: internet, exposure: public}\n"
	ts.must(token.Admin, "PUT", "/api/v1/estate?name=zones.yaml", []byte(zones), 200)
	got := map[string]string{}
	for _, z := range ts.srv.state.Load().res.Estate.Zones {
		got[z.Name] = z.Exposure.String()
	}
	if len(got) != 2 || got["internet"] != "public" || got["restricted"] != "restricted" {
		t.Errorf("zones %v; want internet public (uploaded), restricted restricted (guessed)", got)
	}
	ts.waitFindings("web-1 exposed on the uploaded internet zone", 5*time.Second, func(got map[string]bool) bool {
		for k := range got {
			if strings.HasPrefix(k, "VG101 ") {
				return true
			}
		}
		return false
	})
}

// TestComposeSources: identical definitions written differently (JSON
// upload, YAML connector document, keys in another order) are one; a
// Policy given by two connectors is taken once; without connectors'
// documents nothing is parsed or changed.
func TestComposeSources(t *testing.T) {
	upload := load.Source{Name: "estate.json", Data: []byte(`{"apiVersion": "vguard.dev/v1", "kind": "Estate",
		"zones": [{"exposure": "public", "name": "dmz"}], "networks": [{"name": "web", "zone": "dmz", "vlan": 10}]}`)}
	conn := func(name string) load.Source {
		return load.Source{Name: "connectors/" + name + "/estate.yaml", Data: []byte(`apiVersion: vguard.dev/v1
kind: Estate
zones:
  - {name: dmz, exposure: public}
networks:
  - name: web
    vlan: 10
    zone: dmz
---
apiVersion: vguard.dev/v1
kind: Policy
masterLag: 2
`)}
	}
	srcs := []load.Source{conn("a"), conn("b"), upload}
	out, err := composeSources(srcs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load.Sources(out, load.Options{AllowEmpty: true}); err != nil {
		t.Fatalf("composed documents do not load: %v", err)
	}
	alone := []load.Source{upload}
	if out, err := composeSources(alone); err != nil || &out[0] != &alone[0] {
		t.Errorf("without connectors: %v, a copy", err)
	}
}
