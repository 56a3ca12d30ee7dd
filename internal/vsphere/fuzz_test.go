package vsphere

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseEndpoint: whatever the --url, parsing never panics and an
// error never quotes the password.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"https://u:p@h/sdk", "https://u:p%zz@h", "u:p@h", "https://:p@h", "https://u@h:99999", "http://u:p@[::1]:443/x"} {
		f.Add(s, "S3cret!")
	}
	f.Fuzz(func(t *testing.T, raw, pw string) {
		if len(pw) < 4 {
			return // a short password can occur in any message by chance
		}
		if strings.Contains(raw, pw) {
			return // the password is also part of the host or path
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return
		}
		u.User = url.UserPassword("admin", pw)
		full := u.String()
		ep, err := ParseEndpoint(full, true)
		if err != nil {
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("error quotes the password: %v", err)
			}
			return
		}
		if strings.Contains(ep.String(), pw) {
			t.Fatalf("endpoint shows the password: %s", ep)
		}
		if p, _ := ep.user.Password(); p != pw {
			t.Fatalf("password %q kept as %q", pw, p)
		}
	})
}

// FuzzParseEndpointUnescaped: a password written into --url without
// percent-encoding is either read whole, with the URL printed as scheme,
// host and path only, or refused; never split into a host, path, query or
// fragment that messages would show.
func FuzzParseEndpointUnescaped(f *testing.F) {
	for _, s := range []string{"S3cret!", "Sup3r@Secr3tPart/2024", "a@b#c@d", "x?y@z", "p@ss:w/rd", "@/@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pw string) {
		if strings.Contains(pw, "%") {
			return // a valid escape (%41) is read as what it stands for
		}
		ep, err := ParseEndpoint("https://admin:"+pw+"@vc.example.com/sdk", true)
		if err != nil {
			if len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error quotes the password: %v", err)
			}
			return
		}
		if p, _ := ep.user.Password(); p != pw {
			t.Fatalf("password %q read as %q, printed URL %s", pw, p, ep)
		}
		if ep.String() != "https://vc.example.com/sdk" {
			t.Fatalf("password %q: URL printed as %s", pw, ep)
		}
	})
}
