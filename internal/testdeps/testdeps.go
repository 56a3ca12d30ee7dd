// Package testdeps lets tests that need a program from outside Go (qemu-img,
// debootstrap, libvirtd, PostgreSQL) say so in one line. Under a plain
// `go test` such a test is skipped when the program is missing; under
// scripts/test, which installs every program and sets VGUARD_REQUIRE_DEPS=1,
// a missing program fails the test instead, so CI can never pass by skipping.
package testdeps

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireEnv is the variable scripts/test sets to turn skips into failures.
const RequireEnv = "VGUARD_REQUIRE_DEPS"

// sbinDirs are searched as well as PATH, since Debian puts mkfs.ext4,
// sfdisk and libvirtd in sbin directories that a non-root PATH may lack.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// Look returns the path of program, searching PATH and the sbin directories.
func Look(program string) (string, bool) {
	if p, err := exec.LookPath(program); err == nil {
		return p, true
	}
	for _, dir := range sbinDirs {
		p := filepath.Join(dir, program)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// Program returns the path of program, or skips the test (fails it when
// VGUARD_REQUIRE_DEPS is set) if it is not installed.
func Program(t testing.TB, program string) string {
	t.Helper()
	p, ok := Look(program)
	if !ok {
		Missing(t, program+" is not installed (./scripts/deps installs it)")
	}
	return p
}

// Missing skips the test with reason, or fails it when VGUARD_REQUIRE_DEPS
// is set. Use it for needs other than a program on PATH.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s (required: %s is set)", reason, RequireEnv)
	}
	t.Skip(reason)
}
