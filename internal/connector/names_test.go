package connector

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSafeName: each control character and each byte that is not UTF-8 is
// written %XX, a byte at a time; every other name is left as it is, '%'
// included (vSphere's own escapes, %2f and %25, stay as vCenter gives them).
func TestSafeName(t *testing.T) {
	for name, want := range map[string]string{
		"web-1":          "",
		"web%092":        "",
		"VM Network":     "",
		"a%2fb":          "",
		"日本-db ✓":        "",
		"web\t2":         "web%092",
		"web\u00852":     "web%C2%852",
		"del\x7f":        "del%7F",
		"\x00\x1b[31m":   "%00%1B[31m",
		"caf\xe9":        "caf%E9",
		"\xff\xfe":       "%FF%FE",
		"\xe2\x82":       "%E2%82", // a cut rune
		"a\u200bb\u202e": "",       // format characters: the loader takes them too
	} {
		got, changed := SafeName(name)
		if want == "" {
			want = name
		}
		if got != want || changed != (want != name) {
			t.Errorf("SafeName(%q) = %q, %v; want %q", name, got, changed, want)
		}
		if !utf8.ValidString(got) || strings.ContainsFunc(got, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }) {
			t.Errorf("SafeName(%q) = %q still holds what the loader refuses", name, got)
		}
		if Escape(name) != got {
			t.Errorf("Escape(%q) = %q, SafeName %q", name, Escape(name), got)
		}
	}
}

// TestBuildEscapedNames: a name as SafeName writes it loads, where the
// platform's own name would keep the whole estate from loading; two names
// that meet once escaped are the loader's duplicate, which is why each
// connector renames such a meeting as it does any duplicate.
func TestBuildEscapedNames(t *testing.T) {
	for _, raw := range []string{"web\t2", "web\u00852", "web\x7f2", "web\xff2"} {
		inv := discovered()
		inv.Estate.VMs[1].Name = raw
		if _, err := Build(inv, nil, ""); err == nil {
			t.Errorf("VM %q: the loader took the raw name; this test no longer tests anything", raw)
		}
		inv = discovered()
		inv.Estate.VMs[1].Name = Escape(raw)
		if _, err := Build(inv, nil, ""); err != nil {
			t.Errorf("VM %q written as %q: %v", raw, Escape(raw), err)
		}
	}
	inv := discovered()
	inv.Estate.VMs[0].Name, inv.Estate.VMs[1].Name = "web%092", Escape("web\t2")
	if _, err := Build(inv, nil, ""); err == nil || !strings.Contains(err.Error(), `duplicate vm "web%092"`) {
		t.Errorf("two VMs written web%%092: %v", err)
	}
}

func TestEscapedWarning(t *testing.T) {
	got := EscapedWarning("VM", "web\t2", "vm-42", "web%092")
	if want := `VM "web\t2" (vm-42): its name holds control characters or bytes that are not UTF-8; written as web%092`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if strings.ContainsRune(got, '\t') {
		t.Error("the raw name reached the warning")
	}
}
