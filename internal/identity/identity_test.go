package identity

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/testdeps"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/identity.md from the catalogue")

// cases holds, for every rule, paths and contents that must be found and
// some that must not, and what sanitizing must leave.
var cases = []struct {
	rule    string
	path    string
	content string
	found   bool
	fixed   string // for Rewrite and Reset
}{
	{"machine-id", "/etc/machine-id", "4c4c4544004a3510804bb8c04f384d32\n", true, ""},
	{"machine-id", "/etc/machine-id", "", false, ""},
	{"machine-id", "/etc/machine-id", "uninitialized\n", false, ""},
	{"machine-id", "/etc/machine-id.bak", "4c4c4544004a3510804bb8c04f384d32\n", false, ""},
	{"dbus-machine-id", "/var/lib/dbus/machine-id", "4c4c4544004a3510804bb8c04f384d32\n", true, ""},
	{"ssh-host-key", "/etc/ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", true, ""},
	{"ssh-host-key", "/etc/ssh/ssh_host_rsa_key.pub", "ssh-rsa AAAA root@vm\n", true, ""},
	{"ssh-host-key", "/etc/ssh/sshd_config", "PermitRootLogin no\n", false, ""},
	{"udev-persistent-net", "/etc/udev/rules.d/70-persistent-net.rules", `SUBSYSTEM=="net", ATTR{address}=="52:54:00:12:34:56", NAME="eth0"` + "\n", true, ""},
	{"ifcfg-mac-pin", "/etc/sysconfig/network-scripts/ifcfg-eth0", "DEVICE=eth0\nHWADDR=52:54:00:12:34:56\nUUID=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03\nBOOTPROTO=dhcp\n", true, "DEVICE=eth0\nBOOTPROTO=dhcp\n"},
	{"ifcfg-mac-pin", "/etc/sysconfig/network-scripts/ifcfg-eth0", "DEVICE=eth0\nBOOTPROTO=dhcp\n", false, ""},
	{"networkmanager-mac-pin", "/etc/NetworkManager/system-connections/Wired.nmconnection", "[connection]\nid=Wired\nuuid=8d7b0a33-f7b6-4e4a-9e4c-0a2a3b1f6c11\ntype=ethernet\n[ethernet]\nmac-address=52:54:00:12:34:56\n[ipv4]\nmethod=auto\n", true, "[connection]\nid=Wired\ntype=ethernet\n[ethernet]\n[ipv4]\nmethod=auto\n"},
	{"netplan-mac-pin", "/etc/netplan/50-cloud-init.yaml", cloudInitNetplan, true, cloudInitHeader + "network:\n    ethernets:\n        ens3:\n            dhcp4: true\n    version: 2\n"},
	{"netplan-mac-pin", "/etc/netplan/01-netcfg.yaml", "network:\n  version: 2\n  ethernets:\n    lan:\n      match: {macaddress: \"52:54:00:12:34:56\", driver: virtio_net}\n      set-name: lan\n      dhcp4: true\n    eth1:\n      macaddress: 52:54:00:00:00:01 # pinned\n      addresses:\n        - 10.0.0.2/24\n", true,
		"network:\n  version: 2\n  ethernets:\n    lan:\n      match: {driver: virtio_net}\n      set-name: lan\n      dhcp4: true\n    eth1:\n      addresses:\n        - 10.0.0.2/24\n"},
	{"netplan-mac-pin", "/etc/netplan/01.yaml", "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n", false, ""},
	{"ifupdown-mac-pin", "/etc/network/interfaces", "auto eth0\niface eth0 inet dhcp\n    hwaddress ether 52:54:00:12:34:56\n", true, "auto eth0\niface eth0 inet dhcp\n"},
	{"ifupdown-mac-pin", "/etc/network/interfaces", "auto lo\niface lo inet loopback\n", false, ""},
	{"dhcp-lease", "/var/lib/dhcp/dhclient.eth0.leases", "lease {\n  fixed-address 10.0.0.7;\n}\n", true, ""},
	{"dhcp-lease", "/var/lib/NetworkManager/internal-8d7b0a33-eth0.lease", "ADDRESS=10.0.0.7\n", true, ""},
	{"dhcp-server-lease", "/var/lib/dhcpd/dhcpd.leases", "lease 10.0.0.9 {}\n", true, ""},
	{"hostname", "/etc/hostname", "hr-db-01\n", true, "localhost\n"},
	{"hostname", "/etc/hostname", "localhost\n", false, ""},
	{"random-seed", "/var/lib/systemd/random-seed", "\x01\x02\x03", true, ""},
	{"cloud-init-instance", "/var/lib/cloud/instances/i-0abc/obj.pkl", "x", true, ""},
	{"cloud-init-instance", "/var/lib/cloud/data/instance-id", "i-0abc\n", true, ""},
	{"cloud-init-instance", "/var/lib/cloud/scripts/per-boot/x.sh", "#!/bin/sh\n", false, ""},
	{"kerberos-host-keytab", "/etc/krb5.keytab", "\x05\x02\x00\x00", true, ""},
	{"machine-uuid", "/var/lib/yum/uuid", "9b1d\n", true, ""},
	{"machine-uuid", "/etc/smolt/hw-uuid", "9b1d4c3e-6a1f-4b2d-9e8f-0a1b2c3d4e5f\n", true, ""}, // virt-sysprep's smolt-uuid removes it
	{"lvm-system-devices", "/etc/lvm/devices/system.devices", "IDTYPE=sys_wwid\n", true, ""},
	{"blkid-cache", "/etc/blkid/blkid.tab", "<device/>\n", true, ""},
	{"login-records", "/var/log/wtmp", "\x07\x00\x00\x00pts/0", true, ""},
	{"login-records", "/var/log/lastlog", "\x00\x00\x00\x00", false, ""},
	{"login-records", "/var/log/syslog", "boot\n", false, ""},
	{"sssd-cache", "/var/lib/sss/db/cache_example.com.ldb", "x", true, ""},
	{"puppet-agent-state", "/var/lib/puppet/ssl/certs/host.pem", "x", true, ""},
}

// cloudInitNetplan is /etc/netplan/50-cloud-init.yaml as cloud-init
// writes it for a NIC found by its MAC (Ubuntu cloud images).
const (
	cloudInitHeader = "# This file is generated from information provided by the datasource.  Changes\n" +
		"# to it will not persist across an instance reboot.  To disable cloud-init's\n" +
		"# network configuration capabilities, write a file\n" +
		"# /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg with the following:\n" +
		"# network: {config: disabled}\n"
	cloudInitNetplan = cloudInitHeader + "network:\n    ethernets:\n        ens3:\n            dhcp4: true\n" +
		"            match:\n                macaddress: fa:16:3e:12:34:56\n            set-name: ens3\n    version: 2\n"
)

// TestNetplanStaysValid: the MAC pins leave a netplan file netplan still
// reads: YAML whose interfaces have no macaddress, no match that is not a
// mapping of properties, and no set-name without one.
func TestNetplanStaysValid(t *testing.T) {
	for _, in := range []string{
		cloudInitNetplan,
		"network:\n  version: 2\n  ethernets:\n    enp1s0:\n      match:\n        macaddress: \"52:54:00:4c:5f:a0\"\n      dhcp4: true\n      set-name: \"enp1s0\"\n",
		"network:\n  version: 2\n  ethernets:\n    e0: {match: {macaddress: \"52:54:00:4c:5f:a0\"}, set-name: e0, dhcp4: true}\n  bonds:\n    bond0:\n      interfaces: [e0]\n      macaddress: 52:54:00:4c:5f:a1\n",
	} {
		r := Match("/etc/netplan/50-cloud-init.yaml")
		if !r.Applies([]byte(in)) {
			t.Fatalf("no MAC pin found in\n%s", in)
		}
		out := r.Fix([]byte(in))
		var doc struct {
			Network map[string]any `yaml:"network"`
		}
		if err := yaml.Unmarshal(out, &doc); err != nil {
			t.Fatalf("the rewritten file is not YAML: %v\n%s", err, out)
		}
		for kind, devs := range doc.Network {
			devs, ok := devs.(map[string]any)
			if !ok {
				continue // version: 2
			}
			for name, dev := range devs {
				dev := dev.(map[string]any)
				if _, ok := dev["macaddress"]; ok {
					t.Errorf("%s %s keeps its macaddress:\n%s", kind, name, out)
				}
				match, hasMatch := dev["match"]
				if m, ok := match.(map[string]any); hasMatch && (!ok || len(m) == 0) {
					t.Errorf("%s %s: match is %#v, not a mapping of properties:\n%s", kind, name, match, out)
				} else if ok && m["macaddress"] != nil {
					t.Errorf("%s %s matches a MAC still:\n%s", kind, name, out)
				}
				if _, ok := dev["set-name"]; ok && !hasMatch {
					t.Errorf("%s %s: set-name without match:\n%s", kind, name, out)
				}
			}
		}
		if r.Applies(out) {
			t.Errorf("the rewritten file still pins a MAC:\n%s", out)
		}
	}
}

func TestCases(t *testing.T) {
	tested := map[string]bool{}
	for _, c := range cases {
		t.Run(c.rule+c.path, func(t *testing.T) {
			f, found := Check(c.path, []byte(c.content))
			if found != c.found {
				t.Fatalf("Check(%s) found=%v, want %v", c.path, found, c.found)
			}
			if !found {
				return
			}
			tested[c.rule] = true
			if f.Kind != c.rule || f.Path != c.path {
				t.Fatalf("Check(%s) = %+v, want kind %s", c.path, f, c.rule)
			}
			r := Match(c.path)
			switch r.Action {
			case Rewrite, Reset:
				got := string(r.Fix([]byte(c.content)))
				if got != c.fixed {
					t.Fatalf("Fix(%s) =\n%q\nwant\n%q", c.path, got, c.fixed)
				}
				if _, still := Check(c.path, []byte(got)); still {
					t.Fatalf("Fix(%s) leaves identity behind:\n%s", c.path, got)
				}
			default:
				if c.fixed != "" {
					t.Fatalf("case gives fixed content for a %s rule", r.Action)
				}
			}
		})
	}
	for _, r := range Rules() {
		if !tested[r.ID] {
			t.Errorf("rule %s has no case that finds it", r.ID)
		}
		if (r.Action == Rewrite || r.Action == Reset) != (r.Fix != nil) {
			t.Errorf("rule %s: action %s and Fix disagree", r.ID, r.Action)
		}
	}
}

// TestPartitionPaths: on a disk with several filesystems every path is
// under /partN; identity is found in each filesystem as at the root, and
// only a first component of exactly /part and digits is taken for one.
func TestPartitionPaths(t *testing.T) {
	for p, want := range map[string]string{
		"/part1/etc/machine-id":                   "machine-id",
		"/part16/etc/ssh/ssh_host_ed25519_key":    "ssh-host-key",
		"/part2/var/lib/dhcp/dhclient.eth0.lease": "dhcp-lease",
		"/part1/var/lib/cloud/instances/i-1/x":    "cloud-init-instance",
		"/etc/machine-id":                         "machine-id",
		"/part/etc/machine-id":                    "",
		"/partx1/etc/machine-id":                  "",
		"/part1x/etc/machine-id":                  "",
		"/part1":                                  "",
		"/part1/part2/etc/machine-id":             "",
		"/srv/part1/etc/machine-id":               "",
	} {
		got := ""
		if r := Match(p); r != nil {
			got = r.ID
		}
		if got != want {
			t.Errorf("Match(%s) = %q, want %q", p, got, want)
		}
	}
	if f, ok := Check("/part1/etc/hostname", []byte("hr-db-01\n")); !ok || f.Path != "/part1/etc/hostname" || f.Kind != "hostname" {
		t.Errorf("Check(/part1/etc/hostname) = %+v, %v", f, ok)
	}
}

// TestNoRuleOverlaps: every path belongs to one rule at most, so the
// sanitizer's action for a file is never ambiguous.
func TestNoRuleOverlaps(t *testing.T) {
	for _, c := range cases {
		n := 0
		for _, r := range Rules() {
			for _, p := range r.Paths {
				if matchPath(p, c.path) {
					n++
					break
				}
			}
		}
		if n > 1 {
			t.Errorf("%s matches %d rules", c.path, n)
		}
	}
}

// TestSysprepCoverage: every rule a virt-sysprep operation claims exists,
// and an operation left out says why.
func TestSysprepCoverage(t *testing.T) {
	ids := map[string]bool{}
	for _, r := range Rules() {
		ids[r.ID] = true
	}
	for _, op := range SysprepOps() {
		if op.Covered == "" && op.Note == "" {
			t.Errorf("virt-sysprep %s: neither covered nor explained", op.Name)
		}
		for _, id := range strings.Split(op.Covered, ", ") {
			if id != "" && !ids[id] {
				t.Errorf("virt-sysprep %s names unknown rule %q", op.Name, id)
			}
		}
	}
}

// TestDebianMinbase: the only identity a freshly bootstrapped Debian
// carries is the hostname debootstrap copied from the build host; nothing
// else in a real system may be taken for identity.
func TestDebianMinbase(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Debian root filesystem")
	}
	root := testdeps.DebianRoot(t)
	var found []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		r := Match(rel)
		if r == nil {
			return nil
		}
		var content []byte
		if r.NeedsContent() {
			if content, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		if f, ok := Check(rel, content); ok {
			found = append(found, f.Kind+" "+f.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.ReadFile(filepath.Join(root, "etc/hostname"))
	var want []string
	if hostnameSet(host) {
		want = append(want, "hostname /etc/hostname")
	}
	if !slices.Equal(found, want) {
		t.Fatalf("identity in the Debian minbase tree: %q, want %q", found, want)
	}
}

func TestDocs(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Clone-identity material\n\n")
	b.WriteString("Generated from `internal/identity` by `go test ./internal/identity -update-docs`; do not edit.\n\n")
	b.WriteString("`vguard image scan` reports these files as `identity`; `vguard image sanitize` applies the action.\n")
	b.WriteString("Actions: **empty** truncates the file but keeps it, **remove** deletes it, **rewrite** keeps the file\n")
	b.WriteString("without the identity lines, **reset** writes a neutral value.\n")
	b.WriteString("The paths are those of a filesystem: on a disk with several, where each is shown under `/partN`\n")
	b.WriteString("(N the partition's number), they match in each one (`/part1/etc/machine-id`).\n\n")
	b.WriteString("| kind | what | paths | action |\n|---|---|---|---|\n")
	for _, r := range Rules() {
		cond := ""
		if r.Applies != nil {
			cond = " (only when not already blank)"
		}
		fmt.Fprintf(&b, "| `%s` | %s%s | %s | %s |\n", r.ID, r.Description, cond, "`"+strings.Join(r.Paths, "`, `")+"`", r.Action)
	}
	b.WriteString("\n## virt-sysprep operations\n\n")
	b.WriteString("Every operation of `virt-sysprep --list-operations`, whether virt-sysprep runs it by default, and what vguard does of it.\n\n")
	b.WriteString("| operation | default | vguard | note |\n|---|---|---|---|\n")
	for _, op := range SysprepOps() {
		def, cov := "", "not covered"
		if op.Default {
			def = "yes"
		}
		if op.Covered != "" {
			cov = "`" + strings.Join(strings.Split(op.Covered, ", "), "`, `") + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", op.Name, def, cov, op.Note)
	}
	path := filepath.Join("..", "..", "docs", "identity.md")
	if *updateDocs {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != b.String() {
		t.Fatalf("docs/identity.md is out of date: go test ./internal/identity -update-docs")
	}
}
