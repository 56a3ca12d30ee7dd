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
