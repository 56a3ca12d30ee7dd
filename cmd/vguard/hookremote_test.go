package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// TestLibvirtHookRemote runs the hook through libvirt's argv/stdin
// protocol with a remote: section against a real vguard serve: the server
// judges (and records) each change, refuses the findings a starting domain
// carries, and a server that cannot be reached fails closed by default.
func TestLibvirtHookRemote(t *testing.T) {
	dir := t.TempDir()
	ar, err := txtar.ParseFile(filepath.Join("testdata", "hook", "hook.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ar.Files {
		p := filepath.Join(dir, f.Name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("listen: 127.0.0.1:0\nstore: {sqlite: vguard.db}\n"), 0o600)
	admin, operator := newToken(t, config, "admin"), newToken(t, config, "operator")
	p := startServe(t, config)
	c := &http.Client{}
	put(t, c, p.url+"/api/v1/estate", admin, mustRead(t, filepath.Join(dir, "estate.yaml")))
	os.WriteFile(filepath.Join(dir, "hook.token"), []byte(operator+"\n"), 0o600)
	writeCfg := func(name, estate, extra string) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte("estate: ["+estate+"]\nhypervisor: hv-a\nstateDir: state\n"+extra+
			"remote: {url: "+p.url+", tokenFile: hook.token, timeout: 2s}\n"), 0o644)
		return path
	}
	cfg := writeCfg("remote.yaml", "estate.yaml", "")
	bin, err := exec.LookPath("vguard")
	if err != nil {
		t.Fatal(err)
	}
	hook := func(cfg, xml string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"libvirt-hook", "--config", cfg, "--"}, args...)...)
		cmd.Stdin = bytes.NewReader(mustRead(t, filepath.Join(dir, xml)))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if out.Len() > 0 {
			t.Errorf("the hook wrote to stdout: %q", out.String())
		}
		if strings.Contains(errb.String(), operator) {
			t.Errorf("the hook printed its token: %s", errb.String())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), errb.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, errb.String()
	}

	// A NIC added on the internet-facing network: the server denies.
	code, errs := hook(cfg, "app-1-dmz.xml", "app-1", "prepare", "begin", "-")
	if code != 1 || !strings.Contains(errs, `refused prepare of domain "app-1" on hv-a (attach app-1 to dmz`) ||
		!strings.Contains(errs, "VG101 critical vm/app-1") || !strings.Contains(errs, "audit record") {
		t.Errorf("deny: exit %d\n%s", code, errs)
	}
	// Raising the security level: an update the server allows.
	if code, errs := hook(cfg, "app-1-high.xml", "app-1", "prepare", "begin", "-"); code != 0 {
		t.Errorf("allow: exit %d\n%s", code, errs)
	}
	// A VM the estate does not know: a create, its spec judged by the server.
	if code, errs := hook(cfg, "new-1.xml", "new-1", "attach", "begin", "-"); code != 1 || !strings.Contains(errs, "create new-1") || !strings.Contains(errs, "VG101") {
		t.Errorf("create: exit %d\n%s", code, errs)
	}
	// Both verdicts are in the server's audit trail, by the hook's token.
	req, _ := http.NewRequest("GET", p.url+"/api/v1/audit", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	trail, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"libvirt hook: domain app-1", `"deny"`, `"allow"`, "attach app-1 to dmz", "update app-1"} {
		if !bytes.Contains(trail, []byte(want)) {
			t.Errorf("audit trail lacks %s:\n%s", want, trail)
		}
	}

	// The server's estate holds app-1 on dmz already: a start that changes
	// nothing is still refused for the findings the server holds for it.
	put(t, c, p.url+"/api/v1/estate", admin, mustRead(t, filepath.Join(dir, "known", "estate.yaml")))
	known := writeCfg("known.yaml", "known/estate.yaml", "")
	code, errs = hook(known, "app-1-dmz.xml", "app-1", "prepare", "begin", "-")
	if code != 1 || !strings.Contains(errs, "would run with findings at or above") || !strings.Contains(errs, "VG101 critical vm/app-1") {
		t.Errorf("carried: exit %d\n%s", code, errs)
	}

	// Server down: closed by default, open when configured.
	p.cmd.Process.Kill()
	p.cmd.Wait()
	code, errs = hook(cfg, "app-1.xml", "app-1", "prepare", "begin", "-")
	if code != 2 || !strings.Contains(errs, "refused (onError: closed): asking vguard serve at "+p.url) {
		t.Errorf("server down: exit %d\n%s", code, errs)
	}
	open := writeCfg("open-remote.yaml", "estate.yaml", "onError: open\n")
	code, errs = hook(open, "app-1-high.xml", "app-1", "prepare", "begin", "-")
	if code != 0 || !strings.Contains(errs, "allowed (onError: open): asking vguard serve") {
		t.Errorf("server down, open: exit %d\n%s", code, errs)
	}
}

// TestLibvirtHookRemoteConfig: a remote: section that is wrong is a
// configuration error, which fails closed; the token is never quoted.
func TestLibvirtHookRemoteConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ remote, want string }{
		{"{url: ftp://x}", "remote.url"},
		{"{url: http://h:1}", "give token or tokenFile"},
		{"{url: http://h:1, token: s3cretTok, tokenFile: f}", "not both"},
		{"{url: http://h:1, tokenFile: missing}", "remote.tokenFile"},
		{"{url: http://h:1, token: s3cretTok, timeout: soon}", "remote.timeout"},
	} {
		cfg := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfg, []byte("estate: [e.yaml]\nhypervisor: hv-a\nonError: open\nremote: "+tc.remote+"\n"), 0o644)
		code, _, errs := vguardRun(t, "libvirt-hook", "--config", cfg, "--", "app-1", "prepare", "begin", "-")
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Contains(errs, "s3cretTok") {
			t.Errorf("%s: exit %d %s", tc.remote, code, errs)
		}
	}
}
