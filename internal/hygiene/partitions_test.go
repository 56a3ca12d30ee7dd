package hygiene

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/testdeps"
	"github.com/vguard-dev/vguard/internal/tree"
)

// buildGPTDisk writes a GPT disk with one 40 MiB ext4 filesystem per root,
// in partitions 1, 2, ...: the layout of a cloud image with a root and a
// /boot filesystem (Ubuntu 24.04 has ext4 on partitions 1 and 16).
func buildGPTDisk(t *testing.T, file string, roots ...string) {
	t.Helper()
	sfdisk := testdeps.Program(t, "sfdisk")
	mke2fs := testdeps.Program(t, "mke2fs")
	const part = 40 << 20
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(roots))*(part+1<<20) + 4<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	script := "label: gpt\n"
	for range roots {
		script += fmt.Sprintf("size=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n", part/512)
	}
	cmd := exec.Command(sfdisk, "--quiet", file)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out, err := exec.Command(sfdisk, "--dump", file).Output()
	if err != nil {
		t.Fatalf("sfdisk --dump: %v", err)
	}
	var starts []int64
	for _, line := range strings.Split(string(out), "\n") {
		if _, rest, ok := strings.Cut(line, "start="); ok {
			var s int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &s)
			starts = append(starts, s*512)
		}
	}
	if len(starts) != len(roots) {
		t.Fatalf("sfdisk made %d partitions, want %d:\n%s", len(starts), len(roots), out)
	}
	for i, r := range roots {
		run(t, mke2fs, "-q", "-F", "-t", "ext4", "-d", r, "-E", fmt.Sprintf("offset=%d", starts[i]), file, fmt.Sprintf("%dk", part>>10))
	}
}

// twoPartitionDisk builds the HR server (plantings) on partition 1 and a
// /boot on partition 2, and returns the disk's path.
func twoPartitionDisk(t *testing.T, ps []planted) string {
	work := t.TempDir()
	root, boot := filepath.Join(work, "root"), filepath.Join(work, "boot")
	plant(t, root, ps)
	plant(t, boot, []planted{{path: "/vmlinuz", content: "kernel\n", mode: 0o644}})
	disk := filepath.Join(work, "disk.img")
	buildGPTDisk(t, disk, root, boot)
	return disk
}

// TestTwoPartitions: on a disk with two ext4 filesystems every path is
// under /partN, and identity is found and sealed in each as at the root.
func TestTwoPartitions(t *testing.T) {
	ps := plantings(t)
	disk := twoPartitionDisk(t, ps)
	s := newScanner(t)
	if got, want := found(t, s, disk), want(ps, "/part1"); !slices.Equal(got, want) {
		t.Fatalf("scan found\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	for _, out := range []string{"copy", "copy.tar"} {
		t.Run(out, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), out)
			rep, err := s.Sanitize(open(t, disk), disk, dst, SanitizeOptions{})
			if err != nil {
				t.Fatalf("Sanitize: %v (rescan %+v)", err, rep.Rescan)
			}
			acts := map[string]string{}
			for _, a := range rep.Actions {
				acts[a.Path] = a.Action
			}
			for p, a := range map[string]string{
				"/part1/etc/machine-id": "empty", "/part1/etc/hostname": "reset", "/part1/etc/ssh/ssh_host_rsa_key": "remove",
				"/part1/etc/ssh/ssh_host_rsa_key.pub": "remove", "/part1/var/lib/systemd/random-seed": "remove",
				"/part1/etc/NetworkManager/system-connections/eth0.nmconnection": "rewrite",
				"/part1/opt/hr/config.yaml":                                      "redact",
			} {
				if acts[p] != a {
					t.Errorf("%s: action %q, want %q", p, acts[p], a)
				}
			}
			files := readTree(t, dst)
			if c, ok := files["/part1/etc/machine-id"]; !ok || c.content != "" {
				t.Errorf("machine-id in the copy: %+v", c)
			}
			if c := files["/part1/etc/hostname"]; c.content != "localhost\n" {
				t.Errorf("hostname in the copy: %q", c.content)
			}
			for _, p := range []string{"/part1/etc/ssh/ssh_host_rsa_key", "/part1/etc/ssh/ssh_host_rsa_key.pub", "/part1/var/lib/dhcp/dhclient.eth0.leases"} {
				if _, ok := files[p]; ok {
					t.Errorf("%s is still in the copy", p)
				}
			}
			if c := files["/part2/vmlinuz"]; c.content != "kernel\n" {
				t.Errorf("/part2/vmlinuz in the copy: %+v", c)
			}
			// The copy scans clean on its own too.
			if got := found(t, s, dst); len(got) != 0 {
				t.Errorf("the copy still holds:\n  %s", strings.Join(got, "\n  "))
			}
		})
	}
}

// TestTwoPartitionsDrift: drift between two disks with several
// filesystems ignores the default list (cli.md) in each filesystem, and
// still sees a change outside it.
func TestTwoPartitionsDrift(t *testing.T) {
	base := plantings(t)
	other := plantings(t) // a new host key
	for i := range other {
		switch other[i].path {
		case "/etc/machine-id":
			other[i].content = "0123456789abcdef0123456789abcdef\n"
		case "/var/lib/systemd/random-seed":
			other[i].content = "\x01\x02\x03"
		case "/var/lib/dhcp/dhclient.eth0.leases":
			other[i].content = "lease {}\n"
		case "/opt/hr/README":
			other[i].content = "Changed.\n"
		}
	}
	base = append(base, planted{path: "/var/log/syslog", content: "boot\n", mode: 0o640},
		planted{path: "/root/.bash_history", content: "", mode: 0o600})
	other = append(other, planted{path: "/var/log/syslog", content: "boot\nlogin\n", mode: 0o640},
		planted{path: "/root/.bash_history", content: "ls\n", mode: 0o600})
	manifestOf := func(ps []planted) *manifest.Manifest {
		m, _, err := tree.Manifest(open(t, twoPartitionDisk(t, ps)), tree.Options{NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	d := manifest.Diff(manifestOf(base), manifestOf(other))
	var got []string
	for _, p := range d.Added {
		got = append(got, "added "+p)
	}
	for _, p := range d.Removed {
		got = append(got, "removed "+p)
	}
	for _, m := range d.Modified {
		got = append(got, "modified "+m.Path)
	}
	if want := []string{"modified /part1/opt/hr/README"}; !slices.Equal(got, want) {
		t.Fatalf("drift:\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
