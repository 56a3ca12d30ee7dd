package secrets

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/secrets.md from the rule table")

// rulesMarkdown renders docs/secrets.md: the rules are declared once, and
// the docs are made from the declarations.
func rulesMarkdown() string {
	var b strings.Builder
	b.WriteString(docsHead)
	b.WriteString("\n## Built-in rules\n\n")
	fmt.Fprintf(&b, "%d rules. \"Binary\": the rule also reads binary files (a NUL byte in the first 8 KiB); the others skip them.\n\n", len(Builtin()))
	b.WriteString("| ID | what it finds | files | keywords |\n|---|---|---|---|\n")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, r := range Builtin() {
		scope := r.Scope
		if r.Binary && r.Scope != everyFile {
			scope += " (binary too)"
		}
		kws := "—"
		if len(r.Keywords) > 0 {
			kws = "`" + strings.Join(r.Keywords, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.ID, esc(r.Description), esc(scope), esc(kws))
	}
	b.WriteString(docsTail)
	return b.String()
}

func TestRulesDocs(t *testing.T) {
	const path = "../../docs/secrets.md"
	want := rulesMarkdown()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/secrets.md is out of date with the rule table; run: go test ./internal/secrets -run TestRulesDocs -update-docs")
	}
}

const docsHead = `# vguard's secret rules

Generated from the rule table in internal/secrets (` + "`go test ./internal/secrets -run TestRulesDocs -update-docs`" + `).
` + "`vguard image scan`" + ` runs these rules on every regular file of an image; ` + "`vguard image sanitize`" + ` overwrites
what they find.

## How a file is scanned

One pass per file. An Aho-Corasick automaton finds every rule's keywords at once (ASCII case ignored);
a rule's regex runs only on the line around a keyword hit (at most 8 KiB either side of the keyword),
or, for the two rules whose secrets span lines (PEM and PGP private keys), from that line to 64 KiB
past the keyword. Files are read in 256 KiB chunks that overlap by enough for any window, so a secret
across a chunk boundary is found, and found once. A file with a NUL byte in its first 8 KiB is binary:
only the rules marked binary read it, and if none applies it is not read past that first block. A
chunk of nothing but zero bytes (a preallocated swap file, a disk image's empty space) holds no
keyword and is stepped over at memory speed (16.8–16.9 GB/s against 0.87–0.88 GB/s when fed to
the keyword automaton; BenchmarkScanZeros, docs/performance.md). Rules confined to certain files
(.pgpass, /etc/shadow) are decided from the path before anything else.

A finding gives the rule, the path, the 1-based line and the byte span (offset, length) of the
secret's value, a redacted form and a fingerprint. The value itself never leaves the scanner:

- **Redacted**: values of 16 bytes and more show their first and last 4 characters
  (` + "`AKIA************MPLE`" + `), 12–15 bytes show 2, 8–11 show 1, shorter values are all stars; at most 32
  stars; a value whose shown characters would not be printable ASCII (a keytab) is all stars.
- **Fingerprint**: ` + "`sha256:`" + ` and the hex HMAC-SHA256 of the value under a key, so the same secret is
  recognised across files. A bare SHA-256 would give a weak password away to anyone holding the report
  and a list of candidate passwords; keyed, it tells nothing without the key. By default the key is
  random for each run, so fingerprints compare within one report only; give every scan one key
  (` + "`vguard image scan --fingerprint-key FILE`" + `, a file of at least 16 bytes kept as secret as the secrets)
  and one secret has one fingerprint across images and runs, which shows a credential copied from one
  image into another.
- One secret, one finding, and a file's findings never overlap (so a sanitizer can overwrite each span
  as it is; ` + "`secrets.Marker`" + `, written in place of every span, scans clean; where the value is base64 that
  its tool decodes on load, a kubeconfig's ` + "`client-key-data`" + ` and a docker ` + "`auth`" + `, the marker is base64 of a
  PEM block or of ` + "`REDACTED-BY-VGUARD:REDACTED-BY-VGUARD`" + `, so kubectl and docker still load the file): a generic rule
  (` + "`password-assignment`" + `, ` + "`jwt`" + `, ` + "`generic-api-key`" + `) gives way to a specific rule, of two specific
  rules the one whose secret starts first (then the one listed first: a GitHub token in
  .git-credentials is reported as ` + "`github-token`" + `), of two generic rules the one listed first.

## What is not reported, and why

- **Documented example keys**: AWS's ` + "`AKIAIOSFODNN7EXAMPLE`" + ` and ` + "`…EXAMPLEKEY`" + `, the Azure storage emulator's
  well-known key, jwt.io's example token. They are published and grant nothing; a scanner that
  reports them teaches people to ignore it. (cli.md's ` + "`AKIA************MPLE`" + ` only shows the redaction format.)
- **References and placeholders**: ` + "`$VAR`, `${VAR}`, `$(cmd)`, `%(name)s`, `%VAR%`, `@VAR@`, `{{ var }}`, `<password>`" + `,
  ` + "`ENC(…)`, `vault:…`" + `; placeholder words (` + "`changeme`, `password`, `secret`, `example`, `dummy`, `none`, `null`,\n  `true`, `RANDOM`" + ` and the like), values containing ` + "`example`, `your_`, `_here`, `xxxxx`, `*****`" + `, runs of one
  character. ` + "`changeme`" + ` is a real default password on some systems, but as a value in a file it is
  overwhelmingly a template's placeholder; weak default passwords are a hardening matter, not a leak.
- **Settings about passwords**: keys such as ` + "`password_file`, `password_min_length`, `secret_name`, `show_password`" + `;
  code (` + "`self.password`, `getpass()`, `pwd=None`, `auth[2]`, `userid = passwd = acct = ''`" + `, a bare name in a
  source file, a tuple assignment or after vim's ` + "`let`" + `); prose and log lines (` + "`passwd: files`" + ` in nsswitch.conf,
  dpkg's ` + "`install base-passwd:amd64`" + `); values under 4 characters for the generic password rule.
- **Locked /etc/shadow entries**: ` + "`*`, `!`, `!!`, `!*`" + ` and empty fields. A hash behind a ` + "`!`" + ` (a locked
  account) *is* reported: it still yields the password to whoever cracks it.
- **Stripe test-mode keys** (` + "`sk_test_`" + `) and publishable keys: they reach no real money or customer data.
- **GnuTLS's self-test keys**, compiled into libgnutls: published test vectors (found on every Debian
  system; the test suite scans a real Debian root and every finding there must be justified).
- A password that is commented out (` + "`# password=…`" + `) *is* reported by the generic rule: it is still a secret.
`

const docsTail = `
## Adding rules: the gitleaks format

` + "`secrets.LoadGitleaks`" + ` reads a gitleaks (v8) TOML configuration, since many teams keep one:

` + "```toml" + `
[[rules]]
id = "acme-internal-token"
description = "ACME internal API token"
regex = '''\b(acme_[a-z0-9]{32})\b'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]

[[rules.allowlists]]
description = "the token in the SDK's docs"
regexes = ['''acme_0{32}''']

[[rules]]
id = "acme-pkcs12"
description = "PKCS#12 bundles"
path = '''\.p12$'''

[allowlist]
paths = ['''(^|/)vendor/''']
` + "```" + `

What each field does here, and where it differs from gitleaks:

- ` + "`id`" + ` (required), ` + "`description`" + `, ` + "`tags`" + ` (accepted, unused).
- ` + "`regex`" + `: Go's RE2 syntax, as in gitleaks itself. Lookaheads, lookbehinds and backreferences (from
  configs written for PCRE tools) are reported as errors with file, line, rule and the reason; the other
  rules of the file still load, and the caller decides whether to go on.
- ` + "`keywords`" + `: the regex runs only on the line around one of them (ASCII case ignored). A rule without
  keywords runs on every file it applies to, which is slow: give keywords. A regex that can match a
  newline (` + "`\\s`, `[^x]`" + `, ` + "`(?s).`" + `) runs on a window from the keyword's line to 4 KiB past it.
- ` + "`secretGroup`" + `: the group holding the secret; 0 means the first group that matched something (gitleaks'
  rule), or the whole match when the regex has no groups. If every group is empty there is no finding
  (gitleaks would report the whole match).
- ` + "`entropy`" + `: the secret's Shannon entropy must exceed it.
- ` + "`path`" + `: matched against the path inside the image (` + "`/etc/app/env`" + `). A rule with a path and no regex
  reports every file it matches, whole (offset 0, the file's length); such rules read binary files too,
  other user rules do not.
- ` + "`[[rules.allowlists]]`" + ` (and the older single ` + "`[rules.allowlist]`" + `): ` + "`regexes`" + ` (against ` + "`regexTarget`" + `:
  ` + "`secret`" + `, the default, ` + "`match`" + ` or ` + "`line`" + `), ` + "`paths`" + `, ` + "`stopwords`" + ` (contained in the secret, case ignored),
  ` + "`condition = \"AND\"`" + ` to require all of them (default OR: any). ` + "`commits`" + ` is accepted and ignored.
- A top-level ` + "`[allowlist]`" + `, or ` + "`[[allowlists]]`" + ` with optional ` + "`targetRules`" + `, applies to the rules of the same file.
- ` + "`[extend]`" + ` is accepted and ignored: the built-in rules play the part of gitleaks' defaults. A user rule
  with the ID of a built-in rule replaces it (` + "`secrets.Merge`" + `).

Errors look like:

` + "```" + `
rules.toml:3: rules[0].regex: rules[0] (id "pcre"): error parsing regexp: invalid or unsupported Perl syntax: ` + "`(?=`" + ` (lookahead and lookbehind assertions are not supported: Go's regexp is RE2)
rules.toml:7: rules.regex: cannot use a TOML integer where a string is wanted
` + "```" + `

## Limits

- Compressed files (rotated ` + "`.gz`" + ` logs, ` + "`.deb`" + `s) and UTF-16 text have NUL bytes or no plain text: they are
  binary here, read only by the binary rules (private keys, keytabs), which do not decompress.
- A line rule's window reaches 8 KiB either side of its keyword; on one line longer than that, full of
  a rule's keywords, a secret longer than 2 KiB across two windows could be missed.
- A PEM key whose newlines are escaped inside a string is found only as a service-account key's
  ` + "`\"private_key\"`" + `.
- A file of several names (hard links) is scanned under each of its names in a directory, raw or qcow2
  image, so a rule confined to a path (` + "`kubeconfig-token`, `pgpass`, `shadow-hash`" + `, ...) finds what a
  name in its scope holds, while a secret every name finds is reported once, under the first name.
  Sanitizing redacts the shared content, so every name reads it redacted, and the links stay links.
  In a tar archive the content goes by once, under the first name: a later hard link is not read
  again, so a path-confined rule misses a secret whose first name lies outside its scope (a
  kubeconfig whose first name is ` + "`/backup/x`" + `). Unpack such an archive, or scan the disk, to cover it.

## Adding a built-in rule

Add an entry to the table in internal/secrets/builtin.go with an ID, description, scope, keywords,
regex and test strings that must and must not match (TestBuiltinRules holds every rule to them), a
planter in corpus_test.go (TestCorpus plants it among filler and decoys and checks its path, line and
byte span), then run the Debian test (TestDebianRoot: nothing may be found on a stock system that is
not justified) and regenerate this file.
`
