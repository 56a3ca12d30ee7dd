package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/vguard-dev/vguard/internal/libvirt/libvirttest"
	"github.com/vguard-dev/vguard/internal/vsphere/vspheretest"
)

// TestLibvirtScripts runs testdata/libvirt against a real libvirtd that
// the test starts on a private socket (test driver). $LV_A and $LV_B are
// URIs of two hypervisors (the estates of internal/libvirt/testdata).
func TestLibvirtScripts(t *testing.T) {
	d := libvirttest.Start(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/libvirt",
		Setup: func(env *testscript.Env) error {
			env.Setenv("LV_A", d.URI(filepath.Join(root, "internal/libvirt/testdata/hv-a.xml")))
			env.Setenv("LV_B", d.URI(filepath.Join(root, "internal/libvirt/testdata/hv-b.xml")))
			env.Setenv("LV_DEFAULT", d.URI("default"))
			env.Setenv("LV_SOCK", d.Socket)
			env.Setenv("REPO", root)
			return nil
		},
	})
}

// TestLibvirtHookScripts runs testdata/hook: the hook exec'd through a
// wrapper script installed as libvirt installs hooks, with the exact argv
// and the domain XML on stdin.
func TestLibvirtHookScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/hook"})
}

// TestVSphereScripts runs testdata/vsphere against govmomi's simulator with
// the scenario of vspheretest. $VC_URL holds the password $VC_PASSWORD.
func TestVSphereScripts(t *testing.T) {
	sim := vspheretest.Start(t, 20)
	pci := vspheretest.Scenario(t, sim)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/vsphere",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VC_URL", sim.URL)
			env.Setenv("VC_HOST", sim.Server.URL.Host)
			env.Setenv("VC_PASSWORD", vspheretest.Password)
			env.Setenv("VC_PCI_HOST", pci)
			return nil
		},
	})
}

// TestSyncStoppedMidwayWritesNothing stops vCenter while vguard reads it:
// exit 2, a clear message without the password, and the previous estate
// file untouched with no temporary file left beside it.
func TestSyncStoppedMidwayWritesNothing(t *testing.T) {
	sim := vspheretest.Start(t, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(out, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	sim.Model.DelayConfig.MethodDelay = map[string]int{"RetrievePropertiesEx": 300}
	go func() {
		time.Sleep(150 * time.Millisecond)
		sim.Server.Close()
	}()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"sync", "vsphere", "--url", sim.URL, "--insecure", "-o", out}, &stdout, &stderr)
	if code != exitInput {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitInput, stderr.String())
	}
	if !strings.Contains(stderr.String(), "nothing was written") || strings.Contains(stderr.String(), vspheretest.Password) {
		t.Errorf("stderr: %s", stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "previous" {
		t.Errorf("the previous estate changed: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left in the output directory: %v", entries)
	}
}
