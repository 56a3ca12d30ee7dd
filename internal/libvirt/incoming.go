package libvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"libvirt.org/go/libvirtxml"
)

// DefaultStateDir is where the hook keeps what one call must tell the
// next (stateDir: in the hook configuration). /run is a tmpfs: nothing in
// it outlives a reboot, and nothing there should.
const DefaultStateDir = "/run/vguard/hook"

// IncomingTTL is how long an incoming-migration marker is honoured. On the
// destination libvirt runs "migrate begin" and then, within the same
// migration call and before QEMU is spawned, "prepare begin"; the gap is
// the hook's own run time plus libvirt's bookkeeping (adding the domain,
// pre-creating storage). A marker older than this belongs to a migration
// that never reached its prepare (an offline migration has none, a failed
// one stops before it) and must not soften the judging of a later plain
// start: the shorter the TTL, the smaller that window.
const IncomingTTL = 10 * time.Second

// Incoming records and consumes the markers that tie a "prepare begin" to
// the "migrate begin" that preceded it for the same domain, so that the
// prepare of an incoming migration is judged like the migration (on the
// findings it introduces) rather than like a start (on every finding the
// domain carries). The hook must not call back into libvirt to ask, so
// the state is a file per domain UUID in Dir.
type Incoming struct {
	Dir string
	TTL time.Duration    // 0: IncomingTTL
	Now func() time.Time // nil: time.Now
}

// marker is the content of one marker file. Digest binds it to what the
// migration was judged on (DomainDigest of the migrate's XML).
type marker struct {
	Domain string    `json:"domain"`
	Digest string    `json:"digest"`
	At     time.Time `json:"at"`
}

// DomainDigest returns a digest of everything in a domain XML that the hook
// turns into a change: name, UUID, NICs (MAC and network, portgroup or
// bridge), the vguard metadata's attributes and labels, and resources. A
// marker honoured only for the same digest softens the judging of exactly
// the domain the migration was judged on, not of a domain redefined since
// (a start after an offline migration, say, with a NIC moved to another
// network).
func DomainDigest(domXML string) (string, error) {
	// Bridges are digested by their own name: the estate's bridge-to-network
	// map is the same for both calls, so the raw name binds as much.
	vm, _, err := DomainVM(domXML, "", nil)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(vm)
	if err != nil {
		return "", fmt.Errorf("digest of domain %s: %w", vm.Name, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

func (in Incoming) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in Incoming) ttl() time.Duration {
	if in.TTL > 0 {
		return in.TTL
	}
	return IncomingTTL
}

// DomainUUID returns the UUID of a domain XML in its canonical form
// (lower case, 8-4-4-4-12). The UUID names a file, so anything but 32 hex
// digits, with or without libvirt's dashes, is an error.
func DomainUUID(domXML string) (string, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domXML); err != nil {
		return "", fmt.Errorf("domain XML: %w", err)
	}
	hex := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(d.UUID), "-", ""))
	if hex == "" {
		return "", errors.New("the domain XML has no <uuid>")
	}
	if len(hex) != 32 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", errors.New("the domain XML's <uuid> is not a UUID")
	}
	return hex[0:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:], nil
}

// Record notes that the domain (uuid, name), as digest (DomainDigest)
// gives it, is arriving by migration now.
func (in Incoming) Record(uuid, name, digest string) error {
	if err := os.MkdirAll(in.Dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := in.private(); err != nil {
		return err
	}
	data, err := json.Marshal(marker{Domain: name, Digest: digest, At: in.now()})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(in.Dir, ".incoming-*") // mode 0600
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("state directory: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(in.Dir, uuid)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// Consume reports whether a marker recorded for the domain (uuid, name,
// digest) within the TTL exists, and removes any marker for uuid: a marker
// serves one prepare only. A missing state directory or marker is false
// without an error; one that is not honoured (expired, for another domain
// or another definition of it) or cannot be trusted (a directory others
// can write, a marker that is not a plain file) is false with an error
// saying why.
func (in Incoming) Consume(uuid, name, digest string) (bool, error) {
	if _, err := os.Lstat(in.Dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := in.private(); err != nil {
		return false, err
	}
	path := filepath.Join(in.Dir, uuid)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("state directory: %w", err)
	}
	defer os.Remove(path)
	if !fi.Mode().IsRegular() || fi.Size() > 4096 {
		return false, fmt.Errorf("state directory: %s is not a marker the hook wrote; removed", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("state directory: %w", err)
	}
	var m marker
	if err := json.Unmarshal(data, &m); err != nil {
		return false, fmt.Errorf("state directory: %s is not a marker the hook wrote; removed", path)
	}
	age := in.now().Sub(m.At)
	switch {
	case m.Domain != name:
		return false, fmt.Errorf("the marker was left for domain %q", m.Domain)
	case age < -time.Second:
		// The clock stepped back: the marker's age is unknown.
		return false, errors.New("the marker is dated in the future")
	case age > in.ttl():
		return false, fmt.Errorf("the marker was left %s ago; a migration's prepare follows its migrate within %s", age.Round(time.Second), in.ttl())
	case m.Digest == "" || m.Digest != digest:
		return false, errors.New("the domain's NICs, metadata or resources differ from those its migration was judged on")
	}
	return true, nil
}

// private checks that Dir is a directory of this user that no one else
// can write: a marker softens the judging of a start, so only the hook
// (root, as libvirtd runs it) may leave one.
func (in Incoming) private() error {
	fi, err := os.Lstat(in.Dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", in.Dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("state directory %s has mode %04o; it must be 0700 (only its owner may use it)", in.Dir, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s belongs to uid %d, not to this user (uid %d)", in.Dir, st.Uid, os.Geteuid())
	}
	return nil
}
