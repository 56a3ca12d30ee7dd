// Package load reads Estate and Policy documents from files and directories
// (YAML or JSON, several documents per file), decodes them strictly, merges
// them as documents.md says, checks every reference and applies the
// defaults. Every problem is reported with file, line and field path, and all
// problems of a run are reported together rather than only the first.
package load

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// APIVersion is the only apiVersion vguard reads.
const APIVersion = "vguard.dev/v1"

// Options tune loading.
type Options struct {
	// KnownCheck, when set, validates the check IDs a Policy names in
	// `severity` and `disable`.
	KnownCheck func(id string) bool
	// AllowEmpty accepts inputs with no Estate document (an empty estate).
	AllowEmpty bool
	// SideFile, when set, replaces the check that a side file the estate
	// names exists on disk (what is "manifest" or "scan report"): vguard
	// serve keeps them in its store. A non-nil error is reported at the
	// reference.
	SideFile func(what, path string) error
}

// Result is a loaded, merged and validated estate with its policy.
type Result struct {
	Estate *estate.Estate
	Policy *estate.Policy
	// Files lists the files read, in order.
	Files []string
}

// Errors are the input problems of a run, sorted by file and line.
type Errors []*syntax.Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Paths loads every document in paths: files, or directories whose *.yaml,
// *.yml and *.json files (not recursive) are read in name order. The error,
// when not nil, is an Errors.
func Paths(paths []string, opts Options) (*Result, error) {
	l := newLoader(opts)
	for _, p := range paths {
		l.addPath(p)
	}
	return l.finish()
}

// Bytes loads documents from memory, as if read from a file named name.
func Bytes(name string, data []byte, opts Options) (*Result, error) {
	l := newLoader(opts)
	l.addFile(name, data, false)
	return l.finish()
}

type loader struct {
	opts      Options
	files     []string
	fileOrder map[string]int
	errs      Errors
	estates   []*estateDoc
	policies  []*policyDoc
}

func newLoader(opts Options) *loader {
	return &loader{opts: opts, fileOrder: map[string]int{}}
}

func (l *loader) errorf(file string, line int, path, format string, args ...any) {
	l.errs = append(l.errs, &syntax.Error{File: file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) addPath(p string) {
	fi, err := os.Stat(p)
	if err != nil {
		l.errorf(p, 0, "", "%v", plainFSError(err))
		return
	}
	if !fi.IsDir() {
		l.readFile(p, false)
		return
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		l.errorf(p, 0, "", "%v", plainFSError(err))
		return
	}
	n := 0
	for _, e := range entries { // ReadDir sorts by name
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				l.readFile(filepath.Join(p, e.Name()), true)
				n++
			}
		}
	}
	if n == 0 {
		l.errorf(p, 0, "", "directory holds no *.yaml, *.yml or *.json file")
	}
}

func plainFSError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *loader) readFile(name string, fromDir bool) {
	data, err := os.ReadFile(name)
	if err != nil {
		l.errorf(name, 0, "", "%v", plainFSError(err))
		return
	}
	l.addFile(name, data, fromDir)
}

// addFile parses one file. JSON goes through the fast parser; a .yaml file
// that is really JSON (as `vguard gen` output often is, once redirected)
// too, falling back to YAML when it is not strict JSON.
//
// A file found by scanning a directory whose documents have neither
// apiVersion nor kind is not one of ours (a manifest, a scan report, a CI
// file kept beside the estate) and is skipped; a file named explicitly must
// hold vguard documents.
func (l *loader) addFile(name string, data []byte, fromDir bool) {
	l.fileOrder[name] = len(l.files)
	l.files = append(l.files, name)
	docs, perr := ParseDocuments(name, data)
	if perr != nil {
		l.errs = append(l.errs, perr)
		return
	}
	if fromDir && !anyVguardDoc(docs) {
		l.files = l.files[:len(l.files)-1]
		delete(l.fileOrder, name)
		return
	}
	if len(docs) == 0 {
		l.errorf(name, 0, "", "file holds no document")
	}
	for i, d := range docs {
		l.addDoc(name, i, len(docs), d, fromDir)
	}
}

// ParseDocuments parses the documents of one file, JSON or YAML by its name
// and content, into nodes. A syntax error comes back located in the file.
func ParseDocuments(name string, data []byte) ([]*syntax.Node, *syntax.Error) {
	var docs []*syntax.Node
	var err error
	// Windows tools often start UTF-8 files with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	isJSON := strings.EqualFold(filepath.Ext(name), ".json")
	if isJSON || (len(trimmed) > 0 && trimmed[0] == '{') {
		var n *syntax.Node
		n, err = syntax.ParseJSON(data)
		if err == nil {
			docs = []*syntax.Node{n}
		} else if !isJSON {
			// Not strict JSON, perhaps YAML flow style. When it is not YAML
			// either, the JSON parser's message is the more precise one.
			var yerr error
			if docs, yerr = syntax.ParseYAML(data); yerr == nil {
				err = nil
			}
		}
	} else {
		docs, err = syntax.ParseYAML(data)
	}
	if err != nil {
		var le *syntax.LineError
		if errors.As(err, &le) {
			return nil, &syntax.Error{File: name, Line: le.Line, Msg: le.Msg}
		}
		return nil, &syntax.Error{File: name, Msg: err.Error()}
	}
	return docs, nil
}

// ReadDocuments reads and parses one file (see ParseDocuments).
func ReadDocuments(name string) ([]*syntax.Node, *syntax.Error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, &syntax.Error{File: name, Msg: plainFSError(err).Error()}
	}
	return ParseDocuments(name, data)
}

// anyVguardDoc reports whether a file looks like vguard's: a document with
// apiVersion or kind, or with a top-level field of an Estate, Policy or
// Change (an estate file missing its header is an error, not a file to pass
// over).
func anyVguardDoc(docs []*syntax.Node) bool {
	for _, d := range docs {
		if d.Kind != syntax.MapNode {
			continue
		}
		for i := 0; i+1 < len(d.Items); i += 2 {
			if ourTopLevel[d.Items[i].Value] {
				return true
			}
		}
	}
	return false
}

var ourTopLevel = map[string]bool{
	"apiVersion": true, "kind": true,
	"zones": true, "networks": true, "hypervisors": true, "datastores": true, "images": true, "vms": true,
	"services": true, "firewalls": true, "zoneHardening": true, "exposedHostMinLevel": true,
	"dedicatedClassification": true, "sensitivePorts": true, "overcommit": true, "resourceLimits": true,
	"masterLag": true, "separate": true, "placement": true, "change": true, "severity": true, "disable": true,
	"operations": true,
}

func (l *loader) addDoc(file string, i, count int, n *syntax.Node, fromDir bool) {
	where := ""
	if count > 1 {
		where = fmt.Sprintf(" (document %d)", i+1)
	}
	if n.Kind != syntax.MapNode {
		l.errorf(file, n.Line, "", "a document must be a mapping with apiVersion and kind%s", where)
		return
	}
	av, kind := n.Get("apiVersion"), n.Get("kind")
	switch {
	case av == nil:
		l.errorf(file, n.Line, "apiVersion", "missing apiVersion (want %s)%s", APIVersion, where)
		return
	case av.Value != APIVersion:
		l.errorf(file, av.Line, "apiVersion", "unsupported apiVersion %q (want %s)", av.Value, APIVersion)
		return
	case kind == nil:
		l.errorf(file, n.Line, "kind", "missing kind (Estate or Policy)%s", where)
		return
	}
	switch kind.Value {
	case "Estate":
		d := &estateDoc{file: file, dir: filepath.Dir(file)}
		l.errs = append(l.errs, syntax.Decode(file, n, "", d)...)
		l.estates = append(l.estates, d)
	case "Policy":
		d := &policyDoc{file: file, node: n}
		l.errs = append(l.errs, syntax.Decode(file, n, "", d)...)
		l.policies = append(l.policies, d)
	case "Change":
		// Change files are often kept beside the estate they change; a
		// directory scan passes over them. Named explicitly, they are a
		// mistake of the command line.
		if !fromDir {
			l.errorf(file, kind.Line, "kind", "a Change document is judged with `vguard plan CHANGE [PATH...]`, not read as estate facts")
		}
	default:
		l.errorf(file, kind.Line, "kind", "unexpected kind %q here (want Estate or Policy)", kind.Value)
	}
}

func (l *loader) finish() (*Result, error) {
	if len(l.estates) == 0 && !l.opts.AllowEmpty && len(l.errs) == 0 {
		where := strings.Join(l.files, ", ")
		l.errorf(where, 0, "", "no Estate document found")
	}
	e := l.mergeEstates()
	p := l.mergePolicies(e)
	if len(l.errs) > 0 {
		slices.SortStableFunc(l.errs, func(a, b *syntax.Error) int {
			if c := cmp.Compare(l.fileOrder[a.File], l.fileOrder[b.File]); c != 0 {
				return c
			}
			return cmp.Compare(a.Line, b.Line)
		})
		return nil, l.errs
	}
	return &Result{Estate: e, Policy: p, Files: l.files}, nil
}

// Source is one input held in memory, loaded as if read from a file of its
// name (vguard serve keeps uploaded documents this way).
type Source struct {
	Name string
	Data []byte
}

// Sources loads documents from memory, each as if read from a file named
// by its Name, in order.
func Sources(srcs []Source, opts Options) (*Result, error) {
	l := newLoader(opts)
	for _, s := range srcs {
		l.addFile(s.Name, s.Data, false)
	}
	return l.finish()
}
