// Package token makes and checks vguard serve's API bearer tokens and
// defines the roles they carry. A token is shown once, when it is created;
// the store keeps only its SHA-256 (a token is 256 random bits, so a plain
// hash cannot be reversed by guessing, and checking costs one hash).
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what a token may do. Each role may do what the ones below it may.
type Role int

// The roles, weakest first.
const (
	None     Role = iota // no token: only /healthz
	Viewer               // read estate, findings, audit, reports
	Operator             // also judge changes and upload scan reports
	Admin                // also replace estate and policy, manage tokens
)

var roleNames = [...]string{None: "none", Viewer: "viewer", Operator: "operator", Admin: "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	for r := Viewer; r <= Admin; r++ {
		if roleNames[r] == s {
			return r, nil
		}
	}
	return None, fmt.Errorf("unknown role %q: want viewer, operator or admin", s)
}

// MaxName is the longest token name, in bytes.
const MaxName = 200

// CheckName checks a token's name (who or what holds it): not blank, at
// most MaxName bytes of UTF-8, no control characters. The name is shown in
// listings and logs and is the actor of the holder's audit records, where
// PostgreSQL cannot store a NUL.
func CheckName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("a token needs a name (who or what holds it)")
	case len(name) > MaxName:
		return fmt.Errorf("a token's name is at most %d bytes", MaxName)
	case !utf8.ValidString(name):
		return errors.New("a token's name must be UTF-8")
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return fmt.Errorf("control character %U in a token's name", r)
	}
	return nil
}

// prefix marks vguard tokens, so that secret scanners can find leaked ones.
const prefix = "vgt_"

// New returns a new token's secret (what the client sends), its public ID
// and the hash to store.
func New() (secret, id, hash string, err error) {
	var b [36]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", "", fmt.Errorf("token: %w", err)
	}
	id = hex.EncodeToString(b[:4])
	secret = prefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[4:])
	return secret, id, Hash(secret), nil
}

// Hash returns the stored form of secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Redact returns secret with all but its public part hidden, for logs.
func Redact(secret string) string {
	if strings.HasPrefix(secret, prefix) && len(secret) > len(prefix)+9 {
		return secret[:len(prefix)+9] + "…"
	}
	return "…"
}
