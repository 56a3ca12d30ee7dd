package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Finding is one secret found in one file. It never holds the secret's
// value: only where it is, a redacted form and a fingerprint, so a Finding
// can be printed, logged and serialised as it is.
type Finding struct {
	// RuleID names the rule that found it (aws-access-key-id).
	RuleID string `json:"rule"`
	// Path is the path given to Scan.
	Path string `json:"path"`
	// Line is the 1-based line where the secret's value starts.
	Line int `json:"line"`
	// Offset and Length give the byte span of the value in the file: the
	// bytes a sanitizer overwrites. For a whole-file secret (a keytab) the
	// span is the whole file.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// Redacted shows a few characters of the value at each end for long
	// values, fewer for short ones and none below 8 bytes; never the whole.
	Redacted string `json:"redacted"`
	// Fingerprint is "sha256:" and the hex HMAC-SHA256 of the value under
	// the scanner's key, so the same secret is recognised across files, and
	// across images and runs scanned with one key (NewScannerWithKey),
	// while the fingerprint of a weak password cannot be looked up in a
	// dictionary of hashes.
	Fingerprint string `json:"fingerprint"`
}

// Marker is what a sanitizer writes in place of a secret's value: letters
// and dashes, so the file stays parseable, and saying who put it there. No
// built-in rule reports it (a placeholder word, not a token's shape, not
// base64 of user:password, not a crypt hash), so a sanitized file scans
// clean. TestMarkerScansClean holds the rules to that.
const Marker = "REDACTED-BY-VGUARD"

// Markers for values that their consumer decodes as base64: a Marker
// there would make the tool reject the whole file (kubectl cannot load a
// kubeconfig whose client-key-data is not base64, docker drops a
// config.json whose "auth" is not), so these are base64 of text in the
// shape expected, which holds Marker and which no rule reports.
var (
	// DockerAuthMarker is base64 of "REDACTED-BY-VGUARD:REDACTED-BY-VGUARD",
	// a user:password.
	DockerAuthMarker = base64.StdEncoding.EncodeToString([]byte(Marker + ":" + Marker))
	// KubeKeyMarker is base64 of a PEM private key block holding Marker.
	KubeKeyMarker = base64.StdEncoding.EncodeToString([]byte("-----BEGIN PRIVATE KEY-----\n" + Marker + "\n-----END PRIVATE KEY-----\n"))
)

// MarkerFor returns what a sanitizer writes in place of a value found by
// the rule ruleID: a base64 marker where the value is base64, else Marker.
func MarkerFor(ruleID string) string {
	switch ruleID {
	case "docker-config-auth":
		return DockerAuthMarker
	case "kubeconfig-client-key":
		return KubeKeyMarker
	}
	return Marker
}

// String gives "path:line: rule redacted"; like every other form of a
// Finding it cannot reveal the value, which a Finding does not hold.
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s %s", f.Path, f.Line, f.RuleID, f.Redacted)
}

// maxStars caps the stars in a redacted long value (a private key body),
// which tells nothing more past a point.
const maxStars = 32

// redact hides a value given its first and last (up to) 4 bytes and its
// length: values under 8 bytes become all stars; 8 to 11 show one byte at
// each end, 12 to 15 two, 16 and more four (as "AKIA************MPLE").
// Bytes shown must be printable ASCII, else the value is all stars, so a
// binary secret or a split UTF-8 character is never shown.
func redact(head, tail []byte, n int64) string {
	show := 0
	switch {
	case n >= 16:
		show = 4
	case n >= 12:
		show = 2
	case n >= 8:
		show = 1
	}
	if show > len(head) || show > len(tail) {
		show = 0
	}
	for i := 0; i < show; i++ {
		if !printable(head[i]) || !printable(tail[len(tail)-show+i]) {
			show = 0
			break
		}
	}
	stars := n - int64(2*show)
	if stars > maxStars {
		stars = maxStars
	}
	var b strings.Builder
	b.Write(head[:show])
	b.WriteString(strings.Repeat("*", int(stars)))
	b.Write(tail[len(tail)-show:])
	return b.String()
}

func printable(c byte) bool { return c > ' ' && c < 0x7f }

// redactValue redacts a value held whole.
func redactValue(v []byte) string {
	k := 4
	if len(v) < k {
		k = len(v)
	}
	return redact(v[:k], v[len(v)-k:], int64(len(v)))
}

// fingerprint is "sha256:" and the hex HMAC-SHA256 of a value under the
// scanner's key.
func (s *Scanner) fingerprint(v []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(v)
	return "sha256:" + hex.EncodeToString(m.Sum(nil))
}
