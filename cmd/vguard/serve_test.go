package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vguard-dev/vguard/internal/vsphere/vspheretest"
)

// serveProc is a real `vguard serve` process (the test binary, run as
// vguard through testscript.Main).
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

func startServe(t *testing.T, config string) *serveProc {
	t.Helper()
	bin, err := exec.LookPath("vguard")
	if err != nil {
		t.Fatalf("the test binary is not on PATH as vguard: %v", err)
	}
	p := &serveProc{cmd: exec.Command(bin, "serve", "--config", config), stderr: &bytes.Buffer{}}
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	p.cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`listening on (https?://\S+)`)
		sent := false
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case u, ok := <-addr:
		if !ok {
			t.Fatalf("vguard serve did not start:\n%s", p.stderr)
		}
		p.url = u
	case <-time.After(30 * time.Second):
		t.Fatalf("vguard serve did not start in time:\n%s", p.stderr)
	}
	return p
}

// vguardRun runs a vguard command line in-process.
func vguardRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func newToken(t *testing.T, config, role string) string {
	t.Helper()
	code, out, errs := vguardRun(t, "token", "create", "--config", config, "--role", role, "--name", "test-"+role)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errs)
	}
	return strings.TrimSpace(out)
}

func put(t *testing.T, c *http.Client, url, tok string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest("PUT", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %d %s", url, resp.StatusCode, b)
	}
}

// uploadExample uploads an example directory's estate, policy and
// manifests.
func uploadExample(t *testing.T, c *http.Client, base, tok, dir string) {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(dir, "manifests", "*.json"))
	for _, m := range ms {
		put(t, c, base+"/api/v1/manifests/manifests/"+filepath.Base(m), tok, mustRead(t, m))
	}
	if data, err := os.ReadFile(filepath.Join(dir, "policy.yaml")); err == nil {
		put(t, c, base+"/api/v1/policy", tok, data)
	}
	put(t, c, base+"/api/v1/estate", tok, mustRead(t, filepath.Join(dir, "estate.yaml")))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vguard test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key
}

// TestServeRemotePlan: `vguard plan --remote` against a real vguard serve
// over TLS gives what `vguard plan` gives locally, exit codes included.
func TestServeRemotePlan(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("listen: 127.0.0.1:0\ntls: {cert: tls.crt, key: tls.key}\nstore: {sqlite: vguard.db}\n"), 0o600)
	admin, operator := newToken(t, config, "admin"), newToken(t, config, "operator")
	viewer := newToken(t, config, "viewer")
	p := startServe(t, config)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("served at %s", p.url)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, cert))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	_ = key
	for _, ex := range []struct {
		name string
		code int
	}{{"vlan-typo", 1}, {"night-patch", 0}, {"hr-clone-sanitized", 0}} {
		exdir := filepath.Join("..", "..", "examples", "changes", ex.name)
		uploadExample(t, c, p.url, admin, exdir)
		chg := filepath.Join(exdir, "change.yaml")
		for _, format := range []string{"json", "table"} {
			lcode, local, _ := vguardRun(t, "plan", chg, exdir, "--format", format)
			rcode, remote, rerr := vguardRun(t, "plan", chg, "--remote", p.url, "--token", operator, "--cacert", cert, "--format", format)
			if lcode != ex.code || rcode != lcode {
				t.Errorf("%s %s: exit %d locally, %d remote (%s)", ex.name, format, lcode, rcode, rerr)
			}
			if format == "json" && local != remote {
				t.Errorf("%s: remote verdict\n%s\nlocal\n%s", ex.name, remote, local)
			}
			// The table differs only in where the estate came from.
			if format == "table" && !strings.Contains(remote, strings.SplitN(local, "\n", 2)[0][:20]) {
				t.Errorf("%s table: remote\n%s\nlocal\n%s", ex.name, remote, local)
			}
		}
	}
	// Refusals: a viewer may not judge; no token; a bad change.
	if code, _, errs := vguardRun(t, "plan", "../../examples/changes/vlan-typo/change.yaml", "--remote", p.url, "--token", viewer, "--cacert", cert); code != 2 || !strings.Contains(errs, "operator role") {
		t.Errorf("viewer: %d %s", code, errs)
	}
	t.Setenv("VGUARD_TOKEN", "")
	if code, _, errs := vguardRun(t, "plan", "x.yaml", "--remote", p.url); code != 2 || !strings.Contains(errs, "token") {
		t.Errorf("no token: %d %s", code, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: vguard.dev/v1\nkind: Change\noperations:\n  - {op: migrate, vm: nope, toHypervisor: h}\n"), 0o644)
	if code, _, errs := vguardRun(t, "plan", bad, "--remote", p.url, "--token", operator, "--cacert", cert); code != 2 || !strings.Contains(errs, "bad.yaml:4") {
		t.Errorf("bad change: %d %s", code, errs)
	}
	// Without the CA the client refuses the server's certificate.
	if code, _, errs := vguardRun(t, "plan", bad, "--remote", p.url, "--token", operator); code != 2 || !strings.Contains(errs, "certificate") || !strings.Contains(errs, "with --cacert FILE") {
		t.Errorf("unknown CA: %d %s", code, errs)
	}
	if strings.Contains(p.stderr.String(), operator) || strings.Contains(p.stderr.String(), admin) {
		t.Error("the server logged a token")
	}
}

// TestServeSIGKILL kills a real vguard serve under load with SIGKILL and
// restarts it: every verdict a client received is in the audit trail and
// the chain verifies.
func TestServeSIGKILL(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("listen: 127.0.0.1:0\nstore: {sqlite: vguard.db}\n"), 0o600)
	admin, operator := newToken(t, config, "admin"), newToken(t, config, "operator")
	p := startServe(t, config)
	c := &http.Client{Timeout: 10 * time.Second}
	exdir := filepath.Join("..", "..", "examples", "changes", "night-patch")
	uploadExample(t, c, p.url, admin, exdir)
	change := string(mustRead(t, filepath.Join(exdir, "change.yaml")))

	var (
		mu    sync.Mutex
		acked = map[string]string{} // change name → audit seq
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("CHG-%d-%d", w, i)
				body := strings.Replace(change, "name: CHG-5120", "name: "+name, 1)
				req, _ := http.NewRequest("POST", p.url+"/api/v1/judge", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+operator)
				resp, err := c.Do(req)
				if err != nil {
					return // the server is gone
				}
				out, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				// Only a whole verdict counts as returned to the client.
				var v struct{ Decision string }
				if err == nil && resp.StatusCode == 200 && json.Unmarshal(out, &v) == nil && v.Decision != "" {
					mu.Lock()
					acked[name] = resp.Header.Get("Vguard-Audit-Seq")
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	stop.Store(true)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d verdicts before the kill: the load was too light to prove anything", len(acked))
	}

	// Restarted, the server comes up on the same store and serves.
	p2 := startServe(t, config)
	req, _ := http.NewRequest("POST", p2.url+"/api/v1/judge", strings.NewReader(change))
	req.Header.Set("Authorization", "Bearer "+operator)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after restart: %v %v", err, resp)
	}
	resp.Body.Close()
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	_ = p2.cmd.Wait()

	if code, out, errs := vguardRun(t, "audit", "verify", "--config", config); code != 0 {
		t.Fatalf("audit verify: %d %s %s", code, out, errs)
	}
	code, out, errs := vguardRun(t, "audit", "export", "--config", config)
	if code != 0 {
		t.Fatalf("audit export: %d %s", code, errs)
	}
	judged := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Seq     int64
			Kind    string
			Subject string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if r.Kind == "change.judge" {
			judged[r.Subject] = fmt.Sprint(r.Seq)
		}
	}
	missing := 0
	for name, seq := range acked {
		if judged[name] != seq {
			missing++
			if missing < 5 {
				t.Errorf("verdict on %s (audit record %s) was returned but the trail has %q", name, seq, judged[name])
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d returned verdicts are not in the audit trail", missing, len(acked))
	}
	t.Logf("%d verdicts returned before SIGKILL, all in the trail (%d judge records)", len(acked), len(judged))

	// An auditor's check: edit one record in the database directly, and
	// verify names it.
	db, err := sql.Open("sqlite", filepath.Join(dir, "vguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit SET actor = 'mallory' WHERE seq = 42`); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := vguardRun(t, "audit", "verify", "--config", config); code != 1 || !strings.Contains(errs, "record 42") {
		t.Fatalf("tampered trail: exit %d, %s", code, errs)
	}
}

// TestServeVSphereConnector runs a real `vguard serve` whose config names a
// vsphere connector against govmomi's simulator, the password in the
// environment: the estate arrives and the password is not printed, by
// --print-config or in the server's log.
func TestServeVSphereConnector(t *testing.T) {
	sim := vspheretest.Start(t, 4)
	vspheretest.Scenario(t, sim)
	t.Setenv("VC_PASSWORD", vspheretest.Password)
	host := sim.Server.URL.Host
	overlay, _ := filepath.Abs("../../internal/vsphere/testdata/overlay.yaml")
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("listen: 127.0.0.1:0\nstore: {sqlite: vguard.db}\nconnectors:\n  - name: vc\n    kind: vsphere\n    every: 1h\n"+
		"    settings: {url: \"https://"+host+"/sdk\", user: \""+vspheretest.User+"\", passwordEnv: VC_PASSWORD, insecure: true, overlays: ["+overlay+"]}\n"), 0o600)
	code, out, errs := vguardRun(t, "serve", "--config", config, "--print-config")
	if code != 0 || !strings.Contains(out, "kind: vsphere") || strings.Contains(out+errs, vspheretest.Password) {
		t.Fatalf("--print-config: %d\n%s%s", code, out, errs)
	}
	viewer := newToken(t, config, "viewer")
	p := startServe(t, config)
	c := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", p.url+"/api/v1/findings?check=VG402", nil)
		req.Header.Set("Authorization", "Bearer "+viewer)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "vm/"+vspheretest.VMHR) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the synced estate never showed the DRS rule's finding: %s\n%s", body, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	if strings.Contains(p.stderr.String(), vspheretest.Password) {
		t.Fatal("the server logged the vCenter password")
	}
	// The trail names the sync; verify and export only read the store.
	code, out, _ = vguardRun(t, "audit", "export", "--config", config)
	if code != 0 || !strings.Contains(out, `"kind":"sync"`) || strings.Contains(out, vspheretest.Password) {
		t.Fatalf("audit export: %d %s", code, out)
	}
}

// TestAuditVerifyReadOnly: verifying the trail of a database an older
// vguard left does not upgrade it; an unparsable PostgreSQL URL is refused
// without being printed.
func TestAuditVerifyReadOnly(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("store: {sqlite: vguard.db}\n"), 0o600)
	newToken(t, config, "viewer")
	db, err := sql.Open("sqlite", filepath.Join(dir, "vguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	db.QueryRow(`SELECT MAX(version) FROM vguard_schema`).Scan(&v)
	if _, err := db.Exec(`DELETE FROM vguard_schema WHERE version = ?`, v); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := vguardRun(t, "audit", "verify", "--config", config); code != 0 || !strings.Contains(out, "1 records") {
		t.Fatalf("audit verify: %d %s %s", code, out, errs)
	}
	var after int
	db.QueryRow(`SELECT MAX(version) FROM vguard_schema`).Scan(&after)
	if after != v-1 {
		t.Fatalf("audit verify changed the schema version from %d to %d", v-1, after)
	}
	os.WriteFile(config, []byte("store: {postgres: \"postgresql://vg:hunter2@[::1/vguard\"}\n"), 0o600)
	code, out, errs := vguardRun(t, "serve", "--config", config, "--print-config")
	if code != 2 || strings.Contains(out+errs, "hunter2") || !strings.Contains(errs, "store.postgres") {
		t.Fatalf("unparsable DSN: %d %s %s", code, out, errs)
	}
}

// TestTokenCreateName: a token's name with a control character is a usage
// error, and nothing is stored (a NUL once reached the store and failed
// there on PostgreSQL).
func TestTokenCreateName(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("store: {sqlite: vguard.db}\n"), 0o600)
	code, out, errs := vguardRun(t, "token", "create", "--config", config, "--role", "viewer", "--name", "ci\x00x")
	if code != 2 || out != "" || !strings.Contains(errs, "control character U+0000") {
		t.Fatalf("token create with a NUL in its name: %d %q %s", code, out, errs)
	}
	if code, out, _ := vguardRun(t, "token", "list", "--config", config); code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("token list after a refused create: %d %s", code, out)
	}
}

// TestAuditWithoutTLSKey: the commands that only read the store (token,
// audit verify and export, --print-config) work with a config whose TLS
// key this user cannot read, as an auditor's; serve itself refuses it.
func TestAuditWithoutTLSKey(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "serve.yaml")
	os.WriteFile(config, []byte("listen: 127.0.0.1:0\ntls: {cert: tls.crt, key: tls.key}\nstore: {sqlite: vguard.db}\n"), 0o600)
	newToken(t, config, "viewer")
	for _, args := range [][]string{
		{"audit", "verify", "--config", config},
		{"audit", "export", "--config", config},
		{"serve", "--config", config, "--print-config"},
	} {
		if code, out, errs := vguardRun(t, args...); code != 0 {
			t.Errorf("%v: %d %s %s", args, code, out, errs)
		}
	}
	if code, _, errs := vguardRun(t, "serve", "--config", config); code != 2 || !strings.Contains(errs, "tls:") {
		t.Errorf("serve without its key: %d %s", code, errs)
	}
}
