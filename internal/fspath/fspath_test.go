package fspath

import "testing"

func TestInPartition(t *testing.T) {
	for _, c := range []struct {
		in, out string
		ok      bool
	}{
		{"/part1/etc/machine-id", "/etc/machine-id", true},
		{Partition(16) + "/boot/grub", "/boot/grub", true},
		{"/part1", "", false},      // the filesystem's root itself: nothing below it
		{"/part/etc", "", false},   // no number
		{"/partx1/etc", "", false}, // not a number
		{"/part1x/etc", "", false},
		{"/etc/part1/x", "", false}, // not the first component
		{"/etc/machine-id", "", false},
	} {
		out, ok := InPartition(c.in)
		if out != c.out || ok != c.ok {
			t.Errorf("InPartition(%q) = %q, %v; want %q, %v", c.in, out, ok, c.out, c.ok)
		}
	}
}
