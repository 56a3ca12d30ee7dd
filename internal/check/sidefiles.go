package check

import (
	"maps"
	"slices"
	"sync"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// ManifestDiffer is implemented by SideFiles that also keep the drift
// between two manifests, so that the many VMs made from one master with
// identical manifests cost one comparison across evaluations (a change is
// judged by evaluating the estate before and after it).
type ManifestDiffer interface {
	// Drift compares the manifest at otherPath with the one at basePath
	// under the default ignore list: manifest.Diff(base, other).
	Drift(basePath, otherPath string) (*manifest.Drift, error)
}

// DiskFiles reads side files from disk. Each file is read and parsed at most
// once, and each drift computed at most once, for the life of the DiskFiles
// (errors are kept too): make a new one for each run that must see changed
// files. It is safe for concurrent use; concurrent requests for one path
// wait for a single read.
type DiskFiles struct {
	mu        sync.Mutex
	manifests map[string]*cached[*manifest.Manifest]
	scans     map[string]*cached[*scanreport.Report]
	drifts    map[[2]string]*cached[*manifest.Drift]
}

type cached[T any] struct {
	once sync.Once
	v    T
	err  error
}

// NewDiskFiles returns an empty DiskFiles.
func NewDiskFiles() *DiskFiles {
	return &DiskFiles{
		manifests: map[string]*cached[*manifest.Manifest]{},
		scans:     map[string]*cached[*scanreport.Report]{},
		drifts:    map[[2]string]*cached[*manifest.Drift]{},
	}
}

// get returns the cached value for k, computing it once with load. The lock
// is held only to find the slot, so reads of different files overlap.
func get[K comparable, T any](mu *sync.Mutex, m map[K]*cached[T], k K, load func() (T, error)) (T, error) {
	mu.Lock()
	c := m[k]
	if c == nil {
		c = &cached[T]{}
		m[k] = c
	}
	mu.Unlock()
	c.once.Do(func() { c.v, c.err = load() })
	return c.v, c.err
}

// Manifest reads and parses the manifest at path.
func (d *DiskFiles) Manifest(path string) (*manifest.Manifest, error) {
	return get(&d.mu, d.manifests, path, func() (*manifest.Manifest, error) { return manifest.ReadFile(path) })
}

// Scan reads and parses the scan report at path.
func (d *DiskFiles) Scan(path string) (*scanreport.Report, error) {
	return get(&d.mu, d.scans, path, func() (*scanreport.Report, error) { return scanreport.ReadFile(path) })
}

// Drift implements ManifestDiffer.
func (d *DiskFiles) Drift(basePath, otherPath string) (*manifest.Drift, error) {
	return get(&d.mu, d.drifts, [2]string{basePath, otherPath}, func() (*manifest.Drift, error) {
		return driftOf(d, basePath, otherPath)
	})
}

// driftOf reads both manifests through files and compares them.
func driftOf(files SideFiles, basePath, otherPath string) (*manifest.Drift, error) {
	base, err := files.Manifest(basePath)
	if err != nil {
		return nil, err
	}
	other, err := files.Manifest(otherPath)
	if err != nil {
		return nil, err
	}
	return manifest.Diff(base, other), nil
}

// fileErrors gathers a check run's errors reading side files, one per file:
// a broken manifest shared by 100k VMs is one problem, reported once with
// one object that refers to it and how many more of its kind do. The object
// named is the first by kind (images before VMs) and name, and files come
// in path order, so that the errors do not depend on the order in which
// objects are judged: an updatable index lists VMs in no fixed order, and a
// scoped run judges its VMs in any.
type fileErrors struct {
	byPath map[string]*fileError
}

type fileError struct {
	what       string // "manifest" or "scan report"
	kind, name string // "vm", "web-1" or "image", "web-master@3"
	pos        estate.Pos
	refs       [2]int          // objects of each kind (kindRank) that met the error
	seen       map[string]bool // those objects, as kind/name
	err        error
}

// kindRank orders the kinds of objects that refer to side files.
func kindRank(kind string) int {
	if kind == "image" {
		return 0
	}
	return 1
}

// add records that the object kind/name (defined at pos) could not use the
// side file at path; err may be nil for a repeat, once the file's error is
// known. An object may meet one file's error more than once (an image's
// manifest, compared with several VM manifests): it counts once.
func (fe *fileErrors) add(path, what, kind, name string, pos estate.Pos, err error) {
	e := fe.byPath[path]
	switch {
	case e == nil && err == nil:
		return
	case e == nil:
		if fe.byPath == nil {
			fe.byPath = map[string]*fileError{}
		}
		e = &fileError{what: what, kind: kind, name: name, pos: pos, seen: map[string]bool{}, err: err}
		fe.byPath[path] = e
	case kindRank(kind) < kindRank(e.kind) || kind == e.kind && name < e.name:
		e.kind, e.name, e.pos = kind, name, pos
	}
	if ref := kind + "/" + name; !e.seen[ref] {
		e.seen[ref] = true
		e.refs[kindRank(kind)]++
	}
}

// report records the errors on c, by path, as
// "estate.yaml:12: vm web-1 (and 3 more VMs): manifest: m/w.json:4: ...".
func (fe *fileErrors) report(c *Context) {
	words := map[string][2]string{"vm": {"VM", "VMs"}, "image": {"image", "images"}}
	for _, path := range slices.Sorted(maps.Keys(fe.byPath)) {
		e := fe.byPath[path]
		where := ""
		if p := e.pos.String(); p != "" {
			where = p + ": "
		}
		also := ""
		if others := e.refs[kindRank(e.kind)] - 1; others > 0 {
			w := words[e.kind]
			also = " (and " + plural(others, "more "+w[0], "more "+w[1]) + ")"
		}
		c.errorAt(where, "%s %s%s: %s: %v", e.kind, e.name, also, e.what, e.err)
	}
}
