// Package scanreport reads the reports of `vguard image scan --format json`
// (cli.md): the secrets and clone-identity material found in a VM image or
// disk. Check VG105 reads them to flag images and VMs that carry secrets.
//
// The reader is strict about what it uses and tolerant of what it does not:
// a known field of the wrong type, or a secret without a rule, is an error
// with line and field, while unknown fields are skipped so that newer
// scanners that add fields still load. Skipped values are not kept, so a
// value a foreign scanner might add (say, an unredacted secret) never stays
// in memory and never reaches an error message: errors name fields and
// kinds of values, never their content.
package scanreport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/vguard-dev/vguard/internal/syntax"
)

// Report is a parsed scan report. The JSON tags give the shape of cli.md.
type Report struct {
	Image    string     `json:"image"`
	Format   string     `json:"format"`
	Secrets  []Secret   `json:"secrets"`
	Identity []Identity `json:"identity"`
	Summary  Summary    `json:"summary"`
}

// Secret is one secret found. Its value is never in a report: Redacted
// shows a few characters at most and Fingerprint is a hash, enough to tell
// two findings of one secret apart from two secrets.
type Secret struct {
	Rule        string `json:"rule"`
	Path        string `json:"path"`
	Line        int    `json:"line"`
	Redacted    string `json:"redacted"`
	Fingerprint string `json:"fingerprint"`
}

// String names the secret by rule and place, without its redacted value.
func (s Secret) String() string {
	switch {
	case s.Path == "":
		return s.Rule
	case s.Line > 0:
		return s.Rule + " at " + s.Path + ":" + strconv.Itoa(s.Line)
	}
	return s.Rule + " at " + s.Path
}

// Identity is a piece of clone-identity material: a host key, a machine id.
type Identity struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
}

// Summary are the totals of the scan.
type Summary struct {
	Files    int64 `json:"files"`
	Bytes    int64 `json:"bytes"`
	Secrets  int   `json:"secrets"`
	Identity int   `json:"identity"`
}

// Rules returns the distinct rules of the secrets, sorted.
func (r *Report) Rules() []string {
	return distinct(len(r.Secrets), func(i int) string { return r.Secrets[i].Rule })
}

// Paths returns the distinct non-empty paths that hold secrets, sorted.
func (r *Report) Paths() []string {
	return distinct(len(r.Secrets), func(i int) string { return r.Secrets[i].Path })
}

func distinct(n int, get func(int) string) []string {
	seen := make(map[string]bool, n)
	out := []string{}
	for i := 0; i < n; i++ {
		if s := get(i); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Error is a problem with a report: where (file, line) and which field (Path,
// e.g. "entries[3].mode"; empty for the document as a whole). It is the
// error type of every input vguard reads.
type Error = syntax.Error

// ReadFile reads and parses the report at path; errors name the file.
func ReadFile(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	r, err := Parse(data)
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			pe.File = path
		}
		return nil, err
	}
	return r, nil
}

// Parse reads a report. "secrets" must be present (null or [] for none), so
// that some other JSON document given by mistake is not read as a clean
// scan; every secret needs a rule and every identity item a kind.
func Parse(data []byte) (*Report, error) {
	p := &parser{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	r, err := p.report()
	if err != nil {
		return nil, err
	}
	return r, nil
}

type parser struct {
	data []byte
	dec  *json.Decoder
}

func (p *parser) lineAt(off int64) int {
	off = min(max(off, 0), int64(len(p.data)))
	return 1 + bytes.Count(p.data[:off], []byte{'\n'})
}

func (p *parser) failf(field, format string, args ...any) error {
	return &Error{Line: p.lineAt(p.dec.InputOffset()), Path: field, Msg: fmt.Sprintf(format, args...)}
}

// valueStart returns, for the decoder offset off, the offset just past the
// ',' or ':' the decoder consumes before the next value (the base of the
// offsets in its UnmarshalTypeErrors) and the offset of the value itself.
func (p *parser) valueStart(off int64) (base, value int64) {
	skip := func(i int64) int64 {
		for i < int64(len(p.data)) && strings.IndexByte(" \t\r\n", p.data[i]) >= 0 {
			i++
		}
		return i
	}
	base = skip(off)
	if base < int64(len(p.data)) && (p.data[base] == ',' || p.data[base] == ':') {
		base++
	} else {
		base = off
	}
	return base, skip(base)
}

// wrap turns a decoder error into *Error; start is the decoder offset
// before the value.
func (p *parser) wrap(field string, start int64, err error) error {
	base, value := p.valueStart(start)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &Error{Line: p.lineAt(se.Offset), Path: field, Msg: "invalid JSON: " + se.Error()}
	case errors.As(err, &te):
		f := field
		if te.Field != "" {
			// te.Field is the dotted path inside the value decoded.
			f += "." + te.Field[strings.LastIndexByte(te.Field, '.')+1:]
		}
		return &Error{Line: p.lineAt(base + te.Offset), Path: f, Msg: fmt.Sprintf("want %s, got %s", kind(te.Type), valueKind(te.Value))}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Line: p.lineAt(int64(len(p.data))), Path: field, Msg: "unexpected end of input"}
	}
	return &Error{Line: p.lineAt(value), Path: field, Msg: "invalid JSON: " + err.Error()}
}

func (p *parser) token(field string) (json.Token, error) {
	start := p.dec.InputOffset()
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.wrap(field, start, err)
	}
	return tok, nil
}

// decode reads the next value into v.
func (p *parser) decode(field string, v any) error {
	start := p.dec.InputOffset()
	if err := p.dec.Decode(v); err != nil {
		return p.wrap(field, start, err)
	}
	return nil
}

func (p *parser) report() (*Report, error) {
	tok, err := p.token("")
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.failf("", "a scan report is a JSON object")
	}
	r := &Report{}
	sawSecrets := false
	seen := map[string]bool{}
	for p.dec.More() {
		tok, err := p.token("")
		if err != nil {
			return nil, err
		}
		k := tok.(string) // the decoder guarantees object keys are strings
		if seen[k] {
			return nil, p.failf(k, "given twice")
		}
		seen[k] = true
		switch k {
		case "image":
			err = p.decode(k, &r.Image)
		case "format":
			err = p.decode(k, &r.Format)
		case "summary":
			if err = p.decode(k, &r.Summary); err == nil {
				err = p.checkSummary(&r.Summary)
			}
		case "secrets":
			sawSecrets = true
			r.Secrets, err = list(p, k, func(field string, s *Secret) error {
				switch {
				case s.Rule == "":
					return p.failf(field+".rule", "missing")
				case s.Line < 0:
					return p.failf(field+".line", "negative line %d", s.Line)
				}
				return nil
			})
		case "identity":
			r.Identity, err = list(p, k, func(field string, id *Identity) error {
				if id.Kind == "" {
					return p.failf(field+".kind", "missing")
				}
				return nil
			})
		default:
			// A newer scanner's field: skip it without keeping it.
			var skip json.RawMessage
			err = p.decode(k, &skip)
		}
		if err != nil {
			return nil, err
		}
	}
	if _, err := p.token(""); err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, p.failf("", "unexpected data after the report")
	}
	if !sawSecrets {
		return nil, &Error{Line: 1, Path: "secrets", Msg: "missing (is this a report of `vguard image scan --format json`?)"}
	}
	return r, nil
}

func (p *parser) checkSummary(s *Summary) error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"files", s.Files}, {"bytes", s.Bytes}, {"secrets", int64(s.Secrets)}, {"identity", int64(s.Identity)}} {
		if f.v < 0 {
			return p.failf("summary."+f.name, "negative count %d", f.v)
		}
	}
	return nil
}

// list reads a JSON array (or null) of T element by element, so that each
// error has the element's index and line; check validates one element.
func list[T any](p *parser, field string, check func(field string, v *T) error) ([]T, error) {
	tok, err := p.token(field)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, p.failf(field, "want an array, got %s", describe(tok))
	}
	var out []T
	for i := 0; p.dec.More(); i++ {
		f := field + "[" + strconv.Itoa(i) + "]"
		var v T
		_, start := p.valueStart(p.dec.InputOffset())
		if err := p.decode(f, &v); err != nil {
			return nil, err
		}
		if err := check(f, &v); err != nil {
			var pe *Error
			if errors.As(err, &pe) {
				pe.Line = p.lineAt(start)
			}
			return nil, err
		}
		out = append(out, v)
	}
	if _, err := p.token(field); err != nil {
		return nil, err
	}
	return out, nil
}

func describe(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// kind names a Go type the way a JSON author thinks of it.
func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	}
	return t.String()
}

// valueKind keeps the kind of a JSON value from UnmarshalTypeError.Value
// ("string", "number 1.5", "object") and drops any literal after it.
func valueKind(v string) string {
	k, _, _ := strings.Cut(v, " ")
	switch k {
	case "string", "number", "object", "array", "bool":
		return k
	}
	return "another kind of value"
}
