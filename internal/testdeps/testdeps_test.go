package testdeps

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLook(t *testing.T) {
	if _, ok := Look("sh"); !ok {
		t.Fatal("Look(sh) found nothing; every Debian machine has /bin/sh")
	}
	if p, ok := Look("vguard-no-such-program"); ok {
		t.Fatalf("Look found a program that does not exist: %s", p)
	}
}

func TestDebianRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Debian root filesystem the first time")
	}
	root := DebianRoot(t)
	for _, p := range []string{"etc/os-release", "usr/bin/dpkg", "etc/passwd"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("the Debian root lacks %s: %v", p, err)
		}
	}
	if again := DebianRoot(t); again != root {
		t.Errorf("second call gave %s, first %s", again, root)
	}
}
