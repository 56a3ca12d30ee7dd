// Package libvirttest starts a real libvirtd for tests: a private daemon
// on a socket in the test's temporary directory, with no TCP listener and
// no hypervisor driver modules loaded, so that it starts in milliseconds
// and serves the built-in test driver (test:///default, or test:///FILE
// with a custom estate) through libvirt's real RPC protocol. The daemon is
// killed when the test ends.
package libvirttest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// Daemon is a running libvirtd.
type Daemon struct {
	// Socket is the read-write unix socket.
	Socket string
	// Log is the daemon's stderr, for failure messages.
	Log string
	// Pid is the daemon's process ID (a test may stop it with SIGSTOP to
	// play a host that stopped answering).
	Pid int
}

// URI returns a go-libvirt URI that reaches this daemon and opens the test
// driver with config (an absolute path of a test-driver XML file, or
// "default").
func (d *Daemon) URI(config string) string {
	if config == "default" {
		return "test+unix:///default?socket=" + d.Socket
	}
	return "test+unix://" + config + "?socket=" + d.Socket
}

// Start starts libvirtd for t. Without libvirtd it skips t (fails it under
// scripts/test); libvirtd needs root for its default directories, so it
// skips for other users the same way.
func Start(t testing.TB) *Daemon {
	t.Helper()
	bin := testdeps.Program(t, "libvirtd")
	if os.Geteuid() != 0 {
		testdeps.Missing(t, "libvirtd tests run as root (the daemon's run directories are root's)")
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "vg-lv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sockDir := filepath.Join(dir, "sock")
	drivers := filepath.Join(dir, "drivers")
	for _, d := range []string{sockDir, drivers} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "libvirtd.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`unix_sock_dir = %q
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tcp = 0
listen_tls = 0
log_outputs = "3:stderr"
`, sockDir)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "libvirtd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-f", conf, "-p", filepath.Join(dir, "libvirtd.pid"))
	// An empty driver directory: the qemu, network and storage drivers
	// would probe the host (and the qemu one needs the libvirt-qemu user);
	// the test driver is built into libvirt itself.
	cmd.Env = append(os.Environ(), "LIBVIRT_DRIVER_DIR="+drivers)
	cmd.Stdout, cmd.Stderr = logf, logf
	d := &Daemon{Socket: filepath.Join(sockDir, "libvirt-sock"), Log: logPath}
	d.start(t, cmd, 10*time.Second)
	return d
}

// start runs cmd (libvirtd, or a shell that execs it) until the test ends,
// and returns once the daemon accepts connections on d.Socket: its socket
// file exists once bound, a moment before libvirtd listens.
func (d *Daemon) start(t testing.TB, cmd *exec.Cmd, wait time.Duration) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting libvirtd: %v", err)
	}
	d.Pid = cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		// A shell execs libvirtd, so this is the daemon. Guests outlive
		// it: tests destroy theirs first.
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(wait)
	for {
		if conn, err := net.Dial("unix", d.Socket); err == nil {
			conn.Close()
			return
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(d.Log)
			t.Fatalf("libvirtd exited early (%v): %s", err, strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd did not listen on its socket within %s", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
