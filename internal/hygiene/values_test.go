package hygiene

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vguard-dev/vguard/internal/secrets"
	"github.com/vguard-dev/vguard/internal/testdeps"
)

// TestSanitizeWholeValues: values with escaped quotes, unquoted ones
// holding ';', '&', ',', a quote or a leading '#', shell words with
// escapes, and URI passwords holding '#' or '?' are redacted whole: the sanitized file is the
// original with exactly the value replaced by the marker (no byte of it
// left), and JSON, YAML and shell (.env) files still parse, to the
// marker.
func TestSanitizeWholeValues(t *testing.T) {
	sh := testdeps.Program(t, "sh")
	cases := []struct {
		path, before, value string
		parse               string // json, yaml or sh: how to read the value back
		key                 string // where the value is: a dotted path, or a variable
	}{
		{"/opt/app/config.json", `{"db": {"password": "%s", "user": "hr"}}`, `Xq7\"vLp92!mZr8Kw`, "json", "db.password"},
		{"/opt/app/config.yaml", "db:\n  password: '%s'\n  user: hr\n", `Xq7''vLp92!mZr8Kw`, "yaml", "db.password"},
		{"/opt/app/other.yaml", "db:\n  password: \"%s\" # rotated\n  user: hr\n", `Xq7\"vLp92\\!mZr8Kw`, "yaml", "db.password"},
		{"/opt/app/flow.yaml", "db: {user: hr, password: %s}\n", `Xq7vLp92mZr8`, "yaml", "db.password"},
		{"/opt/app/app.env", "DB_PASSWORD=\"%s\"\nAPP=hr\n", `Xq7\"vLp92mZr8Kw`, "sh", "DB_PASSWORD"},
		{"/opt/app/escaped.env", "DB_PASSWORD=%s\nAPP=hr\n", `Tr0ub4dor\&3\;xyzQ`, "sh", "DB_PASSWORD"},
		{"/opt/app/application.properties", "spring.datasource.password=%s\nserver.port=8080\n", `Tr0ub4dor&3xyzQ`, "", ""},
		{"/opt/app/ldap.properties", "ldap.bind.pwd=%s\n", `ab;Kx92mVq7Lp0`, "", ""},
		{"/etc/app/db.conf", "url = \"postgres://app:%s@db.internal:5432/hr\"\n", `p@ss:w0rd9X`, "", ""},
		{"/root/.bash_history", "mysql -u root -p\"%s\" hr\nls\n", `S3cr\"t9Xk2`, "", ""},
		{"/home/hr/.bash_history", "mysql -uroot -p%s hr\nls\n", `S3cr\&t9Xk2Qz`, "", ""},
		{"/opt/app/hash.env", "DB_PASSWORD=%s\nAPP=hr\n", `#Tr0ub4dor3xyzQ`, "sh", "DB_PASSWORD"},
		{"/opt/app/hash.properties", "spring.datasource.password=%s\n", `#Tr0ub4dor3xyzQ`, "", ""},
		{"/opt/app/quote.properties", "spring.datasource.password=%s\n", "Tr0u\"b4dor3`xyzQ", "", ""},
		{"/etc/app/hash.conf", "DATABASE_URL=postgresql://app:%s@db1/hr\n", `Xq7#vLp92mZr8`, "", ""},
		{"/etc/app/query.conf", "DATABASE_URL=postgresql://app:%s@db1/hr\n", `Xq7?vLp92mZr8`, "", ""},
		// A key in a YAML block scalar: the body goes, every line of it,
		// and the indentation and the BEGIN and END lines stay.
		{"/var/lib/cloud/seed/nocloud-net/user-data", "#cloud-config\nssh_keys:\n  rsa_private: |\n    -----BEGIN RSA PRIVATE KEY-----\n    %s\n    -----END RSA PRIVATE KEY-----\n  rsa_public: ssh-rsa AAAAB3NzaC1yc2E\n", yamlKeyBody, "", ""},
		{"/opt/app/values.yaml", "tls:\n  key: |\n    -----BEGIN PRIVATE KEY-----\n    %s\n    -----END PRIVATE KEY-----\n", yamlKeyBody, "", ""},
		// Formats that take the rest of the line as the value.
		{"/opt/app/settings.ini", "[db]\npassword = %s\nuser = hr\n", `correct horse battery staple`, "", ""},
		{"/opt/app/comment.ini", "[db]\npassword = %s ; rotated monthly\n", `correct horse battery staple`, "", ""},
		{"/etc/mysql/conf.d/client.cnf", "[client]\npassword = %s  # rotated\n", `my long pass phrase`, "", ""},
		{"/opt/app/app.properties", "db.password=%s\n", `correct horse battery staple`, "", ""},
		{"/root/.netrc", "machine q.internal login q password \"%s\"\n", `N3trc Pw9x \"quoted`, "", ""},
	}
	root := t.TempDir()
	var ps []planted
	for _, c := range cases {
		ps = append(ps, planted{path: c.path, content: strings.Replace(c.before, "%s", c.value, 1), mode: 0o640})
	}
	plant(t, root, ps)
	dst := filepath.Join(t.TempDir(), "copy")
	if rep, err := newScanner(t).Sanitize(open(t, root), root, dst, SanitizeOptions{}); err != nil {
		t.Fatalf("Sanitize: %v (rescan %+v)", err, rep.Rescan)
	}
	for i, c := range cases {
		full := filepath.Join(dst, filepath.FromSlash(c.path))
		got, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Replace(c.before, "%s", secrets.Marker, 1); string(got) != want {
			t.Errorf("%s in the copy:\n%s\nwant\n%s", c.path, got, want)
			continue
		}
		var read func(content []byte) string
		switch c.parse {
		case "json", "yaml":
			read = func(content []byte) string {
				var doc map[string]any
				if c.parse == "json" {
					err = json.Unmarshal(content, &doc)
				} else {
					err = yaml.Unmarshal(content, &doc)
				}
				if err != nil {
					t.Errorf("%s no longer parses: %v", c.path, err)
					return ""
				}
				var v any = doc
				for _, k := range strings.Split(c.key, ".") {
					m, _ := v.(map[string]any)
					v = m[k]
				}
				s, _ := v.(string)
				return s
			}
		case "sh":
			read = func(content []byte) string {
				f := filepath.Join(t.TempDir(), "env")
				os.WriteFile(f, content, 0o600)
				out, err := exec.Command(sh, "-c", `set -e; . "$1"; printf %s "$`+c.key+`"`, "sh", f).Output()
				if err != nil {
					t.Errorf("%s no longer runs in sh: %v", c.path, err)
				}
				return string(out)
			}
		default:
			continue
		}
		if v := read([]byte(ps[i].content)); v == "" || v == secrets.Marker {
			t.Errorf("%s: the original reads as %q; the test means a real value", c.path, v)
		}
		if v := read(got); v != secrets.Marker {
			t.Errorf("%s: the copy reads as %q, want the marker", c.path, v)
		}
	}
}

// yamlKeyBody is a PEM body indented as in a YAML block scalar (random
// base64, not a key of anyone's).
const yamlKeyBody = "MIIEpAIBAAKCAQEAsfEs7j96EnfTq5TVW+XNJtWiEtuZsX1Kq4HMuXoO6yu6eiWU\n" +
	"    mj0Vsdu9I64G1/o23bnrTt5aivfu34mlfSyO5nztwqwO/aZd+Wy1hK6PjQVhK3vQ\n" +
	"    +nvz++UIL5Zxz3ycvPKw2am06IqcgHY9YqE9XmJu942QM2OXdLhbmgdAjBcblUD7"

// TestSanitizeKeepsSyntax: every rule's JSON and YAML test strings still
// parse once sanitized (a value redacted short of its end leaves a
// stray quote behind).
func TestSanitizeKeepsSyntax(t *testing.T) {
	s := newScanner(t)
	n := 0
	for _, r := range secrets.Builtin() {
		for i, content := range r.MustMatch {
			p := r.TestPath
			if p == "" {
				p = "/test.txt"
			}
			var y any
			isJSON := json.Valid([]byte(content))
			isYAML := !isJSON && strings.Contains(content, ": ") && yaml.Unmarshal([]byte(content), &y) == nil
			if !isJSON && !isYAML {
				continue
			}
			n++
			root := t.TempDir()
			plant(t, root, []planted{{path: p, content: content, mode: 0o644}})
			dst := filepath.Join(t.TempDir(), "copy")
			if _, err := s.Sanitize(open(t, root), root, dst, SanitizeOptions{}); err != nil {
				t.Errorf("%s MustMatch[%d]: %v", r.ID, i, err)
				continue
			}
			out, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(p)))
			if err != nil {
				t.Fatal(err)
			}
			if isJSON && !json.Valid(out) {
				t.Errorf("%s MustMatch[%d]: JSON no longer valid:\n%s\n---\n%s", r.ID, i, content, out)
			}
			if isYAML {
				if err := yaml.Unmarshal(out, &y); err != nil {
					t.Errorf("%s MustMatch[%d]: YAML no longer valid: %v\n%s\n---\n%s", r.ID, i, err, content, out)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d JSON or YAML test strings", n)
	}
}

// TestSanitizeBase64Fields: a kubeconfig's client-key-data and a docker
// config.json's "auth" are base64 that kubectl and docker decode on load,
// rejecting the whole file if they cannot. Sanitized, they hold base64 of
// a marker in the shape expected (a PEM block; user:password), every
// other field is untouched, and the copy scans clean.
func TestSanitizeBase64Fields(t *testing.T) {
	key := "-----BEGIN RSA PRIVATE KEY-----\n" + strings.ReplaceAll(yamlKeyBody, "    ", "") + "\n-----END RSA PRIVATE KEY-----\n"
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters:\n- name: hr\n  cluster:\n    server: https://10.0.0.1:6443\n" +
		"users:\n- name: admin\n  user:\n    client-key-data: " + base64.StdEncoding.EncodeToString([]byte(key)) + "\n"
	docker := `{"auths": {"registry.internal": {"auth": "` + base64.StdEncoding.EncodeToString([]byte("deploy:MMYNoXHyC6Ct3LBtKNdN")) + `"}}, "credHelpers": {"gcr.io": "gcloud"}}`
	root := t.TempDir()
	plant(t, root, []planted{
		{path: "/root/.kube/config", content: kubeconfig, mode: 0o600},
		{path: "/root/.docker/config.json", content: docker, mode: 0o600},
	})
	dst := filepath.Join(t.TempDir(), "copy")
	if rep, err := newScanner(t).Sanitize(open(t, root), root, dst, SanitizeOptions{}); err != nil {
		t.Fatalf("Sanitize: %v (rescan %+v)", err, rep.Rescan)
	}

	var kc struct {
		Users []struct {
			User map[string]string `yaml:"user"`
		} `yaml:"users"`
	}
	got, _ := os.ReadFile(filepath.Join(dst, "root/.kube/config"))
	if err := yaml.Unmarshal(got, &kc); err != nil || len(kc.Users) != 1 {
		t.Fatalf("kubeconfig no longer parses (%v):\n%s", err, got)
	}
	dec, err := base64.StdEncoding.DecodeString(kc.Users[0].User["client-key-data"])
	if err != nil || !strings.HasPrefix(string(dec), "-----BEGIN PRIVATE KEY-----\n"+secrets.Marker) {
		t.Errorf("client-key-data decodes to %q (%v), want a PEM block holding the marker", dec, err)
	}

	var dc struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
		CredHelpers map[string]string `json:"credHelpers"`
	}
	got, _ = os.ReadFile(filepath.Join(dst, "root/.docker/config.json"))
	if err := json.Unmarshal(got, &dc); err != nil {
		t.Fatalf("config.json no longer parses (%v):\n%s", err, got)
	}
	dec, err = base64.StdEncoding.DecodeString(dc.Auths["registry.internal"].Auth)
	if user, pass, ok := strings.Cut(string(dec), ":"); err != nil || !ok || user != secrets.Marker || pass != secrets.Marker {
		t.Errorf("auth decodes to %q (%v), want marker:marker", dec, err)
	}
	if dc.CredHelpers["gcr.io"] != "gcloud" {
		t.Errorf("credHelpers lost: %s", got)
	}
}
