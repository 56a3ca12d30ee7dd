package server

import (
	"fmt"
	"sync"

	"github.com/vguard-dev/vguard/internal/manifest"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

// sideFiles gives the checks the scan reports and manifests uploaded to
// the server, by the path the estate names them with (check.SideFiles and
// check.ManifestDiffer). Each is parsed once per state; it is safe for
// concurrent use.
type sideFiles struct {
	scans, manifests map[string][]byte

	mu     sync.Mutex
	parsed map[string]*once
}

type once struct {
	sync.Once
	v   any
	err error
}

func newSideFiles() *sideFiles {
	return &sideFiles{scans: map[string][]byte{}, manifests: map[string][]byte{}, parsed: map[string]*once{}}
}

func (f *sideFiles) get(key string, load func() (any, error)) (any, error) {
	f.mu.Lock()
	o := f.parsed[key]
	if o == nil {
		o = &once{}
		f.parsed[key] = o
	}
	f.mu.Unlock()
	o.Do(func() { o.v, o.err = load() })
	return o.v, o.err
}

// Manifest implements check.SideFiles.
func (f *sideFiles) Manifest(path string) (*manifest.Manifest, error) {
	v, err := f.get("m\x00"+path, func() (any, error) {
		data, ok := f.manifests[path]
		if !ok {
			return nil, fmt.Errorf("%s: no manifest uploaded at this path (PUT /api/v1/manifests/%s)", path, path)
		}
		m, err := manifest.Parse(data)
		if err != nil {
			return nil, withFile(path, err)
		}
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*manifest.Manifest), nil
}

// Scan implements check.SideFiles.
func (f *sideFiles) Scan(path string) (*scanreport.Report, error) {
	v, err := f.get("s\x00"+path, func() (any, error) {
		data, ok := f.scans[path]
		if !ok {
			return nil, fmt.Errorf("%s: no scan report uploaded at this path (PUT /api/v1/scans/%s)", path, path)
		}
		r, err := scanreport.Parse(data)
		if err != nil {
			return nil, withFile(path, err)
		}
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*scanreport.Report), nil
}

// Drift implements check.ManifestDiffer.
func (f *sideFiles) Drift(base, other string) (*manifest.Drift, error) {
	v, err := f.get("d\x00"+base+"\x00"+other, func() (any, error) {
		b, err := f.Manifest(base)
		if err != nil {
			return nil, err
		}
		o, err := f.Manifest(other)
		if err != nil {
			return nil, err
		}
		return manifest.Diff(b, o), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*manifest.Drift), nil
}

// exists is load.Options.SideFile and change's side-file check: the file
// must have been uploaded.
func (f *sideFiles) exists(what, path string) error {
	m, route := f.manifests, "manifests"
	if what != "manifest" {
		m, route = f.scans, "scans"
	}
	if _, ok := m[path]; !ok {
		return fmt.Errorf("not uploaded (PUT /api/v1/%s/%s)", route, path)
	}
	return nil
}
