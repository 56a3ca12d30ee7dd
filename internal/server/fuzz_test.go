package server

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// FuzzParseConfig: any config text gives a config or an error, never a
// panic, and a printed config never shows a secret it was given. The
// secrets are those the parsed config holds (the PostgreSQL password as
// pgconn reads it, values under secret keys of connector settings,
// passwords in URLs there); one that also appears in the text where it is
// no secret (a host named like the password) cannot be told apart in the
// output and is not checked.
func FuzzParseConfig(f *testing.F) {
	f.Add("listen: 127.0.0.1:0\nstore: {postgres: \"postgres://u:pw1234@h/db\"}\n")
	f.Add("connectors: [{name: a, kind: b, every: 1m, settings: {password: pw1234, x: {token: pw1234}}}]\n")
	f.Add("store: {sqlite: a.db, sqliteSync: normal}\nmaxBodyBytes: 2048\njudges: 3\n")
	f.Add("tls: {cert: a, key: b}\n")
	f.Add("store: {postgres: postgres://pw1234}")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig("/nonexistent/serve.yaml", []byte(text))
		if err != nil {
			return
		}
		out := c.Redacted()
		secrets := configSecrets(c)
		for _, secret := range secrets {
			// Every place the text holds it must be a secret's place.
			inSecrets := 0
			for _, s := range secrets {
				inSecrets += strings.Count(s, secret)
			}
			if len(secret) >= 4 && !strings.Contains("REDACTED", secret) && strings.Count(text, secret) <= inSecrets && strings.Contains(out, secret) {
				t.Fatalf("secret %q printed:\n%s", secret, out)
			}
		}
	})
}

// configSecrets lists the secret values a parsed config holds.
func configSecrets(c *Config) []string {
	var out []string
	if pg := c.Store.Postgres; pg != "" {
		if cfg, err := pgconn.ParseConfig(pg); err == nil && cfg.Password != "" {
			out = append(out, cfg.Password)
		}
		if u, err := url.Parse(pg); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
		}
	}
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, secret || secretKey(k))
			}
		case []any:
			for _, e := range x {
				walk(e, secret)
			}
		case string:
			if secret {
				out = append(out, x)
			}
			if u, err := url.Parse(x); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok {
					out = append(out, pw)
				}
			}
		}
	}
	for _, cc := range c.Connectors {
		walk(cc.Settings, false)
	}
	return out
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
