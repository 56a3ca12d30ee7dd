package testdeps

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// DebianSuite and DebianMirror say which Debian root filesystem DebianRoot
// builds: the machine's own release, from the mirror its apt uses.
const (
	DebianSuite  = "bookworm"
	DebianMirror = "http://deb.debian.org/debian"
)

// DebianRoot returns the path of a real Debian root filesystem
// (debootstrap --variant=minbase), built once and cached under the user's
// cache directory (about 25 s and 210 MB the first time), so that image
// readers and secret rules are tested on a real system rather than on a
// handful of planted files. Tests must treat the tree as read-only.
//
// Several test binaries may ask at once (go test runs packages in
// parallel); a lock file makes one build it while the others wait.
func DebianRoot(t testing.TB) string {
	t.Helper()
	debootstrap := Program(t, "debootstrap")
	if os.Geteuid() != 0 {
		Missing(t, "debootstrap needs root to build the Debian root filesystem")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	base := filepath.Join(cache, "vguard-test")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "debian-minbase-"+DebianSuite)
	lock, err := os.OpenFile(root+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	// The marker, beside the tree rather than in it, is written last, so an
	// interrupted build is never taken for a finished one.
	marker := root + ".complete"
	if _, err := os.Stat(marker); err == nil {
		return root
	}
	if err := buildDebianRoot(debootstrap, root); err != nil {
		t.Fatalf("building the Debian root filesystem: %v", err)
	}
	return root
}

func buildDebianRoot(debootstrap, root string) error {
	tmp := root + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	cmd := exec.Command(debootstrap, "--variant=minbase", DebianSuite, tmp, DebianMirror)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return fmt.Errorf("%s: %w\n%s", cmd, err, out)
	}
	// debootstrap leaves its own log and apt's downloaded packages; neither
	// is part of the system a VM would run, and the packages double the size.
	os.RemoveAll(filepath.Join(tmp, "debootstrap"))
	if files, _ := filepath.Glob(filepath.Join(tmp, "var/cache/apt/archives/*.deb")); len(files) > 0 {
		for _, f := range files {
			os.Remove(f)
		}
	}
	if err := os.Rename(tmp, root); err != nil {
		return err
	}
	return os.WriteFile(root+".complete", nil, 0o644)
}
