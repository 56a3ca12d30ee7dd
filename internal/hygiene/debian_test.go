package hygiene

import (
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// TestDebianImage is the proof on a real system: a Debian minbase
// root filesystem, with the HR server's identity and credentials planted
// in it, made into an ext4 disk and then a qcow2 image, as a hypervisor
// would hold it. The scan must find every planted item and, in Debian
// itself, only what debootstrap put there that a clone should not carry
// (the build host's name in /etc/hostname). The sanitized copy must scan
// clean, and differ from the original in exactly the sanitized paths, its
// hard links included.
func TestDebianImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds disk images of a Debian root filesystem")
	}
	debian := testdeps.DebianRoot(t)
	mke2fs := testdeps.Program(t, "mke2fs")
	qemuImg := testdeps.Program(t, "qemu-img")

	work := t.TempDir()
	root := filepath.Join(work, "root")
	run(t, "cp", "-a", debian, root)
	ps := plantings(t)
	plant(t, root, ps)

	raw := filepath.Join(work, "hr.img")
	var bytes int64
	entries := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		entries++
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			bytes += (fi.Size() + 4095) &^ 4095
		}
		return nil
	})
	size := (bytes*14/10 + int64(entries)*4096 + 32<<20) >> 10
	run(t, mke2fs, "-q", "-F", "-t", "ext4", "-d", root, "-N", fmt.Sprint(entries*2+1024), raw, fmt.Sprintf("%dk", size))
	qcow := filepath.Join(work, "hr.qcow2")
	run(t, qemuImg, "convert", "-O", "qcow2", raw, qcow)

	s := newScanner(t)
	got := found(t, s, qcow)
	want := want(ps, "")
	// What Debian brings of its own: the build host's name, copied by
	// debootstrap into /etc/hostname (replaced by the planted one here)
	// and nothing else. Every other line must be a planted item.
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("unexpected finding in the Debian image: %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("planted item not found: %s", w)
		}
	}

	out := filepath.Join(work, "sealed.tar.zst")
	rep, err := s.Sanitize(open(t, qcow), qcow, out, SanitizeOptions{})
	if err != nil {
		t.Fatalf("Sanitize: %v", err)
	}
	acted := map[string]bool{}
	for _, a := range rep.Actions {
		acted[a.Path] = true
	}
	before, after := readTree(t, qcow), readTree(t, out)
	var diff []string
	for p, st := range before {
		if after[p] != st && !acted[p] {
			diff = append(diff, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diff = append(diff, "added "+p)
		}
	}
	for p := range acted {
		if after[p] == before[p] {
			diff = append(diff, "unchanged though sanitized "+p)
		}
	}
	slices.Sort(diff)
	if len(diff) > 0 {
		t.Fatalf("the sanitized copy differs from the image beyond the sanitized paths:\n  %s", strings.Join(diff, "\n  "))
	}
	if len(before) < 5000 {
		t.Fatalf("the image holds only %d entries; the Debian tree has thousands", len(before))
	}
	// Hard links (perl and perl5.36.0, gunzip and uncompress) are links in
	// the image and stay links in the copy: the comparison above holds
	// each link's target, so here it is enough that there are some.
	var links []string
	for p, st := range after {
		if st.link != "" {
			links = append(links, p+" => "+st.link)
		}
	}
	if len(links) < 2 {
		t.Errorf("the sanitized tar holds %d hard links (%v); Debian minbase has several", len(links), links)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
