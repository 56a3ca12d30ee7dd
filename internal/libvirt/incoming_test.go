package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIncomingMarker: the marker an allowed "migrate begin" leaves is
// honoured by one "prepare begin" of the same domain, as the migration
// judged it, within the TTL, and by nothing else.
func TestIncomingMarker(t *testing.T) {
	const uuid = "6695eb01-f6a4-8304-79aa-97f2502e1931"
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "run", "vguard", "hook")
	in := Incoming{Dir: dir, Now: func() time.Time { return now }}
	judged, err := DomainDigest(markerDomain("lan", "low"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Consume(uuid, "app-1", judged); ok || err != nil {
		t.Fatalf("no state directory yet: %v %v", ok, err)
	}
	if err := in.Record(uuid, "app-1", judged); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, uuid)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("marker: %v, want mode 0600", err)
	}
	now = now.Add(5 * time.Second)
	if ok, err := in.Consume(uuid, "app-1", judged); !ok || err != nil {
		t.Fatalf("the prepare after the migrate: %v %v", ok, err)
	}
	if ok, _ := in.Consume(uuid, "app-1", judged); ok {
		t.Error("a marker served a second prepare")
	}

	moved, err := DomainDigest(markerDomain("dmz", "low"))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		name   string
		digest string
		after  time.Duration
		why    string
	}{
		// An offline migration has no prepare: the operator's start a
		// little later must not find the marker good.
		"expired":                              {"app-1", judged, 11 * time.Second, "left 11s ago; a migration's prepare follows its migrate within 10s"},
		"other domain":                         {"app-2", judged, 0, `left for domain "app-1"`},
		"from the future (clock stepped back)": {"app-1", judged, -time.Minute, "dated in the future"},
		"redefined since (a NIC moved)":        {"app-1", moved, time.Second, "differ from those its migration was judged on"},
		"no digest":                            {"app-1", "", time.Second, "differ from those its migration was judged on"},
	} {
		if err := in.Record(uuid, "app-1", judged); err != nil {
			t.Fatal(err)
		}
		now = now.Add(c.after)
		if ok, err := in.Consume(uuid, c.name, c.digest); ok || err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: honoured %v (%v), want not honoured: %s", name, ok, err, c.why)
		}
		if _, err := os.Lstat(filepath.Join(dir, uuid)); !os.IsNotExist(err) {
			t.Errorf("%s: the marker was not removed", name)
		}
	}
	// Within the TTL, to its end, the same domain is honoured.
	if err := in.Record(uuid, "app-1", judged); err != nil {
		t.Fatal(err)
	}
	now = now.Add(IncomingTTL)
	if ok, err := in.Consume(uuid, "app-1", judged); !ok || err != nil {
		t.Errorf("a prepare %s after its migrate: %v %v", IncomingTTL, ok, err)
	}

	// A directory others can write is trusted by neither side.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := in.Record(uuid, "app-1", judged); err == nil || !strings.Contains(err.Error(), "mode 0755; it must be 0700") {
		t.Errorf("record into a 0755 directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, uuid), []byte(`{"domain":"app-1","digest":"`+judged+`","at":"`+now.Format(time.RFC3339Nano)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Consume(uuid, "app-1", judged); ok || err == nil {
		t.Errorf("a marker in a 0755 directory was honoured: %v %v", ok, err)
	}
	os.Remove(filepath.Join(dir, uuid))
	os.Chmod(dir, 0o700)

	// A marker that is a symbolic link (to a file someone else wrote) is
	// not read.
	forged := filepath.Join(t.TempDir(), "forged")
	os.WriteFile(forged, []byte(`{"domain":"app-1","digest":"`+judged+`","at":"`+now.Format(time.RFC3339Nano)+`"}`), 0o600)
	if err := os.Symlink(forged, filepath.Join(dir, uuid)); err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Consume(uuid, "app-1", judged); ok || err == nil {
		t.Errorf("a symbolic link was honoured as a marker: %v %v", ok, err)
	}
	if _, err := os.Stat(forged); err != nil {
		t.Errorf("the link's target was touched: %v", err)
	}
}

// TestDomainUUID: the UUID names a file, so only a UUID is one.
func TestDomainUUID(t *testing.T) {
	for xml, want := range map[string]string{
		`<domain><name>a</name><uuid>6695EB01F6A4830479AA97F2502E1931</uuid></domain>`:       "6695eb01-f6a4-8304-79aa-97f2502e1931",
		`<domain><name>a</name><uuid> 6695eb01-f6a4-8304-79aa-97f2502e1931 </uuid></domain>`: "6695eb01-f6a4-8304-79aa-97f2502e1931",
		`<domain><name>a</name></domain>`:                                                    "",
		`<domain><name>a</name><uuid>../../../etc/passwd</uuid></domain>`:                    "",
		`<domain><name>a</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193z</uuid></domain>`:   "",
		`not xml`: "",
	} {
		got, err := DomainUUID(xml)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("DomainUUID(%s) = %q, %v; want %q", xml, got, err, want)
		}
	}
}

// markerDomain is app-1 with its second NIC on network and the given
// security level.
func markerDomain(network, level string) string {
	return `<domain type='kvm'><name>app-1</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e1931</uuid>
<memory unit='KiB'>1048576</memory><vcpu>2</vcpu>
<metadata><vguard:vm xmlns:vguard="https://vguard.dev/xmlns/libvirt/v1" securityLevel="` + level + `" owner="hr">
<vguard:label name="pci" value="true"/></vguard:vm></metadata>
<devices>
<interface type='network'><mac address='52:54:00:aa:00:01'/><source network='lan'/></interface>
<interface type='network'><mac address='52:54:00:00:00:09'/><source network='` + network + `'/></interface>
</devices></domain>`
}

// TestDomainDigest: the digest a marker binds changes with everything the
// hook judges, and with nothing libvirt may write differently between the
// migrate's XML and the prepare's.
func TestDomainDigest(t *testing.T) {
	base := markerDomain("dmz", "low")
	want, err := DomainDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	same := map[string]string{
		"memory in MiB": strings.Replace(base, `<memory unit='KiB'>1048576</memory>`, `<memory unit='MiB'>1024</memory>`, 1),
		"devices and ids libvirt adds": strings.Replace(strings.Replace(base, `<devices>`, `<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><controller type='usb' index='0'/>`, 1),
			`<source network='lan'/>`, `<source network='lan' portid='0f7e5c6b-2a7e-4c8e-9a4e-1c2b3d4e5f60' bridge='virbr0'/><target dev='vnet0'/><alias name='net0'/>`, 1),
		"MAC in upper case": strings.Replace(base, "52:54:00:aa:00:01", "52:54:00:AA:00:01", 1),
	}
	for name, x := range same {
		if got, err := DomainDigest(x); err != nil || got != want {
			t.Errorf("%s: digest %s (%v), want the same as before", name, got, err)
		}
	}
	differ := map[string]string{
		"NIC on another network": markerDomain("lan", "low"),
		"NIC with another MAC":   strings.Replace(base, "52:54:00:00:00:09", "52:54:00:00:00:0a", 1),
		"a NIC added":            strings.Replace(base, `</devices>`, `<interface type='bridge'><mac address='52:54:00:00:00:0b'/><source bridge='br-dmz'/></interface></devices>`, 1),
		"security level":         markerDomain("dmz", "high"),
		"owner":                  strings.Replace(base, `owner="hr"`, `owner="ops"`, 1),
		"label":                  strings.Replace(base, `value="true"`, `value="false"`, 1),
		"vCPUs":                  strings.Replace(base, `<vcpu>2</vcpu>`, `<vcpu>4</vcpu>`, 1),
		"memory":                 strings.Replace(base, `1048576`, `2097152`, 1),
		"a CPU limit":            strings.Replace(base, `<vcpu>2</vcpu>`, `<vcpu>2</vcpu><cputune><quota>50000</quota></cputune>`, 1),
		"name (same UUID)":       strings.Replace(base, `<name>app-1</name>`, `<name>app-2</name>`, 1),
	}
	for name, x := range differ {
		if got, err := DomainDigest(x); err != nil || got == want {
			t.Errorf("%s: digest %s (%v), want another", name, got, err)
		}
	}
	if _, err := DomainDigest("not xml"); err == nil {
		t.Error("a digest of no domain")
	}
}
