package hygiene

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// kubeToken is assembled at run time, like fakeAWS.
func kubeToken() string { return "9Vg8WnOnqQfkplJe" + "kaACSMEscosTsS3DeRo7qYYO" }

// linkedKubeconfig writes a tree whose /root/.kube/config is a hard link
// to /backup/x, which every walk meets first (/backup sorts before /root,
// and mke2fs -d adds the entries of a directory in that order too).
func linkedKubeconfig(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"backup", "root/.kube"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	content := "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: " + kubeToken() + "\n"
	if err := os.WriteFile(filepath.Join(root, "backup/x"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "backup/x"), filepath.Join(root, "root/.kube/config")); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestHardLinkScannedUnderOwnName: a hard link is scanned under its own
// path too, so a rule confined to kubeconfig files finds the token at
// /root/.kube/config although the file's first name is /backup/x; sanitize
// redacts the shared content, so both names read the marker, and the
// re-scan of the copy is clean. For a directory and an ext4 image.
func TestHardLinkScannedUnderOwnName(t *testing.T) {
	root := linkedKubeconfig(t)
	disk := filepath.Join(t.TempDir(), "disk.img")
	run(t, testdeps.Program(t, "mke2fs"), "-q", "-F", "-t", "ext4", "-d", root, disk, "8M")
	s := newScanner(t)
	for name, img := range map[string]string{"dir": root, "ext4": disk} {
		t.Run(name, func(t *testing.T) {
			if tree := readTree(t, img); tree["/root/.kube/config"].link != "/backup/x" {
				t.Fatalf("/root/.kube/config in the image: %+v, want a hard link to /backup/x", tree["/root/.kube/config"])
			}
			if got := found(t, s, img); !slices.Equal(got, []string{"secret kubeconfig-token /root/.kube/config"}) {
				t.Fatalf("scan: %q", got)
			}
			dst := filepath.Join(t.TempDir(), "copy")
			rep, err := s.Sanitize(open(t, img), img, dst, SanitizeOptions{})
			if err != nil {
				t.Fatalf("Sanitize: %v (re-scan %+v)", err, rep.Rescan)
			}
			acts := map[string]string{}
			for _, a := range rep.Actions {
				acts[a.Path] = a.Action + " " + a.Reason
			}
			if acts["/root/.kube/config"] != "redact kubeconfig-token" || acts["/backup/x"] != "redact kubeconfig-token" {
				t.Errorf("actions: %v", acts)
			}
			tree := readTree(t, dst)
			for _, p := range []string{"/backup/x", "/root/.kube/config"} {
				if c := tree[p].content; strings.Contains(c, kubeToken()) || !strings.Contains(c, "token: "+Marker+"\n") {
					t.Errorf("%s in the copy:\n%s", p, c)
				}
			}
			if l := tree["/root/.kube/config"].link; l != "/backup/x" {
				t.Errorf("/root/.kube/config in the copy links to %q, want /backup/x", l)
			}
			if rep.Rescan == nil || len(rep.Rescan.Secrets) > 0 {
				t.Errorf("re-scan: %+v", rep.Rescan)
			}
		})
	}
}

// TestHardLinkFoundOnce: a secret every rule finds whatever the path is
// reported once, under the first name, however many names the file has;
// sanitize redacts it there and keeps the link.
func TestHardLinkFoundOnce(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/a.env"), []byte("AWS_ACCESS_KEY_ID="+fakeAWS()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "etc/a.env"), filepath.Join(root, "etc/b.env")); err != nil {
		t.Fatal(err)
	}
	s := newScanner(t)
	if got := found(t, s, root); !slices.Equal(got, []string{"secret aws-access-key-id /etc/a.env"}) {
		t.Fatalf("scan: %q", got)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	rep, err := s.Sanitize(open(t, root), root, dst, SanitizeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 1 || rep.Actions[0].Path != "/etc/a.env" {
		t.Errorf("actions: %+v", rep.Actions)
	}
	if b := readTree(t, dst)["/etc/b.env"]; b.link != "/etc/a.env" || b.content != "AWS_ACCESS_KEY_ID="+Marker+"\n" {
		t.Errorf("/etc/b.env in the copy: %+v", b)
	}
}

// TestManyLinkNames: a file given many names, a few of them where a
// path-confined rule looks, is reported under each such name (scanned once
// for all of them: one set of rules, one read) and under no other.
func TestManyLinkNames(t *testing.T) {
	root := linkedKubeconfig(t)
	var want []string
	for i := range 40 {
		dir := filepath.Join(root, "home", "u"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+strings.Repeat("0", i/26), ".kube")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(root, "backup/x"), filepath.Join(dir, "config")); err != nil {
			t.Fatal(err)
		}
		want = append(want, "secret kubeconfig-token "+strings.TrimPrefix(filepath.Join(dir, "config"), root))
		// And names where no path-confined rule looks.
		if err := os.Link(filepath.Join(root, "backup/x"), filepath.Join(root, "backup", "copy"+string(rune('a'+i%26))+strings.Repeat("0", i/26))); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, "secret kubeconfig-token /root/.kube/config")
	slices.Sort(want)
	got := found(t, newScanner(t), root)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("scan found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
