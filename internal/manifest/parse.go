package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/syntax"
)

// Error is a problem with a manifest: where (file, line) and which field (Path,
// e.g. "entries[3].mode"; empty for the document as a whole). It is the
// error type of every input vguard reads.
type Error = syntax.Error

// ReadFile reads and parses the manifest at path; errors name the file.
func ReadFile(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	m, err := parse(data)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, err
	}
	return m, nil
}

// Parse reads a manifest. It accepts exactly the format of cli.md: an object
// with "format": "vguard-manifest/v1" and "entries", each entry with path,
// type, mode, uid and gid; size and sha256 for files; target for symlinks.
// Keys are matched exactly (unlike encoding/json's case folding) and may
// not repeat. Errors are *Error with the line and field.
func Parse(data []byte) (*Manifest, error) {
	// The JSON parser's strings share memory with its input: parse a copy
	// so that the caller may reuse data.
	return parse(bytes.Clone(data))
}

// parse reads a manifest with vguard's JSON parser (internal/syntax), which
// keeps the line of every value and is several times faster than
// encoding/json's token stream on manifests of 100k entries.
func parse(data []byte) (*Manifest, error) {
	root, err := syntax.ParseJSON(data)
	if err != nil {
		var le *syntax.LineError
		if errors.As(err, &le) {
			return nil, &Error{Line: le.Line, Msg: "invalid JSON: " + le.Msg}
		}
		return nil, &Error{Line: 1, Msg: "invalid JSON: " + err.Error()}
	}
	if root.Kind != syntax.MapNode {
		return nil, failf(root, "", "want a JSON object, got %s", describe(root))
	}
	m := &Manifest{}
	var format, entries *syntax.Node
	for i := 0; i+1 < len(root.Items); i += 2 {
		k, v := root.Items[i], root.Items[i+1]
		switch k.Value {
		case "format":
			if format != nil {
				return nil, failf(k, "format", "given twice")
			}
			format = v
			if v.Kind != syntax.ScalarNode || v.Tag != syntax.StrTag {
				return nil, failf(v, "format", "want a string, got %s", describe(v))
			}
			if v.Value != Format {
				return nil, failf(v, "format", "unsupported manifest format %s (want %q)", quote(v.Value), Format)
			}
		case "entries":
			if entries != nil {
				return nil, failf(k, "entries", "given twice")
			}
			entries = v
		default:
			return nil, failf(k, k.Value, "unknown field (a manifest has format and entries)")
		}
	}
	if format == nil {
		return nil, failf(root, "format", "missing (want %q)", Format)
	}
	if entries == nil {
		return nil, failf(root, "entries", "missing")
	}
	if entries.Kind != syntax.SeqNode {
		return nil, failf(entries, "entries", "want an array, got %s", describe(entries))
	}
	m.Entries = make([]Entry, len(entries.Items))
	for i, n := range entries.Items {
		if err := parseEntry(n, i, &m.Entries[i]); err != nil {
			return nil, err
		}
		if i > 0 {
			if err := checkOrder(m.Entries[i-1].Path, m.Entries[i].Path); err != nil {
				return nil, failf(n, entryField(i, "path"), "%v", err)
			}
		}
	}
	return m, nil
}

func failf(n *syntax.Node, field, format string, args ...any) error {
	return &Error{Line: n.Line, Path: field, Msg: fmt.Sprintf(format, args...)}
}

// Fields of an entry, as bits, to find repeated and missing ones.
const (
	fPath = 1 << iota
	fType
	fMode
	fUID
	fGID
	fSize
	fSHA256
	fTarget
)

// entryField names a field of entry i (only on the error path: building
// names for every field of 100k entries would cost more than the parse).
func entryField(i int, key string) string {
	f := "entries[" + strconv.Itoa(i) + "]"
	if key != "" {
		f += "." + key
	}
	return f
}

// str reads a string value; the message is empty when it is one.
func str(v *syntax.Node) (string, string) {
	if v.Kind != syntax.ScalarNode || v.Tag != syntax.StrTag {
		return "", "want a string, got " + describe(v)
	}
	return v.Value, ""
}

// uintValue reads a non-negative integer up to max.
func uintValue(v *syntax.Node, max uint64) (uint64, string) {
	if v.Kind != syntax.ScalarNode || v.Tag != syntax.IntTag {
		return 0, "want an integer, got " + describe(v)
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Sprintf("want an integer from 0 to %d, got %s", max, quote(v.Value))
	}
	return n, ""
}

func parseEntry(n *syntax.Node, i int, e *Entry) error {
	if n.Kind != syntax.MapNode {
		return failf(n, entryField(i, ""), "want an entry object, got %s", describe(n))
	}
	seen := 0
	for j := 0; j+1 < len(n.Items); j += 2 {
		k, v := n.Items[j], n.Items[j+1]
		bit := 0
		var msg string
		switch k.Value {
		case "path":
			bit = fPath
			if e.Path, msg = str(v); msg == "" {
				if err := validPath(e.Path); err != nil {
					msg = err.Error()
				}
			}
		case "type":
			bit = fType
			var s string
			if s, msg = str(v); msg == "" {
				var err error
				if e.Type, err = ParseType(s); err != nil {
					msg = err.Error()
				}
			}
		case "mode":
			bit = fMode
			var s string
			if s, msg = str(v); msg == "" {
				var err error
				if e.Mode, err = ParseMode(s); err != nil {
					msg = err.Error()
				}
			}
		case "uid":
			bit = fUID
			var id uint64
			id, msg = uintValue(v, 1<<32-1)
			e.UID = uint32(id)
		case "gid":
			bit = fGID
			var id uint64
			id, msg = uintValue(v, 1<<32-1)
			e.GID = uint32(id)
		case "size":
			bit = fSize
			var size uint64
			size, msg = uintValue(v, 1<<63-1)
			e.Size = int64(size)
		case "sha256":
			bit = fSHA256
			var sum string
			if sum, msg = str(v); msg == "" {
				e.SHA256 = strings.ToLower(sum)
				if !validSHA256(e.SHA256) {
					msg = "want 64 hex digits"
				}
			}
		case "target":
			bit = fTarget
			if e.Target, msg = str(v); msg == "" {
				if e.Target == "" {
					msg = "empty target"
				} else if !utf8.ValidString(e.Target) {
					msg = "not valid UTF-8"
				}
			}
		default:
			return failf(k, entryField(i, k.Value), "unknown field (an entry has path, type, mode, uid, gid, size, sha256, target)")
		}
		if msg != "" {
			return failf(v, entryField(i, k.Value), "%s", msg)
		}
		if seen&bit != 0 {
			return failf(k, entryField(i, k.Value), "given twice")
		}
		seen |= bit
	}
	for _, r := range []struct {
		bit  int
		name string
	}{{fPath, "path"}, {fType, "type"}, {fMode, "mode"}, {fUID, "uid"}, {fGID, "gid"}} {
		if seen&r.bit == 0 {
			return failf(n, entryField(i, r.name), "missing")
		}
	}
	switch e.Type {
	case File:
		if seen&fSize == 0 {
			return failf(n, entryField(i, "size"), "missing (a file needs size and sha256)")
		}
		if seen&fSHA256 == 0 {
			return failf(n, entryField(i, "sha256"), "missing (a file needs size and sha256)")
		}
	case Symlink:
		if seen&fTarget == 0 {
			return failf(n, entryField(i, "target"), "missing (a symlink needs a target)")
		}
	}
	if e.Type != File && seen&(fSize|fSHA256) != 0 {
		return failf(n, entryField(i, ""), "size and sha256 are for files only, not %s", e.Type)
	}
	if e.Type != Symlink && seen&fTarget != 0 {
		return failf(n, entryField(i, "target"), "target is for symlinks only, not %s", e.Type)
	}
	return nil
}

// describe names a node's kind for "want X, got Y" without echoing it.
func describe(n *syntax.Node) string {
	switch {
	case n.Kind == syntax.MapNode:
		return "an object"
	case n.Kind == syntax.SeqNode:
		return "an array"
	}
	switch n.Tag {
	case syntax.StrTag:
		return "a string"
	case syntax.IntTag, syntax.FloatTag:
		return "a number"
	case syntax.BoolTag:
		return "a boolean"
	}
	return "null"
}
