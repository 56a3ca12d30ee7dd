package testdeps

import "testing"

func TestLook(t *testing.T) {
	if _, ok := Look("sh"); !ok {
		t.Fatal("Look(sh) found nothing; every Debian machine has /bin/sh")
	}
	if p, ok := Look("vguard-no-such-program"); ok {
		t.Fatalf("Look found a program that does not exist: %s", p)
	}
}
