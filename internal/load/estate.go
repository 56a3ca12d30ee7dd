package load

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"unicode"
	"unicode/utf8"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/syntax"
)

// estateDoc is one Estate document as written.
type estateDoc struct {
	APIVersion  string               `yaml:"apiVersion,required"`
	Kind        string               `yaml:"kind,required"`
	Metadata    estate.Meta          `yaml:"metadata"`
	Zones       []*estate.Zone       `yaml:"zones"`
	Networks    []*estate.Network    `yaml:"networks"`
	Hypervisors []*estate.Hypervisor `yaml:"hypervisors"`
	Datastores  []*estate.Datastore  `yaml:"datastores"`
	Images      []*estate.Image      `yaml:"images"`
	VMs         []*estate.VM         `yaml:"vms"`
	Services    []*estate.Service    `yaml:"services"`
	Firewalls   []*estate.Firewall   `yaml:"firewalls"`

	file string
	dir  string
}

// names is the set of defined names of one kind, with where each was first
// defined, to report duplicates.
type names map[string]estate.Pos

func (l *loader) define(ns names, kind, name, path string, pos estate.Pos) {
	if name == "" {
		return // the decoder already reported the missing name
	}
	if !l.checkName(name, path, pos) {
		return
	}
	if first, dup := ns[name]; dup {
		l.errorf(pos.File, pos.Line, path, "duplicate %s %q (first defined at %s)", kind, name, first)
		return
	}
	ns[name] = pos
}

// checkName refuses a name that is not valid UTF-8 or holds a control
// character: names reach terminals, reports, SARIF, the audit trail and
// database TEXT columns (PostgreSQL refuses NUL), where such bytes either
// break the record or disguise one name as another.
func (l *loader) checkName(name, path string, pos estate.Pos) bool {
	if !utf8.ValidString(name) {
		l.errorf(pos.File, pos.Line, path, "name %q is not valid UTF-8", name)
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			l.errorf(pos.File, pos.Line, path, "name %q holds the control character %U", name, r)
			return false
		}
	}
	return true
}

var macRE = regexp.MustCompile(`^(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f]{12}$`)

// mergeEstates merges every Estate document, reporting duplicates, and then
// checks references and values against the merged whole, so that one file
// may refer to objects another defines.
func (l *loader) mergeEstates() *estate.Estate {
	e := &estate.Estate{}
	zones, networks, hvs, dss, vms, svcs, fws := names{}, names{}, names{}, names{}, names{}, names{}, names{}
	images := map[estate.ImageRef]estate.Pos{}
	for _, d := range l.estates {
		if e.Meta.Name == "" {
			e.Meta = d.Metadata
		}
		for i, z := range d.Zones {
			l.define(zones, "zone", z.Name, syntax.IndexPath("zones", i)+".name", z.Pos)
		}
		for i, n := range d.Networks {
			l.define(networks, "network", n.Name, syntax.IndexPath("networks", i)+".name", n.Pos)
		}
		for i, h := range d.Hypervisors {
			l.define(hvs, "hypervisor", h.Name, syntax.IndexPath("hypervisors", i)+".name", h.Pos)
		}
		for i, ds := range d.Datastores {
			l.define(dss, "datastore", ds.Name, syntax.IndexPath("datastores", i)+".name", ds.Pos)
		}
		for i, im := range d.Images {
			path := syntax.IndexPath("images", i)
			if im.Name != "" {
				l.checkName(im.Name, path+".name", im.Pos)
			}
			if im.Version < 1 && im.Name != "" {
				l.errorf(im.File, im.Line, path+".version", "version must be an integer >= 1")
			}
			if first, dup := images[im.Ref()]; dup && im.Name != "" {
				l.errorf(im.File, im.Line, path, "duplicate image %q (first defined at %s)", im.Ref(), first)
			} else {
				images[im.Ref()] = im.Pos
			}
		}
		for i, vm := range d.VMs {
			l.define(vms, "vm", vm.Name, syntax.IndexPath("vms", i)+".name", vm.Pos)
		}
		for i, s := range d.Services {
			l.define(svcs, "service", s.Name, syntax.IndexPath("services", i)+".name", s.Pos)
		}
		for i, f := range d.Firewalls {
			l.define(fws, "firewall", f.Name, syntax.IndexPath("firewalls", i)+".name", f.Pos)
		}
		e.Zones = append(e.Zones, d.Zones...)
		e.Networks = append(e.Networks, d.Networks...)
		e.Hypervisors = append(e.Hypervisors, d.Hypervisors...)
		e.Datastores = append(e.Datastores, d.Datastores...)
		e.Images = append(e.Images, d.Images...)
		e.VMs = append(e.VMs, d.VMs...)
		e.Services = append(e.Services, d.Services...)
		e.Firewalls = append(e.Firewalls, d.Firewalls...)
	}

	ref := func(ns names, kind, name string, pos estate.Pos, path string) {
		if name == "" {
			return
		}
		if _, ok := ns[name]; !ok {
			l.errorf(pos.File, pos.Line, path, "unknown %s %q", kind, name)
		}
	}
	sideFiles := map[string]error{}
	side := func(d *estateDoc, p *string, pos estate.Pos, path, what string) {
		if *p == "" {
			return
		}
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(d.dir, *p)
		}
		err, seen := sideFiles[*p]
		if !seen {
			if l.opts.SideFile != nil {
				err = l.opts.SideFile(what, *p)
			} else {
				var fi os.FileInfo
				fi, err = os.Stat(*p)
				if err == nil && fi.IsDir() {
					err = fmt.Errorf("is a directory")
				}
			}
			sideFiles[*p] = err
		}
		if err != nil {
			l.errorf(pos.File, pos.Line, path, "cannot read %s %q: %v", what, *p, plainFSError(err))
		}
	}
	ns := &nameSets{zones: zones, networks: networks, hvs: hvs, dss: dss, images: images}
	for _, d := range l.estates {
		for i, n := range d.Networks {
			path := syntax.IndexPath("networks", i)
			ref(zones, "zone", n.Zone, n.Pos, path+".zone")
			if n.VLAN != nil && (*n.VLAN < 0 || *n.VLAN > 4094) {
				l.errorf(n.File, n.Line, path+".vlan", "vlan %d is outside 0..4094", *n.VLAN)
			}
			if n.Purpose == 0 {
				n.Purpose = estate.PurposeGuest
			}
		}
		for i, h := range d.Hypervisors {
			path := syntax.IndexPath("hypervisors", i)
			ref(networks, "network", h.ManagementNetwork, h.Pos, path+".managementNetwork")
			ref(networks, "network", h.MigrationNetwork, h.Pos, path+".migrationNetwork")
			if c := h.Capacity; c != nil && (c.CPUs < 0 || c.MemoryMiB < 0 || c.CPUs > MaxCPUs || c.MemoryMiB > MaxMemoryMiB) {
				l.errorf(h.File, h.Line, path+".capacity", "capacity must be within 0..%d cpus and 0..%d MiB", MaxCPUs, MaxMemoryMiB)
			}
			if h.Cluster == "" {
				h.Cluster = "default"
			}
			if h.FailureDomain == "" {
				h.FailureDomain = h.Name
			}
		}
		for _, ds := range d.Datastores {
			if ds.Classification == 0 {
				ds.Classification = estate.ClassInternal
			}
			if ds.Writers == 0 {
				ds.Writers = estate.WritersMulti
			}
		}
		for i, im := range d.Images {
			path := syntax.IndexPath("images", i)
			side(d, &im.Manifest, im.Pos, path+".manifest", "manifest")
			side(d, &im.Scan, im.Pos, path+".scan", "scan report")
		}
		for i, vm := range d.VMs {
			l.checkVM(d, i, vm, side, ns)
		}
		for i, s := range d.Services {
			path := syntax.IndexPath("services", i)
			switch {
			case s.Selector == nil && s.Members == nil:
				l.errorf(s.File, s.Line, path, "give either members or selector")
			case s.Selector != nil && s.Members != nil:
				l.errorf(s.File, s.Line, path, "give members or selector, not both")
			}
			for j, m := range s.Members {
				ref(vms, "vm", m, s.Pos, syntax.IndexPath(path+".members", j))
			}
			if s.MinAvailable < 0 {
				l.errorf(s.File, s.Line, path+".minAvailable", "must not be negative")
			}
			if s.MaxUnavailable < 1 {
				l.errorf(s.File, s.Line, path+".maxUnavailable", "must be at least 1")
			}
		}
		for i, f := range d.Firewalls {
			path := syntax.IndexPath("firewalls", i)
			for j, n := range f.Protects {
				ref(networks, "network", n, f.Pos, syntax.IndexPath(path+".protects", j))
			}
			for j, r := range f.Rules {
				if r.Ports != nil && len(r.Ports) == 0 {
					l.errorf(r.File, r.Line, syntax.IndexPath(path+".rules", j)+".ports",
						"an empty list matches no port; leave ports out to mean every port")
				}
				if r.From == estate.FromInternet || r.From == estate.FromAny || r.From == "" {
					continue
				}
				_, isZone := zones[r.From]
				_, isNet := networks[r.From]
				if !isZone && !isNet {
					l.errorf(r.File, r.Line, syntax.IndexPath(path+".rules", j)+".from",
						"unknown source %q (want internet, any, a zone or a network)", r.From)
				}
			}
			if f.DefaultAction == 0 {
				f.DefaultAction = estate.ActionDeny
			}
		}
	}
	return e
}

// nameSets are the loader's names of every kind, as a Names.
type nameSets struct {
	zones, networks, hvs, dss names
	images                    map[estate.ImageRef]estate.Pos
}

func (n *nameSets) Has(kind, name string) bool {
	var ns names
	switch kind {
	case "zone":
		ns = n.zones
	case "network":
		ns = n.networks
	case "hypervisor":
		ns = n.hvs
	case "datastore":
		ns = n.dss
	}
	_, ok := ns[name]
	return ok
}

func (n *nameSets) HasImage(r estate.ImageRef) bool { _, ok := n.images[r]; return ok }

func (l *loader) checkVM(d *estateDoc, i int, vm *estate.VM,
	side func(*estateDoc, *string, estate.Pos, string, string), ns *nameSets) {
	path := syntax.IndexPath("vms", i)
	CheckVM(vm, path, ns, func(pos estate.Pos, path, msg string) {
		l.errs = append(l.errs, &syntax.Error{File: pos.File, Line: pos.Line, Path: path, Msg: msg})
	})
	side(d, &vm.Manifest, vm.Pos, path+".manifest", "manifest")
	side(d, &vm.Scan, vm.Pos, path+".scan", "scan report")
	DefaultVM(vm)
}
