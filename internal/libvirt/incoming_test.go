package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIncomingMarker: the marker an allowed "migrate begin" leaves is
// honoured by one "prepare begin" of the same domain within the TTL, and
// by nothing else.
func TestIncomingMarker(t *testing.T) {
	const uuid = "6695eb01-f6a4-8304-79aa-97f2502e1931"
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "run", "vguard", "hook")
	in := Incoming{Dir: dir, Now: func() time.Time { return now }}
	if ok, err := in.Consume(uuid, "app-1"); ok || err != nil {
		t.Fatalf("no state directory yet: %v %v", ok, err)
	}
	if err := in.Record(uuid, "app-1"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, uuid)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("marker: %v, want mode 0600", err)
	}
	now = now.Add(5 * time.Second)
	if ok, err := in.Consume(uuid, "app-1"); !ok || err != nil {
		t.Fatalf("the prepare after the migrate: %v %v", ok, err)
	}
	if ok, _ := in.Consume(uuid, "app-1"); ok {
		t.Error("a marker served a second prepare")
	}

	for name, c := range map[string]struct {
		name  string
		after time.Duration
	}{
		"expired":                              {"app-1", IncomingTTL + time.Second},
		"other domain":                         {"app-2", 0},
		"from the future (clock stepped back)": {"app-1", -time.Minute},
	} {
		if err := in.Record(uuid, "app-1"); err != nil {
			t.Fatal(err)
		}
		now = now.Add(c.after)
		if ok, err := in.Consume(uuid, c.name); ok || err != nil {
			t.Errorf("%s: honoured (%v)", name, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, uuid)); !os.IsNotExist(err) {
			t.Errorf("%s: the marker was not removed", name)
		}
	}

	// A directory others can write is trusted by neither side.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := in.Record(uuid, "app-1"); err == nil || !strings.Contains(err.Error(), "mode 0755; it must be 0700") {
		t.Errorf("record into a 0755 directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, uuid), []byte(`{"domain":"app-1","at":"`+now.Format(time.RFC3339Nano)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Consume(uuid, "app-1"); ok || err == nil {
		t.Errorf("a marker in a 0755 directory was honoured: %v %v", ok, err)
	}
	os.Remove(filepath.Join(dir, uuid))
	os.Chmod(dir, 0o700)

	// A marker that is a symbolic link (to a file someone else wrote) is
	// not read.
	forged := filepath.Join(t.TempDir(), "forged")
	os.WriteFile(forged, []byte(`{"domain":"app-1","at":"`+now.Format(time.RFC3339Nano)+`"}`), 0o600)
	if err := os.Symlink(forged, filepath.Join(dir, uuid)); err != nil {
		t.Fatal(err)
	}
	if ok, err := in.Consume(uuid, "app-1"); ok || err == nil {
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
