package scanreport

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// cliExample is the example report of cli.md.
const cliExample = `{"image": "disk.qcow2", "format": "qcow2",
 "secrets": [{"rule": "aws-access-key-id", "path": "/etc/app/env", "line": 3, "redacted": "AKIA************MPLE", "fingerprint": "sha256:..."}],
 "identity": [{"kind": "ssh-host-key", "path": "/etc/ssh/ssh_host_ed25519_key"}],
 "summary": {"files": 18233, "bytes": 912345678, "secrets": 1, "identity": 4}}`

func TestParseCLIExample(t *testing.T) {
	r, err := Parse([]byte(cliExample))
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		Image: "disk.qcow2", Format: "qcow2",
		Secrets: []Secret{{Rule: "aws-access-key-id", Path: "/etc/app/env", Line: 3,
			Redacted: "AKIA************MPLE", Fingerprint: "sha256:..."}},
		Identity: []Identity{{Kind: "ssh-host-key", Path: "/etc/ssh/ssh_host_ed25519_key"}},
		Summary:  Summary{Files: 18233, Bytes: 912345678, Secrets: 1, Identity: 4},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if got := r.Secrets[0].String(); got != "aws-access-key-id at /etc/app/env:3" {
		t.Errorf("String() = %q", got)
	}
	// Writing a Report gives the shape of cli.md back.
	b, _ := json.Marshal(r)
	back, err := Parse(b)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestForwardCompatible(t *testing.T) {
	in := `{"version": 2, "secrets": [
	  {"rule": "b", "path": "/x", "value": "s3cr3t-value", "entropy": 4.5, "extra": {"a": [1, 2]}},
	  {"rule": "a", "path": "/y"}, {"rule": "b", "path": "/x"}, {"rule": "c"}],
	 "newSection": [{"k": "v"}], "summary": {"secrets": 3, "durationMs": 12}}`
	r, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Secrets) != 4 || r.Summary.Secrets != 3 {
		t.Errorf("got %+v", r)
	}
	if got := r.Rules(); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("Rules = %v", got)
	}
	if got := r.Paths(); !reflect.DeepEqual(got, []string{"/x", "/y"}) {
		t.Errorf("Paths = %v", got)
	}
	if strings.Contains(nonSecretDump(r), "s3cr3t") {
		t.Error("an unknown field's value was kept")
	}
	for _, in := range []string{`{"secrets": null}`, `{"secrets": []}`} {
		r, err := Parse([]byte(in))
		if err != nil || len(r.Secrets) != 0 {
			t.Errorf("%s: %+v %v", in, r, err)
		}
	}
}

func nonSecretDump(r *Report) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty", ``, `line 1: unexpected end of input`},
		{"not object", `[1]`, `a scan report is a JSON object`},
		{"no secrets", `{"image": "x"}`, `secrets: missing`},
		{"manifest by mistake", `{"format":"vguard-manifest/v1","entries":[]}`, `secrets: missing`},
		{"secrets object", `{"secrets": {}}`, `secrets: want an array, got an object`},
		{"secrets string", `{"secrets": "AKIAEXAMPLE"}`, `secrets: want an array, got a string`},
		{"secret not object", `{"secrets": ["AKIAEXAMPLE"]}`, `secrets[0]: want an object, got string`},
		{"line string", "{\"secrets\": [{\"rule\": \"r\"},\n {\"rule\": \"r\", \"line\": \"3\"}]}", `line 2: secrets[1].line: want an integer, got string`},
		{"line float", `{"secrets": [{"rule": "r", "line": 1.5}]}`, `secrets[0].line: want an integer, got number`},
		{"negative line", `{"secrets": [{"rule": "r", "line": -1}]}`, `secrets[0].line: negative line -1`},
		{"no rule", "{\n\"secrets\": [\n{\"path\": \"/x\"}]}", `line 3: secrets[0].rule: missing`},
		{"null secret", `{"secrets": [null]}`, `secrets[0].rule: missing`},
		{"redacted number", `{"secrets": [{"rule": "r", "redacted": 12345}]}`, `secrets[0].redacted: want a string, got number`},
		{"identity no kind", `{"secrets": [], "identity": [{"path": "/etc/machine-id"}]}`, `identity[0].kind: missing`},
		{"image number", `{"secrets": [], "image": 3}`, `image: want a string, got number`},
		{"summary negative", `{"secrets": [], "summary": {"files": -1}}`, `summary.files: negative count -1`},
		{"summary string", `{"secrets": [], "summary": {"bytes": "12"}}`, `summary.bytes: want an integer, got string`},
		{"twice", `{"secrets": [], "secrets": []}`, `secrets: given twice`},
		{"trailing", `{"secrets": []} x`, `unexpected data after the report`},
		{"truncated", `{"secrets": [{"rule": "r"`, `unexpected end of input`},
		{"syntax", `{"secrets": [}`, `invalid JSON`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: %T is not *Error", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), "AKIAEXAMPLE") {
			t.Errorf("%s: error %q quotes a value", c.name, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "scan.json")
	os.WriteFile(p, []byte("{\"secrets\": [\n{}]}"), 0o644)
	if _, err := ReadFile(p); err == nil || err.Error() != p+":2: secrets[0].rule: missing" {
		t.Errorf("ReadFile = %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("ReadFile(absent) = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(cliExample))
	f.Add([]byte(`{"secrets": null, "identity": [], "x": {"y": [1, "z"]}}`))
	f.Add([]byte(`{"secrets": [{"rule": "r", "line": 7}], "summary": {"files": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for i, s := range r.Secrets {
			if s.Rule == "" || s.Line < 0 {
				t.Fatalf("secret %d accepted: %+v", i, s)
			}
		}
		// What parses writes back in the shape of cli.md and reads the same.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse %s: %v", b, err)
		}
		if len(back.Secrets) != len(r.Secrets) || back.Summary != r.Summary {
			t.Fatalf("round trip differs: %+v %+v", r, back)
		}
	})
}
