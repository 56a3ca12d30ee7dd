package identity

// SysprepOp is one operation of virt-sysprep (`virt-sysprep
// --list-operations`, guestfs-tools 1.5x) and what vguard does of it.
type SysprepOp struct {
	Name string
	// Default: virt-sysprep runs it unless told otherwise.
	Default bool
	// Covered names the vguard rule(s) doing the same, or is empty.
	Covered string
	// Note says why an operation is left out, or how vguard differs.
	Note string
}

// SysprepOps lists every virt-sysprep operation, for docs/identity.md.
func SysprepOps() []SysprepOp { return sysprepOps }

var sysprepOps = []SysprepOp{
	{"abrt-data", true, "", "crash reports, not identity; left to log hygiene"},
	{"backup-files", true, "", "editor backups (*~, *.bak) are not identity; secrets in them are found by the secret scan"},
	{"bash-history", true, "", "shell histories are scanned for secrets (passwords on the command line) and sanitized as secrets, not deleted wholesale"},
	{"blkid-tab", true, "blkid-cache", ""},
	{"ca-certificates", false, "", "not identity"},
	{"crash-data", true, "", "kdump data, not identity"},
	{"cron-spool", true, "", "user cron and at jobs are configuration, not identity; they are scanned for secrets"},
	{"customize", true, "", "customization, not reset"},
	{"dhcp-client-state", true, "dhcp-lease", ""},
	{"dhcp-server-state", true, "dhcp-server-lease", ""},
	{"dovecot-data", true, "", "mail server data, not identity"},
	{"firewall-rules", false, "", "not identity"},
	{"flag-reconfiguration", false, "", "a first-boot flag, not identity"},
	{"fs-uuids", false, "", "filesystem UUIDs live in the superblock, not in files; vguard reads images and writes a file tree, where the new filesystem gets new UUIDs"},
	{"ipa-client", true, "kerberos-host-keytab", "the host keytab; IPA's own state (/etc/ipa) is reported by neither"},
	{"kerberos-data", false, "", "Kerberos configuration; keytabs are also found by the secret scan"},
	{"kerberos-hostkeytab", true, "kerberos-host-keytab", ""},
	{"logfiles", true, "", "logs are not identity (drift ignores /var/log); left alone"},
	{"lvm-system-devices", true, "lvm-system-devices", ""},
	{"lvm-uuids", true, "", "LVM PV and VG UUIDs are on-disk metadata, not files; as for fs-uuids"},
	{"machine-id", true, "machine-id, dbus-machine-id", "vguard empties /etc/machine-id rather than deleting it, as systemd expects of a sealed image"},
	{"mail-spool", true, "", "mail, not identity"},
	{"net-hostname", true, "ifcfg-mac-pin", "HOSTNAME= in ifcfg files"},
	{"net-hwaddr", true, "ifcfg-mac-pin, networkmanager-mac-pin, netplan-mac-pin, ifupdown-mac-pin", "vguard also covers NetworkManager, netplan and ifupdown pins"},
	{"net-nm-conn-files", true, "networkmanager-mac-pin", "vguard keeps the profiles and removes their MAC and UUID lines, so static configuration survives"},
	{"pacct-log", true, "login-records", ""},
	{"package-manager-cache", true, "", "caches, not identity (drift ignores /var/cache)"},
	{"pam-data", true, "login-records", ""},
	{"passwd-backups", true, "", "/etc/shadow- holds password hashes: found by the secret scan (shadow rule), not as identity"},
	{"puppet-data-log", true, "puppet-agent-state", ""},
	{"rh-subscription-manager", true, "machine-uuid", ""},
	{"rhn-systemid", true, "machine-uuid", ""},
	{"rpm-db", true, "", "rpm's lock files, not identity"},
	{"samba-db-log", true, "", "Samba's databases; a joined machine's secrets.tdb is not read"},
	{"script", true, "", "runs scripts, not reset"},
	{"smolt-uuid", true, "machine-uuid", ""},
	{"ssh-hostkeys", true, "ssh-host-key", ""},
	{"ssh-userdir", true, "", "users' ~/.ssh: private keys in it are found by the secret scan; authorized_keys is configuration"},
	{"sssd-db-log", true, "sssd-cache", ""},
	{"tmp-files", true, "", "temporary files are not identity (drift ignores /tmp and /var/tmp)"},
	{"udev-persistent-net", true, "udev-persistent-net", ""},
	{"user-account", false, "", "accounts are configuration"},
	{"utmp", true, "login-records", ""},
	{"yum-uuid", true, "machine-uuid", ""},
}
