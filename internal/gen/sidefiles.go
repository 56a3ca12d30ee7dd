package gen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"path/filepath"
	"strconv"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/jsonstr"
	"github.com/vguard-dev/vguard/internal/manifest"
)

// Side files: every master image version has a manifest and a scan report.
// A VM made from a master refers either to its master's manifest itself or,
// for the newest version, to a "running" variant that differs only in what
// the drift ignore list covers (machine id, host keys, logs, shell history,
// /tmp); the few drifted VMs refer to a "hotfix" variant with a script added
// and a config edited by hand. Scan reports are clean except for one older
// master version and one report shared by a few VMs. So a 100k-VM estate
// needs a few dozen small files.

const (
	vmScanClean = "scans/vm-baseline.json"
	vmScanLeaky = "scans/vm-leaky.json"
)

// master is a golden image with its versions 1..newest.
type master struct {
	name    string
	newest  int
	files   []string // app-specific paths: a binary, then a config
	running string   // manifest of a running VM of the newest version
	hotfix  string   // manifest of a hand-patched VM, "" when none
	leaky   int      // version whose scan report lists a secret, 0 for none
}

func (m *master) manifest(v int) string {
	return "manifests/" + m.name + "-" + strconv.Itoa(v) + ".json"
}

func (m *master) scan(v int) string {
	return "scans/" + m.name + "-" + strconv.Itoa(v) + ".json"
}

var masterSpecs = []struct {
	name     string
	versions int
	hotfix   bool
	files    []string
}{
	{"web-master", 4, true, []string{"/usr/sbin/nginx", "/etc/nginx/nginx.conf"}},
	{"api-master", 3, false, []string{"/opt/api/bin/server", "/opt/api/conf/server.yaml"}},
	{"app-master", 5, true, []string{"/opt/app/bin/app", "/opt/app/conf/app.yaml"}},
	{"win-master", 2, false, []string{"/opt/svc/bin/svchost", "/opt/svc/conf/appsettings.json"}},
	{"pci-master", 3, true, []string{"/opt/pay/bin/payd", "/opt/pay/conf/payd.conf"}},
	{"core-master", 2, false, []string{"/opt/core/bin/cored", "/opt/core/conf/cored.conf"}},
}

func (w *world) makeImages() {
	for _, s := range masterSpecs {
		m := &master{name: s.name, newest: s.versions, files: s.files}
		m.running = "manifests/" + m.name + "-" + strconv.Itoa(m.newest) + "-running.json"
		if s.hotfix {
			m.hotfix = "manifests/" + m.name + "-" + strconv.Itoa(m.newest) + "-hotfix.json"
		}
		if s.name == "app-master" {
			// An older build shipped with a cloud key in its config.
			m.leaky = m.newest - 1
		}
		for v := 1; v <= m.newest; v++ {
			w.e.Images = append(w.e.Images, &estate.Image{Name: m.name, Version: v, Master: true,
				Manifest: m.manifest(v), Scan: m.scan(v)})
		}
		w.masters = append(w.masters, m)
		w.byMaster[m.name] = m
	}
	// Plain images: a vendor appliance and the developers' base image.
	w.e.Images = append(w.e.Images,
		&estate.Image{Name: "fw-appliance", Version: 1},
		&estate.Image{Name: "dev-base", Version: 1},
		&estate.Image{Name: "dev-base", Version: 2})
}

// stripSideFiles removes every reference to a manifest or scan report, for
// the estate that stands alone (Write, Estate).
func (w *world) stripSideFiles() {
	for _, im := range w.e.Images {
		im.Manifest, im.Scan = "", ""
	}
	for _, v := range w.vms {
		v.vm.Manifest, v.vm.Scan = "", ""
	}
}

// Manifest variants.
const (
	variantMaster = iota
	variantRunning
	variantHotfix
)

func digest(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// fileEntry is a regular file whose content is named by key: the same key
// gives the same hash and size.
func fileEntry(path string, mode manifest.Mode, key ...string) manifest.Entry {
	d := digest(key...)
	size := int64(binary.LittleEndian.Uint32(d[:4])%200000) + 64
	return manifest.Entry{Path: path, Type: manifest.File, Mode: mode, Size: size, SHA256: hex.EncodeToString(d[:])}
}

func dirEntry(path string) manifest.Entry {
	return manifest.Entry{Path: path, Type: manifest.Dir, Mode: 0o755}
}

// entries builds the manifest of version v of m in the given variant.
// Binaries change with every version, configs every other version, the base
// system not at all.
func (m *master) entries(v, variant int) []manifest.Entry {
	ver := strconv.Itoa(v)
	cfg := strconv.Itoa((v + 1) / 2)
	run := "master"
	if variant != variantMaster {
		run = "running"
	}
	es := []manifest.Entry{
		{Path: "/bin", Type: manifest.Symlink, Mode: 0o777, Target: "usr/bin"},
		dirEntry("/etc"),
		fileEntry("/etc/group", 0o644, "base", "/etc/group"),
		fileEntry("/etc/hosts", 0o644, "base", "/etc/hosts"),
		fileEntry("/etc/machine-id", 0o444, m.name, ver, run, "/etc/machine-id"),
		fileEntry("/etc/os-release", 0o644, "base", "/etc/os-release"),
		fileEntry("/etc/passwd", 0o644, m.name, "/etc/passwd"),
		fileEntry("/etc/shadow", 0o640, m.name, "/etc/shadow"),
		dirEntry("/etc/ssh"),
		fileEntry("/etc/ssh/ssh_host_ed25519_key", 0o600, m.name, ver, run, "hostkey"),
		fileEntry("/etc/ssh/ssh_host_ed25519_key.pub", 0o644, m.name, ver, run, "hostkey.pub"),
		fileEntry("/etc/ssh/sshd_config", 0o644, "base", "/etc/ssh/sshd_config"),
		dirEntry("/opt"),
		dirEntry("/root"),
		dirEntry("/tmp"),
		dirEntry("/usr"),
		dirEntry("/usr/bin"),
		fileEntry("/usr/bin/bash", 0o755, "base", "/usr/bin/bash"),
		fileEntry("/usr/bin/python3", 0o755, "base", ver, "/usr/bin/python3"),
		{Path: "/usr/bin/sh", Type: manifest.Symlink, Mode: 0o777, Target: "bash"},
		dirEntry("/usr/lib"),
		fileEntry("/usr/lib/libc.so.6", 0o755, "base", "/usr/lib/libc.so.6"),
		dirEntry("/usr/sbin"),
		fileEntry("/usr/sbin/sshd", 0o755, "base", ver, "/usr/sbin/sshd"),
		dirEntry("/var"),
		dirEntry("/var/lib"),
		dirEntry("/var/log"),
		fileEntry("/var/log/syslog", 0o640, m.name, ver, run, "/var/log/syslog"),
	}
	binary, config := m.files[0], m.files[1]
	for _, d := range parents(binary, config) {
		es = append(es, dirEntry(d))
	}
	es = append(es,
		fileEntry(binary, 0o755, m.name, ver, binary),
		fileEntry(config, 0o644, m.name, cfg, config))
	if variant != variantMaster {
		es = append(es,
			fileEntry("/root/.bash_history", 0o600, m.name, "history"),
			fileEntry("/tmp/ansible-tmp-1700000000", 0o600, m.name, "tmp"))
	}
	if variant == variantHotfix {
		es = append(es, dirEntry("/usr/local"), dirEntry("/usr/local/bin"),
			fileEntry("/usr/local/bin/hotfix.sh", 0o755, m.name, "hotfix"))
		for i := range es {
			if es[i].Path == config {
				es[i] = fileEntry(config, 0o644, m.name, cfg, config, "edited by hand")
			}
		}
	}
	return es
}

// parents lists the directories above the given paths that the base
// entries do not already hold, without repeats.
func parents(paths ...string) []string {
	known := map[string]bool{"/": true, "/etc": true, "/opt": true, "/usr": true, "/usr/sbin": true, "/usr/bin": true}
	var out []string
	for _, p := range paths {
		var chain []string
		for d := filepath.Dir(p); !known[d]; d = filepath.Dir(d) {
			known[d] = true
			chain = append(chain, d)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			out = append(out, chain[i])
		}
	}
	return out
}

// writeSideFiles writes the manifests and scan reports the estate refers to,
// and no others.
func (w *world) writeSideFiles(dir string) error {
	used := map[string]bool{}
	for _, v := range w.vms {
		used[v.vm.Manifest], used[v.vm.Scan] = true, true
	}
	delete(used, "")
	writeManifest := func(rel string, es []manifest.Entry) error {
		if !used[rel] {
			return nil
		}
		m, err := manifest.New(es)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, filepath.FromSlash(rel)), m.Write)
	}
	for _, m := range w.masters {
		for v := 1; v <= m.newest; v++ {
			used[m.manifest(v)] = true // the image refers to it
			if err := writeManifest(m.manifest(v), m.entries(v, variantMaster)); err != nil {
				return err
			}
			rep := scanReport{image: m.name + "-" + strconv.Itoa(v) + ".qcow2", files: 18000 + 700*v, bytes: 900_000_000 + 25_000_000*int64(v)}
			if v == m.leaky {
				rep.secrets = []scanSecret{{rule: "aws-access-key-id", path: m.files[1], line: 12,
					redacted: "AKIA************7Q2X", key: m.name + strconv.Itoa(v)}}
			}
			if err := writeFile(filepath.Join(dir, filepath.FromSlash(m.scan(v))), rep.write); err != nil {
				return err
			}
		}
		if err := writeManifest(m.running, m.entries(m.newest, variantRunning)); err != nil {
			return err
		}
		if err := writeManifest(m.hotfix, m.entries(m.newest, variantHotfix)); err != nil {
			return err
		}
	}
	vmIdentity := []scanIdentity{{"machine-id", "/etc/machine-id"}, {"ssh-host-key", "/etc/ssh/ssh_host_ed25519_key"}}
	clean := scanReport{image: "vm-baseline.qcow2", files: 24512, bytes: 1_204_000_000, identity: vmIdentity}
	leaky := scanReport{image: "vm-disk.qcow2", files: 25873, bytes: 1_311_000_000, identity: vmIdentity,
		secrets: []scanSecret{
			{rule: "private-key", path: "/root/.ssh/id_rsa", line: 1, redacted: "-----BEGIN RSA PRIVATE KEY-----****", key: "id_rsa"},
			{rule: "password-assignment", path: "/etc/app/db.env", line: 3, redacted: "DB_PASSWORD=Pa**********", key: "db.env"},
		}}
	for _, r := range []struct {
		path string
		rep  scanReport
	}{{vmScanClean, clean}, {vmScanLeaky, leaky}} {
		if used[r.path] {
			if err := writeFile(filepath.Join(dir, filepath.FromSlash(r.path)), r.rep.write); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanReport is the JSON of `vguard image scan --format json` (cli.md).
type scanReport struct {
	image    string
	files    int
	bytes    int64
	secrets  []scanSecret
	identity []scanIdentity
}

type scanSecret struct {
	rule, path string
	line       int
	redacted   string
	key        string // names the secret for its fingerprint
}

type scanIdentity struct{ kind, path string }

func (r scanReport) write(w io.Writer) error {
	b := []byte(`{"image":`)
	b = jsonstr.Append(b, r.image)
	b = append(b, `,"format":"qcow2",`+"\n"+`"secrets":[`...)
	for i, s := range r.secrets {
		if i > 0 {
			b = append(b, ',')
		}
		d := digest("secret", s.key)
		b = append(b, "\n"+`{"rule":`...)
		b = jsonstr.Append(b, s.rule)
		b = append(b, `,"path":`...)
		b = jsonstr.Append(b, s.path)
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(s.line), 10)
		b = append(b, `,"redacted":`...)
		b = jsonstr.Append(b, s.redacted)
		b = append(b, `,"fingerprint":"sha256:`...)
		b = hex.AppendEncode(b, d[:])
		b = append(b, `"}`...)
	}
	b = append(b, "],\n"+`"identity":[`...)
	for i, id := range r.identity {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n"+`{"kind":`...)
		b = jsonstr.Append(b, id.kind)
		b = append(b, `,"path":`...)
		b = jsonstr.Append(b, id.path)
		b = append(b, '}')
	}
	b = append(b, "],\n"+`"summary":{"files":`...)
	b = strconv.AppendInt(b, int64(r.files), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, `,"secrets":`...)
	b = strconv.AppendInt(b, int64(len(r.secrets)), 10)
	b = append(b, `,"identity":`...)
	b = strconv.AppendInt(b, int64(len(r.identity)), 10)
	b = append(b, "}}\n"...)
	_, err := w.Write(b)
	return err
}
