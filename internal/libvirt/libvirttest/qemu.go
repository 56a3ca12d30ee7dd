package libvirttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

// StartQEMU starts a libvirtd with the real qemu driver, as the system
// daemon sees the machine but in a private mount namespace: its own
// /etc/libvirt (with hook, a qemu.conf that runs guests as root without
// cgroups, virtlogd or a security driver), a passwd file that has the
// libvirt-qemu user the driver insists on, and empty /run, /var/lib,
// /var/cache and /var/log. Nothing outside the test's directory changes.
// hook is the content of /etc/libvirt/hooks/qemu. Guests run under QEMU's
// software emulation. It skips (fails under scripts/test) when libvirtd,
// qemu-system-x86_64 or unshare is missing or not root.
func StartQEMU(t testing.TB, hook string) *Daemon {
	t.Helper()
	bin := testdeps.Program(t, "libvirtd")
	testdeps.Program(t, "qemu-system-x86_64")
	unshare := testdeps.Program(t, "unshare")
	if os.Geteuid() != 0 {
		testdeps.Missing(t, "the qemu-driver libvirtd runs as root")
	}
	drivers, _ := filepath.Glob("/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so")
	if len(drivers) == 0 {
		testdeps.Missing(t, "libvirt's qemu driver is not installed (libvirt-daemon-driver-qemu)")
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		testdeps.Missing(t, fmt.Sprintf("mount namespaces are not available here: %v %s", err, out))
	}
	dir, err := os.MkdirTemp("", "vg-lvq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := func(s ...string) string { return filepath.Join(append([]string{dir}, s...)...) }
	for _, d := range []string{p("etc", "hooks"), p("sock"), p("drivers")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(drivers[0], p("drivers", "libvirt_driver_qemu.so")); err != nil {
		t.Fatal(err)
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		p("etc", "libvirtd.conf"): fmt.Sprintf(`unix_sock_dir = %q
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tcp = 0
listen_tls = 0
log_outputs = "3:stderr"
`, p("sock")),
		p("etc", "qemu.conf"): `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = []
stdio_handler = "file"
`,
		p("etc", "hooks", "qemu"): hook,
		p("passwd"):               string(passwd) + "libvirt-qemu:x:64055:64055:libvirt qemu:/nonexistent:/usr/sbin/nologin\n",
		p("group"):                string(group) + "libvirt-qemu:x:64055:\n",
		p("start.sh"): fmt.Sprintf(`set -e
mount --bind %s /etc/libvirt
mount --bind %s /etc/passwd
mount --bind %s /etc/group
for d in /run /var/lib /var/cache /var/log; do mount -t tmpfs tmpfs $d; done
exec %s -f /etc/libvirt/libvirtd.conf
`, p("etc"), p("passwd"), p("group"), bin),
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat("/etc/libvirt"); err != nil {
		testdeps.Missing(t, "/etc/libvirt does not exist to mount over")
	}
	logPath := p("libvirtd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", p("start.sh"))
	cmd.Env = append(os.Environ(), "LIBVIRT_DRIVER_DIR="+p("drivers"))
	cmd.Stdout, cmd.Stderr = logf, logf
	d := &Daemon{Socket: p("sock", "libvirt-sock"), Log: logPath}
	d.start(t, cmd, 30*time.Second)
	return d
}

// QEMUURI is the URI of the qemu driver of a daemon from StartQEMU.
func (d *Daemon) QEMUURI() string { return "qemu+unix:///system?socket=" + d.Socket }
