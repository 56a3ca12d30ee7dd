package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"strings"
	"testing"
)

// fingerprintsOf scans content at path and returns the fingerprint of each
// finding of rule.
func fingerprintsOf(t *testing.T, s *Scanner, path, content, rule string) []string {
	t.Helper()
	var out []string
	for _, f := range scanString(t, s, path, content) {
		if f.RuleID == rule {
			out = append(out, f.Fingerprint)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no %s finding", path, rule)
	}
	return out
}

// TestFingerprintKeyed: a fingerprint is the HMAC-SHA256 of the value under
// the scanner's key, never the bare SHA-256 anyone can look a weak
// password up by; one key gives one secret one fingerprint across files and
// scanners, and scanners without a key share none.
func TestFingerprintKeyed(t *testing.T) {
	const value = "Summer2024!"
	content := "DB_PASSWORD=" + value + "\n"
	key := []byte(strings.Repeat("k", 32))
	newScanner := func(key []byte) *Scanner {
		t.Helper()
		s, err := NewScannerWithKey(Builtin(), key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newScanner(key), newScanner(key)
	fa := fingerprintsOf(t, a, "/srv/a/.env", content, "password-assignment")[0]
	fb := fingerprintsOf(t, b, "/srv/b/.env", content, "password-assignment")[0]
	if fa != fb {
		t.Errorf("one key, one value: fingerprints %s and %s", fa, fb)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	if want := "sha256:" + hex.EncodeToString(m.Sum(nil)); fa != want {
		t.Errorf("fingerprint %s, want the HMAC-SHA256 %s", fa, want)
	}
	bare := sha256.Sum256([]byte(value))
	if strings.Contains(fa, hex.EncodeToString(bare[:])) {
		t.Errorf("the fingerprint is the bare SHA-256 of the value")
	}

	// Without a key: one scanner still matches a secret with itself, two
	// scanners do not match each other.
	u, v := newScanner(nil), newScanner(nil)
	fu1 := fingerprintsOf(t, u, "/srv/a/.env", content, "password-assignment")[0]
	fu2 := fingerprintsOf(t, u, "/srv/c/.env", content, "password-assignment")[0]
	fv := fingerprintsOf(t, v, "/srv/a/.env", content, "password-assignment")[0]
	if fu1 != fu2 {
		t.Errorf("one scanner, one value: fingerprints %s and %s", fu1, fu2)
	}
	if fu1 == fv || fu1 == fa {
		t.Errorf("scanners with different keys gave one fingerprint %s", fu1)
	}

	// A whole-file secret is keyed the same way.
	kt := string(keytab(rand.New(rand.NewSource(1))))
	if got, want := fingerprintsOf(t, a, "/etc/krb5.keytab", kt, "kerberos-keytab")[0], a.fingerprint([]byte(kt)); got != want {
		t.Errorf("keytab fingerprint %s, want %s", got, want)
	}
}

func TestFingerprintShortKey(t *testing.T) {
	_, err := NewScannerWithKey(Builtin(), []byte("short"))
	if err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Fatalf("a 5-byte key: %v", err)
	}
}
