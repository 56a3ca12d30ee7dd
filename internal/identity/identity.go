// Package identity knows the clone-identity material of a Linux system: the
// files that make one machine itself (machine ID, SSH host keys, MAC pins,
// DHCP leases, hostname, random seed, cloud-init instance state, and the
// other state that virt-sysprep resets), which every copy of an image
// carries and every clone would then share. It finds that material in a
// file tree and says how a sealed template resets it; it reads and writes
// no images itself (internal/imagefs reads them, the sanitizer writes).
//
// The catalogue is declared once (Rules) and drives detection, the
// sanitizer's actions and the generated docs/identity.md, which also lists
// the virt-sysprep operations and which of them vguard covers.
package identity

import (
	"bytes"
	"path"
	"strings"

	"github.com/vguard-dev/vguard/internal/fspath"
)

// Action is what sanitizing does to a file holding identity material.
type Action uint8

const (
	// Empty truncates the file to zero bytes but keeps it: systemd takes
	// an empty /etc/machine-id as "generate one at first boot", while a
	// missing one makes some tools fail.
	Empty Action = iota + 1
	// Remove deletes the file; the system makes a new one when it needs it.
	Remove
	// Rewrite keeps the file with the identity lines taken out (MAC pins
	// in network configuration), so that the configuration still works.
	Rewrite
	// Reset replaces the content with a neutral value (a hostname of
	// "localhost").
	Reset
)

func (a Action) String() string {
	switch a {
	case Empty:
		return "empty"
	case Remove:
		return "remove"
	case Rewrite:
		return "rewrite"
	case Reset:
		return "reset"
	}
	return "unknown"
}

// Rule declares one kind of identity material.
type Rule struct {
	// ID names the kind in reports (`identity[].kind` of cli.md).
	ID          string
	Description string
	// Sysprep is the virt-sysprep operation that covers the same material.
	Sysprep string
	// Paths are patterns of absolute paths in path.Match syntax; a pattern
	// ending in "/**" matches everything below that directory.
	Paths []string
	// Applies, when set, is asked with the file's content (at most
	// MaxContent bytes): a path alone is not enough (an empty machine-id is
	// already sealed; an ifcfg file without HWADDR pins nothing).
	Applies func(content []byte) bool
	Action  Action
	// Fix gives the new content for Rewrite and Reset.
	Fix func(content []byte) []byte
}

// MaxContent is the most of a file that content rules read: identity files
// are small, and a larger file at such a path is not what the rule means.
const MaxContent = 1 << 20

// NeedsContent reports whether the rule must see the file's content.
func (r *Rule) NeedsContent() bool { return r.Applies != nil || r.Fix != nil }

// Finding is one piece of identity material found in a tree.
type Finding struct {
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	Action string `json:"action"`
}

// Match returns the rule whose paths match p (an absolute path with '/'),
// or nil. Only regular files hold identity material: a machine-id that is a
// symlink to /etc/machine-id, say, carries nothing of its own.
//
// A disk image with several filesystems shows each under /partN (the
// partition's number; internal/imagefs), so /part1/etc/machine-id is the
// machine-id of the filesystem in partition 1: a path that matches no rule
// as it is is matched again without such a first component.
func Match(p string) *Rule {
	if r := match(p); r != nil {
		return r
	}
	if rel, ok := fspath.InPartition(p); ok {
		return match(rel)
	}
	return nil
}

func match(p string) *Rule {
	for _, r := range rules {
		for _, pat := range r.Paths {
			if matchPath(pat, p) {
				return r
			}
		}
	}
	return nil
}

// Check returns the finding for the regular file p with the given content
// (nil when the rule needs none), or false when p holds no identity
// material.
func Check(p string, content []byte) (Finding, bool) {
	r := Match(p)
	if r == nil {
		return Finding{}, false
	}
	if r.Applies != nil && !r.Applies(content) {
		return Finding{}, false
	}
	return Finding{Kind: r.ID, Path: p, Action: r.Action.String()}, true
}

func matchPath(pattern, p string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/**"); ok {
		if !strings.ContainsAny(dir, "*?[") {
			return strings.HasPrefix(p, dir+"/")
		}
		for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
			if ok, _ := path.Match(dir, d); ok {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// Rules returns the catalogue, in the order docs list it.
func Rules() []*Rule { return rules }

// machineIDSet reports whether a machine-id file holds an ID: empty or
// "uninitialized" is how a sealed template leaves it.
func machineIDSet(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return s != "" && s != "uninitialized"
}

// hostnameSet reports whether /etc/hostname names a particular machine.
func hostnameSet(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return s != "" && s != "localhost" && s != "localhost.localdomain"
}

// recorded reports whether a login record file holds any record: the
// packages create them empty (or all zeros, for lastlog's sparse array).
func recorded(b []byte) bool { return bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }

// linesWith returns Applies and Fix for files whose identity is in some of
// their lines: a line matches when, with leading blanks dropped and
// compared without case, it starts with one of the prefixes.
func linesWith(prefixes ...string) (func([]byte) bool, func([]byte) []byte) {
	pinned := func(line []byte) bool {
		l := strings.ToLower(strings.TrimLeft(string(line), " \t"))
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				return true
			}
		}
		return false
	}
	applies := func(b []byte) bool {
		for line := range bytes.Lines(b) {
			if pinned(line) {
				return true
			}
		}
		return false
	}
	fix := func(b []byte) []byte {
		var out bytes.Buffer
		for line := range bytes.Lines(b) {
			if !pinned(line) {
				out.Write(line)
			}
		}
		return out.Bytes()
	}
	return applies, fix
}

var (
	ifcfgApplies, ifcfgFix       = linesWith("hwaddr=", "macaddr=", "uuid=", "hostname=", "dhcp_hostname=")
	nmApplies, nmFix             = linesWith("mac-address=", "cloned-mac-address=", "uuid=")
	ifupdownApplies, ifupdownFix = linesWith("hwaddress ")
)

// rules is the catalogue. Order matters only for docs: no two rules match
// the same path.
var rules = []*Rule{
	{
		ID: "machine-id", Description: "systemd machine ID, the identity of the installation (journal, D-Bus, DHCP DUID)",
		Sysprep: "machine-id", Paths: []string{"/etc/machine-id"},
		Applies: machineIDSet, Action: Empty,
	},
	{
		ID: "dbus-machine-id", Description: "D-Bus machine ID, when it is a file of its own rather than a link to /etc/machine-id",
		Sysprep: "machine-id", Paths: []string{"/var/lib/dbus/machine-id"},
		Applies: machineIDSet, Action: Remove,
	},
	{
		ID: "ssh-host-key", Description: "SSH host keys: every clone would answer as the same server, and one leak impersonates all",
		Sysprep: "ssh-hostkeys", Paths: []string{"/etc/ssh/ssh_host_*key", "/etc/ssh/ssh_host_*key.pub", "/etc/ssh/ssh_host_*key-cert.pub"},
		Action: Remove,
	},
	{
		ID: "udev-persistent-net", Description: "udev rules that pin interface names to the MAC addresses of the original machine",
		Sysprep: "udev-persistent-net", Paths: []string{"/etc/udev/rules.d/70-persistent-net.rules", "/etc/udev/rules.d/75-persistent-net-generator.rules"},
		Action: Remove,
	},
	{
		ID: "ifcfg-mac-pin", Description: "HWADDR/MACADDR, UUID and HOSTNAME pinned in Red Hat ifcfg network scripts",
		Sysprep: "net-hwaddr, net-hostname", Paths: []string{"/etc/sysconfig/network-scripts/ifcfg-*", "/etc/sysconfig/network/ifcfg-*"},
		Applies: ifcfgApplies, Action: Rewrite, Fix: ifcfgFix,
	},
	{
		ID: "networkmanager-mac-pin", Description: "MAC addresses and connection UUIDs pinned in NetworkManager connection profiles",
		Sysprep: "net-nm-conn-files (vguard keeps the profile and drops the pins)", Paths: []string{"/etc/NetworkManager/system-connections/*"},
		Applies: nmApplies, Action: Rewrite, Fix: nmFix,
	},
	{
		ID: "netplan-mac-pin", Description: "macaddress: pins in netplan configuration; a match: left empty goes with its set-name:, so that netplan still reads the file",
		Paths:   []string{"/etc/netplan/*.yaml", "/etc/netplan/*.yml"},
		Applies: netplanApplies, Action: Rewrite, Fix: netplanFix,
	},
	{
		ID: "ifupdown-mac-pin", Description: "hwaddress pins in Debian's /etc/network/interfaces",
		Paths:   []string{"/etc/network/interfaces", "/etc/network/interfaces.d/*"},
		Applies: ifupdownApplies, Action: Rewrite, Fix: ifupdownFix,
	},
	{
		ID: "dhcp-lease", Description: "DHCP client leases: a clone would ask for the original's address",
		Sysprep: "dhcp-client-state",
		Paths: []string{"/var/lib/dhcp/**", "/var/lib/dhclient/**", "/var/lib/dhcpcd/**", "/var/lib/dhcpcd5/**",
			"/var/lib/NetworkManager/*.lease", "/var/lib/NetworkManager/dhclient-*", "/var/lib/NetworkManager/internal-*",
			"/var/lib/wicked/**", "/var/lib/systemd/network/**"},
		Action: Remove,
	},
	{
		ID: "dhcp-server-lease", Description: "DHCP server leases",
		Sysprep: "dhcp-server-state", Paths: []string{"/var/lib/dhcpd/**", "/var/lib/dnsmasq/**"},
		Action: Remove,
	},
	{
		ID: "hostname", Description: "the machine's hostname (a clone would announce itself as the original)",
		Paths: []string{"/etc/hostname"}, Applies: hostnameSet, Action: Reset,
		Fix: func([]byte) []byte { return []byte("localhost\n") },
	},
	{
		ID: "random-seed", Description: "the saved kernel entropy seed: every clone would start from the same random state",
		Paths:  []string{"/var/lib/systemd/random-seed", "/var/lib/urandom/random-seed", "/var/lib/random-seed"},
		Action: Remove,
	},
	{
		ID: "cloud-init-instance", Description: "cloud-init instance state: a clone would not run first-boot configuration (new host keys, hostname, users)",
		Paths:  []string{"/var/lib/cloud/instance", "/var/lib/cloud/instances/**", "/var/lib/cloud/data/**", "/var/lib/cloud/sem/**"},
		Action: Remove,
	},
	{
		ID: "kerberos-host-keytab", Description: "the host's Kerberos keytab: every clone would authenticate as the original host",
		Sysprep: "kerberos-hostkeytab", Paths: []string{"/etc/krb5.keytab"},
		Action: Remove,
	},
	{
		ID: "machine-uuid", Description: "other per-installation UUIDs (yum, smolt, RHN system ID, subscription-manager consumer)",
		Sysprep: "yum-uuid, smolt-uuid, rhn-systemid, rh-subscription-manager",
		Paths: []string{"/var/lib/yum/uuid", "/etc/smolt/uuid", "/etc/smolt/hw-uuid", "/etc/sysconfig/hw-uuid", "/etc/sysconfig/rhn/systemid",
			"/etc/pki/consumer/*.pem", "/etc/pki/entitlement/*.pem"},
		Action: Remove,
	},
	{
		ID: "lvm-system-devices", Description: "LVM's device list, which names the original disks by their IDs",
		Sysprep: "lvm-system-devices", Paths: []string{"/etc/lvm/devices/system.devices"},
		Action: Remove,
	},
	{
		ID: "blkid-cache", Description: "blkid's cache of the original disks' UUIDs",
		Sysprep: "blkid-tab", Paths: []string{"/etc/blkid.tab", "/etc/blkid.tab.old", "/etc/blkid/blkid.tab", "/etc/blkid/blkid.tab.old"},
		Action: Remove,
	},
	{
		ID: "login-records", Description: "login accounting of the original machine (utmp, wtmp, btmp, lastlog, faillog, tallies)",
		Sysprep: "utmp, pam-data, pacct-log",
		Paths: []string{"/var/run/utmp", "/run/utmp", "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog", "/var/log/faillog",
			"/var/log/tallylog", "/var/run/faillock/**", "/var/account/pacct*", "/var/log/account/pacct*"},
		Applies: recorded, Action: Remove,
	},
	{
		ID: "sssd-cache", Description: "SSSD's cached credentials and identity of the original host",
		Sysprep: "sssd-db-log", Paths: []string{"/var/lib/sss/db/**"},
		Action: Remove,
	},
	{
		ID: "puppet-agent-state", Description: "a Puppet agent's certificate and state, which name the original host",
		Sysprep: "puppet-data-log", Paths: []string{"/var/lib/puppet/**", "/etc/puppetlabs/puppet/ssl/**", "/opt/puppetlabs/puppet/cache/**"},
		Action: Remove,
	},
}
