package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Error is a problem with a manifest: where (file, line) and which field.
// File and Line are empty when unknown (a manifest built in memory).
type Error struct {
	File  string
	Line  int
	Field string // e.g. "entries[3].mode"; empty for the document as a whole
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ReadFile reads and parses the manifest at path; errors name the file.
func ReadFile(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	m, err := Parse(data)
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
	p := &parser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	m, err := p.manifest()
	if err != nil {
		return nil, err
	}
	return m, nil
}

type parser struct {
	data []byte
	dec  *json.Decoder
}

// failf makes an error at the decoder's position (just after the last
// token read, which is on the line of the offending value).
func (p *parser) failf(field, format string, args ...any) error {
	return &Error{Line: p.lineAt(p.dec.InputOffset()), Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) lineAt(off int64) int {
	if off > int64(len(p.data)) {
		off = int64(len(p.data))
	}
	return 1 + bytes.Count(p.data[:off], []byte{'\n'})
}

// token reads the next token, turning decoder errors into *Error.
func (p *parser) token(field string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err == nil {
		return tok, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return nil, &Error{Line: p.lineAt(se.Offset), Field: field, Msg: "invalid JSON: " + se.Error()}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, &Error{Line: p.lineAt(int64(len(p.data))), Field: field, Msg: "unexpected end of input"}
	}
	return nil, p.failf(field, "invalid JSON: %v", err)
}

// delim reads a token that must be the delimiter d.
func (p *parser) delim(field string, d json.Delim, what string) error {
	tok, err := p.token(field)
	if err != nil {
		return err
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return p.failf(field, "want %s, got %s", what, describe(tok))
	}
	return nil
}

// key reads an object key; the caller has checked dec.More().
func (p *parser) key(field string) (string, error) {
	tok, err := p.token(field)
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", p.failf(field, "want an object key, got %s", describe(tok))
	}
	return k, nil
}

func (p *parser) str(field string) (string, error) {
	tok, err := p.token(field)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", p.failf(field, "want a string, got %s", describe(tok))
	}
	return s, nil
}

// uint reads a non-negative integer up to max.
func (p *parser) uint(field string, max uint64) (uint64, error) {
	tok, err := p.token(field)
	if err != nil {
		return 0, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return 0, p.failf(field, "want an integer, got %s", describe(tok))
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil || v > max {
		return 0, p.failf(field, "want an integer from 0 to %d, got %s", max, quote(string(n)))
	}
	return v, nil
}

func (p *parser) manifest() (*Manifest, error) {
	if err := p.delim("", '{', "a JSON object"); err != nil {
		return nil, err
	}
	m := &Manifest{}
	var sawFormat, sawEntries bool
	for p.dec.More() {
		k, err := p.key("")
		if err != nil {
			return nil, err
		}
		switch k {
		case "format":
			if sawFormat {
				return nil, p.failf("format", "given twice")
			}
			sawFormat = true
			f, err := p.str("format")
			if err != nil {
				return nil, err
			}
			if f != Format {
				return nil, p.failf("format", "unsupported manifest format %s (want %q)", quote(f), Format)
			}
		case "entries":
			if sawEntries {
				return nil, p.failf("entries", "given twice")
			}
			sawEntries = true
			if m.Entries, err = p.entries(); err != nil {
				return nil, err
			}
		default:
			return nil, p.failf(k, "unknown field (a manifest has format and entries)")
		}
	}
	if err := p.delim("", '}', "end of object"); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, p.failf("", "unexpected data after the manifest")
	}
	if !sawFormat {
		return nil, &Error{Line: 1, Field: "format", Msg: fmt.Sprintf("missing (want %q)", Format)}
	}
	if !sawEntries {
		return nil, &Error{Line: 1, Field: "entries", Msg: "missing"}
	}
	return m, nil
}

func (p *parser) entries() ([]Entry, error) {
	if err := p.delim("entries", '[', "an array"); err != nil {
		return nil, err
	}
	var out []Entry
	for i := 0; p.dec.More(); i++ {
		field := "entries[" + strconv.Itoa(i) + "]"
		e, err := p.entry(field)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			if err := checkOrder(out[i-1].Path, e.Path); err != nil {
				return nil, p.failf(field+".path", "%v", err)
			}
		}
		out = append(out, e)
	}
	if err := p.delim("entries", ']', "end of array"); err != nil {
		return nil, err
	}
	return out, nil
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

func (p *parser) entry(field string) (Entry, error) {
	var e Entry
	if err := p.delim(field, '{', "an entry object"); err != nil {
		return e, err
	}
	seen := 0
	for p.dec.More() {
		k, err := p.key(field)
		if err != nil {
			return e, err
		}
		f := field + "." + k
		bit := 0
		switch k {
		case "path":
			bit = fPath
			if e.Path, err = p.str(f); err == nil {
				if perr := validPath(e.Path); perr != nil {
					err = p.failf(f, "%v", perr)
				}
			}
		case "type":
			bit = fType
			var s string
			if s, err = p.str(f); err == nil {
				if e.Type, err = ParseType(s); err != nil {
					err = p.failf(f, "%v", err)
				}
			}
		case "mode":
			bit = fMode
			var s string
			if s, err = p.str(f); err == nil {
				if e.Mode, err = ParseMode(s); err != nil {
					err = p.failf(f, "%v", err)
				}
			}
		case "uid", "gid":
			bit = fUID
			if k == "gid" {
				bit = fGID
			}
			var v uint64
			if v, err = p.uint(f, 1<<32-1); err == nil {
				if k == "uid" {
					e.UID = uint32(v)
				} else {
					e.GID = uint32(v)
				}
			}
		case "size":
			bit = fSize
			var v uint64
			if v, err = p.uint(f, 1<<63-1); err == nil {
				e.Size = int64(v)
			}
		case "sha256":
			bit = fSHA256
			var s string
			if s, err = p.str(f); err == nil {
				e.SHA256 = strings.ToLower(s)
				if !validSHA256(e.SHA256) {
					err = p.failf(f, "want 64 hex digits")
				}
			}
		case "target":
			bit = fTarget
			if e.Target, err = p.str(f); err == nil && e.Target == "" {
				err = p.failf(f, "empty target")
			}
		default:
			return e, p.failf(f, "unknown field (an entry has path, type, mode, uid, gid, size, sha256, target)")
		}
		if err != nil {
			return e, err
		}
		if seen&bit != 0 {
			return e, p.failf(f, "given twice")
		}
		seen |= bit
	}
	if err := p.delim(field, '}', "end of entry"); err != nil {
		return e, err
	}
	for _, r := range []struct {
		bit  int
		name string
	}{{fPath, "path"}, {fType, "type"}, {fMode, "mode"}, {fUID, "uid"}, {fGID, "gid"}} {
		if seen&r.bit == 0 {
			return e, p.failf(field+"."+r.name, "missing")
		}
	}
	switch e.Type {
	case File:
		if seen&fSize == 0 {
			return e, p.failf(field+".size", "missing (a file needs size and sha256)")
		}
		if seen&fSHA256 == 0 {
			return e, p.failf(field+".sha256", "missing (a file needs size and sha256)")
		}
	case Symlink:
		if seen&fTarget == 0 {
			return e, p.failf(field+".target", "missing (a symlink needs a target)")
		}
	}
	if e.Type != File && seen&(fSize|fSHA256) != 0 {
		return e, p.failf(field, "size and sha256 are for files only, not %s", e.Type)
	}
	if e.Type != Symlink && seen&fTarget != 0 {
		return e, p.failf(field+".target", "target is for symlinks only, not %s", e.Type)
	}
	return e, nil
}

// describe names a token's kind for "want X, got Y" without echoing it.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return "end of " + map[json.Delim]string{'}': "object", ']': "array"}[t]
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}
