package token

import (
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	s1, id1, h1, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s2, _, h2, _ := New()
	if s1 == s2 || h1 == h2 || len(h1) != 64 || Hash(s1) != h1 || !strings.HasPrefix(s1, "vgt_"+id1+"_") {
		t.Fatalf("tokens %q %q, hash %q", s1, s2, h1)
	}
	if r := Redact(s1); strings.Contains(r, s1[20:]) || !strings.HasPrefix(r, "vgt_"+id1) {
		t.Fatalf("redacted %q", r)
	}
	if Redact("short") != "…" {
		t.Fatal("short secret shown")
	}
}

func TestRoles(t *testing.T) {
	for _, s := range []string{"viewer", "operator", "admin"} {
		r, err := ParseRole(s)
		if err != nil || r.String() != s {
			t.Errorf("%s: %v %v", s, r, err)
		}
	}
	for _, s := range []string{"", "none", "root", "Admin"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if !(Viewer < Operator && Operator < Admin) {
		t.Fatal("role order")
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"ci-pipeline", "Jörg's laptop", strings.Repeat("x", MaxName)} {
		if err := CheckName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "  ", "a\x00b", "a\nb", "\x1b[2J", "a\u0085", "\xff", strings.Repeat("x", MaxName+1)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
