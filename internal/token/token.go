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
	"fmt"
	"strings"
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
