package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/libvirt/libvirttest"
	"github.com/vguard-dev/vguard/internal/store"
	"github.com/vguard-dev/vguard/internal/token"
	"github.com/vguard-dev/vguard/internal/vsphere/vspheretest"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// connectorServer starts a server from config text (as the file would
// hold it) with the built-in connectors, on a fresh SQLite store.
func connectorServer(t *testing.T, config string, opts ...func(*Options)) (*testServer, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Judges = 1
	ctx := context.Background()
	st, err := OpenStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &lockedBuffer{}
	o := Options{Store: st, Connectors: BuiltinConnectors(), Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, f := range opts {
		f(&o)
	}
	srv, err := New(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	ts := &testServer{t: t, srv: srv, st: st, url: hs.URL, tokens: map[token.Role]string{}}
	_, secret, err := CreateToken(ctx, st, "test", "viewer", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts.tokens[token.Viewer] = secret
	return ts, logs
}

// waitFindings polls the findings until ok accepts them.
func (ts *testServer) waitFindings(what string, within time.Duration, ok func(map[string]bool) bool) {
	ts.t.Helper()
	deadline := time.Now().Add(within)
	var got map[string]bool
	for time.Now().Before(deadline) {
		var fs struct {
			Findings []struct{ Check, Subject string }
		}
		json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/findings", nil, 200), &fs)
		got = map[string]bool{}
		for _, f := range fs.Findings {
			got[f.Check+" "+f.Subject] = true
		}
		if ok(got) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.t.Fatalf("%s: not within %v; findings %v", what, within, got)
}

// TestVSphereConnector runs the vsphere connector inside the server
// against govmomi's vCenter simulator: on a schedule, then as a watcher
// that sees a NIC move. The password (read from the environment) is never
// in the logs, the printed config, the stored estate or the audit trail.
func TestVSphereConnector(t *testing.T) {
	sim := vspheretest.Start(t, 4)
	vspheretest.Scenario(t, sim)
	t.Setenv("VC_PASSWORD", vspheretest.Password)
	host := strings.TrimPrefix(sim.Server.URL.String(), "https://")
	host = host[strings.Index(host, "@")+1:]
	overlay, _ := filepath.Abs("../vsphere/testdata/overlay.yaml")
	conf := func(mode string) string {
		return "store: {sqlite: vguard.db}\nconnectors:\n  - name: vc\n    kind: vsphere\n    " + mode +
			"\n    settings:\n      url: https://" + host + "\n      user: " + vspheretest.User +
			"\n      passwordEnv: VC_PASSWORD\n      insecure: true\n      overlays: [" + overlay + "]\n      debounce: 50ms\n"
	}
	hrRule := func(got map[string]bool) bool { return got["VG402 vm/"+vspheretest.VMHR] }

	// On a schedule.
	ts, logs := connectorServer(t, conf("every: 1h"))
	ts.waitFindings("the scheduled sync", 20*time.Second, hrRule)
	check := func(ts *testServer, logs *lockedBuffer) {
		t.Helper()
		ctx := context.Background()
		doc, err := ts.st.Document(ctx, store.KindEstate, "connectors/vc/estate.yaml")
		if err != nil {
			t.Fatal(err)
		}
		recs, err := ts.st.AuditRecords(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		trail, _ := json.Marshal(recs)
		for what, text := range map[string]string{"log": logs.String(), "estate": string(doc.Data), "audit trail": string(trail), "config": ts.srv.cfg.Redacted()} {
			if strings.Contains(text, vspheretest.Password) {
				t.Errorf("the password is in the %s", what)
			}
		}
		if !strings.Contains(string(trail), `"kind":"sync"`) {
			t.Errorf("no sync record: %s", trail)
		}
	}
	check(ts, logs)

	// As a watcher: a NIC moved in vCenter shows in the findings.
	ts, logs = connectorServer(t, conf("watch: true"))
	ts.waitFindings("the watch's first inventory", 20*time.Second, hrRule)
	f := sim.Finder(t)
	vm, err := f.VirtualMachine(context.Background(), vspheretest.VMWebLow)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := f.Network(context.Background(), vspheretest.PGInternet)
	if err != nil {
		t.Fatal(err)
	}
	sim.MoveNIC(t, vm, pg.(*object.DistributedVirtualPortgroup))
	ts.waitFindings("the NIC move", 10*time.Second, func(got map[string]bool) bool { return got["VG101 vm/"+vspheretest.VMWebLow] })
	check(ts, logs)
}

// TestLibvirtConnector runs the libvirt connector inside the server on a
// schedule against a real libvirtd, and refuses bad settings before start.
func TestLibvirtConnector(t *testing.T) {
	d := libvirttest.Start(t)
	hvA, _ := filepath.Abs("../libvirt/testdata/hv-a.xml")
	hvB, _ := filepath.Abs("../libvirt/testdata/hv-b.xml")
	overlay, _ := filepath.Abs("../libvirt/testdata/overlay.yaml")
	ts, _ := connectorServer(t, "store: {sqlite: vguard.db}\nconnectors:\n  - {name: kvm, kind: libvirt, every: 1h, settings: {uris: [\"hv-a="+
		d.URI(hvA)+"\", \"hv-b="+d.URI(hvB)+"\"], overlays: ["+overlay+"]}}\n")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var e struct {
			Documents []docInfo
			Estate    *struct{ VMs int }
		}
		json.Unmarshal(ts.must(token.Viewer, "GET", "/api/v1/estate", nil, 200), &e)
		if e.Estate != nil && e.Estate.VMs == 4 && len(e.Documents) == 1 && e.Documents[0].Name == "connectors/kvm/estate.yaml" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the libvirt estate never arrived: %+v", e)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for settings, want := range map[string]string{
		"{}":                                    "give at least one libvirt URI",
		"{uris: [x]}":                           "not a libvirt URI",
		"{uris: [test:///default], overlay: x}": "overlay",
	} {
		cfg := &Config{Connectors: []ConnectorConfig{{Name: "kvm", Kind: "libvirt"}}}
		if err := yaml.Unmarshal([]byte(settings), &cfg.Connectors[0].Settings); err != nil {
			t.Fatal(err)
		}
		if _, err := New(context.Background(), cfg, Options{Store: ts.st, Connectors: BuiltinConnectors()}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("settings %s: %v; want %q", settings, err, want)
		}
	}
}

// TestVSphereSettingsURL: settings.url goes through the parse of `vguard
// sync vsphere --url`: a query, a fragment or an @ after the host (a
// password with an unescaped @ then /, ? or #, which url.Parse would split
// into a host and a path) is refused without quoting any of it, and the
// connector names vCenter by scheme, host and path only.
func TestVSphereSettingsURL(t *testing.T) {
	t.Setenv("VG_TEST_PW", "hunter2")
	for _, raw := range []string{
		"https://svc:Sup3r@Secr3tPart/2024@vc.example.com/sdk",
		"https://svc:Sup3r@Secr3tPart#2024@vc.example.com/sdk",
		"https://svc:Sup3r@Secr3tPart?2024@vc.example.com/sdk",
		"https://vc.example.com/sdk?Secr3tPart",
		"https://vc.example.com/sdk#Secr3tPart",
		"https:svc@Secr3tPart",
	} {
		_, err := newVSphereConnector(ConnectorConfig{Name: "vc", Kind: "vsphere",
			Settings: map[string]any{"url": raw, "user": "svc", "passwordEnv": "VG_TEST_PW"}})
		if err == nil {
			t.Errorf("%s: accepted", raw)
			continue
		}
		if !strings.Contains(err.Error(), "settings.url") {
			t.Errorf("%s: error does not name the field: %v", raw, err)
		}
		for _, s := range []string{"Sup3r", "Secr3tPart", "2024", "hunter2"} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q is in the error: %v", raw, s, err)
			}
		}
	}
	c, err := newVSphereConnector(ConnectorConfig{Name: "vc", Kind: "vsphere",
		Settings: map[string]any{"url": "https://svc@vc.example.com", "passwordEnv": "VG_TEST_PW"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.(*vsphereConnector).ep.String(); got != "https://vc.example.com/sdk" {
		t.Errorf("vCenter named %s", got)
	}
}
