package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

// The generated corpus: files of config-, log- and source-like filler with
// planted secrets of every rule at known places, and decoy files holding
// every rule's MustNotMatch strings among the same filler. Same seed, same
// bytes.

type plant struct {
	rule  string
	path  string
	line  int
	off   int
	value string
}

type corpusFile struct {
	path string
	data []byte
}

const (
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b64    = alnum + "+/"
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	digits = "0123456789"
	pwChar = alnum + "!%^*_-"
)

func rnd(r *rand.Rand, chars string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.Intn(len(chars))]
	}
	return string(b)
}

// wrap breaks s into lines of n characters joined by sep.
func wrap(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

func b64url(v any) string {
	j, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(j)
}

// plantFn makes one planted secret: the file path (empty: any text file),
// the text before the value, the value and the text after it.
type plantFn func(r *rand.Rand, n int) (path, before, value, after string)

func password(r *rand.Rand) string { return rnd(r, alnum, 3) + rnd(r, pwChar, 11) }

var planters = map[string]plantFn{
	"private-key": func(r *rand.Rand, n int) (string, string, string, string) {
		body := base64.StdEncoding.EncodeToString([]byte(rnd(r, b64, 300+r.Intn(1200))))
		return fmt.Sprintf("/home/u%d/.ssh/id_ed25519", n), "-----BEGIN OPENSSH PRIVATE KEY-----\n", wrap(body, 70, "\n"), "\n-----END OPENSSH PRIVATE KEY-----\n"
	},
	"pgp-private-key": func(r *rand.Rand, n int) (string, string, string, string) {
		body := wrap(base64.StdEncoding.EncodeToString([]byte(rnd(r, b64, 900))), 64, "\n") + "\n=" + rnd(r, alnum, 4)
		return "", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: release signing\n\n", body, "\n-----END PGP PRIVATE KEY BLOCK-----\n"
	},
	"gcp-service-account-key": func(r *rand.Rand, n int) (string, string, string, string) {
		body := wrap(base64.StdEncoding.EncodeToString([]byte(rnd(r, b64, 1200))), 64, `\n`)
		return fmt.Sprintf("/opt/app%d/sa.json", n), `{"type": "service_account", "project_id": "hr-prod", "private_key": "-----BEGIN PRIVATE KEY-----\n`, body,
			`\n-----END PRIVATE KEY-----\n", "client_email": "backup@hr-prod.iam.gserviceaccount.com"}` + "\n"
	},
	"aws-access-key-id": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "AWS_ACCESS_KEY_ID=", "AKIA" + rnd(r, base32, 16), "\n"
	},
	"aws-secret-access-key": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "aws_secret_access_key = ", rnd(r, b64, 40), "\n"
	},
	"azure-storage-connection-string": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "Storage=DefaultEndpointsProtocol=https;AccountName=hr;AccountKey=", rnd(r, b64, 86) + "==", ";EndpointSuffix=core.windows.net\n"
	},
	"azure-storage-account-key": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "AZURE_STORAGE_KEY=", rnd(r, b64, 86) + "==", "\n"
	},
	"github-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "  token: ", "ghp_" + rnd(r, alnum, 36), "\n"
	},
	"github-fine-grained-pat": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "GH_TOKEN=", "github_pat_" + rnd(r, alnum, 22) + "_" + rnd(r, alnum, 59), "\n"
	},
	"gitlab-pat": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "GITLAB_TOKEN=", "glpat-" + rnd(r, alnum, 20), "\n"
	},
	"gitlab-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", `  token = "`, "glrt-" + rnd(r, alnum, 24), "\"\n"
	},
	"slack-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "SLACK_BOT_TOKEN=", "xoxb-" + rnd(r, digits, 12) + "-" + rnd(r, digits, 13) + "-" + rnd(r, alnum, 24), "\n"
	},
	"slack-webhook-url": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "webhook: https://hooks.slack.com/services/", "T" + rnd(r, upper, 8) + "/B" + rnd(r, upper, 10) + "/" + rnd(r, alnum, 24), "\n"
	},
	"stripe-secret-key": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "STRIPE_KEY=", "sk_live_" + rnd(r, alnum, 24+r.Intn(70)), "\n"
	},
	"jwt": func(r *rand.Rand, n int) (string, string, string, string) {
		tok := b64url(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." +
			b64url(map[string]any{"sub": "svc-" + rnd(r, alnum, 6), "iat": 1732500000 + r.Intn(1e6)}) + "." + rnd(r, alnum+"_-", 86)
		return "", "Authorization: Bearer ", tok, "\n"
	},
	"password-assignment": func(r *rand.Rand, n int) (string, string, string, string) {
		switch n % 3 {
		case 0:
			return "", "DB_PASSWORD=", password(r), "\n"
		case 1:
			return "", "  password: \"", password(r), "\"\n"
		}
		return "", `    "client_secret": "`, password(r), "\",\n"
	},
	"db-connection-uri": func(r *rand.Rand, n int) (string, string, string, string) {
		scheme := []string{"postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp"}[n%6]
		return "", "DATABASE_URL=" + scheme + "://app:", password(r), "@db" + fmt.Sprint(n) + ".internal:5432/app\n"
	},
	"jdbc-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "jdbc.url=jdbc:postgresql://db1:5432/hr?user=hr&password=", password(r), "\n"
	},
	"odbc-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "conn=Driver={ODBC Driver 18 for SQL Server};Server=sql1;Database=hr;Uid=sa;Pwd=", password(r), ";\n"
	},
	"pgpass": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.pgpass", n), "db1.internal:5432:hr:hr_app:", password(r), "\n"
	},
	"mysql-cnf-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.my.cnf", n), "[client]\nuser=root\npassword=", password(r), "\n"
	},
	"netrc-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.netrc", n), "machine ftp.internal login backup password ", password(r), "\n"
	},
	"git-credentials": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.git-credentials", n), "https://dev:", password(r), "@git.internal\n"
	},
	"docker-config-auth": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.docker/config.json", n), `{"auths": {"registry.internal": {"auth": "`,
			base64.StdEncoding.EncodeToString([]byte("deploy:" + password(r))), "\"}}}\n"
	},
	"kubeconfig-client-key": func(r *rand.Rand, n int) (string, string, string, string) {
		pem := "-----BEGIN RSA PRIVATE KEY-----\n" + wrap(rnd(r, b64, 800), 64, "\n") + "\n-----END RSA PRIVATE KEY-----\n"
		return "", "    client-key-data: ", base64.StdEncoding.EncodeToString([]byte(pem)), "\n"
	},
	"kubeconfig-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.kube/config", n), "users:\n- name: ci\n  user:\n    token: ", rnd(r, alnum, 40), "\n"
	},
	"cloud-init-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/var/lib/cloud/instances/i-%d/user-data.txt", n), "#cloud-config\nusers:\n  - name: hr\n    plain_text_passwd: ", password(r), "\n"
	},
	"cloud-init-chpasswd-list": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/var/lib/cloud/seed/nocloud-%d/user-data", n), "#cloud-config\nchpasswd:\n  list: |\n    root:", password(r), "\n    hr:RANDOM\n  expire: False\n"
	},
	"shadow-hash": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/srv/chroot%d/etc/shadow", n), "daemon:*:19700:0:99999:7:::\nroot:", "$6$" + rnd(r, alnum, 16) + "$" + rnd(r, alnum+"./", 86), ":19700:0:99999:7:::\n"
	},
	"wordpress-db-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/var/www/site%d/wp-config.php", n), "<?php\ndefine( 'DB_NAME', 'wp' );\ndefine( 'DB_PASSWORD', '", password(r), "' );\n"
	},
	"mysql-cli-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.bash_history", n), "ls -la\nmysql -u root -p", password(r), " hr\n"
	},
	"sshpass-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.zsh_history", n), "cd /tmp\nsshpass -p ", password(r), " ssh root@db1\n"
	},
	"curl-user-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "curl -s -u admin:", password(r), " https://jenkins.internal/api/json\n"
	},
	"cli-password-env": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "PGPASSWORD=", password(r), " psql -h db1 -U hr_app hr\n"
	},
	"cli-password-argument": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.bash_history", n), "cd /srv\ndocker login -u hr -p ", password(r), " registry.internal\n"
	},
	"url-credentials": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/home/u%d/.bash_history", n), "git clone https://dev:", password(r), "@git.internal/hr/app.git\n"
	},
	"ldap-bind-password": func(r *rand.Rand, n int) (string, string, string, string) {
		return fmt.Sprintf("/srv/chroot%d/etc/nslcd.conf", n), "uid nslcd\ngid nslcd\nuri ldap://ldap.internal/\nbinddn cn=nslcd,dc=hr\nbindpw ", password(r), "\n"
	},
	"generic-api-key": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "API_KEY=", rnd(r, alnum, 32), "\n"
	},
	"google-api-key": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "maps_key: ", "AIza" + rnd(r, alnum+"_-", 35), "\n"
	},
	"npm-access-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "//registry.npmjs.org/:_authToken=", "npm_" + rnd(r, alnum, 36), "\n"
	},
	"pypi-upload-token": func(r *rand.Rand, n int) (string, string, string, string) {
		return "", "password = ", "pypi-AgEIcHlwaS5vcmc" + rnd(r, alnum+"_-", 60), "\n"
	},
}

// keytab builds a plausible keytab file.
func keytab(r *rand.Rand) []byte {
	var b bytes.Buffer
	b.Write([]byte{5, 2})
	entry := []byte{0, 2, 0, 11}
	entry = append(entry, "EXAMPLE.COM"...)
	entry = append(entry, 0, 4)
	entry = append(entry, "host"...)
	entry = append(entry, 0, 3)
	entry = append(entry, "db1"...)
	entry = append(entry, 0, 0, 0, 1, 0x65, 0, 0, 0, 2, 0, 0x12, 0, 32)
	entry = append(entry, rnd(r, b64, 32)...)
	binary.Write(&b, binary.BigEndian, int32(len(entry)))
	b.Write(entry)
	return b.Bytes()
}

// filler lines look like what fills real systems: settings, log lines,
// shell and source code, prose, some of them mentioning passwords, keys
// and tokens without holding one.
var fillerLines = []string{
	"# Set the password policy in /etc/security/pwquality.conf",
	"log_level = info",
	"listen: 0.0.0.0:8080",
	"2024-11-26T01:28:35Z INFO request served path=/api/v1/users status=200 duration=23ms",
	"2024-11-26T01:28:36Z WARN auth: token expired for user=hr-app, refreshing",
	`if [ -z "$PASSWORD" ]; then echo "no password given" >&2; exit 1; fi`,
	"password_min_length = 12",
	"export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
	"func (c *Client) Login(user, password string) error {",
	"	secret, err := vault.Read(ctx, path)",
	"The secret key is derived from the passphrase with scrypt.",
	"max_connections = 200",
	"  - name: hr-db",
	"    image: postgres:16",
	`    env: [{name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: hr-db, key: password}}}]`,
	"Nov 26 01:28:35 web1 sshd[812]: Accepted publickey for deploy from 10.0.0.7 port 52144",
	"Nov 26 01:28:35 web1 sudo: pam_unix(sudo:session): session opened for user root",
	"ssl_certificate_key /etc/ssl/private/web.key;",
	"mysql -u root -p hr < schema.sql",
	"curl -fsSL https://get.example.org | sh",
	"storage_driver = overlay2",
	"azure_region = westeurope",
	`"auth_method": "oauth2",`,
	"db_password_file = /run/secrets/db_password",
	"api_key = ${API_KEY}",
	"PASSWORD=${PASSWORD:-}",
	"// Keys are rotated every 90 days; see docs/rotation.md.",
	"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt",
	"ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation",
	"def connect(host, user, pwd=None):",
	"ASIA is a region; AKIA is a prefix of AWS access key IDs.",
	"-----BEGIN CERTIFICATE-----",
	"MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTESMBAGA1UE",
	"-----END CERTIFICATE-----",
}

// commentLines are what files of a strict format may hold besides entries.
var commentLines = []string{
	"# managed by ansible: do not edit",
	"# the password is rotated monthly; see the runbook",
	"#",
	"# hostname:port:database:username:password",
}

func commentFiller(r *rand.Rand, b *bytes.Buffer, lines int) {
	for i := 0; i < lines; i++ {
		b.WriteString(commentLines[r.Intn(len(commentLines))])
		b.WriteByte('\n')
	}
}

func filler(r *rand.Rand, b *bytes.Buffer, lines int) {
	for i := 0; i < lines; i++ {
		b.WriteString(fillerLines[r.Intn(len(fillerLines))])
		b.WriteByte('\n')
	}
}

// genCorpus makes the corpus: per rule, `per` planted secrets, and the
// decoy files.
func genCorpus(seed int64, per int) (files []corpusFile, plants []plant, decoys []corpusFile) {
	r := rand.New(rand.NewSource(seed))
	ids := make([]string, 0, len(planters))
	for id := range planters {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	// Text rules without a path go into shared files, several per file.
	var shared []*bytes.Buffer
	var sharedPlants [][]plant
	for i := 0; i < 8; i++ {
		shared = append(shared, &bytes.Buffer{})
		sharedPlants = append(sharedPlants, nil)
	}
	put := func(b *bytes.Buffer, id, path, before, value, after string) plant {
		// Files of a strict format (.pgpass, .netrc, kubeconfig) get only
		// comment lines around the secret; other files, any filler.
		fill := filler
		if path != "" && !strings.HasSuffix(path, "_history") && !strings.HasSuffix(path, ".env") && !strings.HasSuffix(path, ".log") {
			fill = commentFiller
		}
		fill(r, b, r.Intn(20))
		b.WriteString(before)
		p := plant{rule: id, path: path, off: b.Len(), value: value}
		p.line = bytes.Count(b.Bytes(), []byte{'\n'}) + 1
		b.WriteString(value)
		b.WriteString(after)
		fill(r, b, r.Intn(20))
		return p
	}
	for _, id := range ids {
		for n := 0; n < per; n++ {
			path, before, value, after := planters[id](r, n)
			if path == "" {
				k := r.Intn(len(shared))
				p := put(shared[k], id, fmt.Sprintf("/srv/app%d/config.env", k), before, value, after)
				sharedPlants[k] = append(sharedPlants[k], p)
				continue
			}
			var b bytes.Buffer
			if strings.HasSuffix(path, "shadow") || strings.HasSuffix(path, ".json") {
				b.WriteString(before) // files with a strict format get no filler
				p := plant{rule: id, path: path, off: b.Len(), value: value, line: bytes.Count(b.Bytes(), []byte{'\n'}) + 1}
				b.WriteString(value)
				b.WriteString(after)
				files = append(files, corpusFile{path, b.Bytes()})
				plants = append(plants, p)
				continue
			}
			p := put(&b, id, path, before, value, after)
			files = append(files, corpusFile{path, b.Bytes()})
			plants = append(plants, p)
		}
	}
	for k, b := range shared {
		files = append(files, corpusFile{fmt.Sprintf("/srv/app%d/config.env", k), b.Bytes()})
		plants = append(plants, sharedPlants[k]...)
	}
	// A keytab: binary, the whole file is the secret.
	for n := 0; n < per; n++ {
		kt := keytab(r)
		path := fmt.Sprintf("/etc/krb5-%d.keytab", n)
		files = append(files, corpusFile{path, kt})
		plants = append(plants, plant{rule: "kerberos-keytab", path: path, line: 1, off: 0, value: string(kt)})
	}
	// A big file: secrets spread across several 256 KiB chunks.
	var big bytes.Buffer
	var bigPlants []plant
	for big.Len() < 3*chunkSize {
		id := ids[r.Intn(len(ids))]
		path, before, value, after := planters[id](r, 0)
		if path != "" {
			filler(r, &big, 200)
			continue
		}
		bigPlants = append(bigPlants, put(&big, id, "/var/log/big.log", before, value, after))
		filler(r, &big, 200+r.Intn(800))
	}
	files = append(files, corpusFile{"/var/log/big.log", big.Bytes()})
	plants = append(plants, bigPlants...)

	// Decoys: each rule's MustNotMatch strings, in a file its rule reads.
	for _, rule := range Builtin() {
		for i, s := range rule.MustNotMatch {
			var b bytes.Buffer
			path := rule.TestPath
			if path == "" {
				path = "/srv/decoy/" + rule.ID + ".conf"
				filler(r, &b, 5)
			}
			b.WriteString(s)
			b.WriteString("\n")
			if rule.TestPath == "" {
				filler(r, &b, 5)
			}
			decoys = append(decoys, corpusFile{fmt.Sprintf("%s#%d", path, i), b.Bytes()})
		}
	}
	return files, plants, decoys
}

// crossRule lists the decoys of one rule that another rule rightly
// reports, with the reason.
var crossRule = map[string]struct{ rule, reason string }{
	"/srv/decoy/odbc-password.conf#3": {"password-assignment", "a bare Pwd= is not a connection string, but it is a password assignment"},
}

// decoyPath strips the #n that keeps decoy file names apart.
func decoyPath(p string) string { return p[:strings.LastIndexByte(p, '#')] }

func TestPlantersCoverEveryRule(t *testing.T) {
	for _, r := range Builtin() {
		// A whole-file rule's secret cannot sit among filler lines; the
		// keytab is planted whole, the others are held to their test
		// strings (TestBuiltinRules).
		if _, ok := planters[r.ID]; !ok && r.wholeFile == nil {
			t.Errorf("no planter for rule %s", r.ID)
		}
	}
}

// TestCorpus: every planted secret is found by its rule at its path, line
// and exact byte span; nothing else is found; no decoy is reported.
func TestCorpus(t *testing.T) {
	files, plants, decoys := genCorpus(1, 3)
	s, err := NewScanner(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		path string
		off  int64
	}
	want := map[key]plant{}
	for _, p := range plants {
		want[key{p.path, int64(p.off)}] = p
	}
	found := map[key]bool{}
	data := map[string][]byte{}
	for _, f := range files {
		data[f.path] = f.data
		err := s.Scan(f.path, bytes.NewReader(f.data), func(fd Finding) {
			k := key{fd.Path, fd.Offset}
			p, ok := want[k]
			if !ok {
				ls := bytes.LastIndexByte(data[fd.Path][:fd.Offset], '\n') + 1
				line := data[fd.Path][ls:]
				if i := bytes.IndexByte(line, '\n'); i >= 0 {
					line = line[:i]
				}
				t.Errorf("unexpected finding %v (offset %d) in line %q", fd, fd.Offset, line)
				return
			}
			if found[k] {
				t.Errorf("reported twice: %v", fd)
			}
			found[k] = true
			if fd.RuleID != p.rule || fd.Line != p.line || fd.Length != int64(len(p.value)) {
				t.Errorf("%s:%d: got rule %s line %d length %d, want rule %s line %d length %d",
					p.path, p.off, fd.RuleID, fd.Line, fd.Length, p.rule, p.line, len(p.value))
			}
			if got := string(data[fd.Path][fd.Offset : fd.Offset+fd.Length]); got != p.value {
				t.Errorf("%v: span does not hold the planted value", fd)
			}
			if fd.Fingerprint != s.fingerprint([]byte(p.value)) {
				t.Errorf("%v: wrong fingerprint", fd)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	perRule := map[string]int{}
	for k, p := range want {
		if !found[k] {
			t.Errorf("missed %s in %s line %d", p.rule, p.path, p.line)
		} else {
			perRule[p.rule]++
		}
	}
	for _, r := range Builtin() {
		if _, planted := planters[r.ID]; perRule[r.ID] == 0 && (planted || r.ID == "kerberos-keytab") {
			t.Errorf("rule %s: no planted secret found", r.ID)
		}
	}
	for _, d := range decoys {
		reported := false
		err := s.Scan(decoyPath(d.path), bytes.NewReader(d.data), func(fd Finding) {
			if x, ok := crossRule[d.path]; ok && x.rule == fd.RuleID {
				reported = true
				return
			}
			t.Errorf("decoy %s reported: %v", d.path, fd)
		})
		if x, ok := crossRule[d.path]; ok && !reported {
			t.Errorf("decoy %s: expected %s to report it (%s)", d.path, x.rule, x.reason)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNoValueLeaks: no planted value appears in any field of any
// finding, in its String form or in its JSON.
func TestNoValueLeaks(t *testing.T) {
	files, plants, _ := genCorpus(2, 2)
	s, err := NewScanner(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	var all []Finding
	for _, f := range files {
		if err := s.Scan(f.path, bytes.NewReader(f.data), func(fd Finding) { all = append(all, fd) }); err != nil {
			t.Fatal(err)
		}
	}
	if len(all) < len(plants) {
		t.Fatalf("%d findings for %d plants", len(all), len(plants))
	}
	for _, fd := range all {
		j, err := json.Marshal(fd)
		if err != nil {
			t.Fatal(err)
		}
		forms := []string{fd.String(), fmt.Sprint(fd), fmt.Sprintf("%+v", fd), fmt.Sprintf("%#v", fd), string(j), fd.Redacted, fd.Fingerprint, fd.Path, fd.RuleID}
		for _, p := range plants {
			for _, f := range forms {
				if strings.Contains(f, p.value) {
					t.Fatalf("a planted %s value appears in a finding (%s)", p.rule, fd.RuleID)
				}
			}
			// Nor a long piece of it: redaction shows at most 8 bytes.
			if len(p.value) >= 16 && strings.Contains(fd.Redacted, p.value[4:len(p.value)-4]) {
				t.Fatalf("the middle of a planted %s value appears in a redaction", p.rule)
			}
		}
	}
}

// TestMarkerScansClean: replacing every finding's span with its rule's
// marker (MarkerFor: Marker, or base64 of it where the value is base64),
// as a sanitizer does, leaves a corpus in which nothing is found.
func TestMarkerScansClean(t *testing.T) {
	files, _, _ := genCorpus(4, 2)
	for _, r := range Builtin() {
		path := r.TestPath
		if path == "" {
			path = "/test.txt"
		}
		for _, m := range r.MustMatch {
			files = append(files, corpusFile{path, []byte(m)})
		}
	}
	s := builtinScanner(t)
	for _, f := range files {
		var spans []Finding
		if err := s.Scan(f.path, bytes.NewReader(f.data), func(fd Finding) { spans = append(spans, fd) }); err != nil {
			t.Fatal(err)
		}
		if len(spans) == 0 {
			t.Fatalf("%s: nothing found to sanitize", f.path)
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].Offset > spans[j].Offset })
		out := append([]byte(nil), f.data...)
		for i, sp := range spans {
			if i > 0 && sp.Offset+sp.Length > spans[i-1].Offset {
				t.Errorf("%s: %v and %v overlap", f.path, sp, spans[i-1])
				continue
			}
			out = append(out[:sp.Offset], append([]byte(MarkerFor(sp.RuleID)), out[sp.Offset+sp.Length:]...)...)
		}
		if err := s.Scan(f.path, bytes.NewReader(out), func(fd Finding) {
			t.Errorf("after sanitizing %s: still %v", f.path, fd)
		}); err != nil {
			t.Fatal(err)
		}
	}
}
