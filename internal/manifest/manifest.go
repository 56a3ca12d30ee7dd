// Package manifest reads, writes and compares file-tree manifests, the
// "vguard-manifest/v1" documents of cli.md: one entry per path of an image or
// a VM's disk (type, mode, owner, size, content hash, link target), sorted by
// path.
//
// Manifests are the evidence of drift: `vguard image manifest` writes them,
// `vguard drift` and check VG203 compare a member's manifest with its
// master's under an ignore list of what changes on every running system
// (logs, caches, machine ids, host keys, shell histories).
//
// The parser is strict: a manifest is our own format, versioned by its
// format string, so an unknown field, a wrong type or an unsorted or repeated
// path is an error naming the line and field rather than something guessed
// around. Because entries are sorted, comparing two manifests is one merge of
// two sorted lists.
package manifest

import (
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Format is the format string every manifest carries.
const Format = "vguard-manifest/v1"

// Manifest is a parsed, valid manifest. Entries are sorted by path (byte-wise,
// as Go and `LC_ALL=C sort` compare strings) and each path occurs once.
type Manifest struct {
	Entries []Entry
}

// Type is the kind of a file-tree entry.
type Type uint8

const (
	File Type = iota + 1
	Dir
	Symlink
	// Other is anything else: device nodes, FIFOs, sockets.
	Other
)

var typeWords = [...]string{"", "file", "dir", "symlink", "other"}

func (t Type) String() string {
	if int(t) < len(typeWords) && t != 0 {
		return typeWords[t]
	}
	return "unset(" + strconv.Itoa(int(t)) + ")"
}

// ParseType reads a type word of the format.
func ParseType(s string) (Type, error) {
	for i, w := range typeWords {
		if i > 0 && w == s {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("unknown type %s (want file, dir, symlink or other)", quote(s))
}

// Mode holds the permission bits of an entry as in st_mode & 07777: rwx for
// owner, group and others plus setuid (04000), setgid (02000) and sticky
// (01000). It is written as four octal digits, "0644".
type Mode uint32

// MaxMode is the largest valid Mode.
const MaxMode Mode = 0o7777

func (m Mode) String() string {
	s := strconv.FormatUint(uint64(m), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// ParseMode reads an octal mode such as "0644", "644" or "4755".
func ParseMode(s string) (Mode, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("mode %s is not an octal mode such as \"0644\"", quote(s))
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || Mode(v) > MaxMode {
		return 0, fmt.Errorf("mode %s is not an octal mode such as \"0644\"", quote(s))
	}
	return Mode(v), nil
}

// Entry is one path of the tree. Size and SHA256 are set for files only and
// Target for symlinks only; SHA256 is lowercase hex.
type Entry struct {
	Path   string
	Type   Type
	Mode   Mode
	UID    uint32
	GID    uint32
	Size   int64
	SHA256 string
	Target string
}

// New builds a manifest from entries in any order: it sorts them by path and
// validates them, so that a producer walking a tree need not care about the
// format's order. The slice is sorted in place and kept.
func New(entries []Entry) (*Manifest, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	m := &Manifest{Entries: entries}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks what Parse checks of a manifest built in memory: each
// entry valid, paths sorted and unique.
func (m *Manifest) Validate() error {
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := e.validate(); err != nil {
			return &Error{Path: fmt.Sprintf("entries[%d]", i), Msg: err.Error()}
		}
		if i > 0 {
			if err := checkOrder(m.Entries[i-1].Path, e.Path); err != nil {
				return &Error{Path: fmt.Sprintf("entries[%d].path", i), Msg: err.Error()}
			}
		}
	}
	return nil
}

// Lookup returns the entry for path, or nil.
func (m *Manifest) Lookup(path string) *Entry {
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= path })
	if i < len(m.Entries) && m.Entries[i].Path == path {
		return &m.Entries[i]
	}
	return nil
}

func checkOrder(prev, p string) error {
	switch {
	case p == prev:
		return fmt.Errorf("duplicate path %s", quote(p))
	case p < prev:
		return fmt.Errorf("path %s comes after %s (entries must be sorted by path, byte-wise)", quote(p), quote(prev))
	}
	return nil
}

// validate checks one entry on its own; it names the offending field.
func (e *Entry) validate() error {
	if err := validPath(e.Path); err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if e.Type < File || e.Type > Other {
		return fmt.Errorf("type: unset or unknown type %d", e.Type)
	}
	if e.Mode > MaxMode {
		return fmt.Errorf("mode: %o is above 07777", uint32(e.Mode))
	}
	if e.Size < 0 {
		return fmt.Errorf("size: %d is negative", e.Size)
	}
	if e.Type != File && (e.Size != 0 || e.SHA256 != "") {
		return fmt.Errorf("size and sha256 are for files only, not %s", e.Type)
	}
	if e.Type == File && !validSHA256(e.SHA256) {
		return fmt.Errorf("sha256: want 64 lowercase hex digits")
	}
	if e.Type == Symlink && e.Target == "" {
		return fmt.Errorf("target: a symlink needs a target")
	}
	if e.Type != Symlink && e.Target != "" {
		return fmt.Errorf("target is for symlinks only, not %s", e.Type)
	}
	if !utf8.ValidString(e.Target) {
		return fmt.Errorf("target: not valid UTF-8")
	}
	return nil
}

// validPath accepts an absolute, clean, UTF-8 path: "/" or "/a/b" with no
// empty, "." or ".." component and no trailing slash.
func validPath(p string) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%s is not an absolute path", quote(p))
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%s is not valid UTF-8", quote(p))
	}
	if p == "/" {
		return nil
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if p[i] == 0 {
				return fmt.Errorf("%s contains a NUL byte", quote(p))
			}
			continue
		}
		switch p[start:i] {
		case "", ".", "..":
			return fmt.Errorf("%s is not a clean path (no empty, \".\" or \"..\" components, no trailing slash)", quote(p))
		}
		start = i + 1
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// quote quotes a value from the input for an error message, cut short so a
// hostile file cannot flood the terminal.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
