package connector

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SafeName returns a platform's name for an object as vguard can write it,
// and whether that differs from the name: each control character (C0, DEL,
// C1) and each byte that is not UTF-8 becomes %XX, a byte at a time (a tab
// %09, U+0085 %C2%85), as vSphere itself writes '/' and '%' in names.
//
// The loader refuses such names (they break terminals, reports and
// database columns, and disguise one name as another), and libvirt and
// vCenter accept them: written as they are, one VM named with a tab would
// keep the whole estate from loading, so that no sync or watch could write
// it again. A connector gives every name it forms through here, and warns
// when it changed one; a name that then collides with another is handled
// like any duplicate.
func SafeName(name string) (string, bool) {
	if !needsEscape(name) {
		return name, false
	}
	var b strings.Builder
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size <= 1 || unicode.IsControl(r) {
			for _, c := range []byte(name[i : i+max(size, 1)]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(name[i : i+size])
		}
		i += max(size, 1)
	}
	return b.String(), true
}

// Escape is SafeName without the flag, for names met again after the
// connector has warned about them once (in later messages, in references).
func Escape(name string) string {
	s, _ := SafeName(name)
	return s
}

// EscapedWarning is the warning a connector gives for a name SafeName
// changed: the platform's name quoted (never the raw control characters,
// which would act on the operator's terminal), the object's id on the
// platform, and the name it is written as.
func EscapedWarning(kind, name, id, safe string) string {
	if id != "" {
		id = " (" + id + ")"
	}
	return fmt.Sprintf("%s %q%s: its name holds control characters or bytes that are not UTF-8; written as %s", kind, name, id, safe)
}

func needsEscape(name string) bool {
	if !utf8.ValidString(name) {
		return true
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
