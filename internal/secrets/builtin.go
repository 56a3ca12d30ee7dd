package secrets

import (
	"regexp"
	"strings"
	"sync"
)

// Test values used in the rules' test strings. They are random, not real
// credentials of anyone.
const (
	pemBody = "mj0Vsdu9I64G1/o23bnrTt5aivfu34mlfSyO5nztwqwO/aZd+Wy1hK6PjQVhK3vQ\n" +
		"+nvz++UIL5Zxz3ycvPKw2am06IqcgHY9YqE9XmJu942QM2OXdLhbmgdAjBcblUD7\n" +
		"NAaR8PXhrl4agfQ6Ic37JRtNTJsrfzzV"
	testJWT   = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtYmFja3VwIiwiaWF0IjoxNzMyNTAwMDAwLCJzY29wZSI6ImFkbWluIn0.PB6PRWJ1Gk8cgSCifdFzctEq8oB7GVvouNndNWYzjFn"
	testAzure = "UfTAFnT0tEuw0dwQ0FIunWe8Cz6SNDCdyZQJiJSZQdoHwHen3SO3oXyGf3azU3iQOpMN0PZLqy1WwMZaMKA3P7=="
	// azuriteKey is the Azure storage emulator's well-known account key,
	// published in Microsoft's documentation.
	azuriteKey = `Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==`
	// jwtIOExample is the signature of the example token on jwt.io.
	jwtIOExample = `SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`
	kubeKeyData  = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVBNHNlY3JldAotLS0tLUVORCBSU0EgUFJJVkFURSBLRVktLS0tLQo="
	// keytabHead is the start of a keytab holding host/db1@EXAMPLE.COM.
	keytabHead = "\x05\x02\x00\x00\x00\x3e\x00\x02\x00\x0bEXAMPLE.COM\x00\x04host\x00\x03db1\x00\x00\x00\x01\x65\x00\x00\x00\x02\x00\x12\x00\x20"
)

var builtinOnce struct {
	sync.Once
	rules []*Rule
}

// Builtin returns the built-in rules, fresh copies that the caller may
// hand to NewScanner (alone or with user rules). The regexes are compiled
// once and shared, which is safe: a regexp.Regexp is safe for concurrent
// use.
func Builtin() []*Rule {
	builtinOnce.Do(func() { builtinOnce.rules = builtinRules() })
	out := make([]*Rule, len(builtinOnce.rules))
	for i, r := range builtinOnce.rules {
		c := *r
		c.Keywords = append([]string(nil), r.Keywords...)
		c.Allowlists = append([]Allowlist(nil), r.Allowlists...)
		for j := range c.Allowlists {
			c.Allowlists[j].StopWords = append([]string(nil), c.Allowlists[j].StopWords...)
		}
		out[i] = &c
	}
	return out
}

func re(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }

// indented prefixes every line of s with p, as a YAML block scalar holds
// a PEM key (for the test strings).
func indented(s, p string) string { return p + strings.ReplaceAll(s, "\n", "\n"+p) }

// secretAllow is an allowlist of regexes matched against the secret.
func secretAllow(desc string, exprs ...string) Allowlist {
	a := Allowlist{Description: desc}
	for _, e := range exprs {
		a.Regexes = append(a.Regexes, re(e))
	}
	return a
}

// The parts of a PEM block after its BEGIN line: header lines
// (Proc-Type, DEK-Info, Comment) and a blank line, then base64 lines. The
// body's character class is narrow on purpose: in a binary file a stray
// BEGIN line must fail within bytes, not after scanning the whole window.
// Every line may be indented, as in a YAML block scalar (cloud-init's
// ssh_keys and write_files, Helm values); verifyPEMBody then holds the body
// and END lines to the indentation of the first body line, which a
// regex without back-references cannot.
const (
	pemHeaders = `(?:[ \t]*[A-Za-z][A-Za-z0-9-]*: [^\r\n]*\r?\n)*(?:[ \t]*\r?\n)?[ \t]*`
	pemBase64  = `(?:[A-Za-z0-9+/=]+\r?\n[ \t]*)*[A-Za-z0-9+/=]+`
	pemEnd     = `\r?\n[ \t]*-----END `
)

const (
	everyText = "every text file"
	everyFile = "every file, binary ones included"
)

// The value of an assignment, in three groups: double-quoted, single-
// quoted, unquoted (verifyAssignment tells them apart by number). A value
// taken short of its end is a secret half left in a copy called clean, so
// the quoted forms know their escapes: a backslash escapes the next
// character in double quotes (JSON, YAML, shell, .env); in single quotes
// ” is a quote (YAML, SQL, and shell's 'a”b', one word) and so is \'
// (PHP, Python, MySQL option files). A single-quoted value that ends in a
// backslash (a YAML or shell 'C:\') is the last alternative, a fourth
// group.
//
// An unquoted value runs to a blank or the end of the line: '&', '|', and
// ';' and ',' within it, are part of it (a Java properties password
// "Tr0ub4dor&3"), and so are quotes and backticks, literal in a
// .properties, INI or .env value. Only when a quote stands right before the
// key does the value end at that quote again (a string holding
// "password=...": the scanner cuts it, see Rule.unquoted). A ',', ';' or
// closing bracket is part of it only with more of the value after it
// ({password: abc}, a statement's ';', a trailing comma in code). One that
// starts with a quote is a quoted value gone wrong, with '&' or '|' a YAML
// anchor or block, an HTML entity or an operator. One that starts with '#'
// is a comment only after a YAML ':' (verifyAssignment): after '=' it is
// the value (Java properties, .env, shell and Python's configparser have no
// comment there).
const (
	dqValue       = `"((?:[^"\\\r\n]|\\[^\r\n])*)"`
	sqValue       = `'((?:[^'\\\r\n]|''|\\[^\r\n])*)'`
	blanks        = " \t\r\n"
	quotes        = "\"'`"
	valueEnd      = blanks + quotes
	valueCloser   = `,;)\]}`
	unquotedValue = `([^` + valueEnd + `&|` + valueCloser + `](?:[^` + blanks + valueCloser + `]|[` + valueCloser + `]+[^` + blanks + valueCloser + `])*)`
	quotedValue   = `(?:` + dqValue + `|` + sqValue + `|` + unquotedValue + `|'([^'\r\n]*)')`
	// shellValue is a value on a shell command line: ';', '&' and '|'
	// end an unquoted one, as they end the command, unless a backslash
	// escapes them (-pS3cr\&t, one word); single quotes have no escapes
	// ('' joins two quoted strings into one word).
	// cliArgs are a command's words before the option of interest.
	cliArgs    = `(?:[ \t]+[^ \t\r\n|;&]+){0,16}?`
	shellValue = `(?:` + dqValue + `|'((?:[^'\r\n]|'')*)'|((?:[^` + valueEnd + `;&|\\]|\\[^\r\n])+))`
)

// builtinRules is the table of built-in rules. Documented example keys
// (AWS's AKIAIOSFODNN7EXAMPLE, the Azure emulator's key, jwt.io's token)
// are allowlisted: they are published and grant nothing, and a scanner
// that reports them teaches people to ignore it.
func builtinRules() []*Rule {
	return []*Rule{
		{
			ID:          "private-key",
			Description: "A PEM private key: PKCS#1 RSA, EC, DSA, OpenSSH, PKCS#8, encrypted PKCS#8 or legacy encrypted PEM. The secret is the key's base64 body between its BEGIN (and header) lines and its END line. A key in a JSON string with escaped newlines is left to gcp-service-account-key.",
			Scope:       everyFile,
			Keywords:    []string{"private key-----"},
			Regex:       re(`-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|ANY) )?PRIVATE KEY-----\r?\n` + pemHeaders + `(` + pemBase64 + `)` + pemEnd + `(?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|ANY) )?PRIVATE KEY-----`),
			Binary:      true,
			spanAfter:   multiWindow,
			verify:      verifyPEMBody,
			Allowlists: []Allowlist{{
				Description: "GnuTLS compiles the keys of its FIPS self-tests into the library: published test vectors",
				Paths:       []*regexp.Regexp{re(`(?:^|/)libgnutls\.so[.0-9]*$`)},
			}},
			MustMatch: []string{
				"-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----\n",
				"-----BEGIN OPENSSH PRIVATE KEY-----\n" + pemBody + "\n-----END OPENSSH PRIVATE KEY-----",
				"key: |\n  x\n-----BEGIN PRIVATE KEY-----\r\n" + pemBody + "\r\n-----END PRIVATE KEY-----\r\n",
				"-----BEGIN EC PRIVATE KEY-----\n" + pemBody + "\n-----END EC PRIVATE KEY-----",
				"-----BEGIN DSA PRIVATE KEY-----\n" + pemBody + "\n-----END DSA PRIVATE KEY-----",
				"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + pemBody + "\n-----END ENCRYPTED PRIVATE KEY-----",
				"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,2A1F07E8B2D94C3E\n\n" + pemBody + "\n-----END RSA PRIVATE KEY-----",
				// cloud-init preseeding host keys, and writing a TLS key.
				"#cloud-config\nssh_keys:\n  rsa_private: |\n    -----BEGIN RSA PRIVATE KEY-----\n" + indented(pemBody, "    ") + "\n    -----END RSA PRIVATE KEY-----\n  rsa_public: ssh-rsa AAAAB3NzaC1yc2E\n",
				"#cloud-config\nwrite_files:\n  - path: /etc/ssl/private/hr.key\n    permissions: '0600'\n    content: |\n      -----BEGIN PRIVATE KEY-----\n" + indented(pemBody, "      ") + "\n      -----END PRIVATE KEY-----\n",
				"tls:\n\tkey: |\n\t\t-----BEGIN EC PRIVATE KEY-----\n\t\tProc-Type: 4,ENCRYPTED\n\t\tDEK-Info: AES-128-CBC,2A1F07E8B2D94C3E\n\n" + indented(pemBody, "\t\t") + "\n\t\t-----END EC PRIVATE KEY-----\n",
			},
			MustNotMatch: []string{
				"-----BEGIN PUBLIC KEY-----\n" + pemBody + "\n-----END PUBLIC KEY-----",
				"-----BEGIN CERTIFICATE-----\n" + pemBody + "\n-----END CERTIFICATE-----",
				"-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
				"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
				`if (strstr(buf, "-----BEGIN PRIVATE KEY-----")) return 1;`,
				// Lines indented unevenly are not one key's body.
				"-----BEGIN PRIVATE KEY-----\n  " + indented(pemBody, "    ") + "\n-----END PRIVATE KEY-----",
			},
		},
		{
			ID:          "pgp-private-key",
			Description: "An ASCII-armoured PGP private key block. The secret is the block's base64 body (after its headers).",
			Scope:       everyFile,
			Keywords:    []string{"private key block-----"},
			Regex:       re(`-----BEGIN PGP PRIVATE KEY BLOCK-----\r?\n` + pemHeaders + `(` + pemBase64 + `)` + pemEnd + `PGP PRIVATE KEY BLOCK-----`),
			Binary:      true,
			spanAfter:   multiWindow,
			verify:      verifyPEMBody,
			MustMatch: []string{
				"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + pemBody + "\n=nJ4d\n-----END PGP PRIVATE KEY BLOCK-----\n",
				"-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: backup\n\n" + pemBody + "\n-----END PGP PRIVATE KEY BLOCK-----",
			},
			MustNotMatch: []string{
				"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + pemBody + "\n-----END PGP PUBLIC KEY BLOCK-----",
				"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n...\n-----END PGP PRIVATE KEY BLOCK-----",
			},
		},
		{
			ID:          "gcp-service-account-key",
			Description: `The "private_key" of a Google Cloud service-account key file (JSON). The secret is the key's body, JSON-escaped.`,
			Scope:       everyText,
			Keywords:    []string{`"private_key"`},
			Regex:       re(`"private_key"[ \t]*:[ \t]*"-----BEGIN (?:RSA )?PRIVATE KEY-----\\n([A-Za-z0-9+/=\\]{64,}?)(?:\\n)?-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?"`),
			MustMatch: []string{
				`{"type": "service_account", "project_id": "hr-prod", "private_key_id": "4f1c", "private_key": "-----BEGIN PRIVATE KEY-----\n` + "mj0Vsdu9I64G1/o23bnrTt5aivfu34mlfSyO5nztwqwO/aZd+Wy1hK6PjQVhK3vQ\\n+nvz++UIL5Zxz3ycvPKw2am06IqcgHY9YqE9XmJu942QM2OXdLhbmgdAjBcblUD7" + `\n-----END PRIVATE KEY-----\n", "client_email": "backup@hr-prod.iam.gserviceaccount.com"}`,
			},
			MustNotMatch: []string{
				`{"private_key": "", "type": "service_account"}`,
				`{"private_key": "-----BEGIN PRIVATE KEY-----\n<your key>\n-----END PRIVATE KEY-----\n"}`,
			},
		},
		{
			ID:          "aws-access-key-id",
			Description: "An AWS access key ID (AKIA… long-term, ASIA… temporary, and the other IAM prefixes). AWS's documented example IDs (ending in EXAMPLE) are not reported.",
			Scope:       everyText,
			Keywords:    []string{"akia", "asia", "abia", "acca", "a3t"},
			Regex:       re(`\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b`),
			Entropy:     3,
			Allowlists:  []Allowlist{secretAllow("AWS's documented example keys", `EXAMPLE$`)},
			MustMatch: []string{
				"AWS_ACCESS_KEY_ID=AKIAHBRPOIGF3CBFNOBM",
				`aws_access_key_id = ASIA2O4RAK3VRJNVGFYG`,
				`{"AccessKeyId": "AKIAHBRPOIGF3CBFNOBM"}`,
			},
			MustNotMatch: []string{
				"aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
				"AKIAXXXXXXXXXXXXXXXX",
				"AKIAHBRPOIGF3CBFNOBMX",
				"akiahbrpoigf3cbfnobm",
			},
		},
		{
			ID:          "aws-secret-access-key",
			Description: "An AWS secret access key assigned to a key named like aws_secret_access_key or SecretAccessKey. AWS's documented example (…EXAMPLEKEY) is not reported.",
			Scope:       everyText,
			Keywords:    []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret"},
			Regex:       re(`(?i)(?:secret_?access_?key|secret-access-key|aws_secret(?:_key)?)["']?[ \t]*(?:=|:|=>)[ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=\n]|$)`),
			Entropy:     4,
			Allowlists:  []Allowlist{secretAllow("AWS's documented example key", `EXAMPLEKEY$`)},
			MustMatch: []string{
				"aws_secret_access_key = TSHf6pWkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeO\n",
				`AWS_SECRET_ACCESS_KEY="TSHf6pWkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeO"`,
				`{"SecretAccessKey": "TSHf6pWkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeO"}`,
			},
			MustNotMatch: []string{
				"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
				"aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}",
				"aws_secret_access_key = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			},
		},
		{
			ID:          "azure-storage-connection-string",
			Description: "The AccountKey of an Azure storage connection string. The storage emulator's published key is not reported.",
			Scope:       everyText,
			Keywords:    []string{"accountkey="},
			Regex:       re(`(?i)AccountKey=([A-Za-z0-9+/]{86}==)`),
			Allowlists:  []Allowlist{secretAllow("the Azure storage emulator's published key", `^`+regexp.QuoteMeta(azuriteKey)+`$`)},
			MustMatch: []string{
				"AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=hrbackup;AccountKey=" + testAzure + ";EndpointSuffix=core.windows.net",
			},
			MustNotMatch: []string{
				"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuriteKey + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
				"AccountKey=<storage-account-key>;",
			},
		},
		{
			ID:          "azure-storage-account-key",
			Description: "An Azure storage account key (88 base64 characters) assigned to a key naming Azure or storage.",
			Scope:       everyText,
			Keywords:    []string{"azure", "storage"},
			Regex:       re(`(?i)(?:azure|storage)[a-z0-9_.-]{0,30}key["']?[ \t]*(?:=|:|=>)[ \t]*["']?([A-Za-z0-9+/]{86}==)`),
			anchor:      anchorIdent,
			Allowlists:  []Allowlist{secretAllow("the Azure storage emulator's published key", `^`+regexp.QuoteMeta(azuriteKey)+`$`)},
			MustMatch: []string{
				"AZURE_STORAGE_KEY=" + testAzure,
				`storage_account_key: "` + testAzure + `"`,
			},
			MustNotMatch: []string{
				"AZURE_STORAGE_KEY=" + azuriteKey,
				"AZURE_STORAGE_KEY=$STORAGE_KEY",
			},
		},
		{
			ID:          "github-token",
			Description: "A GitHub token: personal access token (ghp_), OAuth (gho_), user-to-server (ghu_), server-to-server/app installation (ghs_) or refresh token (ghr_).",
			Scope:       everyText,
			Keywords:    []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"},
			Regex:       re(`\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b`),
			Entropy:     3,
			MustMatch: []string{
				"GITHUB_TOKEN=ghp_zren68K4TunPFz46PDjqipVJIqVLB5LzxoiG",
				`token: "ghs_FfWd3hjOkYRBMeyyMDHqJ38aRUhR4IWrXPvh"`,
				"https://gho_zren68K4TunPFz46PDjqipVJIqVLB5LzxoiG@github.com/org/repo",
			},
			MustNotMatch: []string{
				"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
				"ghp_zren68K4TunPFz46PDjqipVJIqVLB5Lzxoi",
				"GITHUB_TOKEN=ghp_your_token_here",
			},
		},
		{
			ID:          "github-fine-grained-pat",
			Description: "A GitHub fine-grained personal access token (github_pat_).",
			Scope:       everyText,
			Keywords:    []string{"github_pat_"},
			Regex:       re(`\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b`),
			Entropy:     3,
			MustMatch: []string{
				"GH_TOKEN=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",
			},
			MustNotMatch: []string{
				"GH_TOKEN=github_pat_XXXXXXXXXXXXXXXXXXXXXX_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
				"github_pat_<token>",
			},
		},
		{
			ID:          "gitlab-pat",
			Description: "A GitLab personal, project or group access token (glpat-).",
			Scope:       everyText,
			Keywords:    []string{"glpat-"},
			Regex:       re(`\b(glpat-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*)`),
			Entropy:     3,
			MustMatch: []string{
				"GITLAB_TOKEN=glpat-NZV45pFCiRcDCajhDieQ",
				`private_token: 'glpat-NZV45pFCiRcDCajhDieQ'`,
			},
			MustNotMatch: []string{
				"GITLAB_TOKEN=glpat-xxxxxxxxxxxxxxxxxxxx",
				"glpat-<token>",
			},
		},
		{
			ID:          "gitlab-token",
			Description: "Another GitLab token: runner authentication (glrt-), deploy (gldt-), pipeline trigger (glptt-), CI job (glcbt-) or a runner registration token (GR1348941).",
			Scope:       everyText,
			Keywords:    []string{"glrt-", "gldt-", "glptt-", "glcbt-", "gr1348941"},
			Regex:       re(`\b((?:glrt-|gldt-|glptt-|glcbt-|GR1348941)[A-Za-z0-9_-]{20,})`),
			Entropy:     3,
			MustMatch: []string{
				`token = "glrt-jEJ_Bq8F80ymm3T207gm"`,
				"--registration-token GR1348941jEJ_Bq8F80ymm3T207gm",
			},
			MustNotMatch: []string{
				`token = "glrt-xxxxxxxxxxxxxxxxxxxxxxxx"`,
			},
		},
		{
			ID:          "slack-token",
			Description: "A Slack bot, user, app or workspace token (xoxb-, xoxp-, xoxa-, xoxo-, xoxr-, xoxs-) or an app-level token (xapp-).",
			Scope:       everyText,
			Keywords:    []string{"xox", "xapp-"},
			Regex:       re(`\b(xox[abposr]-[0-9]{6,}-[0-9A-Za-z-]{10,}|xapp-[0-9]-[A-Z0-9]{8,}-[0-9]{6,}-[a-f0-9]{32,})`),
			Entropy:     3,
			MustMatch: []string{
				"SLACK_BOT_TOKEN=xoxb-065133387262-4731781080132-AFEn3z5dkyayq7YYDsBS9UYJ",
				"SLACK_APP_TOKEN=xapp-1-A05K7QD3M2P-5987224613390-3f9c1a7e0b5d4c2a8e6f1b3d9c7a5e0f2b4d6c8a1e3f5b7d9c0a2e4f6b8d1c3a\n",
			},
			MustNotMatch: []string{
				"SLACK_BOT_TOKEN=xoxb-your-token-here",
				"xoxb-000000-0000000000",
			},
		},
		{
			ID:          "slack-webhook-url",
			Description: "A Slack incoming-webhook or workflow URL (hooks.slack.com); the secret is the path after services/.",
			Scope:       everyText,
			Keywords:    []string{"hooks.slack.com/"},
			Regex:       re(`hooks\.slack\.com/(?:services|workflows|triggers)/(T[A-Z0-9]{6,}/[AB][A-Z0-9]{6,}/[A-Za-z0-9]{20,})`),
			Entropy:     3.5,
			MustMatch: []string{
				"url: https://hooks.slack.com/services/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",
			},
			MustNotMatch: []string{
				"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
				"https://hooks.slack.com/services/...",
			},
		},
		{
			ID:          "stripe-secret-key",
			Description: "A Stripe live secret (sk_live_) or restricted (rk_live_) key. Test-mode keys (sk_test_) are not reported: they reach no real money or customer data.",
			Scope:       everyText,
			Keywords:    []string{"sk_live_", "rk_live_"},
			Regex:       re(`\b((?:sk|rk)_live_[0-9A-Za-z]{24,247})\b`),
			Entropy:     3,
			MustMatch: []string{
				"STRIPE_SECRET_KEY=sk_live_u7qnQTupqziQPtDu7W7eaDNK",
				`stripe.api_key = "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"`,
			},
			MustNotMatch: []string{
				"STRIPE_SECRET_KEY=sk_test_u7qnQTupqziQPtDu7W7eaDNK",
				"sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
			},
		},
		{
			ID:          "jwt",
			Description: "A signed JSON Web Token (three base64url parts, a header naming a signing algorithm). jwt.io's example token is not reported.",
			Scope:       everyText,
			Keywords:    []string{"eyj"},
			Regex:       re(`\b(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,})`),
			Generic:     true,
			verify:      verifyJWT,
			Allowlists:  []Allowlist{secretAllow("jwt.io's example token", regexp.QuoteMeta(jwtIOExample)+`$`)},
			MustMatch: []string{
				"Authorization: Bearer " + testJWT,
				`{"access_token":"` + testJWT + `"}`,
			},
			MustNotMatch: []string{
				"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
				"eyJhbGciOiJub25lIn0.eyJzdWIiOiJzdmMtYmFja3VwIn0.AAAAAAAAAAAAAAAAAAAA",
				"eyJzZWNyZXQiOiJubyJ9.eyJzdWIiOiJzdmMtYmFja3VwIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
			},
		},
		{
			ID: "password-assignment",
			Description: "A password or secret assigned in a config, env or source file (password=, PASSWORD:, passwd, passphrase, secret=, pwd): " +
				"keys that name a setting about passwords (password_file, password_min_length), references ($VAR, ${VAR}, %(x)s, {{ x }}), " +
				"placeholders (<password>, changeme, your_password, xxxx, ****), code and values under 4 characters are not reported. " +
				"Code is an unquoted value that is a call, an index (auth[2]), a dotted name (self.password), a chained assignment (a = passwd = b = ''), or a bare name in a source file (.py, .vim, .js…), a tuple assignment (a comma and a blank: user, password = u, p; not an option list such as username=hr,password=x), after self./this. or after let/var/const (local/my with blanks around '='), unless a string opened before the key holds the assignment. " +
				`The secret is the whole value: a quoted one with its escapes (\" in double quotes; '' and \' in single quotes), an unquoted one up to a blank or the end of the line (to the end of the line, less an inline ';' or '#' comment and trailing blanks, on a line holding only key = value with blanks around '=' or in an .ini, .cnf, .cfg, .conf, .properties, .env, .nmconnection or yum/dnf .repo file, whose formats take the rest of the line), ';', '&', '|' and quotes included, except a '&' (or &amp;), ',' or ';' that starts another key=value (a URL query, mount options), the quote that closes a string holding the whole assignment ("password=..."), escaped quotes around the value (\"x\") and a trailing ',' or ';'; a trailing ')', ']' or '}' is the value's unless it closes a bracket opened before the value on the line. A value starting with '$' is a reference unless it is a crypt hash ($6$salt$hash, $y$, $2b$, $sha1$, $md5$…). A value starting with '#' is taken after '=' (properties, .env, INI) and is a comment after a YAML ':'.`,
			Scope:    everyText,
			Keywords: []string{"password", "passwd", "passphrase", "secret", "pwd"},
			Regex:    re(`(?i)[a-z0-9_.-]*(?:password|passwd|passphrase|secret|pwd)[a-z0-9_.-]*["'\]]?[ \t]*(?:=>|:=|=|:)[ \t]*` + quotedValue),
			anchor:   anchorIdent,
			Generic:  true,
			verify:   verifyAssignment,
			unquoted: 3,
			Allowlists: []Allowlist{{
				Description: "files whose passwd: or password lines are not assignments of a secret: the name service switch, lintian overrides",
				Paths:       []*regexp.Regexp{re(`(?:^|/)nsswitch\.conf$`), re(`/lintian/overrides/`)},
			}, {
				Description: "OpenSSL's stock openssl.cnf: the CMP example section's published Insta Demo CA test credential",
				MatchAll:    true,
				Paths:       []*regexp.Regexp{re(`(?:^|/)openssl\.cnf$`)},
				Regexes:     []*regexp.Regexp{re(`^pass:insta$`)},
			}},
			MustMatch: []string{
				"DB_PASSWORD=z2oCtIsjhvNK4p\n",
				"  password: 'z2oCtIsjhvNK4p'\n",
				`{"password": "z2oCtIsjhvNK4p"}`,
				"spring.datasource.password = z2oCtIsjhvNK4p",
				"client_secret: z2oCtIsjhvNK4p",
				`$db_passwd = "z2oCtIsjhvNK4p";`,
				"SECRET_KEY_BASE=z2oCtIsjhvNK4pz2oCtIsjhvNK4p",
				`'password' => 'hunter22',`,
				`{"db": {"password": "Xq7\"vLp92!mZr8Kw"}}`,
				"DB_PASSWORD=\"Xq7\\\"vLp92mZr8Kw\"\n",
				"password: 'Xq7''vLp92!mZr8Kw'\n",
				"spring.datasource.password=Tr0ub4dor&3xyzQ\n",
				"ldap.bind.pwd=ab;Kx92mVq7Lp0\n",
				`'password' => 'it\'sS3cr3tXy',`,
				"spring.datasource.password=#Tr0ub4dor3xyzQ\n",
				"DB_PASSWORD=#Tr0ub4dor3xyzQ\n",
				"password = Xq7'vLp92mZr8\n",
				// INI and .properties take the rest of the line.
				"[db]\npassword = correct horse battery staple ; rotated\n",
				"db.password=correct horse battery staple\n",
				// Comma-separated option lists: fstab and mount -o, helm's
				// --set, virt-install's --graphics.
				"//fs1/hr /mnt/hr cifs username=hr,password=CifsPw9x,uid=1000 0 0\n",
				"//fs1/hr /mnt/hr cifs password=CifsPw9y,username=hr 0 0\n",
				"mount -t cifs -o username=hr,password=CifsPw9q //fs1/hr /mnt\n",
				"helm install hr ./chart --set db.user=hr,db.password=HelmPw9xQ\n",
				"helm upgrade hr ./chart --set db.password=HelmPw9xR,db.user=hr\n",
				"virt-install --name hr --graphics vnc,password=VncPw9xQ7 --disk size=10\n",
				// A declaring keyword before a string that holds the
				// assignment, and shell's local.
				"var x = \"password=JsC0nnPw7\";\n",
				"var pgdsn = \"host=db1 user=hr password=GoPgPw9x dbname=hr\"\n",
				"  local db_password=Bk9pPw7xQ\n",
				"DB_PASSWORD=EnvPw9x}\n",
				"<form action=\"/login?password=HtmlPw9y&amp;x=1\"></form>\n",
				"root_password_hash=$y$j9T$Jx9s0bC0kq1p3m5n7Q9rS.$Xk3ZqP0aV7d2F8hJ1lN4pR6tW9yB5cE2gI8kM0oQ3sU\n",
			},
			MustNotMatch: []string{
				"DB_PASSWORD=",
				"PGPASSWORD= psql -h db1",
				"STRIPE_SECRET_KEY=sk_test_u7qnQTupqziQPtDu7W7eaDNK",
				"DB_PASSWORD=${DB_PASSWORD}",
				"password: $DB_PASS",
				"password = <password>",
				"password: changeme",
				"password: your_password_here",
				"password_file = /run/secrets/db",
				"PASS_MIN_LEN password_min_length = 12",
				"password = self.password",
				"password = getpass.getpass(prompt)",
				"password: ********",
				"password=%(db_password)s",
				"password: {{ vault_db_password }}",
				"show_password = true",
				"secret_name: hr-db-credentials",
				"password: str",
				"password = xyz",
				"dpkg: base-passwd: dependency problems, but configuring anyway as you requested:",
				"2026-11-26 01:28:35 install base-passwd:amd64 <none> 3.6.1",
				"d_pwpasswd='define'",
				"def connect(host, user, pwd=None):",
				"password: #Tr0ub4dor3xyzQ\n",
				// Python's standard library (smtplib, ftplib, nntplib,
				// urllib.request, logging.handlers) and vim's runtime.
				"        self.user, self.password = user, password\n",
				"    userid = passwd = acct = ''\n",
				"                    password = auth[2]\n",
				"        self.passwd = password_mgr\n",
				"            self.username, self.password = credentials\n",
				"  let s:netrw_hup[host].passwd = s:netrw_passwd\n",
				"    let s:netrw_passwd = s:netrw_hup[host].passwd\n",
				"\tlet pwd = a:dict.istemp ? a:dict.tmpdir : ''\n",
				"password = os.environ['DB_PASSWORD']\n",
				"password = getpass()\n",
				"_CLIENT_SECRET = 'CLIENT_SECRET'\n",
				// openssl.cnf: a prompt and a comment after an empty value.
				"challengePassword		= A challenge password\n",
				"secret = # disable PBM\n",
				// Shell variables, not crypt hashes.
				"local pwd=$prefix$filename\n",
				"export DB_PASSWORD=$secret$suffixval\n",
				"export DB_PASSWORD=$1$suffix\n",
				// Node's vm docs, a Sphinx role, libvirt's sample password.
				"  'Object.getPrototypeOf(import.meta.prop).secret = secret;',\n",
				":type passphrase: :py:data:`bytes`\n",
				"vnc_password = \\\"XYZ12345\\\"\n",
				// Code whose tuple or keyword the option-list rules must not
				// let through.
				"        self.user, self.password = user, passw0rd\n",
				"    local password = getpw\n",
				"conn = connect(host,\n    pwd=None)\n",
			},
		},
		{
			ID:          "db-connection-uri",
			Description: "A database or broker URI with a password: postgres://, postgresql://, mysql://, mariadb://, mongodb://, mongodb+srv://, redis://, rediss://, amqp://, amqps://, mssql://, sqlserver://, clickhouse://, and SQLAlchemy's dialect+driver:// forms (postgresql+psycopg2://, mysql+pymysql://). The secret is the password: up to the last '@' before the first '/', '?' or '#', as URL parsers (Python's, SQLAlchemy's) split a password holding an unescaped '@'; else up to the first '@' before the first '/', as libpq takes a password holding an unescaped '#' or '?'.",
			Scope:       everyText,
			Keywords:    []string{"postgres://", "postgresql://", "mysql://", "mariadb://", "mongodb://", "mongodb+srv://", "redis://", "rediss://", "amqp://", "amqps://", "mssql://", "sqlserver://", "clickhouse://", "postgres+", "postgresql+", "mysql+", "mariadb+", "mssql+", "clickhouse+"},
			Regex:       re(`(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb|rediss?|amqps?|mssql|sqlserver|clickhouse)(?:\+[a-z0-9_]+)?://[^\s:@/"'<>]*:((?:[^\s/?#"'<>]+|[^\s/@"'<>]+))@[^\s@/?#"'<>]+[^\s"'<>]*`),
			verify:      realValue(3),
			MustMatch: []string{
				"DATABASE_URL=postgres://hr_app:z2oCtIsjhvNK4p@db1.internal:5432/hr",
				`"mongodb+srv://backup:z2oCtIsjhvNK4p@cluster0.example.net/admin"`,
				"REDIS_URL=redis://:z2oCtIsjhvNK4p@cache:6379/0",
				"amqp://guest:z2oCtIsjhvNK4p@rabbit:5672/",
				"mysql://root:s3cr3t-pw@127.0.0.1/app",
				`url = "postgres://app:p@ss:w0rd9X@db.internal:5432/hr"`,
				"DATABASE_URL=postgresql://app:Xq7#vLp92mZr8@db1/hr",
				"url = postgres://app:p?ss9w0rd9X@db.internal:5432/hr",
				"sql_alchemy_conn = postgresql+psycopg2://airflow:A1rfl0wPw9x@db1/airflow",
				"SQLALCHEMY_DATABASE_URI = 'mysql+pymysql://hr:PyMy5qlPw9@db3/hr'",
			},
			MustNotMatch: []string{
				"DATABASE_URL=postgres://hr_app@db1.internal:5432/hr",
				"DATABASE_URL=postgres://hr_app:${DB_PASSWORD}@db1/hr",
				"postgres://user:password@localhost/db",
				"postgresql://user:<password>@host/db",
				"redis://localhost:6379/0",
			},
		},
		{
			ID:          "jdbc-password",
			Description: "A JDBC URL carrying a password: a password= (or pwd=) property, or Oracle's thin user/password@ form.",
			Scope:       everyText,
			Keywords:    []string{"jdbc:"},
			Regex:       re(`(?i)jdbc:(?:oracle:thin:[^/\s"'@:]+/([^@\s"'/]+)@|[a-z0-9]+:[^\s"'<>]*?[;?&:](?:password|pwd)=([^;&\s"'<>]+))`),
			verify:      realValue(3),
			MustMatch: []string{
				"url=jdbc:postgresql://db1:5432/hr?user=hr_app&password=z2oCtIsjhvNK4p",
				"jdbc:sqlserver://sql1:1433;databaseName=hr;user=sa;password=z2oCtIsjhvNK4p;encrypt=true",
				"jdbc:oracle:thin:scott/z2oCtIsjhvNK4p@db1:1521:ORCL",
			},
			MustNotMatch: []string{
				"jdbc:postgresql://db1:5432/hr?user=hr_app",
				"jdbc:postgresql://db1/hr?user=hr_app&password=${DB_PASSWORD}",
				"jdbc:oracle:thin:@db1:1521:ORCL",
			},
		},
		{
			ID:          "odbc-password",
			Description: "The Pwd= or Password= of an ODBC, ADO.NET or OLE DB connection string (a line with ';' and a Server=, Data Source=, Uid=, Driver=, DSN= or Database= key).",
			Scope:       everyText,
			Keywords:    []string{"pwd", "password"},
			Regex:       re(`(?i)(?:^|[; \t"'{])(?:pwd|password)[ \t]*=[ \t]*(?:\{([^}\r\n]*)\}|"([^"\r\n]*)"|([^;"'\r\n]*[^;"'\r\n \t]))`),
			anchor:      anchorSep,
			verify:      verifyODBC,
			MustMatch: []string{
				"Driver={ODBC Driver 18 for SQL Server};Server=sql1;Database=hr;Uid=sa;Pwd=z2oCtIsjhvNK4p;",
				`"ConnectionStrings": {"Hr": "Data Source=sql1;Initial Catalog=hr;User ID=hr;Password=z2oCtIsjhvNK4p;"}`,
				"Server=sql1;Uid=sa;Pwd={z2oCt;sjhvNK4p};",
			},
			MustNotMatch: []string{
				"Server=sql1;Database=hr;Uid=sa;Pwd=;",
				"Server=sql1;Database=hr;Uid=sa;Pwd={your_password};",
				"Server=sql1;Database=hr;Trusted_Connection=yes;",
				"Pwd=z2oCtIsjhvNK4p",
			},
		},
		{
			ID:          "pgpass",
			Description: "A password in a PostgreSQL password file (host:port:database:user:password lines).",
			Scope:       "files named .pgpass or pgpass.conf",
			Path:        re(`(?:^|/)(?:\.pgpass|pgpass\.conf)$`),
			Regex:       re(`(?m)^[^#:\r\n][^:\r\n]*:[^:\r\n]*:[^:\r\n]*:[^:\r\n]*:([^\r\n]+)`),
			verify:      realValue(1),
			TestPath:    "/home/hr/.pgpass",
			MustMatch: []string{
				"db1.internal:5432:hr:hr_app:z2oCtIsjhvNK4p\n",
				"# comment\n*:*:*:postgres:z2oCtIsjhvNK4p",
			},
			MustNotMatch: []string{
				"# hostname:port:database:username:password\n",
				"db1:5432:hr:hr_app:\n",
			},
		},
		{
			ID:          "mysql-cnf-password",
			Description: "A password= in a MySQL/MariaDB option file.",
			Scope:       "files named .my.cnf, my.cnf, debian.cnf or *.cnf under a mysql directory",
			Path:        re(`(?:^|/)(?:\.my\.cnf|my\.cnf|debian\.cnf|mysql/.*\.cnf)$`),
			Keywords:    []string{"password"},
			Regex:       re(`(?m)^[ \t]*password[ \t]*=[ \t]*` + quotedValue),
			verify:      verifyMyCnf,
			unquoted:    3,
			TestPath:    "/root/.my.cnf",
			MustMatch: []string{
				"[client]\nuser=root\npassword=z2oCtIsjhvNK4p\n",
				"[mysqladmin]\npassword = \"z2oCt sjhvNK4p\"\n",
				"[client]\npassword=\"z2o\\\"CtIsjhvNK4p\"\n",
				"[client]\npassword = my long pass phrase # rotated\n",
			},
			MustNotMatch: []string{
				"[client]\nuser=root\npassword=\n",
				"[client]\npassword = ${MYSQL_PWD}\n",
			},
		},
		{
			ID:          "netrc-password",
			Description: "A password in a .netrc (machine … login … password …); a double-quoted one (curl, Python's netrc) is taken whole, \\ escapes included.",
			Scope:       "files named .netrc or _netrc",
			Path:        re(`(?:^|/)[._]netrc$`),
			Keywords:    []string{"password"},
			Regex:       re(`(?:^|[ \t])password[ \t]+(?:"((?:[^"\\\r\n]|\\[^\r\n])*)"|([^ \t\r\n"]+))`),
			verify:      verifyNetrc,
			TestPath:    "/root/.netrc",
			MustMatch: []string{
				"machine ftp.internal login backup password z2oCtIsjhvNK4p\n",
				"machine api.internal\n  login deploy\n  password z2oCtIsjhvNK4p\n",
				"machine q.internal login q password \"N3trc Pw9x \\\"quoted\"\n",
			},
			MustNotMatch: []string{
				"machine ftp.internal login anonymous\n",
				"default login anonymous password\n",
				"# the password is rotated monthly\n",
			},
		},
		{
			ID:          "git-credentials",
			Description: "A credential stored by git's credential store (https://user:token@host lines).",
			Scope:       "files named .git-credentials or git/credentials",
			Path:        re(`(?:^|/)(?:\.git-credentials|git/credentials)$`),
			Regex:       re(`(?m)^[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@\s]+)@[^\s]+`),
			verify:      realValue(1),
			TestPath:    "/home/dev/.git-credentials",
			MustMatch: []string{
				"https://dev:z2oCtIsjhvNK4p@git.internal\n",
				"https://x-access-token:ghs_FfWd3hjOkYRBMeyyMDHqJ38aRUhR4IWrXPvh@github.com\n",
			},
			MustNotMatch: []string{
				"https://git.internal\n",
				"https://dev@git.internal\n",
			},
		},
		{
			ID:          "docker-config-auth",
			Description: `A registry credential in a Docker or Podman auth file (config.json, .dockercfg, auth.json): an "auth" that is base64 of user:password, or an "identitytoken".`,
			Scope:       everyText,
			Keywords:    []string{`"auth"`, `"identitytoken"`},
			Regex:       re(`(?i)"(?:auth|identitytoken)"[ \t]*:[ \t]*"([A-Za-z0-9+/=._-]{8,})"`),
			verify:      verifyDockerAuth,
			TestPath:    "/root/.docker/config.json",
			MustMatch: []string{
				`{"auths": {"registry.internal": {"auth": "ZGVwbG95Ok1NWU5vWEh5QzZDdDNMQnRLTmRO"}}}`,
				`{"auths": {"registry.internal": {"identitytoken": "9Vg8WnOnqQfkplJekaACSMEscosTsS3DeRo7qYYO"}}}`,
			},
			MustNotMatch: []string{
				`{"auths": {"registry.internal": {"auth": ""}}}`,
				`{"auths": {"registry.internal": {"auth": "ZGVwbG95Og=="}}}`,
				`{"auth": "bm90LWEtY3JlZGVudGlhbA=="}`,
			},
		},
		{
			ID:          "kubeconfig-client-key",
			Description: "A client private key embedded in a kubeconfig (client-key-data, base64 of a PEM key).",
			Scope:       everyText,
			Keywords:    []string{"client-key-data"},
			Regex:       re(`client-key-data:[ \t]*["']?([A-Za-z0-9+/=]{40,})`),
			verify:      verifyKubeKey,
			MustMatch: []string{
				"users:\n- name: admin\n  user:\n    client-key-data: " + kubeKeyData + "\n",
			},
			MustNotMatch: []string{
				"    client-key-data: DATA+OMITTED\n",
				"    client-key-data: REDACTED\n",
				"    client-key-data: aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQK\n",
			},
		},
		{
			ID:          "kubeconfig-token",
			Description: "A bearer token, id-token or refresh-token in a kubeconfig user entry.",
			Scope:       "kubeconfig files: .kube/config, *kubeconfig*, the /etc/kubernetes *.conf files (admin.conf, kubelet.conf, bootstrap-kubelet.conf…) and files of those names elsewhere",
			Path:        re(`(?:^|/)(?:\.kube/config|[^/]*kubeconfig[^/]*|etc/kubernetes/[^/]+\.conf|(?:admin|kubelet|controller-manager|scheduler|super-admin)\.conf)$`),
			Keywords:    []string{"token"},
			Regex:       re(`(?m)^[ \t]*(?:-[ \t]+)?(?:token|id-token|refresh-token|access-token):[ \t]*["']?([A-Za-z0-9._~+/=:-]{16,})`),
			verify:      realValue(16),
			TestPath:    "/root/.kube/config",
			MustMatch: []string{
				"users:\n- name: ci\n  user:\n    token: 9Vg8WnOnqQfkplJekaACSMEscosTsS3DeRo7qYYO\n",
				"    token: " + testJWT + "\n",
			},
			MustNotMatch: []string{
				"users:\n- name: ci\n  user:\n    token: REDACTED\n",
				"    token: 07401b\n",
				"    tokenFile: /var/run/secrets/token\n",
			},
		},
		{
			ID:          "cloud-init-password",
			Description: "A password or password hash in cloud-init user data or config: password:, plain_text_passwd:, passwd: and hashed_passwd: (users and chpasswd entries), also in user data held as a YAML string (the Ubuntu installer's userdata_raw in cloud.cfg.d/99-installer.cfg). RANDOM and R (cloud-init's generated passwords) are not reported.",
			Scope:       "cloud-init user-data, vendor-data, cloud.cfg and cloud.cfg.d/*.cfg",
			Path:        re(`(?:^|/)(?:user-data(?:\.txt)?(?:\.i)?|vendor-data(?:\.txt)?(?:\.i)?|cloud\.cfg|cloud\.cfg\.d/[^/]+\.cfg|[^/]*cloud-config[^/]*\.ya?ml)$`),
			Keywords:    []string{"passw"},
			Regex: re(`(?m)(?:^[ \t]*(?:-[ \t]+)?(?:password|plain_text_passwd|passwd|hashed_passwd)[ \t]*:[ \t]*(?:` + dqValue + `|'((?:[^'\r\n]|'')*)'|([^ \t\r\n#"']+))` +
				// User data held in a double-quoted YAML string, as the
				// Ubuntu installer writes it to 99-installer.cfg
				// (userdata_raw: "#cloud-config\n...\n  passwd: $6$...\n\),
				// escaped newlines and PyYAML's "\ " line continuations.
				`|(?:\\n|^[ \t]*\\)(?:\\[ \t]|[ \t])*(?:-[ \t]+)?(?:password|plain_text_passwd|passwd|hashed_passwd):[ \t]*([^\s\\"']+))`),
			verify:   realValue(1),
			TestPath: "/var/lib/cloud/instance/user-data.txt",
			MustMatch: []string{
				"#cloud-config\nusers:\n  - name: hr\n    passwd: $6$rounds=4096$Yt3a$Qm1lXz0T0m9vVhZxS2ZkP0sTqNnV1S4pYxH5dJ8eF3kL2cB7aR6wU9iO0pQ1zX2yV3tW4sU5rT6qP7oN8mL9\n",
				"#cloud-config\npassword: z2oCtIsjhvNK4p\nchpasswd: { expire: False }\n",
				"#cloud-config\nchpasswd:\n  users:\n    - name: root\n      password: \"z2oCtIsjhvNK4p\"\n      type: text\n",
				"#cloud-config\npassword: 'z2o''CtIsjhvNK4p'\n",
				"datasource:\n  None:\n    userdata_raw: \"#cloud-config\\nusers:\\n- gecos: hr\\n  name: hr\\n  passwd: $6$rBKS0fyVq2B8ND7o$B2kXyW2v9vY8B9UmV.z1xQ3p7F8rZ6oS2T0dC4hG5jK1lM3nO6pQ8rS0tU2vW4xY6zA8bC0dE2fG4hI6jK8lM0\\n\\\n      \\  shell: /bin/bash\\n\"\n",
				"    userdata_raw: \"#cloud-config\\nusers:\\n- gecos: hr\\n  groups: adm,sudo\\n\\\n      \\  passwd: $6$rBKS0fyVq2B8ND7o$B2kXyW2v9vY8B9UmV.z1xQ3p7F8rZ6oS2T0dC4hG5jK1lM3nO6pQ8rS0tU2vW4xY6zA8bC0dE2fG4hI6jK8lM0\\n\"\n",
			},
			MustNotMatch: []string{
				"#cloud-config\nchpasswd:\n  users:\n    - name: root\n      password: RANDOM\n",
				"#cloud-config\nssh_pwauth: false\n",
				"#cloud-config\npassword: \n",
				"    userdata_raw: \"#cloud-config\\nusers:\\n- name: hr\\n  lock_passwd: true\\n  shell: /bin/bash\\n\"\n",
			},
		},
		{
			ID:          "cloud-init-chpasswd-list",
			Description: "A user:password line of a cloud-init chpasswd list (the list: | block form).",
			Scope:       "cloud-init user-data, vendor-data, cloud.cfg and cloud.cfg.d/*.cfg",
			Path:        re(`(?:^|/)(?:user-data(?:\.txt)?(?:\.i)?|vendor-data(?:\.txt)?(?:\.i)?|cloud\.cfg|cloud\.cfg\.d/[^/]+\.cfg|[^/]*cloud-config[^/]*\.ya?ml)$`),
			Regex:       re(`(?m)^[ \t]+(?:-[ \t]+)?[a-z_][a-z0-9_.-]*:([^ \t\r\n:/"'][^ \t\r\n]*)[ \t]*\r?$`),
			verify: func(c *candidate) bool {
				return len(c.secret) > 1 && !placeholder(c.secret)
			},
			TestPath: "/var/lib/cloud/seed/nocloud/user-data",
			MustMatch: []string{
				"#cloud-config\nchpasswd:\n  list: |\n    root:z2oCtIsjhvNK4p\n    hr:RANDOM\n  expire: False\n",
			},
			MustNotMatch: []string{
				"#cloud-config\nchpasswd:\n  list: |\n    hr:RANDOM\n    ops:R\n",
				"#cloud-config\npackages:\n  - nginx\nruncmd:\n  - echo http://mirror\n",
			},
		},
		{
			ID:          "shadow-hash",
			Description: "A usable password hash in /etc/shadow or /etc/gshadow (and their - backups). Locked or disabled entries (*, !, !!, !*, empty) are not reported; a hash behind a '!' (a locked account) is, since it can still be cracked.",
			Scope:       "/etc/shadow, /etc/gshadow and their - backups",
			Path:        re(`(?:^|/)etc/g?shadow-?$`),
			Regex:       re(`(?m)^[^:\r\n]+:(!?(?:\$[0-9a-z]{1,6}\$[^:\r\n]+|[./0-9A-Za-z]{13}|_[./0-9A-Za-z]{19}))(?::|\r?$)`),
			TestPath:    "/etc/shadow",
			MustMatch: []string{
				"root:$y$j9T$Jx9s0bC0kq1p3m5n7Q9rS.$Xk3ZqP0aV7d2F8hJ1lN4pR6tW9yB5cE2gI8kM0oQ3sU:19700:0:99999:7:::\n",
				"hr:!$6$Yt3a$Qm1lXz0T0m9vVhZxS2ZkP0sTqNnV1S4pYxH5dJ8eF3kL2cB7aR6wU9iO0pQ1zX2yV3tW4sU5rT6qP7oN8mL9:19700:0:99999:7:::\n",
				"legacy:ab01FAX.bQRSU:19700::::::\n",
				"sha1:$sha1$40000$jtNX3nZ2$0hAhGtPLrDWUTIANHpXbOdTPo8tv:19700:0:99999:7:::\n",
				"bsdi:_J9..rIvOuQ3M2kQ4Wk6:19700::::::\n",
			},
			MustNotMatch: []string{
				"root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n",
				"hr:!:19700:0:99999:7:::\nops:!*:19700::::::\nold:!!:19700::::::\nnopw::19700::::::\n",
			},
		},
		{
			ID:          "ldap-bind-password",
			Description: "An LDAP bind password: bindpw/rootbindpw in nslcd.conf, pam_ldap's and libnss-ldap's ldap.conf, and ldap_default_authtok in sssd.conf. The value is the rest of the line.",
			Scope:       "nslcd.conf, ldap.conf, pam_ldap.conf, libnss-ldap.conf, sssd.conf and sssd/conf.d/*.conf",
			Path:        re(`(?:^|/)(?:nslcd\.conf|ldap\.conf|pam_ldap\.conf|libnss-ldap\.conf|sssd\.conf|sssd/conf\.d/[^/]+\.conf)$`),
			Keywords:    []string{"bindpw", "authtok"},
			Regex:       re(`(?m)^[ \t]*(?:(?:root)?bindpw[ \t]+|ldap_default_authtok[ \t]*=[ \t]*)([^ \t\r\n](?:[^\r\n]*[^ \t\r\n])?)`),
			verify:      realValue(1),
			TestPath:    "/etc/nslcd.conf",
			MustMatch: []string{
				"uri ldap://ldap.internal\nbinddn cn=nslcd,dc=hr\nbindpw NslcdB1ndPw9x\n",
				"[domain/hr]\nldap_default_authtok_type = password\nldap_default_authtok = SssdAuthT0k9x\n",
			},
			MustNotMatch: []string{
				"# bindpw secret\nbinddn cn=nslcd,dc=hr\n",
				"ldap_default_authtok_type = password\n",
			},
		},
		{
			ID:          "ldap-secret-file",
			Description: "The root bind password file of pam_ldap and libnss-ldap (/etc/ldap.secret, /etc/pam_ldap.secret, /etc/libnss-ldap.secret); the whole file is the secret.",
			Scope:       "/etc/ldap.secret, /etc/pam_ldap.secret, /etc/libnss-ldap.secret",
			Path:        re(`(?:^|/)etc/(?:ldap|pam_ldap|libnss-ldap)\.secret$`),
			wholeFile:   notBlank,
			TestPath:    "/etc/ldap.secret",
			MustMatch:   []string{"Ld4pS3cretPw9x\n"},
			MustNotMatch: []string{
				"",
				"\n",
			},
		},
		{
			ID:          "gnupg-private-key",
			Description: "A key in GnuPG's own store (~/.gnupg/private-keys-v1.d/*.key, a private-key or protected-private-key S-expression; GnuPG 1's secring.gpg); the whole file is the secret. An armoured export is pgp-private-key's.",
			Scope:       "private-keys-v1.d/*.key and secring.gpg",
			Path:        re(`(?:^|/)(?:private-keys-v1\.d/[^/]+\.key|secring\.gpg)$`),
			Binary:      true,
			wholeFile:   isGnuPGKey,
			TestPath:    "/root/.gnupg/private-keys-v1.d/A1E59352DC519B85E89DAE6431677FDCC81229FB.key",
			MustMatch: []string{
				"Created: 20261126T043039\nKey: (private-key (ecc (curve Ed25519)(flags eddsa)(q\n  #400732AEC24F88FEAEBFE02F7F4CF2805AE2A569CFEE4AAB10DD720F49747C1440#)\n (d #BF93FD3EBC19735FC6C40087C9D65E5353C7764D5B2C9D38409A5EF8F8A24C60#)\n ))\n",
				"Key: (protected-private-key (rsa (n #00C1#)(e #010001#)(protected openpgp-s2k3-ocb-aes ((sha1 #0011#\n  \"43860992\")#0001#)#0002#)))\n",
				"(21:protected-private-key(3:rsa(1:n3:abc)))",
			},
			MustNotMatch: []string{
				"Key: (shadowed-private-key (rsa (n #00C1#)(e #010001#)(shadowed t1-v1 (#D27600012401#))))\n",
				"",
			},
		},
		{
			ID:          "kerberos-keytab",
			Description: "A Kerberos keytab (binary, starting with 0x05 0x02 and a well-formed first entry); the whole file is the secret.",
			Scope:       everyFile,
			Binary:      true,
			wholeFile:   isKeytab,
			TestPath:    "/etc/krb5.keytab",
			MustMatch:   []string{keytabHead + "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x20"},
			MustNotMatch: []string{
				"\x05\x02 is not a keytab header in text",
				"\x05\x02\x00\x00\x00\x00\x00\x00",
				"\x7fELF\x02\x01\x01\x00",
			},
		},
		{
			ID:          "wordpress-db-password",
			Description: "DB_PASSWORD defined in a WordPress wp-config.php. The sample's password_here is not reported.",
			Scope:       everyText,
			Keywords:    []string{"db_password"},
			Regex:       re(`(?i)define\([ \t]*['"]DB_PASSWORD['"][ \t]*,[ \t]*(?:'((?:[^'\\\r\n]|\\[^\r\n])*)'|` + dqValue + `)`),
			verify:      realValue(1),
			MustMatch: []string{
				"define( 'DB_PASSWORD', 'z2oCtIsjhvNK4p' );",
				`define("DB_PASSWORD", "z2oCtIsjhvNK4p");`,
				`define( 'DB_PASSWORD', 'z2o\'CtIsjhvNK4p' );`,
			},
			MustNotMatch: []string{
				"define( 'DB_PASSWORD', 'password_here' );",
				"define( 'DB_PASSWORD', '' );",
				"define( 'DB_PASSWORD', getenv('DB_PASSWORD') );",
			},
		},
		{
			ID:          "mysql-cli-password",
			Description: "A password on a mysql/mariadb client command line (-pSECRET, --password=SECRET), as left in shell histories and scripts. An unquoted password ends at a blank or at ';', '&' or '|', which end the command, unless a backslash escapes it (-pS3cr\\&t is one word).",
			Scope:       everyText,
			Keywords:    []string{"mysql", "mariadb"},
			Regex:       re(`(?:^|[ \t;&|(])(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump|mariadb-admin)(?:[ \t]+[^ \t\r\n|;&]+){0,16}?[ \t]+(?:-p|--password=)` + shellValue),
			anchor:      anchorSep,
			verify:      realValue(3),
			TestPath:    "/root/.bash_history",
			MustMatch: []string{
				"mysql -u root -pz2oCtIsjhvNK4p hr\n",
				"mysql -pz2oCtIsjhvNK4p\n",
				"mysqldump --user=backup --password='z2oCtIsjhvNK4p' hr > hr.sql\n",
				"mysql -u root -p\"S3cr\\\"t9Xk2\" hr\n",
				"mysql -uroot -pS3cr,t9Xk2;ls\n",
				"mysql -uroot -pS3cr\\&t9Xk2Qz hr\n",
			},
			MustNotMatch: []string{
				"mysql -u root -p hr\n",
				"mysql -u root -p\"$MYSQL_PASSWORD\" hr\n",
				"mysql --port=3306 -h db1\n",
			},
		},
		{
			ID:          "sshpass-password",
			Description: "A password given to sshpass with -p, as left in shell histories and scripts.",
			Scope:       everyText,
			Keywords:    []string{"sshpass"},
			Regex:       re(`sshpass[ \t]+(?:-[a-oq-zA-Z][ \t]+(?:[^ \t\r\n-][^ \t\r\n]*[ \t]+)?)*-p[ \t]*` + shellValue),
			verify:      realValue(3),
			TestPath:    "/root/.bash_history",
			MustMatch: []string{
				"sshpass -p z2oCtIsjhvNK4p ssh root@db1\n",
				"sshpass -p'z2oCtIsjhvNK4p' scp dump.sql backup@nas:\n",
				"sshpass -p Tr0ub\\;4dorXq ssh root@db1\n",
			},
			MustNotMatch: []string{
				"sshpass -e ssh root@db1\n",
				"sshpass -f /root/.pw ssh root@db1\n",
				"sshpass -p \"$SSHPASS\" ssh root@db1\n",
			},
		},
		{
			ID:          "curl-user-password",
			Description: "A user:password given to curl with -u/--user, as left in shell histories and scripts.",
			Scope:       everyText,
			Keywords:    []string{"curl"},
			Regex:       re(`curl(?:[ \t]+[^ \t\r\n|;&]+){0,16}?[ \t]+(?:-u|--user)[ \t=]?['"]?[^:\s'"]+:([^ \t\r\n'"]+)`),
			verify:      realValue(3),
			TestPath:    "/root/.bash_history",
			MustMatch: []string{
				"curl -s -u admin:z2oCtIsjhvNK4p https://jenkins.internal/api/json\n",
				"curl --user 'deploy:z2oCtIsjhvNK4p' -X POST https://nexus/\n",
			},
			MustNotMatch: []string{
				"curl -u admin https://jenkins.internal/\n",
				"curl -u \"$USER:$PASS\" https://jenkins.internal/\n",
				"curl --upload-file a:b https://x/\n",
			},
		},
		{
			ID:          "cli-password-env",
			Description: "A password passed to a command through the environment on its command line (PGPASSWORD=, MYSQL_PWD=, REDISCLI_AUTH=, SSHPASS=, VAULT_TOKEN=).",
			Scope:       everyText,
			Keywords:    []string{"pgpassword=", "mysql_pwd=", "rediscli_auth=", "sshpass=", "vault_token="},
			Regex:       re(`(?:^|[ \t;&|(])(?:export[ \t]+)?(?:PGPASSWORD|MYSQL_PWD|REDISCLI_AUTH|SSHPASS|VAULT_TOKEN)=` + shellValue),
			verify:      realValue(3),
			TestPath:    "/root/.bash_history",
			MustMatch: []string{
				"PGPASSWORD=z2oCtIsjhvNK4p psql -h db1 -U hr_app hr\n",
				"export MYSQL_PWD='z2oCtIsjhvNK4p'\n",
				"PGPASSWORD='ab''cd9Xk2' psql -h db1\n",
				"PGPASSWORD=ab\\;cd9Xk2x psql\n",
			},
			MustNotMatch: []string{
				"PGPASSWORD=$(cat /run/secrets/pg) psql -h db1\n",
				"PGPASSWORD= psql -h db1\n",
			},
		},
		{
			ID: "cli-password-argument",
			Description: "A password given on a command line, as left in shell histories, scripts and cloud-init runcmd: docker/podman/buildah/skopeo/nerdctl login -p/--password, redis-cli -a/--pass, the OpenLDAP clients' -w, smbclient/rpcclient/smbcacls/net ads|rpc -U user%password, htpasswd -b, openssl's pass:, and echo 'user:password' | chpasswd. " +
				"An unquoted password ends at a blank or at ';', '&' or '|' unless a backslash escapes it.",
			Scope:    everyText,
			Keywords: []string{"docker login", "podman login", "buildah login", "skopeo login", "nerdctl login", "redis-cli", "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldappasswd", "ldapwhoami", "ldapmodrdn", "ldapcompare", "ldapexop", "smbclient", "rpcclient", "smbcacls", "net ads", "net rpc", "htpasswd", "-passin", "-passout", "-pass ", "chpasswd"},
			Regex: re(`(?:(?:docker|podman|buildah|skopeo|nerdctl)[ \t]+login` + cliArgs + `[ \t]+(?:-p|--password)(?:[ \t]+|=)` + shellValue +
				`|redis-cli` + cliArgs + `[ \t]+(?:-a|--pass)[ \t]+` + shellValue +
				`|ldap(?:search|add|modify|delete|passwd|whoami|modrdn|compare|exop)` + cliArgs + `[ \t]+-w[ \t]*` + shellValue +
				`|(?:smbclient|rpcclient|smbcacls|net[ \t]+(?:ads|rpc))` + cliArgs + `[ \t]+(?:-U|--user(?:name)?)(?:[ \t]+|=)?['"]?[^%\s'"]+%([^ \t\r\n'"]+)` +
				`|htpasswd[ \t]+(?:-[A-Za-z]+[ \t]+)*-[A-Za-z]*b[A-Za-z]*(?:[ \t]+-[A-Za-z]+)*(?:[ \t]+[^ \t\r\n-][^ \t\r\n]*){1,2}[ \t]+` + shellValue +
				`|-pass(?:in|out)?[ \t]+['"]?pass:([^ \t\r\n'"]+)` +
				`|echo[ \t]+(?:-[a-z]+[ \t]+)?['"]?[A-Za-z_][A-Za-z0-9_.-]*:([^'"\s:|]+)['"]?[ \t]*\|[ \t]*(?:sudo[ \t]+)?chpasswd)`),
			verify:   realValue(4),
			TestPath: "/root/.bash_history",
			MustMatch: []string{
				"docker login -u hrdev -p D0ckerL0ginH1st9x registry.internal\n",
				"podman login --username hr --password='P0dm4nL0gin9x' quay.internal\n",
				"redis-cli -a RedisH1stPw9x -h cache ping\n",
				"ldapsearch -x -D cn=admin,dc=hr -w LdapH1stPw9x -b dc=hr\n",
				"smbclient //fs1/hr -U hr%SmbH1stPw9x\n",
				"net ads join -U administrator%AdJ0inPw9x\n",
				"htpasswd -b -c /etc/nginx/.htpasswd admin Htp4sswdH1st9x\n",
				"htpasswd -nb admin Htp4sswdH1st9x\n",
				"openssl pkcs12 -export -in c.pem -inkey k.pem -out c.p12 -passout pass:P12H1stPw9x\n",
				"echo 'hr:Chp4sswdH1st9x' | chpasswd\n",
				"  - echo root:Chp4sswdH1st9x | sudo chpasswd\n",
			},
			MustNotMatch: []string{
				"docker login -u hrdev --password-stdin registry.internal\n",
				"docker login -u hrdev -p \"$REGISTRY_PASSWORD\" registry.internal\n",
				"redis-cli -h cache ping\n",
				"ldapsearch -x -D cn=admin,dc=hr -W -b dc=hr\n",
				"smbclient //fs1/hr -U hr\n",
				"htpasswd -c /etc/nginx/.htpasswd admin\n",
				"openssl pkcs12 -export -passout env:P12PASS -out c.p12\n",
				"openssl pkcs12 -nodes -nocerts -passin pass:notasecret\n",
				"echo 'hr:$NEWPASS' | chpasswd\n",
			},
		},
		{
			ID:          "url-credentials",
			Description: "A password in a URL's user:password@ part for a scheme other than a database's (https://, http://, ftp://, ssh://, git://, svn://, smb://, ldap://, rsync://): a git clone or remote, a mirror, a proxy setting. Placeholder users, passwords and hosts (example.com) are not reported.",
			Scope:       everyText,
			Keywords:    []string{"https://", "http://", "ftp://", "ftps://", "sftp://", "ssh://", "git://", "svn://", "smb://", "ldap://", "ldaps://", "rsync://"},
			Regex:       re(`(?:^|[^A-Za-z0-9+.\r\n-])(?:https?|s?ftps?|ssh|git|svn|smb|ldaps?|rsync)://([^\s:@/"'<>\\]+):([^\s/@"'<>\\]+)@[^\s@/"'<>]+`),
			SecretGroup: 2,
			anchor:      anchorSep,
			// URLs are everywhere and almost none holds a password: the
			// regex runs only on a URL's line that has an '@' after it.
			needByte: '@',
			Generic:  true,
			verify:   verifyURLCredentials,
			TestPath: "/root/.bash_history",
			MustMatch: []string{
				"git clone https://dev:GitH1stPw9x@git.internal/hr/app.git\n",
				"export https_proxy=http://hr:Pr0xyPw9xq@proxy.internal:3128\n",
				"git remote add origin https://dev:GitH1stPw9x@git.internal/hr/app.git\n",
				"[remote \"origin\"]\n\turl = https://ci:GitH1stPw9x@git.internal/hr/app.git\n",
			},
			MustNotMatch: []string{
				"git clone https://git.internal/hr/app.git\n",
				"https://user:password@example.com/\n",
				"http://foo:bar@host/\n",
				"https://${GIT_USER}:${GIT_TOKEN}@git.internal/\n",
				"see http://www.example.com:8080/@home\n",
				"http://JeremyCline:Hunter2@example.com:8080/\n",
				`syn match rebolURL "ftp://\(\k\+:\k\+@\)\=\k\+"` + "\n",
			},
		},
		{
			ID:          "generic-api-key",
			Description: "A high-entropy value (16+ characters, entropy above 3.5 bits) assigned to a key named like api_key, apikey, access_token, auth_token or private_token.",
			Scope:       everyText,
			Keywords:    []string{"api_key", "apikey", "api-key", "access_token", "accesstoken", "access-token", "auth_token", "authtoken", "auth-token", "private_token", "private-token"},
			Regex:       re(`(?i)[a-z0-9_.-]*(?:api_?key|api-key|access_?token|access-token|auth_?token|auth-token|private_?token|private-token)["']?[ \t]*(?:=>|:=|=|:)[ \t]*["']?([A-Za-z0-9_\-+/=.~]{16,})`),
			anchor:      anchorIdent,
			Entropy:     3.5,
			Generic:     true,
			verify:      realValue(16),
			MustMatch: []string{
				"API_KEY=9Vg8WnOnqQfkplJekaACSMEscosTsS3DeRo7qYYO",
				`"access_token": "9Vg8WnOnqQfkplJekaACSMEscosTsS3DeRo7qYYO"`,
			},
			MustNotMatch: []string{
				"API_KEY=aaaaaaaaaaaaaaaaaaaaaaaa",
				"API_KEY=${API_KEY}",
				"api_key: your-api-key-goes-here-please",
			},
		},
		{
			ID:          "google-api-key",
			Description: "A Google API key (AIza…).",
			Scope:       everyText,
			Keywords:    []string{"aiza"},
			Regex:       re(`\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_\n-]|$)`),
			Entropy:     3.5,
			MustMatch: []string{
				"GOOGLE_API_KEY=AIza44B8vkKQlENCzsdfF8j61yX-ZFsan2Cw7gF",
			},
			MustNotMatch: []string{
				"GOOGLE_API_KEY=AIzaxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			},
		},
		{
			ID:          "npm-access-token",
			Description: "An npm access token (npm_).",
			Scope:       everyText,
			Keywords:    []string{"npm_"},
			Regex:       re(`\b(npm_[A-Za-z0-9]{36})\b`),
			Entropy:     3,
			MustMatch: []string{
				"//registry.npmjs.org/:_authToken=npm_62hDiZDQHJMu8W5CN0U5GB16JC5kV3ECqWp1",
			},
			MustNotMatch: []string{
				"//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
				"npm_config_cache=/tmp/npm_cache_directory_for_builds_xx",
			},
		},
		{
			ID:          "pypi-upload-token",
			Description: "A PyPI API token (pypi-AgEIcHlwaS5vcmc…).",
			Scope:       everyText,
			Keywords:    []string{"pypi-ageichlwas5vcmc"},
			Regex:       re(`\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})`),
			Entropy:     3,
			MustMatch: []string{
				"password = pypi-AgEIcHlwaS5vcmcJ_EJ4jKEIQOkrtDXtBi10Q71hA1XcW9aTMX1C_CI3_dXRZv7qdYdk2r7xgHW",
			},
			MustNotMatch: []string{
				"token = pypi-AgEIcHlwaS5vcmc",
			},
		},
	}
}
