package hygiene

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/imagefs"
	"github.com/vguard-dev/vguard/internal/secrets"
	"github.com/vguard-dev/vguard/internal/testdeps"
)

// planted is a file the tests put into a tree, with what a scan must
// report of it.
type planted struct {
	path, content string
	mode          fs.FileMode
	identity      string   // identity kind, or ""
	rules         []string // secret rules, or none
}

// fakeAWS and friends are assembled at run time so that no credential-like
// string sits in the repository for scanners of the repository to flag.
func fakeAWS() string { return "AKIA" + "QWERTYUIOPASDFGH" }

func rsaKey(t *testing.T) string {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// plantings returns the HR server of the article: identity of the
// original machine, and the database credentials of the HR app.
func plantings(t *testing.T) []planted {
	key := rsaKey(t)
	dbPass := "Hr" + "Db-2024-s3cr3t!"
	return []planted{
		{"/etc/machine-id", "4c4c4544004a3510804bb8c04f384d32\n", 0o444, "machine-id", nil},
		{"/etc/hostname", "hr-db-01\n", 0o644, "hostname", nil},
		{"/etc/ssh/ssh_host_rsa_key", key, 0o600, "ssh-host-key", []string{"private-key"}},
		{"/etc/ssh/ssh_host_rsa_key.pub", "ssh-rsa AAAAB3NzaC1yc2E root@hr-db-01\n", 0o644, "ssh-host-key", nil},
		{"/etc/udev/rules.d/70-persistent-net.rules", `SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"` + "\n", 0o644, "udev-persistent-net", nil},
		{"/etc/NetworkManager/system-connections/eth0.nmconnection", "[connection]\nid=eth0\nuuid=8d7b0a33-f7b6-4e4a-9e4c-0a2a3b1f6c11\ntype=ethernet\n[ethernet]\nmac-address=52:54:00:12:34:56\n[ipv4]\nmethod=auto\n", 0o600, "networkmanager-mac-pin", nil},
		{"/var/lib/dhcp/dhclient.eth0.leases", "lease {\n  interface \"eth0\";\n  fixed-address 10.20.0.7;\n}\n", 0o644, "dhcp-lease", nil},
		{"/var/lib/systemd/random-seed", "\x8a\x11\x93\x07\xfe\x00\x12", 0o600, "random-seed", nil},
		{"/opt/hr/app.env", "APP_ENV=prod\nAWS_ACCESS_KEY_ID=" + fakeAWS() + "\nLOG_LEVEL=info\n", 0o640, "", []string{"aws-access-key-id"}},
		{"/opt/hr/config.yaml", "database:\n  url: postgres://hr_app:" + dbPass + "@hr-db.internal:5432/hr\n  pool: 10\n", 0o640, "", []string{"db-connection-uri"}},
		{"/opt/hr/README", "The HR app reads its database URL from config.yaml.\n", 0o644, "", nil},
	}
}

// plant writes the files under root.
func plant(t *testing.T, root string, ps []planted) {
	for _, p := range ps {
		full := filepath.Join(root, p.path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(p.content), p.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, p.mode); err != nil {
			t.Fatal(err)
		}
	}
}

func newScanner(t *testing.T) *Scanner {
	s, err := NewScanner(secrets.Builtin(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t *testing.T, path string) imagefs.Image {
	img, err := imagefs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// found lists a scan's findings as "identity KIND PATH" and "secret RULE
// PATH" lines.
func found(t *testing.T, s *Scanner, path string) []string {
	res, err := s.Scan(open(t, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report(path)
	var out []string
	for _, i := range rep.Identity {
		out = append(out, "identity "+i.Kind+" "+i.Path)
	}
	for _, sec := range rep.Secrets {
		out = append(out, "secret "+sec.Rule+" "+sec.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func want(ps []planted, prefix string) []string {
	var out []string
	for _, p := range ps {
		if p.identity != "" {
			out = append(out, "identity "+p.identity+" "+prefix+p.path)
		}
		for _, r := range p.rules {
			out = append(out, "secret "+r+" "+prefix+p.path)
		}
	}
	slices.Sort(out)
	return out
}

func TestScanFindsPlanted(t *testing.T) {
	root := t.TempDir()
	ps := plantings(t)
	plant(t, root, ps)
	s := newScanner(t)
	if got, want := found(t, s, root), want(ps, ""); !slices.Equal(got, want) {
		t.Fatalf("scan found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// The report never holds a secret's value.
	res, err := s.Scan(open(t, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report(root)
	for _, sec := range rep.Secrets {
		for _, p := range ps {
			for _, line := range strings.Split(p.content, "\n") {
				if _, v, ok := strings.Cut(line, "="); ok && len(v) > 8 && strings.Contains(sec.Redacted, v) {
					t.Errorf("report shows the value of %s: %s", p.path, sec.Redacted)
				}
			}
		}
	}
	if rep.Summary.Files < int64(len(ps)) || rep.Summary.Secrets != len(rep.Secrets) || rep.Summary.Identity != len(rep.Identity) {
		t.Errorf("summary %+v disagrees with the report", rep.Summary)
	}
}

// TestSanitize writes sanitized copies as a directory and as tars, and
// checks each: the re-scan inside Sanitize is clean, every planted item
// has its action, identity files are reset the way a sealed template
// expects, configs keep their shape with the marker in place of the value,
// and every other file is byte for byte the original.
func TestSanitize(t *testing.T) {
	root := t.TempDir()
	ps := plantings(t)
	plant(t, root, ps)
	s := newScanner(t)
	for _, out := range []string{"copy", "copy.tar", "copy.tar.gz", "copy.tar.zst"} {
		t.Run(out, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), out)
			rep, err := s.Sanitize(open(t, root), root, dst, SanitizeOptions{})
			if err != nil {
				t.Fatalf("Sanitize: %v (rescan %+v)", err, rep)
			}
			acts := map[string]string{}
			for _, a := range rep.Actions {
				acts[a.Path] = a.Action
			}
			wantActs := map[string]string{
				"/etc/machine-id": "empty", "/etc/hostname": "reset", "/etc/ssh/ssh_host_rsa_key": "remove",
				"/etc/ssh/ssh_host_rsa_key.pub": "remove", "/etc/udev/rules.d/70-persistent-net.rules": "remove",
				"/etc/NetworkManager/system-connections/eth0.nmconnection": "rewrite",
				"/var/lib/dhcp/dhclient.eth0.leases":                       "remove", "/var/lib/systemd/random-seed": "remove",
				"/opt/hr/app.env": "redact", "/opt/hr/config.yaml": "redact",
			}
			for p, a := range wantActs {
				if acts[p] != a {
					t.Errorf("%s: action %q, want %q", p, acts[p], a)
				}
			}
			if len(acts) != len(wantActs) {
				t.Errorf("actions %v, want exactly %v", acts, wantActs)
			}
			copyFiles := readTree(t, dst)
			if c, ok := copyFiles["/etc/machine-id"]; !ok || c.content != "" || c.mode != 0o444 {
				t.Errorf("machine-id in the copy: %+v, want kept, empty, mode 0444", c)
			}
			if c := copyFiles["/etc/hostname"]; c.content != "localhost\n" {
				t.Errorf("hostname in the copy: %q", c.content)
			}
			if _, ok := copyFiles["/etc/ssh/ssh_host_rsa_key"]; ok {
				t.Error("the SSH host key is still in the copy")
			}
			if c := copyFiles["/opt/hr/config.yaml"]; c.content != "database:\n  url: postgres://hr_app:"+Marker+"@hr-db.internal:5432/hr\n  pool: 10\n" || c.mode != 0o640 {
				t.Errorf("config.yaml in the copy (mode %o):\n%s", c.mode, c.content)
			}
			if c := copyFiles["/opt/hr/app.env"]; !strings.Contains(c.content, "AWS_ACCESS_KEY_ID="+Marker+"\n") || !strings.HasPrefix(c.content, "APP_ENV=prod\n") {
				t.Errorf("app.env in the copy:\n%s", c.content)
			}
			orig := readTree(t, root)
			for p, f := range orig {
				if _, changed := wantActs[p]; changed {
					continue
				}
				if copyFiles[p] != f {
					t.Errorf("%s differs in the copy: %+v, was %+v", p, copyFiles[p], f)
				}
			}
		})
	}
}

func TestSanitizeRemoveSecretFiles(t *testing.T) {
	root := t.TempDir()
	plant(t, root, plantings(t))
	dst := filepath.Join(t.TempDir(), "copy")
	rep, err := newScanner(t).Sanitize(open(t, root), root, dst, SanitizeOptions{RemoveSecretFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"opt/hr/app.env", "opt/hr/config.yaml"} {
		if _, err := os.Stat(filepath.Join(dst, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still in the copy (err %v)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "opt/hr/README")); err != nil {
		t.Errorf("a clean file went missing: %v", err)
	}
	n := 0
	for _, a := range rep.Actions {
		if a.Action == "remove-secret-file" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d remove-secret-file actions, want 2: %+v", n, rep.Actions)
	}
}

// TestSanitizeRefusesNonEmptyDir: an output directory with files in it
// would mix an earlier run into the copy.
func TestSanitizeRefusesNonEmptyDir(t *testing.T) {
	root := t.TempDir()
	plant(t, root, plantings(t))
	dst := t.TempDir()
	os.WriteFile(filepath.Join(dst, "old"), []byte("x"), 0o644)
	if _, err := newScanner(t).Sanitize(open(t, root), root, dst, SanitizeOptions{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Sanitize into a non-empty directory: %v", err)
	}
}

// TestSanitizeSymlinkEscape: an image that plants a symlink pointing out
// of the tree, then a file under it, must not write outside the output.
func TestSanitizeSymlinkEscape(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	// The tar carries etc -> outside, then etc/evil.
	tarPath := filepath.Join(t.TempDir(), "evil.tar")
	tw := exec.Command("tar", "-cf", tarPath, "-C", root, "etc")
	if out, err := tw.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	appendTar(t, tarPath, "etc/evil", "pwned\n")
	dst := filepath.Join(t.TempDir(), "copy")
	_, err := newScanner(t).Sanitize(open(t, tarPath), tarPath, dst, SanitizeOptions{})
	if _, statErr := os.Stat(filepath.Join(outside, "evil")); statErr == nil {
		t.Fatal("sanitize wrote through a symlink out of the output directory")
	}
	if err == nil {
		t.Fatal("sanitize of an image that writes through a symlink succeeded")
	}
}

type fileState struct {
	content string
	mode    fs.FileMode
	kind    string
	// link is the path a hard link shares its content with.
	link string
}

// readTree reads an image (directory or tar) into path -> state, through
// imagefs, so that the test compares what any reader of the copy sees.
// A hard link has its target's content, and names the target.
func readTree(t *testing.T, path string) map[string]fileState {
	out := map[string]fileState{}
	img := open(t, path)
	err := img.Walk(func(e *imagefs.Entry) error {
		st := fileState{mode: fs.FileMode(e.Mode), kind: e.Type.String(), link: e.Link}
		switch {
		case e.Link != "":
			st.content = out[e.Link].content
		case e.Type == imagefs.File:
			rc, err := e.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			if len(b) > 4096 {
				sum := sha256.Sum256(b)
				st.content = "sha256:" + hex.EncodeToString(sum[:])
			} else {
				st.content = string(b)
			}
		case e.Type == imagefs.Symlink:
			st.content = e.Target
		}
		out[e.Path] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// appendTar appends a regular file entry name to the tar at tarPath.
func appendTar(t *testing.T, tarPath, name, content string) {
	dir := t.TempDir()
	full := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-rf", tarPath, "-C", dir, name).CombinedOutput(); err != nil {
		t.Fatalf("tar -r: %v: %s", err, out)
	}
}

var _ = testdeps.Program
