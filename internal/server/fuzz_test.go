package server

import (
	"strings"
	"testing"
)

// FuzzParseConfig: any config text gives a config or an error, never a
// panic, and a printed config never shows the secrets it was given.
func FuzzParseConfig(f *testing.F) {
	f.Add("listen: 127.0.0.1:0\nstore: {postgres: \"postgres://u:pw1234@h/db\"}\n")
	f.Add("connectors: [{name: a, kind: b, every: 1m, settings: {password: pw1234, x: {token: pw1234}}}]\n")
	f.Add("store: {sqlite: a.db, sqliteSync: normal}\nmaxBodyBytes: 2048\njudges: 3\n")
	f.Add("tls: {cert: a, key: b}\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig("/nonexistent/serve.yaml", []byte(text))
		if err != nil {
			return
		}
		out := c.Redacted()
		if strings.Contains(text, "pw1234") && strings.Contains(out, "pw1234") && !strings.Contains(out, "REDACTED") {
			t.Fatalf("secret printed:\n%s", out)
		}
	})
}

// FuzzRedactDSN: a password put in a PostgreSQL URL or key=value string
// never comes out of RedactDSN, whether or not the string parses.
func FuzzRedactDSN(f *testing.F) {
	for _, pw := range []string{"hunter2", "pa%zzword", "s3cr%21t", "ab/cd#ef", "x@y:z", "[::1"} {
		f.Add(pw, "db/vguard?sslmode=require")
	}
	f.Fuzz(func(t *testing.T, pw, rest string) {
		const fixed = "postgres://vg:@host=user=dbname=password=sslmode=disable REDACTED"
		// A letter beyond hex: escaping elsewhere (%20) cannot make it.
		if len(pw) < 4 || !strings.ContainsAny(pw, "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ") || strings.Contains(fixed, pw) || strings.Contains(rest, pw) || strings.ContainsAny(pw, " '\\\t\n\r\f\v") {
			return
		}
		for _, dsn := range []string{"postgres://vg:" + pw + "@" + rest, "postgresql://vg:" + pw + "@" + rest, "host=db password=" + pw + " dbname=x"} {
			if out := RedactDSN(dsn); strings.Contains(out, pw) {
				t.Fatalf("%q printed as %q", dsn, out)
			}
		}
	})
}
