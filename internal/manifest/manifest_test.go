package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The testdata manifests are copies of the conformance scenario c04-rollout.
func TestParseConformanceManifests(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata manifests")
	}
	for _, f := range files {
		m, err := ReadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(m.Entries) < 10 {
			t.Errorf("%s: %d entries", f, len(m.Entries))
		}
	}
	m, _ := ReadFile("testdata/api-1.json")
	e := m.Lookup("/usr/sbin/nginx")
	want := Entry{Path: "/usr/sbin/nginx", Type: File, Mode: 0o755, Size: 1234567,
		SHA256: strings.Repeat("d1", 32)}
	if e == nil || *e != want {
		t.Errorf("Lookup(/usr/sbin/nginx) = %+v, want %+v", e, want)
	}
	if m.Lookup("/usr/sbin/nginx2") != nil || m.Lookup("/") != nil {
		t.Error("Lookup of absent paths found something")
	}
}

func TestDiffConformance(t *testing.T) {
	master, _ := ReadFile("testdata/api-1.json")
	drifted, _ := ReadFile("testdata/a-4-drift.json")
	d := Diff(master, drifted)
	want := &Drift{
		Added:   []string{"/usr/local/bin/hotfix.sh"},
		Removed: []string{},
		Modified: []Modified{
			{Path: "/etc/nginx/nginx.conf", Fields: []string{"sha256"}},
			{Path: "/usr/sbin/nginx", Fields: []string{"size", "sha256"}},
		},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Diff = %+v, want %+v", d, want)
	}
	if d.Empty() || d.Total() != 3 {
		t.Errorf("Empty %v Total %d", d.Empty(), d.Total())
	}
	if got := d.Examples(2); !reflect.DeepEqual(got, []string{"/etc/nginx/nginx.conf", "/usr/sbin/nginx"}) {
		t.Errorf("Examples(2) = %v", got)
	}
	if got := Diff(drifted, master); !reflect.DeepEqual(got.Removed, []string{"/usr/local/bin/hotfix.sh"}) || len(got.Added) != 0 {
		t.Errorf("reverse Diff = %+v", got)
	}
	if d := Diff(master, master); !d.Empty() {
		t.Errorf("Diff with itself = %+v", d)
	}
	// The JSON shape of `vguard drift --format json`, with [] for empties.
	b, _ := json.Marshal(Diff(master, master))
	if string(b) != `{"added":[],"removed":[],"modified":[]}` {
		t.Errorf("empty drift JSON = %s", b)
	}
	b, _ = json.Marshal(d)
	if !strings.Contains(string(b), `"modified":[{"path":"/etc/nginx/nginx.conf","fields":["sha256"]}`) {
		t.Errorf("drift JSON = %s", b)
	}
}

func file(p string, sum byte) Entry {
	return Entry{Path: p, Type: File, Mode: 0o644, Size: 10, SHA256: strings.Repeat(fmt.Sprintf("%02x", sum), 32)}
}

func dir(p string) Entry { return Entry{Path: p, Type: Dir, Mode: 0o755} }

func mustNew(t *testing.T, es ...Entry) *Manifest {
	t.Helper()
	m, err := New(es)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiffIgnoreList(t *testing.T) {
	base := mustNew(t,
		dir("/etc"), file("/etc/app.conf", 1), file("/etc/machine-id", 2),
		file("/etc/ssh/ssh_host_rsa_key", 3), file("/etc/ssh/sshd_config", 4),
		dir("/tmp"), file("/root/.bash_history", 5), file("/home/ann/.zsh_history", 6),
		file("/var/log/syslog", 7), dir("/var/cache/apt"),
	)
	other := mustNew(t,
		dir("/etc"), file("/etc/app.conf", 1), file("/etc/machine-id", 0x22),
		file("/etc/ssh/ssh_host_rsa_key", 0x33), file("/etc/ssh/sshd_config", 4),
		Entry{Path: "/tmp", Type: Dir, Mode: 0o1777}, file("/tmp/x", 1),
		file("/root/.bash_history", 0x55), file("/home/ann/.zsh_history", 0x66),
		file("/var/log/syslog", 0x77), file("/var/log/new.log", 1),
		file("/var/cache/apt/pkgcache.bin", 1),
		file("/var/lib/dhcp/dhclient.leases", 1), file("/var/lib/systemd/random-seed", 9),
	)
	if d := Diff(base, other); !d.Empty() {
		t.Errorf("only ignored paths differ, but Diff = %+v", d)
	}
	if d := DiffIgnoring(base, other, nil); d.Total() != 12 {
		t.Errorf("DiffIgnoring(nil) total = %d, want 12: %+v", d.Total(), d)
	}

	// What is near an ignored path but not under it still counts.
	other2 := mustNew(t,
		dir("/etc"), file("/etc/app.conf", 1), file("/etc/machine-id", 2),
		file("/etc/ssh/ssh_host_rsa_key", 3), file("/etc/ssh/sshd_config", 0x44),
		dir("/tmp"), file("/root/.bash_history", 5), file("/home/ann/.zsh_history", 6),
		file("/var/log/syslog", 7), dir("/var/cache/apt"),
		file("/tmpfoo", 1), file("/var/logs", 1), file("/usr/lib/.bash_history", 1),
		file("/home/ann/sub/.bash_history", 1), file("/etc/machine-id.bak", 1),
	)
	d := Diff(base, other2)
	wantAdded := []string{"/etc/machine-id.bak", "/home/ann/sub/.bash_history", "/tmpfoo", "/usr/lib/.bash_history", "/var/logs"}
	if !reflect.DeepEqual(d.Added, wantAdded) || len(d.Modified) != 1 || d.Modified[0].Path != "/etc/ssh/sshd_config" {
		t.Errorf("Diff = %+v", d)
	}
}

func TestDiffFields(t *testing.T) {
	a := mustNew(t, file("/f", 1), Entry{Path: "/l", Type: Symlink, Mode: 0o777, Target: "/f"})
	b := mustNew(t,
		Entry{Path: "/f", Type: File, Mode: 0o600, UID: 1, GID: 2, Size: 10, SHA256: strings.Repeat("02", 32)},
		dir("/l"))
	d := Diff(a, b)
	want := []Modified{
		{Path: "/f", Fields: []string{"sha256", "mode", "uid", "gid"}},
		{Path: "/l", Fields: []string{"type", "target", "mode"}},
	}
	if !reflect.DeepEqual(d.Modified, want) {
		t.Errorf("Modified = %+v, want %+v", d.Modified, want)
	}
}

func TestIgnoreMatch(t *testing.T) {
	ig := DefaultIgnore()
	for p, want := range map[string]bool{
		"/var/log": true, "/var/log/a/b": true, "/var/logx": false, "/var": false, "/": false,
		"/etc/ssh/ssh_host_ed25519_key.pub": true, "/etc/ssh/ssh_host_dir/x": true,
		"/etc/ssh/sshd_config": false, "/home/bob/.python_history": true,
		"/home/bob/.local/share/fish/fish_history": true, "/home/.bash_history": false,
		"/root/.bash_history": true, "/root/x/.bash_history": false, "/proc/1/status": true,
		// A disk with several filesystems: each under /partN.
		"/part1/var/log/syslog": true, "/part16/etc/machine-id": true, "/part2/etc/ssh/ssh_host_rsa_key": true,
		"/part1/home/ann/.bash_history": true, "/part1/etc/hostname": false, "/part1": false,
		"/part/var/log/x": false, "/partx/var/log/x": false, "/part1x/var/log/x": false, "/srv/part1/var/log/x": false,
	} {
		if got := ig.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
	var none *Ignore
	if none.Match("/var/log") {
		t.Error("nil Ignore matched")
	}
	custom, err := NewIgnore("/", "/opt/*/cache")
	if err != nil || !custom.Match("/anything") || !custom.Match("/") {
		t.Errorf("NewIgnore(/) = %v, %v", custom, err)
	}
	for _, bad := range []string{"relative", "/a/../b", "/a[", "/a/"} {
		if _, err := NewIgnore(bad); err == nil {
			t.Errorf("NewIgnore(%q) accepted", bad)
		}
	}
	if p := DefaultIgnorePatterns(); len(p) < 14 || p[0] != "/var/log" {
		t.Errorf("DefaultIgnorePatterns = %v", p)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	m := mustNew(t,
		file("/usr/bin/a b\"c\\d\n", 1),
		Entry{Path: "/dev/null", Type: Other, Mode: 0o666},
		Entry{Path: "/bin", Type: Symlink, Mode: 0o777, Target: "usr/bin"},
		Entry{Path: "/usr/bin/sudo", Type: File, Mode: 0o4755, UID: 0, GID: 0, Size: 0, SHA256: strings.Repeat("ab", 32)},
		Entry{Path: "/tmp/ü", Type: Dir, Mode: 0o1777, UID: 4294967295, GID: 7},
	)
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`{"format":"vguard-manifest/v1","entries":[` + "\n" + `{"path":"/bin","type":"symlink","mode":"0777","uid":0,"gid":0,"target":"usr/bin"},`,
		`{"path":"/usr/bin/sudo","type":"file","mode":"4755","uid":0,"gid":0,"size":0,"sha256":"abab`,
		`"path":"/usr/bin/a b\"c\\d\n"`,
		`{"path":"/tmp/ü","type":"dir","mode":"1777","uid":4294967295,"gid":7}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("not valid JSON:\n%s", out)
	}
	back, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, m)
	}
	b2, _ := back.Marshal()
	if !bytes.Equal(b2, buf.Bytes()) {
		t.Error("Marshal differs from Write")
	}
	empty, _ := New(nil)
	b3, _ := empty.Marshal()
	if e, err := Parse(b3); err != nil || len(e.Entries) != 0 {
		t.Errorf("empty manifest %s: %v", b3, err)
	}
}

func TestNewRejects(t *testing.T) {
	for name, es := range map[string][]Entry{
		"duplicate":       {file("/a", 1), file("/a", 2)},
		"relative":        {file("a", 1)},
		"unclean":         {file("/a//b", 1)},
		"no type":         {{Path: "/a", Mode: 0o644}},
		"file no sha":     {{Path: "/a", Type: File}},
		"dir with size":   {{Path: "/a", Type: Dir, Size: 4096}},
		"symlink no tgt":  {{Path: "/a", Type: Symlink}},
		"target on file":  {{Path: "/a", Type: File, SHA256: strings.Repeat("00", 32), Target: "/b"}},
		"mode too big":    {{Path: "/a", Type: Dir, Mode: 0o10000}},
		"bad utf8":        {dir("/a\xff")},
		"uppercase hash":  {{Path: "/a", Type: File, SHA256: strings.Repeat("AB", 32)}},
		"negative size":   {{Path: "/a", Type: File, Size: -1, SHA256: strings.Repeat("00", 32)}},
		"dot component":   {dir("/a/./b")},
		"trailing slash":  {dir("/a/")},
		"nul in path":     {dir("/a\x00b")},
		"dotdot":          {dir("/..")},
		"empty path":      {dir("")},
		"not sorted (ok)": nil,
	} {
		if es == nil {
			continue
		}
		if _, err := New(es); err == nil {
			t.Errorf("%s: New accepted %+v", name, es)
		}
	}
	// New sorts what a tree walk produces in component order.
	m, err := New([]Entry{dir("/a"), dir("/a/x"), dir("/a-b")})
	if err != nil || m.Entries[1].Path != "/a-b" {
		t.Errorf("New did not sort byte-wise: %+v, %v", m, err)
	}
	unsorted := &Manifest{Entries: []Entry{dir("/b"), dir("/a")}}
	if err := unsorted.Write(&bytes.Buffer{}); err == nil {
		t.Error("Write accepted unsorted entries")
	}
}

func TestParseErrors(t *testing.T) {
	const head = `{"format":"vguard-manifest/v1","entries":[`
	sum := strings.Repeat("a", 64)
	cases := []struct {
		name, in, want string
	}{
		{"empty", ``, `line 1: invalid JSON: unexpected end of input`},
		{"garbage", `not json`, `line 1: invalid JSON`},
		{"array", `[]`, `want a JSON object, got an array`},
		{"wrong format", `{"format":"vguard-manifest/v2","entries":[]}`, `format: unsupported manifest format "vguard-manifest/v2"`},
		{"format not string", `{"format":1,"entries":[]}`, `format: want a string, got a number`},
		{"no format", `{"entries":[]}`, `format: missing`},
		{"no entries", `{"format":"vguard-manifest/v1"}`, `entries: missing`},
		{"entries null", `{"format":"vguard-manifest/v1","entries":null}`, `entries: want an array, got null`},
		{"unknown top", `{"format":"vguard-manifest/v1","entries":[],"x":1}`, `x: unknown field`},
		{"format twice", `{"format":"vguard-manifest/v1","format":"vguard-manifest/v1","entries":[]}`, `format: given twice`},
		{"trailing", `{"format":"vguard-manifest/v1","entries":[]} {}`, `invalid JSON: unexpected '{' after the JSON document`},
		{"truncated", head + `{"path":"/a"`, `unexpected end of input`},
		{"bad type", head + "\n" + `{"path":"/a","type":"fifo","mode":"0644","uid":0,"gid":0}]}`,
			`line 2: entries[0].type: unknown type "fifo" (want file, dir, symlink or other)`},
		{"unknown field", head + `{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0,"Path":"/b"}]}`,
			`entries[0].Path: unknown field`},
		{"key twice", head + `{"path":"/a","path":"/a","type":"dir","mode":"0755","uid":0,"gid":0}]}`,
			`entries[0].path: given twice`},
		{"missing mode", head + `{"path":"/a","type":"dir","uid":0,"gid":0}]}`, `entries[0].mode: missing`},
		{"missing uid", head + `{"path":"/a","type":"dir","mode":"0755","gid":0}]}`, `entries[0].uid: missing`},
		{"bad mode", head + `{"path":"/a","type":"dir","mode":"rwxr-xr-x","uid":0,"gid":0}]}`, `entries[0].mode: mode "rwxr-xr-x" is not an octal mode`},
		{"mode number", head + `{"path":"/a","type":"dir","mode":755,"uid":0,"gid":0}]}`, `entries[0].mode: want a string, got a number`},
		{"negative uid", head + `{"path":"/a","type":"dir","mode":"0755","uid":-1,"gid":0}]}`, `entries[0].uid: want an integer from 0 to 4294967295`},
		{"float gid", head + `{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":1.5}]}`, `entries[0].gid: want an integer`},
		{"uid string", head + `{"path":"/a","type":"dir","mode":"0755","uid":"0","gid":0}]}`, `entries[0].uid: want an integer, got a string`},
		{"relative path", head + `{"path":"a","type":"dir","mode":"0755","uid":0,"gid":0}]}`, `entries[0].path: "a" is not an absolute path`},
		{"file no hash", head + `{"path":"/a","type":"file","mode":"0644","uid":0,"gid":0,"size":1}]}`, `entries[0].sha256: missing`},
		{"file no size", head + `{"path":"/a","type":"file","mode":"0644","uid":0,"gid":0,"sha256":"` + sum + `"}]}`, `entries[0].size: missing`},
		{"short hash", head + `{"path":"/a","type":"file","mode":"0644","uid":0,"gid":0,"size":1,"sha256":"abc"}]}`, `entries[0].sha256: want 64 hex digits`},
		{"dir hash", head + `{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0,"sha256":"` + sum + `"}]}`, `entries[0]: size and sha256 are for files only, not dir`},
		{"symlink no target", head + `{"path":"/a","type":"symlink","mode":"0777","uid":0,"gid":0}]}`, `entries[0].target: missing`},
		{"target on dir", head + `{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0,"target":"/b"}]}`, `entries[0].target: target is for symlinks only`},
		{"entry not object", head + `"/a"]}`, `entries[0]: want an entry object, got a string`},
		{"nested value", head + `{"path":{"x":1}}]}`, `entries[0].path: want a string, got an object`},
		{"unsorted", head + `{"path":"/b","type":"dir","mode":"0755","uid":0,"gid":0},` + "\n\n" +
			`{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0}]}`,
			`line 3: entries[1].path: path "/a" comes after "/b" (entries must be sorted by path, byte-wise)`},
		{"duplicate", head + `{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0},` +
			`{"path":"/a","type":"dir","mode":"0755","uid":0,"gid":0}]}`, `entries[1].path: duplicate path "/a"`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.in))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: error %T is not *Error", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestReadFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.json")
	os.WriteFile(p, []byte("{\"format\":\"vguard-manifest/v1\",\n\"entries\":[{\"path\":\"/a\",\"type\":\"pipe\"}]}"), 0o644)
	_, err := ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), p+":2: entries[0].type: unknown type") {
		t.Errorf("ReadFile error = %v", err)
	}
	_, err = ReadFile(filepath.Join(dir, "absent.json"))
	if err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("ReadFile(absent) = %v", err)
	}
}

func TestModeAndType(t *testing.T) {
	for s, want := range map[string]Mode{"0644": 0o644, "644": 0o644, "4755": 0o4755, "07777": 0o7777, "0": 0} {
		if got, err := ParseMode(s); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %o, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "8", "10000", "0x1ff", "-1", "000644", " 644"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
	if Mode(0o4755).String() != "4755" || Mode(0o7).String() != "0007" {
		t.Error("Mode.String")
	}
	if Type(9).String() != "unset(9)" || Other.String() != "other" {
		t.Error("Type.String")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"format":"vguard-manifest/v1","entries":[]}`))
	f.Add([]byte(`{"entries":[{"path":"/l","type":"symlink","mode":"777","uid":1,"gid":2,"target":"x"}],"format":"vguard-manifest/v1"}`))
	f.Add([]byte(`{"format":"vguard-manifest/v1","entries":[{"path":"/a","type":"file","mode":"0644","uid":0,"gid":0,"size":0,"sha256":"` + strings.Repeat("AF", 32) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		// Whatever parses is valid, writes, and reads back the same.
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest is invalid: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(m, back) && !(len(m.Entries) == 0 && len(back.Entries) == 0) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, back)
		}
		if d := Diff(m, back); !d.Empty() {
			t.Fatalf("diff with its own copy: %+v", d)
		}
	})
}

// bigManifest is an image-sized manifest: n files in 100 directories.
func bigManifest(b *testing.B, n int) *Manifest {
	es := make([]Entry, 0, n+100)
	for d := 0; d < 100; d++ {
		es = append(es, dir(fmt.Sprintf("/usr/lib/d%03d", d)))
	}
	for i := 0; i < n; i++ {
		es = append(es, file(fmt.Sprintf("/usr/lib/d%03d/f%06d.so", i%100, i), byte(i)))
	}
	m, err := New(es)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkParse100k(b *testing.B) {
	data, _ := bigManifest(b, 100_000).Marshal()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDiff100k(b *testing.B) {
	m := bigManifest(b, 100_000)
	other := &Manifest{Entries: slices.Clone(m.Entries)}
	other.Entries[500].SHA256 = strings.Repeat("ff", 32)
	for b.Loop() {
		if d := Diff(m, other); d.Total() != 1 {
			b.Fatal(d)
		}
	}
}
