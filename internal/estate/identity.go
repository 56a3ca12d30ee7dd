package estate

import "strings"

// IdentityKind is one kind of identity value that a clone copies unless it
// is sanitized.
type IdentityKind = uint8

// The identity kinds, in the order reports name them.
const (
	IdentityUUID IdentityKind = iota
	IdentityMachineID
	IdentityHostname
	IdentitySSHHostKey
	IdentityMAC
	IdentityKinds
)

// IdentityValues calls fn with each known identity value of vm, normalized
// so that two spellings of one value compare equal: UUIDs and machine ids by
// their hex digits, hostnames as DNS compares them, MACs as lowercase
// colon-separated octets. Empty values are unknown and skipped. A value may
// come more than once (one MAC on two NICs).
func IdentityValues(vm *VM, fn func(kind IdentityKind, value string)) {
	add := func(kind IdentityKind, v string) {
		if v != "" {
			fn(kind, v)
		}
	}
	id := &vm.Identity
	add(IdentityUUID, normHex32(id.UUID, true))
	add(IdentityMachineID, normHex32(id.MachineID, false))
	add(IdentityHostname, normHostname(id.Hostname))
	for _, k := range id.SSHHostKeys {
		add(IdentitySSHHostKey, strings.TrimSpace(k))
	}
	for _, nic := range vm.NICs {
		add(IdentityMAC, normMAC(nic.MAC))
	}
}

// normHex32 normalizes a UUID or machine id: when it holds 32 hex digits
// (with any dashes, spaces or braces), those digits in lowercase, so that
// "{4C4C4544-...}" and "4c4c4544..." are one value, grouped 8-4-4-4-12 when
// dashed; otherwise the trimmed, lowercased text.
func normHex32(s string, dashed bool) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == '-' || c == ' ' || c == '{' || c == '}':
			continue
		default:
			return strings.ToLower(s)
		}
		if n == len(b) {
			return strings.ToLower(s)
		}
		b[n] = c
		n++
	}
	if n != len(b) {
		return strings.ToLower(s)
	}
	if !dashed {
		if string(b[:]) == s {
			return s // already canonical: no new string
		}
		return string(b[:])
	}
	var out [36]byte
	copy(out[:8], b[:8])
	copy(out[9:13], b[8:12])
	copy(out[14:18], b[12:16])
	copy(out[19:23], b[16:20])
	copy(out[24:], b[20:])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	if string(out[:]) == s {
		return s
	}
	return string(out[:])
}

// normHostname compares hostnames as DNS does: case-insensitively and with
// or without the root's trailing dot.
func normHostname(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// normMAC writes a MAC as lowercase colon-separated octets, whether it was
// given as 52-54-00-AB-CD-EF, 52:54:00:ab:cd:ef or 5254.00ab.cdef; text that
// is not 12 hex digits is only lowercased, with '-' made ':'.
func normMAC(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	const hex = "0123456789abcdef"
	var digits [12]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ':' || c == '-' || c == '.':
			continue
		default:
			return strings.ReplaceAll(strings.ToLower(s), "-", ":")
		}
		if n == len(digits) {
			return strings.ReplaceAll(strings.ToLower(s), "-", ":")
		}
		digits[n] = hex[d]
		n++
	}
	if n != len(digits) {
		return strings.ReplaceAll(strings.ToLower(s), "-", ":")
	}
	var out [17]byte
	for i := 0; i < 6; i++ {
		out[i*3], out[i*3+1] = digits[i*2], digits[i*2+1]
		if i < 5 {
			out[i*3+2] = ':'
		}
	}
	if string(out[:]) == s {
		return s // already canonical: no new string
	}
	return string(out[:])
}

// NormalizeMAC writes a MAC as lowercase colon-separated octets, so that
// 52-54-00-AB-CD-EF and 52:54:00:ab:cd:ef compare equal.
func NormalizeMAC(s string) string { return normMAC(s) }
