package estate

import "testing"

func TestNormalizers(t *testing.T) {
	for in, want := range map[string]string{
		"52-54-00-AB-CD-EF": "52:54:00:ab:cd:ef", "5254.00ab.cdef": "52:54:00:ab:cd:ef",
		"52:54:00:ab:cd:ef": "52:54:00:ab:cd:ef", "": "", "  ": "", "not-a-MAC": "not:a:mac",
		"52:54:00:ab:cd:ef:01": "52:54:00:ab:cd:ef:01",
	} {
		if got := normMAC(in); got != want {
			t.Errorf("normMAC(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"{4C4C4544-0042-3510-8052-B2C04F4E3032}": "4c4c4544-0042-3510-8052-b2c04f4e3032",
		"4c4c45440042351080 52b2c04f4e3032":      "4c4c4544-0042-3510-8052-b2c04f4e3032",
		"VMware-42 1c":                           "vmware-42 1c", "": "",
	} {
		if got := normHex32(in, true); got != want {
			t.Errorf("normHex32(%q) = %q, want %q", in, got, want)
		}
	}
	if got := normHex32("0F4E5C0A-9B7E-4D4D-8A0F-1B2C3D4E5F60", false); got != "0f4e5c0a9b7e4d4d8a0f1b2c3d4e5f60" {
		t.Errorf("machine id %q", got)
	}
	if normHostname(" Web-1.Example.COM. ") != "web-1.example.com" {
		t.Error("normHostname")
	}
}
