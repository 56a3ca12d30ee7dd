package manifest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/vguard-dev/vguard/internal/manifest"
)

func ExampleDiff() {
	sum := func(b string) string { return strings.Repeat(b, 32) }
	master, _ := manifest.New([]manifest.Entry{
		{Path: "/etc/app.conf", Type: manifest.File, Mode: 0o644, Size: 10, SHA256: sum("a1")},
		{Path: "/var/log/app.log", Type: manifest.File, Mode: 0o640, Size: 5, SHA256: sum("b1")},
	})
	member, _ := manifest.New([]manifest.Entry{
		{Path: "/etc/app.conf", Type: manifest.File, Mode: 0o666, Size: 12, SHA256: sum("a2")},
		{Path: "/usr/local/bin/hotfix", Type: manifest.File, Mode: 0o755, Size: 99, SHA256: sum("c1")},
		{Path: "/var/log/app.log", Type: manifest.File, Mode: 0o640, Size: 9000, SHA256: sum("b2")},
	})
	// The log differs too, but /var/log is on the default ignore list.
	out, _ := json.Marshal(manifest.Diff(master, member))
	fmt.Println(string(out))
	// Output:
	// {"added":["/usr/local/bin/hotfix"],"removed":[],"modified":[{"path":"/etc/app.conf","fields":["size","sha256","mode"]}]}
}

func ExampleManifest_Write() {
	m, _ := manifest.New([]manifest.Entry{
		{Path: "/etc", Type: manifest.Dir, Mode: 0o755},
		{Path: "/bin", Type: manifest.Symlink, Mode: 0o777, Target: "usr/bin"},
	})
	m.Write(os.Stdout)
	// Output:
	// {"format":"vguard-manifest/v1","entries":[
	// {"path":"/bin","type":"symlink","mode":"0777","uid":0,"gid":0,"target":"usr/bin"},
	// {"path":"/etc","type":"dir","mode":"0755","uid":0,"gid":0}
	// ]}
}
